"""`senex contracts schema DIR` writes a valid JSON Schema per event, command and reply."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from libs.cli import contracts as contracts_cli
from libs.contracts.registry import (
    COMMAND_TYPES,
    EVENT_TYPES,
    REPLY_TYPES,
    encode_command,
    encode_event,
)
from libs.contracts.schema import model_schema, write_schemas
from tests.unit.contracts.examples import opening_fill
from tests.unit.contracts.strategies import models


def _senex() -> typer.Typer:
    """The contracts sub-app mounted as `senex contracts`, as libs/cli/main.py does."""
    root = typer.Typer()
    root.add_typer(contracts_cli.app, name="contracts")
    return root


@pytest.fixture(scope="module")
def schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("out") / "nested" / "schemas"
    result = CliRunner().invoke(_senex(), ["contracts", "schema", str(target)])
    assert result.exit_code == 0, result.output
    assert f"to {target}" in result.output
    return target


def test_the_command_creates_the_directory_with_one_file_per_type(schema_dir):
    index = json.loads((schema_dir / "index.json").read_text())

    assert [e["type"] for e in index["events"]] == [m.__name__ for m in EVENT_TYPES]
    assert [e["type"] for e in index["commands"]] == [m.__name__ for m in COMMAND_TYPES]
    assert [e["type"] for e in index["replies"]] == [m.__name__ for m in REPLY_TYPES]
    for group in index.values():
        for entry in group:
            assert (schema_dir / entry["file"]).is_file()


def test_the_index_tells_subjects_versions_and_routes(schema_dir):
    index = json.loads((schema_dir / "index.json").read_text())
    by_type = {e["type"]: e for group in index.values() for e in group}

    assert by_type["OrderFilled"]["subject"] == "senex.evt.*.*.execution.OrderFilled"
    assert by_type["OrderFilled"]["schema_version"] == 1
    assert by_type["QuoteReceived"]["subject"] == "senex.md.*.QuoteReceived"
    approve = by_type["ApproveSuggestion"]
    assert (approve["service"], approve["verb"], approve["reply"]) == (
        "strategy",
        "approve_suggestion",
        "ApprovalReply",
    )
    assert approve["subject"] == "senex.cmd.strategy.approve_suggestion.*.*"


def test_every_written_file_is_a_valid_draft_2020_12_schema(schema_dir):
    files = sorted(schema_dir.glob("*/*.json"))

    assert len(files) == len(EVENT_TYPES) + len(COMMAND_TYPES) + len(REPLY_TYPES)
    for path in files:
        Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_an_encoded_event_validates_against_its_written_schema(schema_dir):
    schema = json.loads((schema_dir / "events" / "OrderFilled.json").read_text())

    Draft202012Validator(schema).validate(json.loads(encode_event(opening_fill())))


def test_the_schema_refuses_what_the_model_refuses(schema_dir):
    schema = json.loads((schema_dir / "events" / "OrderFilled.json").read_text())
    instance = json.loads(encode_event(opening_fill()))
    validator = Draft202012Validator(schema)

    with pytest.raises(jsonschema.ValidationError, match="'legs' is a required property"):
        validator.validate({k: v for k, v in instance.items() if k != "legs"})
    with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
        validator.validate({**instance, "surprise": 1})
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        validator.validate(
            {**instance, "legs": [{**instance["legs"][0], "symbol": "QQQ   251219X00592000"}]}
        )


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda m: m.__name__)
@settings(max_examples=10)
@given(data=st.data())
def test_every_generated_event_validates_against_its_schema(event_type, data):
    event = data.draw(models(event_type))

    Draft202012Validator(model_schema(event_type)).validate(json.loads(encode_event(event)))


@pytest.mark.parametrize("command_type", COMMAND_TYPES, ids=lambda m: m.__name__)
@settings(max_examples=10)
@given(data=st.data())
def test_every_generated_command_validates_against_its_schema(command_type, data):
    command = data.draw(models(command_type))

    Draft202012Validator(model_schema(command_type)).validate(json.loads(encode_command(command)))


def test_writing_twice_overwrites_in_place(tmp_path):
    first = write_schemas(tmp_path)
    second = write_schemas(tmp_path)

    assert first == second
