"""JSON Schema (draft 2020-12) of every event, command and reply, for other languages
and for documentation. ``senex contracts schema DIR`` writes them with ``write_schemas``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from libs.contracts.base import ContractModel
from libs.contracts.commands import Command
from libs.contracts.envelope import Event
from libs.contracts.registry import COMMAND_TYPES, EVENT_TYPES, REPLY_TYPES
from libs.contracts.subjects import account_events_filter, command_filter, market_filter

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def model_schema(model: type[ContractModel]) -> dict[str, Any]:
    """The JSON Schema of ``model``'s wire form (what a valid message looks like)."""
    schema = model.model_json_schema(mode="validation")
    return {"$schema": DRAFT, "$id": f"{model.__name__}.json", **schema}


def _subject_pattern(model: type[ContractModel]) -> str:
    if issubclass(model, Command):
        return command_filter(model.SERVICE, model.VERB)
    if issubclass(model, Event):
        if model.MARKET_WIDE:
            return market_filter(type_name=model.__name__)
        return account_events_filter(context=model.CONTEXT, type_name=model.__name__)
    raise TypeError(f"{model.__name__} is not published on a subject of its own")


def write_schemas(directory: Path) -> list[Path]:
    """Write ``events/``, ``commands/``, ``replies/`` and ``index.json`` under ``directory``.

    Creates the directories; overwrites existing files. Returns every file written.
    """
    written: list[Path] = []
    index: dict[str, list[dict[str, Any]]] = {"events": [], "commands": [], "replies": []}
    groups: tuple[tuple[str, tuple[type[ContractModel], ...]], ...] = (
        ("events", EVENT_TYPES),
        ("commands", COMMAND_TYPES),
        ("replies", REPLY_TYPES),
    )
    for group, models in groups:
        folder = directory / group
        folder.mkdir(parents=True, exist_ok=True)
        for model in models:
            path = folder / f"{model.__name__}.json"
            path.write_text(json.dumps(model_schema(model), indent=2, sort_keys=True) + "\n")
            written.append(path)
            entry: dict[str, Any] = {"type": model.__name__, "file": f"{group}/{path.name}"}
            if "schema_version" in model.model_fields:
                entry["schema_version"] = model.model_fields["schema_version"].default
            if group != "replies":
                entry["subject"] = _subject_pattern(model)
            if issubclass(model, Command):
                entry["service"] = model.SERVICE
                entry["verb"] = model.VERB
                entry["reply"] = model.REPLY.__name__
            index[group].append(entry)
    index_path = directory / "index.json"
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    written.append(index_path)
    return written
