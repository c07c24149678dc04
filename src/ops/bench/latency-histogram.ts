/**
 * A latency histogram with microsecond resolution, for percentiles. autocannon keeps its own, but
 * records whole milliseconds: against a local server every percentile reads 0 ms. This one is
 * log-linear (the HDR histogram idea): values below 1024 µs are exact; above, each power of two is
 * split into 512 buckets, so a reported value is at most 0.2% above the true one. Recording is O(1)
 * with no allocation; a percentile is one pass over at most 12,288 buckets. Histograms of several
 * runs (rounds) merge by adding counts.
 */

/** Values below this many microseconds get a bucket each. */
const EXACT = 1024;
/** Buckets per power of two above `EXACT`. */
const HALF = 512;
/** The largest recordable value, in microseconds (about 71 minutes); larger values are clamped. */
const MAX_US = 2 ** 32 - 1;
/** Bucket count: the exact range plus 22 powers of two (2^10 .. 2^31) of 512 buckets. */
const BUCKETS = EXACT + 22 * HALF;

/** The bucket index of a value in whole microseconds. */
function indexOf(us: number): number {
  if (us < EXACT) return us;
  const shift = 31 - Math.clz32(us) - 9;
  return EXACT + (shift - 1) * HALF + ((us >>> shift) - HALF);
}

/** The largest value (µs) that falls into bucket `index`. */
function upperOf(index: number): number {
  if (index < EXACT) return index;
  const shift = Math.floor((index - EXACT) / HALF) + 1;
  const top = ((index - EXACT) % HALF) + HALF;
  return (top + 1) * 2 ** shift - 1;
}

/** Response times of one or more runs. */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sumUs = 0;
  #minUs = Number.POSITIVE_INFINITY;
  #maxUs = 0;

  /** Records one response time, in milliseconds (fractions kept to the microsecond). */
  record(ms: number): void {
    const us = Math.min(MAX_US, Math.max(0, Math.round(ms * 1000)));
    this.#counts[indexOf(us)]! += 1;
    this.#count += 1;
    this.#sumUs += us;
    if (us < this.#minUs) this.#minUs = us;
    if (us > this.#maxUs) this.#maxUs = us;
  }

  /** Adds every value of `other` to this one. */
  add(other: LatencyHistogram): void {
    const theirs = other.#counts;
    for (let i = 0; i < BUCKETS; i++) this.#counts[i]! += theirs[i]!;
    this.#count += other.#count;
    this.#sumUs += other.#sumUs;
    this.#minUs = Math.min(this.#minUs, other.#minUs);
    this.#maxUs = Math.max(this.#maxUs, other.#maxUs);
  }

  /** Values recorded. */
  get count(): number {
    return this.#count;
  }

  /** The smallest value in ms; 0 when empty. */
  get min(): number {
    return this.#count === 0 ? 0 : this.#minUs / 1000;
  }

  /** The largest value in ms, exact; 0 when empty. */
  get max(): number {
    return this.#maxUs / 1000;
  }

  /** The arithmetic mean in ms; 0 when empty. */
  get mean(): number {
    return this.#count === 0 ? 0 : this.#sumUs / this.#count / 1000;
  }

  /**
   * The value in ms below or at which `p` percent of the values fall (nearest rank), reported as
   * its bucket's upper bound but never above the exact maximum, so p50 <= p90 <= p99 <= max always.
   * 0 when empty.
   */
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil((Math.min(100, Math.max(0, p)) / 100) * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.max(this.#minUs, Math.min(upperOf(i), this.#maxUs)) / 1000;
    }
    return this.#maxUs / 1000;
  }
}
