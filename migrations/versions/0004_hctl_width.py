"""widen observed_scsi_devices.hctl to hold the largest SCSI address

The kernel's H:C:T:L has a 64-bit LUN: with host, channel and target up to
2**31-1 and a LUN up to 2**64-1 the address is 53 characters, more than the
48 that 0002 allowed. PostgreSQL and MariaDB refused such rows.

Revision ID: 0004_hctl_width
Revises: 0003_volume_description
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_hctl_width"
down_revision: str | Sequence[str] | None = "0003_volume_description"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("observed_scsi_devices", schema=None) as batch_op:
        batch_op.alter_column(
            "hctl",
            existing_type=sa.String(length=48),
            type_=sa.String(length=64),
            existing_nullable=False,
        )


def downgrade() -> None:
    # Addresses longer than 48 characters cannot go back: the servers refuse
    # to narrow the column over them, and the migration fails with nothing changed
    # (PostgreSQL) or the table as it was (MariaDB rejects the ALTER as a whole).
    with op.batch_alter_table("observed_scsi_devices", schema=None) as batch_op:
        batch_op.alter_column(
            "hctl",
            existing_type=sa.String(length=64),
            type_=sa.String(length=48),
            existing_nullable=False,
        )
