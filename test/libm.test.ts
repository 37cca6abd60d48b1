import { readFileSync } from 'node:fs';
import t from 'tap';
import { libmExp, libmLog } from '../src/stats/libm.ts';

const bits = new DataView(new ArrayBuffer(8));

function fromHex(hex: string): number {
  bits.setBigUint64(0, BigInt(`0x${hex}`));
  return bits.getFloat64(0);
}

function toHex(x: number): string {
  bits.setFloat64(0, x);
  return bits.getBigUint64(0).toString(16).padStart(16, '0');
}

const reference = readFileSync(new URL('./fixtures/libm.reference.txt', import.meta.url), 'utf8')
  .split('\n')
  .filter((line) => line !== '' && !line.startsWith('#'))
  .map((line) => line.split(' ') as [string, string, string]);

t.test('log and exp give the C routines’ bits for every input of the reference', async (t) => {
  t.ok(reference.length > 1700, 'the whole reference is read');
  const wrong = { log: [] as string[], exp: [] as string[] };
  for (const [x, log, exp] of reference) {
    // Every NaN is the same to a reader of JSON; the bits of one need not be.
    const same = (got: number, expected: string) =>
      toHex(got) === expected || (Number.isNaN(got) && Number.isNaN(fromHex(expected)));
    if (!same(libmLog(fromHex(x)), log)) wrong.log.push(x);
    if (!same(libmExp(fromHex(x)), exp)) wrong.exp.push(x);
  }
  t.same(wrong, { log: [], exp: [] }, 'inputs whose result differs');
});

t.test('the reference holds results that Node’s own Math.log and Math.exp round differently', async (t) => {
  // Otherwise the test above could pass with Math.log and Math.exp in place of the port.
  let log = 0;
  let exp = 0;
  // NaNs aside: their sign bits differ, which no reader of JSON sees.
  for (const [x, expectedLog, expectedExp] of reference) {
    if (!Number.isNaN(fromHex(expectedLog)) && toHex(Math.log(fromHex(x))) !== expectedLog) log++;
    if (!Number.isNaN(fromHex(expectedExp)) && toHex(Math.exp(fromHex(x))) !== expectedExp) exp++;
  }
  t.ok(log > 0, `Math.log differs on ${log} inputs`);
  t.ok(exp > 0, `Math.exp differs on ${exp} inputs`);
});

t.test('special values', async (t) => {
  t.ok(Object.is(libmLog(1), 0), 'log(1) is +0');
  t.equal(libmLog(0), -Infinity);
  t.equal(libmLog(Infinity), Infinity);
  t.ok(Number.isNaN(libmLog(-1)));
  t.ok(Number.isNaN(libmLog(Number.NaN)));
  t.equal(libmExp(0), 1);
  t.equal(libmExp(-Infinity), 0);
  t.equal(libmExp(Infinity), Infinity);
  t.equal(libmExp(710), Infinity);
  t.equal(libmExp(-746), 0);
  t.ok(Number.isNaN(libmExp(Number.NaN)));
});
