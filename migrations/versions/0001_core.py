"""tracking core: backends, volumes, snapshots, connections, key-values

Revision ID: 0001_core
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracker.db.models

revision: str = "0001_core"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "backends",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("driver", sa.String(length=255), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backends")),
        sa.UniqueConstraint("name", name=op.f("uq_backends_name")),
    )
    op.create_table(
        "key_values",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_key_values")),
    )
    op.create_table(
        "volumes",
        sa.Column("backend_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("serial", sa.String(length=255), nullable=True),
        sa.Column("wwn", sa.String(length=64), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('creating', 'available', 'in-use', 'error', 'deleting', 'deleted', 'error_deleting')",
            name=op.f("ck_volumes_status_valid"),
        ),
        sa.CheckConstraint("size > 0", name=op.f("ck_volumes_size_positive")),
        sa.ForeignKeyConstraint(
            ["backend_id"],
            ["backends.id"],
            name=op.f("fk_volumes_backend_id_backends"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volumes")),
    )
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_volumes_backend_order", ["backend_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_volumes_serial"), ["serial"], unique=False)
        batch_op.create_index(batch_op.f("ix_volumes_wwn"), ["wwn"], unique=False)

    op.create_table(
        "connections",
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("protocol", sa.String(length=32), nullable=False),
        sa.Column("attach_mode", sa.String(length=2), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("connector_info", sa.JSON(), nullable=False),
        sa.Column("connection_info", sa.JSON(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "attach_mode IN ('rw', 'ro')", name=op.f("ck_connections_attach_mode_valid")
        ),
        sa.CheckConstraint(
            "status IN ('attaching', 'attached', 'detaching', 'error')",
            name=op.f("ck_connections_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volumes.id"],
            name=op.f("fk_connections_volume_id_volumes"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
    )
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connections_host"), ["host"], unique=False)
        batch_op.create_index(
            "ix_connections_volume_order", ["volume_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "snapshots",
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('creating', 'available', 'error', 'deleting', 'deleted', 'error_deleting')",
            name=op.f("ck_snapshots_status_valid"),
        ),
        sa.CheckConstraint("size > 0", name=op.f("ck_snapshots_size_positive")),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volumes.id"],
            name=op.f("fk_snapshots_volume_id_volumes"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
    )
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_snapshots_volume_order", ["volume_id", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    # Dropping a table drops its indexes; dropping them first fails on MariaDB,
    # where an index backing a foreign key cannot be dropped on its own.
    op.drop_table("snapshots")
    op.drop_table("connections")
    op.drop_table("volumes")
    op.drop_table("key_values")
    op.drop_table("backends")
