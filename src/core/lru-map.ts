/**
 * A Map bounded to `max` entries that forgets the least recently used first: the shape of
 * per-client state (rate-limit buckets, ban strikes) that clients can multiply at will, with a new
 * address per request from an IPv6 /64 or a new value of a keyed header. Clearing the whole table
 * at the bound (as before) let anyone reset everyone's state by sending enough new keys; evicting
 * the least recently used keeps the clients still active, as nginx's limit_req zone does when full.
 *
 * Recency is approximated the CLOCK way, on the Map's insertion order: a use only marks the entry;
 * evicting goes from the oldest entry on, drops unmarked ones and moves marked ones to the end,
 * unmarked (a second chance). An entry used since eviction last reached it is therefore kept, so a
 * client that keeps sending keeps its state while a flood of new keys pushes out idle ones and
 * itself. Moving an entry on every use instead (delete, then set) left a deleted slot per request
 * in V8's table, which rebuilt it whole every 80–100k requests: pauses of 4–14 ms with 99,000 keys.
 * Evictions come in batches of 1 % of `max` (one batch per 1,000 new keys at the bound, not one
 * per key), and a batch moves at most 10 marked entries per entry it drops: the work per batch is
 * bounded even when every entry is marked.
 */
export class LruMap<K, V> {
  readonly #map = new Map<K, Slot<V>>();
  readonly #max: number;
  /** Entries dropped to stay within `max`, since creation. */
  evicted = 0;

  constructor(max: number) {
    if (!(max >= 1)) throw new RangeError(`LruMap: max must be at least 1, got ${max}`);
    this.#max = max;
  }

  /** The value of `key`, which counts as used; undefined when absent. */
  get(key: K): V | undefined {
    const slot = this.#map.get(key);
    if (slot === undefined) return undefined;
    slot.used = true;
    return slot.value;
  }

  /** The value of `key` without counting as a use. */
  peek(key: K): V | undefined {
    return this.#map.get(key)?.value;
  }

  /** Sets `key`, which counts as used; past `max`, the least recently used go. */
  set(key: K, value: V): this {
    const slot = this.#map.get(key);
    if (slot !== undefined) {
      slot.value = value;
      slot.used = true;
      return this;
    }
    if (this.#map.size >= this.#max) this.#evict();
    this.#map.set(key, { value, used: false });
    return this;
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  get size(): number {
    return this.#map.size;
  }

  /** Entries, those eviction would reach first first. Deleting while iterating is allowed. */
  *entries(): IterableIterator<[K, V]> {
    for (const [key, slot] of this.#map) yield [key, slot.value];
  }

  keys(): IterableIterator<K> {
    return this.#map.keys();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  /**
   * Drops 1 % of `max` (at least one entry), oldest first, giving marked entries a second chance:
   * moved to the end, unmarked, up to 10 per entry to drop; past that, entries go marked or not.
   * (A Map's iterator goes on to entries set during the loop, so moved ones may come round again,
   * unmarked by then.)
   */
  #evict(): void {
    let drop = Math.max(1, Math.floor(this.#max / 100));
    let moves = drop * 10;
    for (const [key, slot] of this.#map) {
      if (drop === 0) break;
      this.#map.delete(key);
      if (slot.used && moves > 0) {
        moves--;
        slot.used = false;
        this.#map.set(key, slot);
      } else {
        drop--;
        this.evicted++;
      }
    }
  }
}

/** A value, and whether it was used since eviction last reached it. */
interface Slot<V> {
  value: V;
  used: boolean;
}
