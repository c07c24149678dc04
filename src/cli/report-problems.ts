/** How `check` and `doctor -c` report a config that does not load. */
import { type ConfigProblem, formatProblem, problemCount } from '../config/problem.js';

/** Every problem on stdout, one line each, then their count on stderr. */
export function reportProblems(file: string, problems: readonly ConfigProblem[]): void {
  for (const p of problems) process.stdout.write(`${formatProblem(p)}\n`);
  process.stderr.write(`${file}: ${problemCount(problems)}\n`);
}
