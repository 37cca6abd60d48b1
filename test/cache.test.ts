// The table cache: bounded, time-limited, and one computation per key at a time.
import t from 'tap';
import { TtlCache } from '../src/stats/cache.ts';

t.test('concurrent callers of an expired key share one computation', async (t) => {
  const cache = new TtlCache<number>(1000, 10);
  let computed = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const compute = async () => {
    computed++;
    await gate;
    return 42;
  };
  const callers = Array.from({ length: 200 }, () => cache.getOrCompute('table', 0, compute));
  release();
  t.same(await Promise.all(callers), Array(200).fill(42));
  t.equal(computed, 1, 'computed once for 200 callers');
  t.equal(await cache.getOrCompute('table', 500, compute), 42);
  t.equal(computed, 1, 'then served from the cache');
  t.equal(await cache.getOrCompute('table', 1000, compute), 42);
  t.equal(computed, 2, 'and computed again once expired');
});

t.test('a failed computation is not cached and the next caller tries again', async (t) => {
  const cache = new TtlCache<string>(1000, 10);
  await t.rejects(
    cache.getOrCompute('k', 0, () => Promise.reject(new Error('database away'))),
    /database away/,
  );
  t.equal(await cache.getOrCompute('k', 0, () => Promise.resolve('ok')), 'ok');
});

t.test('a cache of zero seconds keeps nothing but still shares a computation under way', async (t) => {
  const cache = new TtlCache<number>(0, 10);
  let computed = 0;
  const compute = async () => ++computed;
  t.same(await Promise.all([cache.getOrCompute('k', 0, compute), cache.getOrCompute('k', 0, compute)]), [1, 1]);
  t.equal(await cache.getOrCompute('k', 0, compute), 2, 'nothing kept');
});

t.test('entries are bounded, oldest out first', async (t) => {
  const cache = new TtlCache<number>(1000, 2);
  cache.set('a', 1, 0);
  cache.set('b', 2, 0);
  cache.set('c', 3, 0);
  t.same([cache.get('a', 1), cache.get('b', 1), cache.get('c', 1)], [undefined, 2, 3]);
  cache.clear();
  t.equal(cache.get('b', 1), undefined);
});
