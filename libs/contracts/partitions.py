"""Accounts are spread over a fixed number of partitions; subjects carry the partition.

A service that runs as several replicas hands each replica a share of the partitions
(see `libs.runtime.leases`). Every event and command of one account lands in the same
partition, so the one replica that owns it sees that account's events in stream order
and answers its commands, while other accounts are handled elsewhere in parallel.

The partition of an account is FNV-1a (32 bit) of its subject token modulo
`PARTITIONS`: the hash NATS's own ``partition()`` subject-mapping function uses, so a
server-side mapping over the account token agrees with this one.

`PARTITIONS` is part of the wire protocol: it bounds how many replicas of a service can
share the work, and changing it moves accounts between partitions, so every service,
gateway and tool of one deployment must use the same value (drain the consumers first).
"""

from __future__ import annotations

import functools

from libs.contracts.tokens import token

#: Partitions of the account space (the most replicas one service can spread over).
PARTITIONS = 16
#: Services whose replicas share the partitions: a command to one of them may briefly
#: find nobody answering while its account's partition changes hands.
PARTITIONED_SERVICES = frozenset({"strategy", "risk", "execution"})

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


@functools.lru_cache(maxsize=8192)
def partition_of(account_id: str, partitions: int = PARTITIONS) -> int:
    """The partition ``account_id`` belongs to (0 .. partitions - 1)."""
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    value = _FNV_OFFSET
    for byte in token(account_id).encode():
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value % partitions


def all_partitions() -> frozenset[int]:
    """Every partition (what a service running as one replica owns)."""
    return frozenset(range(PARTITIONS))
