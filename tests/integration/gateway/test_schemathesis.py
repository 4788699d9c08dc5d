"""Schemathesis over ``/openapi.json`` against the live gateway, every service behind it.

Each operation gets generated requests (valid and invalid, within the schema's types)
from a logged-in session carrying the CSRF header; every answer must be no 5xx, a
documented status and content type, and a body that matches the documented schema.
Schemathesis runs its (synchronous) client in a thread, so the gateway keeps serving on
this module's event loop meanwhile.

``POST /api/auth/logout`` is left out: it would end the session every later request
rides on (its own test is in test_gateway.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.gateway.world import PASSWORD, World, running_world

#: Generated requests per operation: enough to reach each documented error, bounded so
#: the module stays under two minutes.
EXAMPLES = 60
SKIPPED = {("POST", "/api/auth/logout")}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
async def world(server_root: Path, database_url: str) -> AsyncIterator[World]:
    async with running_world(server_root, database_url, full=True) as w:
        yield w


def _fuzz(base_url: str, statuses: Counter[int]) -> dict[str, str]:
    """Run every operation; the failures by operation (empty when all passed)."""
    session = requests.Session()
    login = session.post(
        f"{base_url}/api/auth/login", json={"username": "bob", "password": PASSWORD}, timeout=30
    )
    login.raise_for_status()
    headers = {"X-CSRF-Token": login.json()["csrf_token"]}
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures[f"schema: {result.err()}"] = "the operation's schema is invalid"
            continue
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call_and_validate(
                base_url=base_url, session=session, headers=headers, checks=CHECKS, timeout=30
            )
            statuses[response.status_code] += 1

        try:
            check()
        except Exception as exc:
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:3000]
    assert operations >= 20, f"only {operations} operations in the schema"
    return failures


async def test_no_server_errors_and_no_schema_violations(world: World) -> None:
    statuses: Counter[int] = Counter()
    failures = await asyncio.to_thread(_fuzz, world.url, statuses)
    print(f"responses by status: {dict(sorted(statuses.items()))}")
    # Generated requests reached the routes, not only the validation layer.
    assert statuses[200] > 0
    assert sum(statuses.values()) >= 300
    assert not failures, "\n\n".join(f"{op}:\n{text}" for op, text in failures.items())
