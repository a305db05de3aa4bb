"""volume description and bootable flag (cinderlib's create_volume arguments)

Revision ID: 0003_volume_description
Revises: 0002_observed
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_volume_description"
down_revision: str | Sequence[str] | None = "0002_observed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing volumes get no description and are not bootable, as cinderlib's default.
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("bootable", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.drop_column("bootable")
        batch_op.drop_column("description")
