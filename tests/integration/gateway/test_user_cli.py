"""`senex user create` against a real database (``--no-link``: no simulator needed)."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner, Result

from libs.cli.main import app
from services.gateway.db import Pool
from services.gateway.users import UserStore

runner = CliRunner()


def create(database_url: str, *args: str, stdin: str | None = None) -> Result:
    return runner.invoke(
        app,
        ["user", "create", "--database-url", database_url, "--no-link", *args],
        input=stdin,
    )


async def _authenticate(database_url: str, user: str, password: str) -> str | None:
    pool = Pool(database_url, 1)
    try:
        found = await UserStore(pool).authenticate(user, password)
    finally:
        await pool.close()
    return found.user_id if found else None


def authenticate(database_url: str, user: str, password: str) -> str | None:
    return asyncio.run(_authenticate(database_url, user, password))


def test_create_with_password_on_stdin(database_url: str) -> None:
    result = create(database_url, "--username", "Dora", "--password-stdin", stdin="s3cret pass\n")
    assert result.exit_code == 0, result.output
    assert "created user dora" in result.output
    assert "s3cret" not in result.output
    assert authenticate(database_url, "dora", "s3cret pass") == "dora"
    assert authenticate(database_url, "dora", "s3cret pass\n") is None


def test_create_with_password_option_and_refusals(database_url: str) -> None:
    assert create(database_url, "--username", "eve", "--password", "long enough").exit_code == 0
    taken = create(database_url, "--username", "EVE", "--password", "long enough")
    assert taken.exit_code == 1
    assert "exists already" in taken.output
    assert create(database_url, "--username", "fay", "--password", "short").exit_code == 1
    assert (
        create(database_url, "--username", "bad name", "--password", "long enough").exit_code == 1
    )
    both = create(
        database_url, "--username", "gus", "--password", "long enough", "--password-stdin"
    )
    assert both.exit_code == 1


@pytest.mark.parametrize("args", [["--username", "hal"]])
def test_a_password_source_is_required(database_url: str, args: list[str]) -> None:
    assert create(database_url, *args).exit_code == 1
