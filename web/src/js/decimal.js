// Exact decimal arithmetic for money. The API sends money as decimal strings
// ("2.345"); parsing them into binary floats would turn 0.1 + 0.2 into
// 0.30000000000000004 and a credit of 2.35 into 2.3499999. Here a value is a BigInt
// of units plus a scale (number of decimal places), so sums, differences and
// products by integers stay exact, and rounding happens only when formatting.

// Python's Decimal may serialise with an exponent ("0E-28", "1.5E+3").
const DECIMAL_RE = /^([+-])?(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

export class Dec {
  /** @param {bigint} units @param {number} scale */
  constructor(units, scale) {
    this.units = units;
    this.scale = scale;
  }

  /** Parse a decimal string (or an integer number); throws on anything else. */
  static of(value) {
    if (value instanceof Dec) return value;
    if (typeof value === 'bigint') return new Dec(value, 0);
    if (typeof value === 'number') {
      if (!Number.isInteger(value)) {
        throw new TypeError(`Dec.of: pass money as a string, not the float ${value}`);
      }
      return new Dec(BigInt(value), 0);
    }
    const m = DECIMAL_RE.exec(String(value).trim());
    if (!m) throw new TypeError(`not a decimal: ${value}`);
    const frac = m[3] || '';
    let units = BigInt((m[2] + frac) || '0');
    let scale = frac.length - Number(m[4] || 0);
    if (scale < 0) {
      units *= 10n ** BigInt(-scale);
      scale = 0;
    }
    return new Dec(m[1] === '-' ? -units : units, scale);
  }

  /** Parse, or null when ``value`` is null/undefined/not a decimal. */
  static maybe(value) {
    if (value === null || value === undefined || value === '') return null;
    try {
      return Dec.of(value);
    } catch {
      return null;
    }
  }

  static zero() {
    return new Dec(0n, 0);
  }

  /** @returns {[bigint, bigint, number]} both operands at a common scale */
  static align(a, b) {
    const scale = Math.max(a.scale, b.scale);
    return [a.rescale(scale), b.rescale(scale), scale];
  }

  rescale(scale) {
    if (scale < this.scale) throw new RangeError('rescale would lose digits; use round()');
    return this.units * 10n ** BigInt(scale - this.scale);
  }

  add(other) {
    const [a, b, scale] = Dec.align(this, Dec.of(other));
    return new Dec(a + b, scale);
  }

  sub(other) {
    const [a, b, scale] = Dec.align(this, Dec.of(other));
    return new Dec(a - b, scale);
  }

  /** Multiply by another decimal (exact: scales add). */
  mul(other) {
    const o = Dec.of(other);
    return new Dec(this.units * o.units, this.scale + o.scale);
  }

  neg() {
    return new Dec(-this.units, this.scale);
  }

  cmp(other) {
    const [a, b] = Dec.align(this, Dec.of(other));
    return a < b ? -1 : a > b ? 1 : 0;
  }

  isZero() {
    return this.units === 0n;
  }

  isNegative() {
    return this.units < 0n;
  }

  /** Round to ``places`` decimals, half away from zero (display rounding). */
  round(places) {
    if (places >= this.scale) return new Dec(this.rescale(places), places);
    const factor = 10n ** BigInt(this.scale - places);
    const abs = this.units < 0n ? -this.units : this.units;
    let q = abs / factor;
    if ((abs % factor) * 2n >= factor) q += 1n;
    return new Dec(this.units < 0n ? -q : q, places);
  }

  /** Plain string with exactly ``places`` decimals (or as many as it has). */
  toFixed(places = this.scale) {
    const r = this.round(places);
    const neg = r.units < 0n;
    let digits = (neg ? -r.units : r.units).toString().padStart(places + 1, '0');
    const int = places > 0 ? digits.slice(0, -places) : digits;
    const frac = places > 0 ? digits.slice(-places) : '';
    digits = frac ? `${int}.${frac}` : int;
    return (neg && !/^0(\.0*)?$/.test(digits) ? '-' : '') + digits;
  }

  /** The shortest plain string (trailing zeros after the point dropped). */
  toString() {
    const s = this.toFixed();
    return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
  }

  /** For charts only (pixels, not money). */
  toNumber() {
    return Number(this.toFixed());
  }
}

/** Thousands separators on the integer part of a plain decimal string. */
export function group(plain) {
  const [int, frac] = plain.split('.');
  const sign = int.startsWith('-') ? '-' : '';
  const body = (sign ? int.slice(1) : int).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return sign + body + (frac !== undefined ? `.${frac}` : '');
}
