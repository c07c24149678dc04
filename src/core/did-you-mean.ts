/** "Did you mean" suggestions for misspelt keys and names. */

/** Levenshtein distance with an early exit once `max` is exceeded; O(a·b) time, O(b) space. */
export function editDistance(a: string, b: string, max = Number.POSITIVE_INFINITY): number {
  if (a === b) return 0;
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The candidate closest to `word`, if it is close enough to be a likely typo: within a third of
 * the word's length (at least 1, at most 3 edits), compared case-insensitively. A candidate that
 * contains the word or is contained in it (`backend` for `my-backend`) is a likely typo however
 * far. Ties go to the closer candidate by true edit distance (`u51` before `u5` for `uu51`), then
 * to one containing or contained in the word, then to the earlier one.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  const max = Math.min(3, Math.max(1, Math.floor(w.length / 3)));
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  let bestContained = false;
  for (const c of candidates) {
    const lc = c.toLowerCase();
    const contained = lc.includes(w) || w.includes(lc);
    // Containment makes the distance the difference in length: deleting the rest is the shortest way.
    const d = contained ? Math.abs(lc.length - w.length) : editDistance(w, lc, max);
    if (!contained && d > max) continue;
    if (d < bestDistance || (d === bestDistance && contained && !bestContained)) {
      best = c;
      bestDistance = d;
      bestContained = contained;
    }
  }
  return best;
}
