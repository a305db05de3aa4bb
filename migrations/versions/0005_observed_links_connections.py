"""record udev links of SCSI devices and the connection of iSCSI sessions

* ``observed_scsi_devices.links``: the device's ``/dev/disk/by-*`` links (JSON list);
* ``observed_iscsi_sessions.connection_state``, ``persistent_address``,
  ``persistent_port``: connection 0's state and configured address, so that a
  session logged in whose connection is down can be told from a healthy one.

Every observed row's digest is cleared: the rows now carry more columns and the
digest no longer covers ``volume_id`` (compared on its own), so the first
reconcile after the upgrade recomputes them. A row whose columns did not change
gets its new digest silently, without a journal entry.

Revision ID: 0005_observed_links_connections
Revises: 0004_hctl_width
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_observed_links_connections"
down_revision: str | Sequence[str] | None = "0004_hctl_width"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OBSERVED = (
    "observed_scsi_hosts",
    "observed_fc_remote_ports",
    "observed_iscsi_sessions",
    "observed_scsi_devices",
    "observed_multipath_maps",
)


def _clear_digests() -> None:
    for name in _OBSERVED:
        op.execute(sa.table(name, sa.column("digest", sa.String)).update().values(digest=""))


def upgrade() -> None:
    with op.batch_alter_table("observed_scsi_devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("links", sa.JSON(), nullable=True))
    with op.batch_alter_table("observed_iscsi_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("connection_state", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("persistent_address", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("persistent_port", sa.Integer(), nullable=True))
    # Existing rows have no known links: an empty list, as a reconcile would write.
    op.execute(
        sa.table("observed_scsi_devices", sa.column("links", sa.JSON)).update().values(links=[])
    )
    _clear_digests()


def downgrade() -> None:
    with op.batch_alter_table("observed_iscsi_sessions", schema=None) as batch_op:
        batch_op.drop_column("persistent_port")
        batch_op.drop_column("persistent_address")
        batch_op.drop_column("connection_state")
    with op.batch_alter_table("observed_scsi_devices", schema=None) as batch_op:
        batch_op.drop_column("links")
    _clear_digests()
