// Evicting the oldest entries of an insertion-ordered Map (the LRU caches' way), in one
// pass. V8 leaves a deleted entry's slot in the table until the next rehash, and an
// iterator walks those dead slots: taking `keys().next()` once per eviction after n
// evictions from the front walks n slots each time, which is quadratic. A mount caching
// 100,000 paths spent 9 s of CPU per 200,000 entries listed that way (see
// test/unit/common/map-evict.test.ts); one pass over `count` keys walks the dead slots once.

/**
 * Drop the `count` oldest keys of `map` (first inserted first), calling `drop(key)` for
 * each; `drop` must delete the key from `map` (the default does only that).
 */
export function dropOldest<K, V> (map: Map<K, V>, count: number, drop: (key: K) => void = key => { map.delete(key) }): void {
  if (count <= 0) return
  const victims: K[] = []
  for (const key of map.keys()) {
    victims.push(key)
    if (victims.length >= count) break
  }
  for (const key of victims) drop(key)
}

/**
 * Bring `map` back to at most `max` entries when it holds more, dropping an eighth of
 * `max` beyond that at once so that the next insertions evict nothing.
 */
export function trimOldest<K, V> (map: Map<K, V>, max: number, drop?: (key: K) => void): void {
  if (map.size <= max) return
  dropOldest(map, map.size - max + (max >> 3), drop)
}
