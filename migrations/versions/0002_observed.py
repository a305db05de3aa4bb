"""observed host state and journal

Revision ID: 0002_observed
Revises: 0001_core
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracker.db.models

revision: str = "0002_observed"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "host_journal",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("host_name", sa.String(length=255), nullable=False),
        sa.Column("at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("object_key", sa.String(length=512), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "event IN ('appeared', 'changed', 'vanished')", name=op.f("ck_host_journal_event_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_journal")),
    )
    with op.batch_alter_table("host_journal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_host_journal_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_host_journal_host_name_at"), ["host_name", "at"], unique=False
        )

    op.create_table(
        "observed_fc_remote_ports",
        sa.Column("scsi_host", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("port_key", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("wwpn", sa.String(length=16), nullable=True),
        sa.Column("wwnn", sa.String(length=16), nullable=True),
        sa.Column("port_id", sa.Integer(), nullable=True),
        sa.Column("roles", sa.String(length=128), nullable=False),
        sa.Column("port_state", sa.String(length=32), nullable=True),
        sa.Column("scsi_target_id", sa.Integer(), nullable=True),
        sa.Column("host_name", sa.String(length=255), nullable=False),
        sa.Column("sys_path", sa.String(length=1024), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("seen_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("changed_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "scsi_host", "port_key", "host_name", name=op.f("pk_observed_fc_remote_ports")
        ),
    )
    with op.batch_alter_table("observed_fc_remote_ports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_observed_fc_remote_ports_wwpn"), ["wwpn"], unique=False
        )

    op.create_table(
        "observed_hosts",
        sa.Column("host_name", sa.String(length=255), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("changed_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("host_name", name=op.f("pk_observed_hosts")),
    )
    op.create_table(
        "observed_iscsi_sessions",
        sa.Column("target_iqn", sa.String(length=223), nullable=False),
        sa.Column("portal", sa.String(length=64), nullable=False),
        sa.Column("iface", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("scsi_host", sa.Integer(), nullable=True),
        sa.Column("tpgt", sa.Integer(), nullable=True),
        sa.Column("current_portal", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=True),
        sa.Column("host_name", sa.String(length=255), nullable=False),
        sa.Column("sys_path", sa.String(length=1024), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("seen_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("changed_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "target_iqn", "portal", "iface", "host_name", name=op.f("pk_observed_iscsi_sessions")
        ),
    )
    op.create_table(
        "observed_scsi_hosts",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("driver", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=True),
        sa.Column("wwpn", sa.String(length=16), nullable=True),
        sa.Column("wwnn", sa.String(length=16), nullable=True),
        sa.Column("port_state", sa.String(length=32), nullable=True),
        sa.Column("port_id", sa.Integer(), nullable=True),
        sa.Column("speed", sa.String(length=32), nullable=True),
        sa.Column("fabric_name", sa.String(length=16), nullable=True),
        sa.Column("iscsi_initiator_name", sa.String(length=223), nullable=True),
        sa.Column("host_name", sa.String(length=255), nullable=False),
        sa.Column("sys_path", sa.String(length=1024), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("seen_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("changed_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("number", "host_name", name=op.f("pk_observed_scsi_hosts")),
    )
    with op.batch_alter_table("observed_scsi_hosts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_observed_scsi_hosts_wwpn"), ["wwpn"], unique=False)

    op.create_table(
        "observed_multipath_maps",
        sa.Column("wwid", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("uuid", sa.String(length=255), nullable=False),
        sa.Column("block_name", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("read_only", sa.Boolean(), nullable=True),
        sa.Column("suspended", sa.Boolean(), nullable=True),
        sa.Column("paths", sa.JSON(), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=True),
        sa.Column("host_name", sa.String(length=255), nullable=False),
        sa.Column("sys_path", sa.String(length=1024), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("seen_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("changed_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volumes.id"],
            name=op.f("fk_observed_multipath_maps_volume_id_volumes"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("wwid", "host_name", name=op.f("pk_observed_multipath_maps")),
    )
    with op.batch_alter_table("observed_multipath_maps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_observed_multipath_maps_volume_id"), ["volume_id"], unique=False
        )

    op.create_table(
        "observed_scsi_devices",
        sa.Column("hctl", sa.String(length=48), nullable=False),
        sa.Column("scsi_host", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Integer(), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("lun", sa.BigInteger(), nullable=False),
        sa.Column("peripheral_type", sa.Integer(), nullable=True),
        sa.Column("vendor", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("revision", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=True),
        sa.Column("block_name", sa.String(length=64), nullable=True),
        sa.Column("block_devno", sa.String(length=32), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("logical_block_size", sa.Integer(), nullable=True),
        sa.Column("read_only", sa.Boolean(), nullable=True),
        sa.Column("wwn", sa.String(length=255), nullable=True),
        sa.Column("wwid", sa.String(length=255), nullable=True),
        sa.Column("serial", sa.String(length=255), nullable=True),
        sa.Column("transport", sa.String(length=16), nullable=True),
        sa.Column("initiator_wwpn", sa.String(length=16), nullable=True),
        sa.Column("target_wwpn", sa.String(length=16), nullable=True),
        sa.Column("target_iqn", sa.String(length=223), nullable=True),
        sa.Column("target_portal", sa.String(length=64), nullable=True),
        sa.Column("volume_id", sa.String(length=36), nullable=True),
        sa.Column("host_name", sa.String(length=255), nullable=False),
        sa.Column("sys_path", sa.String(length=1024), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("seen_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.Column("changed_at", tracker.db.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["volume_id"],
            ["volumes.id"],
            name=op.f("fk_observed_scsi_devices_volume_id_volumes"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("hctl", "host_name", name=op.f("pk_observed_scsi_devices")),
    )
    with op.batch_alter_table("observed_scsi_devices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_observed_scsi_devices_fc_path",
            ["host_name", "initiator_wwpn", "target_wwpn", "lun"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_observed_scsi_devices_serial"), ["serial"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_observed_scsi_devices_volume_id"), ["volume_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_observed_scsi_devices_wwid"), ["wwid"], unique=False)
        batch_op.create_index(batch_op.f("ix_observed_scsi_devices_wwn"), ["wwn"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes (MariaDB refuses to drop an index that
    # backs a foreign key on its own). Tracked intent is left untouched.
    for table in (
        "observed_scsi_devices",
        "observed_multipath_maps",
        "observed_scsi_hosts",
        "observed_iscsi_sessions",
        "observed_hosts",
        "observed_fc_remote_ports",
        "host_journal",
    ):
        op.drop_table(table)
