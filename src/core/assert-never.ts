/** Exhaustiveness check for discriminated unions: the compiler rejects a call with a reachable value. */
export function assertNever(value: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(value)}`);
}
