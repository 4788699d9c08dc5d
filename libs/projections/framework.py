"""Projections: pure folds of events into state, shared by the live services and replay.

A `Projection` is a name, an initial state and `Handlers`: a table from event class to
a pure function ``(state, event) -> state``. Events of other classes leave the state as
it is. States are frozen dataclasses holding ``Decimal`` money; a handler returns a new
state (``dataclasses.replace``) and never mutates the old one, so a fold can be resumed,
compared or rendered at any point.

Handlers are idempotent on ``event_id``: the entities of a state remember the ids of
the events applied to them, so a redelivered event changes nothing. `AccountFold`
folds one account's events into several projections at once; the live consumers and
``senex replay`` drive the very same object, which is what makes their results equal.

Entities are kept in `PMap`s, persistent maps: adding or changing one entity costs
O(log n) and shares the rest, so folding an account's whole history stays linear in its
length instead of copying every entity on every event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any, Generic, Protocol, TypeVar, cast, get_args, overload
from uuid import UUID

import immutables
from pydantic import Field, GetCoreSchemaHandler, TypeAdapter
from pydantic_core import core_schema

from libs.contracts.envelope import Event

S = TypeVar("S")
E = TypeVar("E", bound=Event)
K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

#: A handler of one event class: the state after the event.
Handler = Callable[[S, E], S]

#: Ids of the events applied to an entity of a state, which make handlers idempotent.
#: Bookkeeping: compared, but left out of the rendered state.
AppliedIds = Annotated[frozenset[UUID], Field(exclude=True)]


class PMap(Mapping[K, V]):
    """An immutable mapping whose `set` returns a new map in O(log n), sharing the rest.

    Built on `immutables.Map` (a hash array mapped trie). It is a `Mapping`, so readers
    use it like the dicts it replaces: it iterates in insertion order (a replaced value
    keeps its key's place, as in a dict), compares equal to any mapping with the same
    items (``PMap() == {}``), is hashable, and renders as a JSON object.
    """

    __slots__ = ("_items", "_keys")
    _items: immutables.Map[K, V]
    _keys: immutables.Map[int, K]
    """Insertion order: the n-th key added, by n (a HAMT alone iterates by hash)."""

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._items = immutables.Map()
        self._keys = immutables.Map()
        pairs = items.items() if isinstance(items, Mapping) else items
        if pairs:
            built = self.update(dict(pairs))
            self._items, self._keys = built._items, built._keys

    @classmethod
    def _of(cls, items: immutables.Map[K, V], keys: immutables.Map[int, K]) -> PMap[K, V]:
        new: PMap[K, V] = cls.__new__(cls)
        new._items = items
        new._keys = keys
        return new

    def set(self, key: K, value: V) -> PMap[K, V]:
        """This map with ``key`` bound to ``value``."""
        keys = self._keys
        if key not in self._items:
            keys = keys.set(len(keys), key)
        return PMap._of(self._items.set(key, value), keys)

    def update(self, items: Mapping[K, V]) -> PMap[K, V]:
        """This map with every item of ``items`` set, in their order."""
        current = self
        for key, value in items.items():
            current = current.set(key, value)
        return current

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    # Overridden because Mapping.get goes through __getitem__ and a KeyError.
    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, /, default: V | T) -> V | T: ...
    def get(self, key: K, /, default: V | T | None = None) -> V | T | None:
        return self._items.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[K]:
        keys = self._keys
        return (keys[n] for n in range(len(keys)))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        # Like dicts, equality ignores the order of insertion.
        if isinstance(other, PMap):
            return bool(self._items == other._items)
        if isinstance(other, Mapping):
            return len(self) == len(other) and all(
                key in other and other[key] == value for key, value in self._items.items()
            )
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"PMap({dict(self.items())!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Validated and rendered as the ``dict[K, V]`` it stands for."""
        key, value = get_args(source) or (Any, Any)
        as_dict = handler.generate_schema(dict[key, value])  # type: ignore[valid-type]
        return core_schema.no_info_after_validator_function(
            PMap,
            as_dict,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda pmap: dict(pmap.items()), return_schema=as_dict
            ),
        )


class Handlers(Generic[S]):
    """The handlers of one projection, by exact event class.

    Register with ``@handlers.on(OrderFilled)``; `apply` looks the event's class up in
    a dict (contract events are leaf classes, so no MRO walk is needed) and returns the
    state unchanged for classes the projection does not fold.
    """

    def __init__(self) -> None:
        self._by_type: dict[type[Event], Callable[[S, Any], S]] = {}

    def on(self, event_type: type[E]) -> Callable[[Handler[S, E]], Handler[S, E]]:
        """Decorator registering the handler of ``event_type`` (once per class)."""

        def register(handler: Handler[S, E]) -> Handler[S, E]:
            if event_type in self._by_type:
                raise TypeError(f"a handler for {event_type.__name__} is already registered")
            self._by_type[event_type] = handler
            return handler

        return register

    def apply(self, state: S, event: Event) -> S:
        """The state after ``event``; ``state`` itself when no handler folds its class."""
        handler = self._by_type.get(type(event))
        return state if handler is None else handler(state, event)

    @property
    def event_types(self) -> frozenset[type[Event]]:
        """The event classes this table folds."""
        return frozenset(self._by_type)


@dataclass(frozen=True)
class Projection(Generic[S]):
    """A named, pure fold: ``initial`` and the `Handlers` that advance it."""

    name: str
    initial: S
    handlers: Handlers[S] = field(repr=False)
    _adapter: TypeAdapter[S] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built once: rendering uses pydantic's serializer for dataclasses, which writes
        # Decimals as exact strings and skips fields marked Field(exclude=True).
        object.__setattr__(self, "_adapter", TypeAdapter(type(self.initial)))

    def apply(self, state: S, event: Event) -> S:
        """The state after ``event``."""
        return self.handlers.apply(state, event)

    def fold(self, events: Iterable[Event], state: S | None = None) -> S:
        """``events`` folded in order onto ``state`` (the initial state by default)."""
        current = self.initial if state is None else state
        apply = self.handlers.apply
        for event in events:
            current = apply(current, event)
        return current

    def to_json(self, state: S) -> Any:
        """``state`` as JSON-ready data: Decimals, UUIDs and times as strings."""
        return self._adapter.dump_python(state, mode="json")


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An event the fold could not apply (it contradicts the lifecycle so far).

    Recorded instead of raised, so a replay of a log that holds such an event still
    completes, and the live fold (which runs the same code) stays equal to it.
    """

    event_id: UUID
    event_type: str
    occurred_at: datetime
    message: str

    @classmethod
    def of(cls, event: Event, message: str) -> Anomaly:
        """The anomaly of ``event``, explained by ``message``."""
        return cls(event.event_id, event.type, event.occurred_at, message)


def with_anomaly(anomalies: tuple[Anomaly, ...], event: Event, message: str) -> tuple[Anomaly, ...]:
    """``anomalies`` plus one for ``event``, unless that event is already among them."""
    if any(anomaly.event_id == event.event_id for anomaly in anomalies):
        return anomalies
    return (*anomalies, Anomaly.of(event, message))


class _Refusable(Protocol):
    """A frozen entity record that keeps its anomalies and the ids applied to it."""

    @property
    def anomalies(self) -> tuple[Anomaly, ...]: ...

    @property
    def applied(self) -> frozenset[UUID]: ...


R = TypeVar("R", bound=_Refusable)


def refused(record: R, event: Event, message: str) -> R:
    """``record`` with ``event`` kept as an anomaly: marked applied, nothing else changes."""
    return replace(  # type: ignore[type-var]  # every record type is a dataclass
        record,
        anomalies=(*record.anomalies, Anomaly.of(event, message)),
        applied=record.applied | {event.event_id},
    )


@dataclass(frozen=True, slots=True)
class AccountFold:
    """Several projections of one account, folded together; immutable.

    `apply` ignores events of other accounts (and market-wide ones), so a consumer of
    the whole business stream and a replay of one account's log rows fold the same.
    """

    account_id: str
    projections: tuple[Projection[Any], ...]
    states: tuple[Any, ...]

    @classmethod
    def start(cls, account_id: str, projections: Sequence[Projection[Any]]) -> AccountFold:
        """Every projection at its initial state; names must be unique."""
        names = [projection.name for projection in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"projection names must be unique, got {names}")
        return cls(
            account_id,
            tuple(projections),
            tuple(projection.initial for projection in projections),
        )

    def apply(self, event: Event) -> AccountFold:
        """The fold after ``event``; ``self`` when the event is not this account's."""
        if event.account_id != self.account_id:
            return self
        states = tuple(
            projection.handlers.apply(state, event)
            for projection, state in zip(self.projections, self.states, strict=True)
        )
        if all(new is old for new, old in zip(states, self.states, strict=True)):
            return self
        return replace(self, states=states)

    def fold(self, events: Iterable[Event]) -> AccountFold:
        """The fold after ``events``, in order."""
        current = self
        for event in events:
            current = current.apply(event)
        return current

    def state(self, projection: Projection[S]) -> S:
        """The current state of ``projection`` (one of this fold's)."""
        for candidate, state in zip(self.projections, self.states, strict=True):
            if candidate is projection:
                return cast(S, state)
        raise KeyError(f"projection {projection.name!r} is not part of this fold")

    def to_json(self) -> dict[str, Any]:
        """Every state as JSON-ready data, keyed by projection name."""
        return {
            projection.name: projection.to_json(state)
            for projection, state in zip(self.projections, self.states, strict=True)
        }
