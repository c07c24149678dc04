/** Schema-checked durations and sizes with their defaults, for the normalisers. */
import { parseDuration } from '../core/duration.js';
import { parseSize } from '../core/size.js';

/** A duration in milliseconds, or `fallback` when the key is absent. */
export function durationOr(text: string | undefined, fallback: number): number {
  return text === undefined ? fallback : (parseDuration(text) ?? fallback);
}

/** A size in bytes, or `fallback` when the key is absent. */
export function sizeOr(text: string | undefined, fallback: number): number {
  return text === undefined ? fallback : (parseSize(text) ?? fallback);
}
