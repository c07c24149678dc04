/** "Did you mean" suggestions for misspelt keys and names. */

/**
 * Edit distance where swapping two adjacent letters is one edit, as typing errs (`uesr` is one
 * from `user`, not two: plain Levenshtein left such keys of 3 to 5 letters without a suggestion),
 * with an early exit once `max` is exceeded; O(a·b) time, O(b) space.
 */
export function editDistance(a: string, b: string, max = Number.POSITIVE_INFINITY): number {
  if (a === b) return 0;
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, before[j - 2]! + 1);
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    // A row's least value bounds every later one (a swap costs what the substitution below it does).
    if (rowMin > max) return max + 1;
    before = prev;
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The candidate closest to `word`, if it is close enough to be a likely typo: within a third of
 * the word's length (at least 1, at most 3 edits), compared case-insensitively. A candidate that
 * contains the word or is contained in it (`backend` for `my-backend`) is a likely typo however
 * far. Ties go as `closeness` ranks them, then to the earlier candidate.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  const max = Math.min(3, Math.max(1, Math.floor(w.length / 3)));
  let best: string | undefined;
  let bestCloseness = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const rank = closeness(w, c.toLowerCase(), max);
    if (rank < bestCloseness) {
      best = c;
      bestCloseness = rank;
    }
  }
  return best;
}

/**
 * How close `candidate` is to `word` (both lower case) as one number, smaller being closer: the
 * true edit distance first (`u51` before `u5` for `uu51`), then a candidate containing or
 * contained in the word before one that is not. Infinite for one more than `max` edits away that
 * neither contains the word nor is contained in it.
 */
export function closeness(word: string, candidate: string, max = Number.POSITIVE_INFINITY): number {
  // Containment makes the distance the difference in length: deleting the rest is the shortest way.
  if (candidate.includes(word) || word.includes(candidate))
    return 2 * Math.abs(candidate.length - word.length);
  const d = editDistance(word, candidate, max);
  return d > max ? Number.POSITIVE_INFINITY : 2 * d + 1;
}
