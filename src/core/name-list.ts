/** The names a message lists, bounded: a config may define hundreds, and each problem repeats them. */
import { closeness } from './did-you-mean.js';

/** How many names a message lists at most before it says how many more there are. */
export const NAMES_LISTED = 8;

/** Edits within which a name counts as near the word it is listed for; farther ones go in written order. */
const NEAR_EDITS = 3;

/**
 * `names` for a message, joined with `, `: all of them when there are NAMES_LISTED or fewer, else
 * NAMES_LISTED of them and `and N more`. Those listed are the closest to `near` (the word the user
 * wrote, ranked as "did you mean" ranks them), then the first in written order. O(n) edit
 * distances, each cut off past NEAR_EDITS.
 */
export function nameList(names: readonly string[], near?: string): string {
  if (names.length <= NAMES_LISTED) return names.join(', ');
  const listed: string[] = [];
  if (near !== undefined) {
    const word = near.toLowerCase();
    const ranked = names
      .map((name) => ({ name, rank: closeness(word, name.toLowerCase(), NEAR_EDITS) }))
      .filter((n) => n.rank !== Number.POSITIVE_INFINITY)
      // Array.prototype.sort is stable: equally close names stay in written order.
      .sort((a, b) => a.rank - b.rank);
    for (const n of ranked.slice(0, NAMES_LISTED)) listed.push(n.name);
  }
  for (const name of names) {
    if (listed.length === NAMES_LISTED) break;
    if (!listed.includes(name)) listed.push(name);
  }
  return `${listed.join(', ')} and ${names.length - listed.length} more`;
}
