"""storage connections: iSCSI targets and NFS exports managed per host

``storage_connections`` holds, per host name and caller's id, a managed
connection: its target parsed and normalised (``scheme``, ``uri``,
``target_key``, ``connection_info``), the options that are not the URI's (the
path of a CHAP secret file, never a secret), its state and last error, and the
lease of the process that may reconnect it. See ``docs/connections.rst``.

Revision ID: 0007_storage_connections
Revises: 0006_host_leases
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracker.db.models

revision: str = "0007_storage_connections"
down_revision: str | Sequence[str] | None = "0006_host_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "storage_connections",
        sa.Column("host_name", sa.String(length=255), nullable=False),
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("scheme", sa.String(length=16), nullable=False),
        sa.Column("uri", sa.String(length=2048), nullable=False),
        sa.Column("target_key", sa.String(length=512), nullable=False),
        sa.Column("connection_info", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("connected", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("established", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column("last_error_message", sa.String(length=1024), nullable=True),
        sa.Column("last_error_at", tracker.db.models.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", tracker.db.models.UTCDateTime(), nullable=True),
        sa.Column("connected_at", tracker.db.models.UTCDateTime(), nullable=True),
        sa.Column("checked_at", tracker.db.models.UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", tracker.db.models.UTCDateTime(), nullable=True),
        sa.Column("created_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'connected', 'reconnecting')",
            name=op.f("ck_storage_connections_state_valid"),
        ),
        sa.PrimaryKeyConstraint("host_name", "id", name=op.f("pk_storage_connections")),
    )
    op.create_index(
        op.f("ix_storage_connections_host_name_target_key"),
        "storage_connections",
        ["host_name", "target_key"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_storage_connections_host_name_target_key"), table_name="storage_connections"
    )
    op.drop_table("storage_connections")
