/** Compile-checking regular expressions from the config (path_regex, `~` server names and header values). */

/** Why `source` does not compile as a JavaScript regular expression, or `undefined` when it does. */
export function regexError(source: string): string | undefined {
  try {
    new RegExp(source);
    return undefined;
  } catch (err) {
    // V8 says "Invalid regular expression: /(/: Unterminated group"; keep the reason only.
    const text = err instanceof Error ? err.message : String(err);
    const reason = text.slice(text.lastIndexOf(': ') + 2);
    return `invalid regular expression ${JSON.stringify(source)}: ${reason.charAt(0).toLowerCase()}${reason.slice(1)}`;
  }
}
