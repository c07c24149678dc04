/**
 * The problems (or warnings) of a refused reload where they are kept or logged: a file with
 * thousands of problems made /api/status, which the dashboard reads every 2 s, and one log line
 * each megabytes (a log line that long is split or dropped by log shippers). Where they are
 * answered once (`POST /api/reload`) or printed (`sluice check`), all of them are given.
 */

/** How many problems, and how many warnings, a reload outcome keeps in /api/status and its log lines. */
export const KEPT_PROBLEMS = 100;

/** The first KEPT_PROBLEMS of `list`, and how many it leaves out. */
export function keptProblems(list: readonly string[]): { items: readonly string[]; omitted: number } {
  return list.length <= KEPT_PROBLEMS
    ? { items: list, omitted: 0 }
    : { items: list.slice(0, KEPT_PROBLEMS), omitted: list.length - KEPT_PROBLEMS };
}
