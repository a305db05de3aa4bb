"""host leases: one ``tracker watch`` writer per host

``host_leases`` holds, per host name, the ``tracker watch`` process that may
apply that host's events (``owner``: ``host/pid/uuid``) and until when. A
watcher takes the row with a conditional write and renews it; see
``docs/discovery.rst``.

Revision ID: 0006_host_leases
Revises: 0005_observed_links_connections
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracker.db.models

revision: str = "0006_host_leases"
down_revision: str | Sequence[str] | None = "0005_observed_links_connections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "host_leases",
        sa.Column("host_name", sa.String(length=255), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("acquired_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("host_name", name=op.f("pk_host_leases")),
    )


def downgrade() -> None:
    op.drop_table("host_leases")
