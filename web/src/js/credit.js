// The limit credit a user may type, and the P&L it implies (DOMAIN.md 4-5).
// Pure functions: the screen calls them on every keystroke, the tests call them too.
import { Dec } from './decimal.js';

const HUNDRED = Dec.of(100);
// Cents at most: the option tick for QQQ and SPY is $0.01.
const CREDIT_RE = /^\d+(\.\d{1,2})?$/;

/**
 * Check a typed total credit against the trade's natural width (2 x W: the most a
 * trident's total credit can be, since both put spreads can lose W each).
 * ``mid`` (a string) is accepted as is even with more decimals: it is the
 * suggestion's own price, sent as "no custom credit".
 * @returns {{ok: true, value: Dec, custom: boolean} | {ok: false, message: string}}
 */
export function checkCredit(text, width, mid) {
  const raw = String(text ?? '').trim();
  if (raw === '') return { ok: false, message: 'Enter a limit credit.' };
  if (mid !== undefined && mid !== null && raw === String(mid)) {
    return { ok: true, value: Dec.of(raw), custom: false };
  }
  if (/^-/.test(raw)) {
    return { ok: false, message: 'The credit cannot be negative: enter the credit you want to receive.' };
  }
  if (!CREDIT_RE.test(raw)) {
    return {
      ok: false,
      message: 'Enter the credit as a number in dollars with at most two decimals, e.g. 2.45.',
    };
  }
  const value = Dec.of(raw);
  if (value.isZero()) return { ok: false, message: 'The credit must be above zero.' };
  const natural = naturalWidth(width);
  if (value.cmp(natural) > 0) {
    return {
      ok: false,
      message: `The credit ${value.toFixed(2)} is above the natural width of this trade ` +
        `(at most ${natural.toFixed(2)} = 2 × ${Dec.of(width).toString()}).`,
    };
  }
  return { ok: true, value, custom: true };
}

/** 2 x W: the highest total credit a trident can carry. */
export function naturalWidth(width) {
  return Dec.of(width).mul(2);
}

/**
 * Dollar figures of a trident at a total credit (per share):
 * max profit = credit x 100; required capital = 2 x W x 100;
 * max risk = 2 x W x 100 - credit x 100.
 */
export function figures(credit, width) {
  const c = Dec.of(credit);
  const required = naturalWidth(width).mul(HUNDRED);
  const maxProfit = c.mul(HUNDRED);
  return { maxProfit, maxRisk: required.sub(maxProfit), requiredCapital: required };
}

/**
 * P&L in dollars at expiration for an underlying price (a float: chart pixels only).
 * Two put spreads K/K-W, and the call spread K/K+W when included.
 */
export function payoffAt(priceAtExpiry, { shortStrike, width, credit, includesCall }) {
  const k = Number(shortStrike);
  const w = Number(width);
  const putLoss = Math.min(Math.max(k - priceAtExpiry, 0), w);
  const callLoss = includesCall ? Math.min(Math.max(priceAtExpiry - k, 0), w) : 0;
  return (Number(credit) - 2 * putLoss - callLoss) * 100;
}
