"""Accounts spread over the partitions: stable, in range, and NATS's own hash."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.contracts.partitions import PARTITIONS, all_partitions, partition_of

ACCOUNT_IDS = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=".*>"),
    min_size=1,
    max_size=20,
)


@given(ACCOUNT_IDS)
def test_every_account_has_one_partition_in_range(account_id):
    assert partition_of(account_id) in all_partitions()
    assert partition_of(account_id) == partition_of(account_id)


def test_it_is_fnv1a_32_of_the_account_token_as_nats_partition_computes_it():
    # FNV-1a 32 reference values ("" -> 0x811c9dc5, "a" -> 0xe40c292c): the hash the
    # nats-server partition() mapping uses over the wildcard token.
    assert partition_of("a", partitions=2**31) == 0xE40C292C % 2**31
    assert partition_of("foobar", partitions=2**31) == 0xBF9CF968 % 2**31


def test_padding_spaces_do_not_move_an_account():
    assert partition_of("5WT 00001") == partition_of("5WT00001")


def test_a_thousand_accounts_spread_over_every_partition():
    counts = Counter(partition_of(f"5WT{n:05d}") for n in range(1000))
    assert set(counts) == set(range(PARTITIONS))
    assert max(counts.values()) < 2 * 1000 / PARTITIONS


def test_no_partitions_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        partition_of("5WT00001", partitions=0)
