/** Parsing `/proc/<pid>/limits` for the open-files limit. */
import type { NofileLimit } from './host-facts.js';

/**
 * The `Max open files` soft and hard limits of a `/proc/self/limits` text, or null when the line
 * is missing or malformed. `unlimited` becomes `Infinity`.
 */
export function parseProcLimits(text: string): NofileLimit | null {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (m === null) return null;
  const soft = limitValue(m[1]!);
  const hard = limitValue(m[2]!);
  return soft === null || hard === null ? null : { soft, hard };
}

function limitValue(text: string): number | null {
  if (text === 'unlimited') return Number.POSITIVE_INFINITY;
  return /^\d+$/.test(text) ? Number(text) : null;
}
