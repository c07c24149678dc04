/**
 * Reading sshd_config the way sshd does, for the settings that apply to every connection:
 *
 * - keywords are case-insensitive; `Keyword value` and `Keyword=value` are the same;
 * - the first value of a keyword wins, except `AllowUsers`, `AllowGroups`, `DenyUsers` and
 *   `DenyGroups`, whose lines add up;
 * - `#` starts a comment at the start of a line or of a word; `"..."` quotes a word;
 * - a `Match` block (until the next `Match`, or `Match all`, or the end of its file) applies to
 *   some connections only, so its lines are not global settings;
 * - `Include` reads files in place (first wins counts them where the `Include` stands), up to 16
 *   levels deep as sshd allows. Globbing is left to the caller.
 */

/** One file of sshd configuration. */
export interface SshdConfigFile {
  readonly path: string;
  readonly text: string;
}

/** The global settings and the files they came from. */
export interface SshdSettings {
  /** Lower-cased keyword → value (words joined by one space). */
  readonly settings: Readonly<Record<string, string>>;
  /** Lower-cased keyword → the file its (first) value came from. */
  readonly origins: Readonly<Record<string, string>>;
  readonly files: readonly string[];
}

/** Keywords whose every line adds to the list instead of the first one winning. */
const ACCUMULATING = new Set(['allowusers', 'allowgroups', 'denyusers', 'denygroups']);

/** sshd's own limit on nested `Include`s (SERVCONF_MAX_DEPTH). */
const MAX_DEPTH = 16;

/**
 * Parses `main` and what it includes. `include(pattern)` returns the files one `Include` word
 * names (as written: relative to /etc/ssh, possibly a glob), in the order sshd reads them.
 */
export function parseSshdConfig(
  main: SshdConfigFile,
  include: (pattern: string) => readonly SshdConfigFile[],
): SshdSettings {
  const settings: Record<string, string> = {};
  const origins: Record<string, string> = {};
  const files: string[] = [];

  const read = (file: SshdConfigFile, depth: number): void => {
    files.push(file.path);
    // sshd restores the Match state after an Include, so each file starts outside any block.
    let inMatch = false;
    for (const line of file.text.split(/\r?\n/)) {
      const parsed = parseLine(line);
      if (parsed === null) continue;
      const { keyword, words } = parsed;
      if (keyword === 'match') {
        inMatch = !(words.length === 1 && words[0]!.toLowerCase() === 'all');
        continue;
      }
      if (inMatch) continue;
      if (keyword === 'include') {
        if (depth >= MAX_DEPTH) continue;
        for (const pattern of words) for (const f of include(pattern)) read(f, depth + 1);
        continue;
      }
      if (words.length === 0) continue;
      const value = words.join(' ');
      const earlier = settings[keyword];
      if (earlier === undefined) {
        settings[keyword] = value;
        origins[keyword] = file.path;
      } else if (ACCUMULATING.has(keyword)) settings[keyword] = `${earlier} ${value}`;
    }
  };

  read(main, 0);
  return { settings, origins, files };
}

/** A line's keyword (lower case) and its words, or null for a blank or comment line. */
function parseLine(line: string): { keyword: string; words: string[] } | null {
  const m = /^\s*([^\s=]+)(?:\s*=\s*|\s+|$)(.*)$/.exec(line);
  if (m === null) return null;
  const keyword = m[1]!;
  if (keyword.startsWith('#')) return null;
  return { keyword: keyword.toLowerCase(), words: splitWords(m[2]!) };
}

/** Splits on white space; `"..."` keeps spaces; a word starting with `#` ends the line. */
function splitWords(text: string): string[] {
  const words: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[2]?.startsWith('#')) break;
    words.push(m[1] ?? m[2]!);
  }
  return words;
}
