"""The market condition of each underlying: daily closes, bands, stress, IV rank, rate.

Daily closes arrive as candles on the market stream (a candle per session, upserted,
so today's moving candle never enters the 19 completed closes). While the market is
open the bands are recomputed every ``bands_interval_s`` over those closes and the
current mid, and MarketConditionChanged is published the first time and whenever the
band position or the stress changes (the decision is the core's, `core.condition`).
IV rank and the risk-free rate come from the broker every ``metrics_refresh_s``; without
a broker rate the configured fallback is answered and said to be one.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from decimal import Decimal

from libs.broker.models import DailyCandle, RateSource, RiskFreeRate
from libs.broker.streaming import MarketStream, Subscription
from libs.contracts.commands import GetMarketCondition, MarketConditionReply
from libs.contracts.errors import MarketDataStaleError, NotFound, SenexError
from libs.contracts.market import MarketConditionChanged
from libs.runtime import market_hours
from libs.runtime.clock import Clock
from libs.runtime.envelopes import Envelopes
from libs.runtime.log import get_logger
from services.market_data import SERVICE
from services.market_data.broker_link import BrokerLink
from services.market_data.core.cadence import Cadence
from services.market_data.core.condition import (
    CLOSES_NEEDED,
    Condition,
    DailyCloses,
    evaluate,
    is_change,
)
from services.market_data.publishing import Publisher
from services.market_data.quotes import Quotes
from services.market_data.settings import MarketDataSettings
from services.market_data.staleness import Staleness


class Conditions:
    """Closes, the last published condition, IV rank and rate of each underlying."""

    def __init__(
        self,
        settings: MarketDataSettings,
        *,
        clock: Clock,
        broker: BrokerLink,
        quotes: Quotes,
        staleness: Staleness,
        publisher: Publisher,
        envelope: Envelopes,
        fallback_rate: Decimal,
    ) -> None:
        self._settings = settings
        self._envelope = envelope
        self._clock = clock
        self._broker = broker
        self._quotes = quotes
        self._staleness = staleness
        self._publisher = publisher
        self._fallback_rate = fallback_rate
        self._underlyings = tuple(settings.underlyings)
        self._log = get_logger(SERVICE)
        self._closes = {u: DailyCloses() for u in self._underlyings}
        self._conditions: dict[str, Condition] = {}
        self._iv_rank: dict[str, Decimal | None] = {}
        self._rate: RiskFreeRate | None = None
        self._bands_cadence = Cadence(timedelta(seconds=settings.bands_interval_s))
        self._metrics_cadence = Cadence(timedelta(seconds=settings.metrics_refresh_s))
        self._candle_subs: list[Subscription[DailyCandle]] = []
        self._candle_tasks: list[asyncio.Task[None]] = []

    # --- daily closes -----------------------------------------------------------------

    def follow_candles(self, stream: MarketStream) -> None:
        """Subscribe each underlying's daily candles since ``candle_history_days`` ago."""
        start = self._clock.now() - timedelta(days=self._settings.candle_history_days)
        for underlying in self._underlyings:
            sub = stream.daily_candles(underlying, start)
            self._candle_subs.append(sub)
            self._candle_tasks.append(
                asyncio.create_task(
                    self._pump_candles(underlying, sub), name=f"md-candles-{underlying}"
                )
            )

    async def _pump_candles(self, underlying: str, sub: Subscription[DailyCandle]) -> None:
        closes = self._closes[underlying]
        async for candle in sub:
            closes.upsert(candle.day, candle.close)

    @property
    def candle_tasks(self) -> list[asyncio.Task[None]]:
        """The candle pumps (the service cancels them at stop with its other tasks)."""
        return list(self._candle_tasks)

    def close_candles(self) -> None:
        """Close the candle subscriptions."""
        for sub in self._candle_subs:
            sub.close()

    # --- IV rank and the risk-free rate -----------------------------------------------

    def metrics_due(self, now: datetime) -> bool:
        """Whether IV rank and the rate are due a refresh."""
        return self._metrics_cadence.due(now)

    async def refresh_metrics(self) -> None:
        """Fetch IV ranks (kept when unavailable) and the risk-free rate."""
        adapter, account = self._broker.session()
        try:
            metrics = await adapter.get_market_metrics(account, self._underlyings)
        except SenexError as exc:
            self._log.warning("IV rank unavailable", kind=exc.kind.value, error=exc.message)
        else:
            for m in metrics:
                self._iv_rank[m.symbol] = m.iv_rank
        self._rate = await adapter.get_risk_free_rate(account)

    def _risk_free_rate(self) -> tuple[Decimal, RateSource]:
        rate = self._rate
        if rate is None or rate.source is RateSource.FALLBACK:
            return self._fallback_rate, RateSource.FALLBACK
        return rate.rate, rate.source

    # --- bands ------------------------------------------------------------------------

    def bands_due(self, now: datetime) -> bool:
        """Whether the bands are due a recomputation (asked only while the market is open)."""
        return self._bands_cadence.due(now)

    def recompute_bands(self, now: datetime, today: date) -> None:
        """Evaluate each underlying at its mid; MarketConditionChanged when it changed."""
        for underlying in self._underlyings:
            quote = self._quotes.latest(underlying)
            closes = self._closes[underlying].window(today)
            if quote is None or len(closes) < CLOSES_NEEDED or self._staleness.is_stale(underlying):
                # Not enough data to judge: try again on the next pass, not in 30 s.
                self._bands_cadence.reset()
                continue
            condition = evaluate(closes, quote.mid)
            previous = self._conditions.get(underlying)
            self._conditions[underlying] = condition
            if is_change(previous, condition):
                self._publisher.emit(
                    MarketConditionChanged(
                        **self._envelope(None, occurred_at=now),
                        symbol=underlying,
                        price=condition.price,
                        bands=condition.bands,
                        band_position=condition.band_position,
                        stressed=condition.stressed,
                        stressed_reason=condition.stressed_reason,
                    )
                )

    # --- the query --------------------------------------------------------------------

    async def get_market_condition(self, command: GetMarketCondition) -> MarketConditionReply:
        """Price, bands over the 19 closes + the current mid, stress, IV rank, rate."""
        now = self._clock.now()
        underlying = str(command.underlying)
        quote = self._quotes.fresh_underlying(underlying)
        closes_book = self._closes.get(underlying)
        if closes_book is None:
            raise NotFound(f"{underlying} is not among the underlyings market data follows")
        closes = closes_book.window(market_hours.ny_date(now))
        if len(closes) < CLOSES_NEEDED:
            raise MarketDataStaleError(
                f"only {len(closes)} of {CLOSES_NEEDED} daily closes of {underlying} received "
                f"so far ({self._broker.describe_stream()})",
                details={"symbol": underlying},
            )
        condition = evaluate(closes, quote.mid)
        rate, source = self._risk_free_rate()
        return MarketConditionReply(
            underlying=command.underlying,
            as_of=now,
            quote=quote,
            price=condition.price,
            daily_closes=closes,
            bands=condition.bands,
            band_position=condition.band_position,
            stressed=condition.stressed,
            stressed_reason=condition.stressed_reason,
            iv_rank=self._iv_rank.get(underlying),
            risk_free_rate=rate,
            risk_free_rate_source="BROKER" if source is RateSource.BROKER else "FALLBACK",
        )
