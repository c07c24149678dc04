/**
 * An `if`'s condition for a warning, as it was written. The parser unquotes `""` to an empty
 * argument and reads `"")` as the string and a `)` of its own, which joined back with spaces gave
 * `if ($http_x =  )`.
 */

/** `($http_x = "")`: the arguments joined, those that need quotes quoted again. */
export function ifConditionText(args: readonly string[]): string {
  // `($a = "b")` has its parentheses glued to the condition; `( $a = b )` keeps its spaces.
  const glued = args[0] !== undefined && args[0].length > 1 && args[0].startsWith('(');
  const words = args.map((a) => {
    if (a !== '' && !/[\s;{}"']/.test(a)) return a;
    return a.includes('"') ? `'${a}'` : `"${a}"`;
  });
  return words.reduce((text, w, i) => (i === 0 ? w : `${text}${w === ')' && glued ? '' : ' '}${w}`), '');
}
