/** What the import could not carry over, each at the nginx line it came from. */
import type { SourcePlace } from './ast.js';

/** One warning: `FILE:LINE: warning: message` on stderr. */
export interface ImportWarning extends SourcePlace {
  readonly message: string;
}

/** `FILE:LINE: warning: message`, the form of `sluice check`'s warnings without a column. */
export function formatWarning(w: ImportWarning): string {
  return `${w.file}:${w.line}: warning: ${w.message}`;
}

/**
 * Collects warnings once each: a directive inherited by many locations (an http-level
 * `proxy_set_header`, say) is reported at its own line once, not once per location.
 */
export class WarningList {
  readonly #seen = new Set<string>();
  readonly #items: ImportWarning[] = [];
  /** Files in the order they were read, so warnings come out in reading order. */
  readonly #fileOrder: readonly string[];

  constructor(fileOrder: readonly string[] = []) {
    this.#fileOrder = fileOrder;
  }

  /** Adds a warning at `at` (a directive or any place), on one line whatever text it quotes. */
  add(at: SourcePlace, message: string): void {
    const w = { file: at.file, line: at.line, message: oneLine(message) };
    const id = formatWarning(w);
    if (this.#seen.has(id)) return;
    this.#seen.add(id);
    this.#items.push(w);
  }

  /** Every warning, by file (in reading order), then line; same line in the order added. */
  list(): ImportWarning[] {
    const rank = (file: string): number => {
      const i = this.#fileOrder.indexOf(file);
      return i === -1 ? this.#fileOrder.length : i;
    };
    return this.#items
      .map((w, i) => ({ w, i }))
      .sort((a, b) => rank(a.w.file) - rank(b.w.file) || a.w.line - b.w.line || a.i - b.i)
      .map((x) => x.w);
  }
}

const NAMED_CONTROLS: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `text` with its control characters escaped (`\n`, `\t`, `\x07`): a warning quotes nginx text (a
 * `return` body), and a newline in it split the warning over two lines of stderr.
 */
function oneLine(text: string): string {
  return text.replace(
    /\p{Cc}/gu,
    (c) => NAMED_CONTROLS[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}
