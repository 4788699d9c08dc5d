"""Migration files: found in version order, named strictly, checksummed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from libs.eventlog.errors import InvalidMigrationFile
from libs.eventlog.migrate import load_migrations


def test_packaged_migrations_come_in_version_order_from_1() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert [m.name for m in migrations[:2]] == ["events", "append_only"]


def test_checksum_is_the_sha256_of_the_sql(tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("SELECT 1;\n")
    (migration,) = load_migrations(tmp_path)
    assert migration.checksum == hashlib.sha256(b"SELECT 1;\n").hexdigest()


def test_crlf_line_endings_do_not_change_the_checksum(tmp_path: Path) -> None:
    unix, windows = tmp_path / "unix", tmp_path / "windows"
    unix.mkdir()
    windows.mkdir()
    (unix / "0001_first.sql").write_bytes(b"SELECT 1;\nSELECT 2;\n")
    (windows / "0001_first.sql").write_bytes(b"SELECT 1;\r\nSELECT 2;\r\n")
    assert load_migrations(unix)[0].checksum == load_migrations(windows)[0].checksum


def test_files_other_than_sql_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "README.md").write_text("notes")
    assert [m.name for m in load_migrations(tmp_path)] == ["first"]


@pytest.mark.parametrize(
    "name", ["1_short.sql", "0001-dash.sql", "0001_Upper.sql", "0000_zero.sql"]
)
def test_misnamed_files_are_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(InvalidMigrationFile, match=name):
        load_migrations(tmp_path)


def test_two_files_with_one_version_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "0001_second.sql").write_text("SELECT 2;")
    with pytest.raises(InvalidMigrationFile, match="0001"):
        load_migrations(tmp_path)
