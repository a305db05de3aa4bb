"""The code's schema revision read without Alembic agrees with Alembic's.

:func:`tracker.db.migrate.code_revisions` reads the ``versions/`` files with a
plain parse, so opening a store does not import Alembic; these tests hold it
to Alembic's answer, on the shipped migrations and on graphs grown from them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from tracker import exceptions
from tracker.db import migrate

_REVISION = '''"""{message}

Revision ID: {revision}
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "{revision}"
down_revision: str | Sequence[str] | None = {down}
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''


@pytest.fixture(autouse=True)
def _uncached() -> Iterator[None]:
    migrate.code_revisions.cache_clear()
    yield
    migrate.code_revisions.cache_clear()


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    """A copy of the shipped migration environment, to grow revisions in."""
    target = tmp_path / "migrations"
    shutil.copytree(migrate.script_location(), target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _add(scripts: Path, revision: str, down: str | tuple[str, ...] | None) -> None:
    text = _REVISION.format(message=f"test {revision}", revision=revision, down=repr(down))
    (scripts / "versions" / f"{revision}.py").write_text(text, encoding="utf-8")


def _alembic(scripts: Path) -> tuple[str | None, frozenset[str]]:
    directory = ScriptDirectory(str(scripts))
    return directory.get_current_head(), frozenset(s.revision for s in directory.walk_revisions())


def _cheap(scripts: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, frozenset[str]]:
    monkeypatch.setattr(migrate, "script_location", lambda: scripts)
    return migrate.code_revisions()


def test_the_shipped_head_and_revisions_are_alembics() -> None:
    head, known = migrate.code_revisions()
    scripts = migrate.script_directory()
    assert head == scripts.get_current_head()
    assert known == {script.revision for script in scripts.walk_revisions()}


def test_a_new_revision_becomes_the_head(scripts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_head, _ = _alembic(scripts)
    _add(scripts, "9001_next", old_head)
    assert _cheap(scripts, monkeypatch) == _alembic(scripts)
    assert migrate.parse_revisions(scripts / "versions") is not None  # read without Alembic


def test_a_merge_revision_is_followed(scripts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_head, _ = _alembic(scripts)
    _add(scripts, "9001_left", old_head)
    _add(scripts, "9002_right", old_head)
    _add(scripts, "9003_merge", ("9001_left", "9002_right"))
    assert _cheap(scripts, monkeypatch) == _alembic(scripts)


def test_a_file_the_parse_cannot_read_is_left_to_alembic(
    scripts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_head, _ = _alembic(scripts)
    assert old_head is not None
    _add(scripts, "9001_next", old_head)
    computed = scripts / "versions" / "9001_next.py"
    computed.write_text(
        computed.read_text(encoding="utf-8").replace(
            f"= {old_head!r}", f"= {old_head[:4]!r} + {old_head[4:]!r}"
        ),
        encoding="utf-8",
    )
    assert migrate.parse_revisions(scripts / "versions") is None
    assert _cheap(scripts, monkeypatch) == _alembic(scripts)


def test_two_heads_are_refused_as_alembic_refuses_them(
    scripts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_head, _ = _alembic(scripts)
    _add(scripts, "9001_left", old_head)
    _add(scripts, "9002_right", old_head)
    with pytest.raises(CommandError):
        ScriptDirectory(str(scripts)).get_current_head()
    with pytest.raises(exceptions.MigrationError):
        _cheap(scripts, monkeypatch)
