// Unit tests of the page's pure modules (node --test; run by tests/e2e/browser/test_web_units.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dec } from '../src/js/decimal.js';
import { checkCredit, figures, payoffAt } from '../src/js/credit.js';
import { money, price, pct, occLabel } from '../src/js/format.js';
import { backoffDelay } from '../src/js/ws.js';

test('decimal arithmetic has no float drift', () => {
  assert.equal(Dec.of('0.1').add('0.2').toString(), '0.3');
  assert.equal(Dec.of('2.35').mul(100).toFixed(2), '235.00');
  assert.equal(Dec.of('1800').sub(Dec.of('11.62').mul(100)).toFixed(2), '638.00');
  assert.equal(Dec.of('0E-28').toString(), '0');
  assert.equal(Dec.of('1.5E+3').toFixed(0), '1500');
  assert.equal(Dec.of('-0.004').toFixed(2), '0.00');
  assert.equal(Dec.of('2.345').toFixed(2), '2.35');
  assert.throws(() => Dec.of(0.1));
});

test('money and prices are formatted from the decimal string', () => {
  assert.equal(money('100000'), '$100,000.00');
  assert.equal(money('-12.5'), '-$12.50');
  assert.equal(price('13.765'), '13.765');
  assert.equal(price('3.5'), '3.50');
  assert.equal(pct('0.015'), '1.5 %');
  assert.equal(occLabel('QQQ   250718P00588000'), '588 P');
});

test('credit input: refused with a reason, or accepted', () => {
  const width = '9.00';
  const mid = '11.920';
  const refused = {
    '-1': 'negative', abc: 'as a number', '2.4x': 'as a number', '0': 'above zero',
    '18.01': 'natural width', '1.234': 'as a number', '': 'Enter a limit credit',
  };
  for (const [text, reason] of Object.entries(refused)) {
    const r = checkCredit(text, width, mid);
    assert.equal(r.ok, false, text);
    assert.match(r.message, new RegExp(reason), text);
  }
  assert.equal(checkCredit('18', width, mid).ok, true);
  const atMid = checkCredit(mid, width, mid);
  assert.equal(atMid.ok && atMid.custom, false);
  const custom = checkCredit('11.62', width, mid);
  assert.equal(custom.ok && custom.custom, true);
});

test('P&L figures and payoff of a trident', () => {
  const f = figures('11.62', '9');
  assert.equal(f.maxProfit.toFixed(2), '1162.00');
  assert.equal(f.maxRisk.toFixed(2), '638.00');
  assert.equal(f.requiredCapital.toFixed(2), '1800.00');
  const trade = { shortStrike: '588', width: '9', credit: '11.62', includesCall: true };
  assert.equal(Math.round(payoffAt(588, trade)), 1162);
  assert.equal(Math.round(payoffAt(570, trade)), -638); // both put spreads lose W
  assert.equal(Math.round(payoffAt(610, trade)), 262); // only the call spread loses
});

test('reconnect backoff: 1 s doubling to 30 s', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 10].map(backoffDelay), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});
