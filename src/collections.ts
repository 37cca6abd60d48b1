/** The value under `key`, created with `create()` and stored first if there is none (TC39's `Map#getOrInsertComputed`, not in Node 24). */
export function getOrInsert<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}
