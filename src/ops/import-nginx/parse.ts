/**
 * nginx config text → a tree of directives, each with its file, line and column. Pure: `include`
 * is left as a directive here and expanded by `load-nginx-tree.ts`, which reads the files.
 *
 * Besides what nginx's own reader refuses (a `}` too many, a block or directive left open at the
 * end of the file), a forgotten `;` in the middle of a block is caught the way a reader of the
 * file would see it: a line that starts with a known directive name, inside the arguments of the
 * directive above it. nginx reports that one later, as an argument it does not understand.
 */
import type { NginxDirective } from './ast.js';
import { isKnownDirective, takesNoBlock } from './directives.js';
import { NginxSyntaxError } from './nginx-syntax-error.js';
import { type Token, tokenize } from './tokenize.js';

type Word = Extract<Token, { kind: 'word' }>;

/**
 * Blocks nested deeper than this are refused (a config uses about five levels). The import walks
 * the tree recursively; thousands of levels ran it out of stack.
 */
export const MAX_NESTING = 100;

/** The error for a block opened `MAX_NESTING` levels deep. */
export function tooDeep(file: string, line: number, col: number, name: string): NginxSyntaxError {
  return new NginxSyntaxError(
    file,
    line,
    col,
    `the "${name}" block is nested more than ${MAX_NESTING} levels deep; sluice import nginx reads at most ${MAX_NESTING} (a config uses about five)`,
  );
}

interface OpenBlock {
  readonly name: string;
  readonly line: number;
  readonly col: number;
  readonly into: NginxDirective[];
}

/** Parses one file's text; throws `NginxSyntaxError` where nginx would refuse it. */
export function parseNginx(text: string, file: string): NginxDirective[] {
  const root: NginxDirective[] = [];
  const stack: OpenBlock[] = [];
  let words: Word[] = [];
  const into = (): NginxDirective[] => stack.at(-1)?.into ?? root;
  /** A forgotten `;`, reported where it belongs: just after the directive's last word. */
  const unterminated = (head: Word, last: Word, before: string): NginxSyntaxError =>
    new NginxSyntaxError(
      file,
      last.endLine,
      last.endCol,
      `directive ${JSON.stringify(head.value)}${head.line === last.endLine ? '' : ` (line ${head.line})`} is not terminated by ";" before ${before}`,
    );

  for (const token of tokenize(text, file)) {
    if (token.kind === 'word') {
      words.push(token);
      continue;
    }
    const head = words[0];
    if (token.kind === '}') {
      if (head !== undefined) throw unterminated(head, words.at(-1)!, `"}" on line ${token.line}`);
      if (stack.pop() === undefined) {
        throw new NginxSyntaxError(file, token.line, token.col, 'unexpected "}": no block is open here');
      }
      continue;
    }
    if (head === undefined) {
      throw new NginxSyntaxError(
        file,
        token.line,
        token.col,
        `unexpected "${token.kind}": a directive name must come first`,
      );
    }
    checkRunOn(words);
    const args = words.slice(1).map((w) => w.value);
    words = [];
    const place = { file, line: head.line, col: head.col };
    if (token.kind === ';') {
      into().push({ name: head.value, args, block: null, ...place });
    } else {
      if (stack.length >= MAX_NESTING) throw tooDeep(file, head.line, head.col, head.value);
      // nginx refuses it here, where the "{" is; read on, the error surfaced at the end of the file.
      if (takesNoBlock(head.value)) {
        throw new NginxSyntaxError(
          file,
          token.line,
          token.col,
          `directive ${JSON.stringify(head.value)} is not terminated by ";": a "{" opens a block here, which ${head.value} does not take (quote an argument that holds "{" or "}")`,
        );
      }
      const block: NginxDirective[] = [];
      into().push({ name: head.value, args, block, ...place });
      stack.push({ name: head.value, line: head.line, col: head.col, into: block });
    }
  }

  const dangling = words[0];
  if (dangling !== undefined) throw unterminated(dangling, words.at(-1)!, 'the end of the file');
  const open = stack.at(-1);
  if (open !== undefined) {
    throw new NginxSyntaxError(
      file,
      open.line,
      open.col,
      `unexpected end of file: the ${JSON.stringify(open.name)} block opened here is not closed by "}"`,
    );
  }
  return root;

  /**
   * A forgotten `;`: an unquoted argument that starts a later line, names a directive and is
   * followed by arguments of its own (`listen 80` then `server_name a.com;` on the next line).
   */
  function checkRunOn(list: readonly Word[]): void {
    for (let k = 1; k < list.length - 1; k++) {
      const w = list[k]!;
      const before = list[k - 1]!;
      if (w.quoted || w.line === before.endLine || !isKnownDirective(w.value)) continue;
      throw unterminated(list[0]!, before, `${JSON.stringify(w.value)} on line ${w.line}`);
    }
  }
}
