// Display formatting. Money arrives as decimal strings and is formatted through Dec
// (exact), never through parseFloat.
import { Dec, group } from './decimal.js';

const DASH = '—';

/** "$1,234.56", "-$12.00"; ``places`` decimals. Null/undefined -> an em dash. */
export function money(value, places = 2) {
  const d = Dec.maybe(value);
  if (d === null) return DASH;
  const plain = d.toFixed(places);
  return plain.startsWith('-') ? `-$${group(plain.slice(1))}` : `$${group(plain)}`;
}

/** Signed money: "+$12.00" / "-$3.50" / "$0.00". */
export function signedMoney(value, places = 2) {
  const d = Dec.maybe(value);
  if (d === null) return DASH;
  const text = money(d, places);
  return d.round(places).units > 0n ? `+${text}` : text;
}

/** A per-share credit or price: at least 2 decimals, more only when it has them. */
export function price(value) {
  const d = Dec.maybe(value);
  if (d === null) return DASH;
  return group(d.toFixed(Math.max(2, d.scale)));
}

/** A plain number with ``places`` decimals. */
export function num(value, places = 2) {
  const d = Dec.maybe(value);
  return d === null ? DASH : group(d.toFixed(places));
}

/** A ratio (1 = 100 %) as "72.3 %". */
export function pct(ratio, places = 1) {
  const d = Dec.maybe(ratio);
  return d === null ? DASH : `${d.mul(100).toFixed(places)} %`;
}

/** A 0-100 percent figure as "45.2 %". */
export function pct100(value, places = 1) {
  const d = Dec.maybe(value);
  return d === null ? DASH : `${d.toFixed(places)} %`;
}

export function dateTime(iso) {
  if (!iso) return DASH;
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? String(iso) : t.toLocaleString();
}

export function timeOfDay(iso) {
  if (!iso) return DASH;
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? String(iso) : t.toLocaleTimeString();
}

/** "PUT_SPREAD_1" -> "Put spread 1". */
export function label(constant) {
  if (!constant) return DASH;
  const s = String(constant).toLowerCase().replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** The strike and type of a 21-character OCC symbol: "QQQ   251031P00590000" -> "590 P". */
export function occLabel(occ) {
  const m = /^(.{6})(\d{6})([CP])(\d{8})$/.exec(occ || '');
  if (!m) return occ || DASH;
  const strike = new Dec(BigInt(m[4]), 3).toString();
  return `${strike} ${m[3]}`;
}

export { DASH };
