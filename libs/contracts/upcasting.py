"""Upcasters: turn an old ``schema_version`` of a message into the current one.

When a model's shape changes, bump its ``schema_version`` default and register one
upcaster per step: ``(type, from_version) -> fn(dict) -> dict`` producing the shape of
``from_version + 1``. The registry applies them in order on parse, so the event log
never needs rewriting.

    @register_upcaster("OrderFilled", 1)
    def _order_filled_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        data["legs"] = data.pop("fills")
        return data
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from libs.contracts.errors import UnsupportedSchemaVersion

#: Takes the message of one version (a fresh dict it may change) and returns the next.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class Upcasters:
    """A set of upcasters keyed by ``(type, from_version)``."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}

    def register(self, type_name: str, from_version: int, fn: Upcaster) -> None:
        """Add the step from ``from_version`` to ``from_version + 1`` of ``type_name``."""
        if from_version < 1:
            raise ValueError("schema versions start at 1")
        key = (type_name, from_version)
        if key in self._steps:
            raise ValueError(f"an upcaster for {type_name} v{from_version} is already registered")
        self._steps[key] = fn

    def __call__(self, type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator form of ``register``."""

        def decorate(fn: Upcaster) -> Upcaster:
            self.register(type_name, from_version, fn)
            return fn

        return decorate

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._steps

    def upcast(
        self, type_name: str, data: dict[str, Any], version: int, target: int
    ) -> dict[str, Any]:
        """``data`` (at ``version``) brought to ``target`` one step at a time.

        Raises ``UnsupportedSchemaVersion`` for a version newer than ``target`` or a
        missing step.
        """
        if version > target:
            raise UnsupportedSchemaVersion(type_name, version, target)
        while version < target:
            step = self._steps.get((type_name, version))
            if step is None:
                raise UnsupportedSchemaVersion(type_name, version, target)
            data = step(data)
            version += 1
            # Set here, not trusted to each upcaster, so a forgetful step cannot loop
            # or mislabel the result.
            data["schema_version"] = version
        return data


#: The upcasters ``parse_event`` applies.
UPCASTERS = Upcasters()


def register_upcaster(type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Decorator registering a step in ``UPCASTERS``."""
    return UPCASTERS(type_name, from_version)
