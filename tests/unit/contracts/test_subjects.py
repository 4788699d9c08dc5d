"""Subjects carry the account (or the symbol) so NATS can route and partition by it."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.contracts.commands import ApproveSuggestion
from libs.contracts.market import MarketConditionChanged, QuoteReceived
from libs.contracts.partitions import PARTITIONS, partition_of
from libs.contracts.registry import EVENT_TYPES
from libs.contracts.subjects import (
    ALL_ACCOUNT_EVENTS,
    ALL_MARKET_DATA,
    account_event_subject,
    account_events_filter,
    account_of_subject,
    command_filter,
    dead_letter_subject,
    event_subject,
    market_filter,
    market_subject,
    partition_events_filter,
    subject_for_command,
    token,
)
from tests.unit.contracts.examples import ACCOUNT, NOW, PUT_592, envelope, opening_fill
from tests.unit.contracts.strategies import models

_UNSAFE_IN_TOKEN = set(" \t.*>")


def _quote(symbol: str) -> QuoteReceived:
    return QuoteReceived(
        **envelope(account=None), symbol=symbol, bid=Decimal(1), ask=Decimal(2), quoted_at=NOW
    )


P = partition_of(ACCOUNT)


def test_an_account_event_goes_to_its_partition_account_and_context():
    assert event_subject(opening_fill()) == f"senex.evt.{P}.5WT00001.execution.OrderFilled"


def test_an_underlying_quote_goes_to_its_ticker():
    assert event_subject(_quote("QQQ")) == "senex.md.QQQ.QuoteReceived"


def test_an_option_quote_goes_to_its_occ_symbol_without_padding():
    assert event_subject(_quote(PUT_592)) == "senex.md.QQQ251219P00592000.QuoteReceived"


def test_a_dotted_ticker_is_made_one_token():
    assert market_subject("BRK.B", "QuoteReceived") == "senex.md.BRK_B.QuoteReceived"


def test_a_command_goes_to_its_service_verb_partition_and_account():
    command = ApproveSuggestion(account_id=ACCOUNT, suggestion_id=UUID(int=7))

    assert subject_for_command(command) == (f"senex.cmd.strategy.approve_suggestion.{P}.5WT00001")


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda m: m.__name__)
@given(data=st.data())
def test_every_event_has_a_well_formed_subject(event_type, data):
    event = data.draw(models(event_type))

    subject = event_subject(event)
    tokens = subject.split(".")

    assert all(tokens)
    assert not any(set(t) & _UNSAFE_IN_TOKEN for t in tokens)
    if event.MARKET_WIDE:
        assert tokens[:2] == ["senex", "md"]
        assert len(tokens) == 4
    else:
        assert tokens[:4] == ["senex", "evt", str(partition_of(event.account_id)), event.account_id]
        assert len(tokens) == 6
        assert tokens[4] == event.CONTEXT
    assert tokens[-1] == event.type


def test_filters_match_every_account_context_or_type_with_wildcards():
    assert ALL_ACCOUNT_EVENTS == "senex.evt.>"
    assert ALL_MARKET_DATA == "senex.md.>"
    assert account_events_filter(ACCOUNT) == f"senex.evt.{P}.5WT00001.*.*"
    assert account_events_filter(context="risk") == "senex.evt.*.*.risk.*"
    assert partition_events_filter(3) == "senex.evt.3.>"
    assert market_filter(type_name=MarketConditionChanged.__name__) == (
        "senex.md.*.MarketConditionChanged"
    )
    assert command_filter("execution") == "senex.cmd.execution.*.*.*"
    assert command_filter("risk", "get_risk_budget", partition=5) == (
        "senex.cmd.risk.get_risk_budget.5.*"
    )
    assert command_filter("risk", account_id=ACCOUNT) == f"senex.cmd.risk.*.{P}.5WT00001"


def test_a_filter_refuses_an_account_outside_its_partition():
    with pytest.raises(ValueError, match="not in partition"):
        command_filter("risk", account_id=ACCOUNT, partition=(P + 1) % PARTITIONS)


def test_a_subject_built_by_hand_matches_the_events_own():
    assert account_event_subject(ACCOUNT, "execution", "OrderFilled") == event_subject(
        opening_fill()
    )


def test_dead_letters_keep_the_original_subject_under_their_own_prefix():
    assert dead_letter_subject("senex.evt.3.5WT00001.execution.OrderFilled") == (
        "senex.dlq.evt.3.5WT00001.execution.OrderFilled"
    )


def test_a_value_with_nothing_routable_is_refused():
    with pytest.raises(ValueError, match="no subject token"):
        token("   ")


def test_the_account_is_read_back_from_an_event_subject_old_or_new():
    assert account_of_subject(event_subject(opening_fill())) == ACCOUNT
    assert account_of_subject("senex.evt.5WT00001.execution.OrderFilled") == ACCOUNT
    assert account_of_subject("senex.md.QQQ.QuoteReceived") is None
    assert account_of_subject("senex.evt.3.5WT00001") is None
