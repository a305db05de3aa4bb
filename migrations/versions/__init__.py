"""Alembic revisions of the tracker store, oldest first by ``down_revision``."""
