// Charts (uPlot): the payoff of the position at expiration, and the underlying's daily
// closes with its Bollinger bands. Floats are fine here: these are pixels, not money.
import uPlot from '/static/vendor/uPlot.esm.js';
import { payoffAt } from './credit.js';

const AXIS = { stroke: '#8b949e', grid: { stroke: '#21262d' }, ticks: { stroke: '#30363d' } };
const HEIGHT = 220;

function sized(el) {
  return Math.max(240, Math.floor(el.clientWidth || 320));
}

/** Keep a chart as wide as its container (phones rotate, windows resize). */
function follow(el, plot) {
  const ro = new ResizeObserver(() => plot.setSize({ width: sized(el), height: HEIGHT }));
  ro.observe(el);
  return () => ro.disconnect();
}

/** The trident's P&L at expiration over a price range around its strikes. */
export function payoffData(trade) {
  const k = Number(trade.shortStrike);
  const w = Number(trade.width);
  const lo = k - w * 2.5;
  const hi = k + w * 2.5;
  const n = 101;
  const xs = [];
  const ys = [];
  for (let i = 0; i < n; i += 1) {
    const x = lo + ((hi - lo) * i) / (n - 1);
    xs.push(Math.round(x * 100) / 100);
    ys.push(payoffAt(x, trade));
  }
  return [xs, ys, xs.map(() => 0)];
}

export class PayoffChart {
  constructor(el) {
    this.el = el;
    this.plot = null;
    this.unfollow = null;
  }

  /** @param {{shortStrike, width, credit, includesCall, price}} trade */
  draw(trade) {
    const data = payoffData(trade);
    this.el.dataset.credit = String(trade.credit);
    this.el.dataset.maxProfit = String(Math.round(Math.max(...data[1]) * 100) / 100);
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    const opts = {
      width: sized(this.el),
      height: HEIGHT,
      legend: { show: true },
      scales: { x: { time: false } },
      axes: [
        { ...AXIS, label: 'Underlying at expiration' },
        { ...AXIS, label: 'P&L ($)', size: 60 },
      ],
      series: [
        { label: 'Price', value: (u, v) => (v == null ? '—' : v.toFixed(2)) },
        { label: 'P&L', stroke: '#00d4aa', width: 2, fill: 'rgba(0,212,170,0.08)', value: (u, v) => (v == null ? '—' : `$${v.toFixed(2)}`) },
        { label: 'Break-even', stroke: '#6e7681', dash: [4, 4], width: 1, points: { show: false } },
      ],
    };
    this.plot = new uPlot(opts, data, this.el);
    this.unfollow = follow(this.el, this.plot);
  }

  destroy() {
    if (this.unfollow) this.unfollow();
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }
}

/**
 * Daily closes (oldest first) with the current price as the last point, and the
 * bands the market data service computed (20 periods: the last 19 closes + now).
 */
export class PriceChart {
  constructor(el) {
    this.el = el;
    this.plot = null;
    this.unfollow = null;
  }

  draw(market) {
    const closes = market.daily_closes.map(Number);
    const series = [...closes, Number(market.price)];
    const xs = series.map((_, i) => i - (series.length - 1)); // days back, 0 = now
    const flat = (v) => series.map(() => Number(v));
    const data = [xs, series, flat(market.bands.upper), flat(market.bands.middle), flat(market.bands.lower)];
    this.el.dataset.points = String(series.length);
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    const opts = {
      width: sized(this.el),
      height: HEIGHT,
      scales: { x: { time: false } },
      axes: [
        { ...AXIS, label: 'Trading days (0 = now)' },
        { ...AXIS, size: 60 },
      ],
      series: [
        { label: 'Day' },
        { label: market.underlying, stroke: '#f0f6fc', width: 2 },
        { label: 'Upper band', stroke: '#f85149', dash: [6, 4], width: 1, points: { show: false } },
        { label: 'Middle', stroke: '#8b949e', dash: [2, 4], width: 1, points: { show: false } },
        { label: 'Lower band', stroke: '#3fb950', dash: [6, 4], width: 1, points: { show: false } },
      ],
    };
    this.plot = new uPlot(opts, data, this.el);
    this.unfollow = follow(this.el, this.plot);
  }

  destroy() {
    if (this.unfollow) this.unfollow();
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }
}
