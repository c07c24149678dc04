/** The nginx config as parsed: directives, their arguments and blocks, and where each was written. */

/** One directive: `name args...;` or `name args... { block }`. */
export interface NginxDirective {
  readonly name: string;
  /** The arguments as nginx reads them: unquoted and unescaped. */
  readonly args: readonly string[];
  /** The directives of its `{ }` block; `null` for a directive ending in `;`. */
  readonly block: readonly NginxDirective[] | null;
  /** The file it was written in: the path given, or the one its `include` resolved to. */
  readonly file: string;
  /** 1-based line of its name. */
  readonly line: number;
  /** 1-based column of its name. */
  readonly col: number;
}

/** Where something was written, for `FILE:LINE: message`. */
export interface SourcePlace {
  readonly file: string;
  readonly line: number;
}
