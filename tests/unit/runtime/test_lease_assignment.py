"""The partition assignment every replica computes alike from the live members."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from libs.runtime.leases import assign

MEMBERS = st.sets(st.text(alphabet="abcdefghij0123456789-", min_size=1, max_size=12), max_size=8)
PARTITION_COUNTS = st.integers(min_value=1, max_value=64)


@given(MEMBERS, PARTITION_COUNTS)
def test_every_partition_has_exactly_one_live_owner(members, n):
    owners = assign(members, range(n))
    if not members:
        assert owners == {}
        return
    assert set(owners) == set(range(n))
    assert set(owners.values()) <= members


@given(MEMBERS.filter(bool), PARTITION_COUNTS)
def test_no_member_gets_more_than_its_fair_share(members, n):
    owners = assign(members, range(n))
    loads = [list(owners.values()).count(m) for m in members]
    assert max(loads) <= math.ceil(n / len(members))


@given(MEMBERS.filter(bool), PARTITION_COUNTS)
def test_the_order_members_are_seen_in_does_not_matter(members, n):
    assert assign(sorted(members), range(n)) == assign(sorted(members, reverse=True), range(n))


def test_two_replicas_share_sixteen_partitions_evenly():
    owners = assign(["strategy-a", "strategy-b"], range(16))
    assert sorted(owners.values()).count("strategy-a") == 8


@given(MEMBERS.filter(lambda m: len(m) >= 2), st.data())
def test_a_departed_members_partitions_all_go_to_survivors(members, data):
    gone = data.draw(st.sampled_from(sorted(members)))
    after = assign(members - {gone}, range(16))
    assert set(after) == set(range(16))
    assert gone not in after.values()
