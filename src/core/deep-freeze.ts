/** Deep-freezing for data that is checked once and then shared: resolved configs, compiled tables. */

/**
 * Freezes `value` and everything reachable from it, in place, and returns it typed as read-only.
 * Already-frozen objects are not descended into again, so shared subtrees and cycles cost nothing.
 */
export function deepFreeze<T>(value: T): Readonly<T> {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return value;
  if (Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const key of Reflect.ownKeys(value as object)) {
    deepFreeze((value as Record<PropertyKey, unknown>)[key]);
  }
  return value;
}
