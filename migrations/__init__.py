"""Alembic environment of tracker (shipped in the wheel as ``tracker.migrations``)."""
