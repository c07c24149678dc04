/** Mapping key paths back to where a user wrote them. */
import { isMapping, type KeyPath } from './key-path.js';

/** Where a node is: 1-based line and column (0 and 0 when there is no text), and a sort order. */
export interface SourcePosition {
  readonly line: number;
  readonly col: number;
  /** Document order: problems are sorted by it so they read top to bottom. */
  readonly order: number;
}

/** Locates nodes of one config source by key path. */
export interface SourceLocator {
  /** The file as the user named it, or `"config"` for an object without one. */
  readonly file: string;
  /**
   * The position of the node at `path` (its key node with `at: 'key'`). A path that does not
   * exist (a missing key) resolves to the nearest ancestor that does.
   */
  locate(path: KeyPath, at: 'value' | 'key'): SourcePosition;
}

/**
 * A locator for config objects: no lines, so every position is 0:0, and the order is the order
 * of a depth-first walk over the object's keys, which is the order the user wrote them in.
 */
export function objectLocator(input: unknown, file: string): SourceLocator {
  const order = new Map<string, number>();
  const seen = new Set<unknown>();
  const walk = (value: unknown, path: (string | number)[]): void => {
    order.set(JSON.stringify(path), order.size);
    // A programmatic config may share or even cycle objects; each is walked once.
    if (typeof value === 'object' && value !== null) {
      if (seen.has(value)) return;
      seen.add(value);
    }
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        walk(v, [...path, i]);
      });
    } else if (isMapping(value)) for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
  };
  walk(input, []);
  return {
    file,
    locate(path) {
      for (let n = path.length; n >= 0; n--) {
        const hit = order.get(JSON.stringify(path.slice(0, n)));
        if (hit !== undefined) return { line: 0, col: 0, order: hit };
      }
      return { line: 0, col: 0, order: 0 };
    },
  };
}
