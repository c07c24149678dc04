/**
 * The userinfo of a URL whose client decodes it: ioredis (`state.redis`) and the OTLP exporter
 * (`tracing.otlp_endpoint`) take the user name and password with decodeURIComponent. A `%` not
 * followed by two hex digits (or escapes that are no UTF-8) threw there: ioredis ended the process
 * at start (and every worker of a reload, again and again), the exporter dropped every span.
 */
import { redactUrl } from '../core/redact.js';
import type { KeyPath } from './key-path.js';
import type { ProblemCollector } from './problem-collector.js';

/** What is wrong with a URL's userinfo, said after the URL, with its hint. */
interface UserinfoProblem {
  readonly message: string;
  readonly hint: string;
}

/** An @ where a password holding `/`, `?` or `#` as written put it, with its hint. */
const SPLIT_PASSWORD: UserinfoProblem = {
  message: 'has an @ after a /, ? or #: a user name or password that holds one ends there',
  hint: 'percent-encode /, ?, # and @ in the user name and password as %2F, %3F, %23 and %40',
};

/**
 * The problem with the userinfo of URL `text`, or null when its client can read it. Read as URL
 * parsers read it: the authority ends at the first `/`, `\\`, `?` or `#`, and its userinfo at its
 * last `@`. A password holding one of those four as written ends there: the URL is refused, or a
 * piece of the password is taken for the host (`redis://u:123/pw@host` is host `u`, port 123) and
 * the rest sent to it as a path or query. So an `@` in the path or fragment is refused; one in the
 * query only when the URL does not parse, since a query value may hold one (`?password=p@ss`,
 * which ioredis reads).
 */
function userinfoProblem(text: string): UserinfoProblem | null {
  const rest = text.trim().replace(/^[A-Za-z][A-Za-z0-9+.-]*:[/\\]*/, '');
  const end = rest.search(/[/\\?#]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const after = end === -1 ? '' : rest.slice(end);
  const hash = after.indexOf('#');
  const beforeHash = hash === -1 ? after : after.slice(0, hash);
  const query = beforeHash.indexOf('?');
  const path = query === -1 ? beforeHash : beforeHash.slice(0, query);
  if (path.includes('@') || (hash !== -1 && after.includes('@', hash))) return SPLIT_PASSWORD;
  if (after.includes('@') && !URL.canParse(text)) return SPLIT_PASSWORD;
  try {
    decodeURIComponent(authority.slice(0, Math.max(authority.lastIndexOf('@'), 0)));
    return null;
  } catch {
    return {
      message: 'has a user name or password that is not valid percent-encoding',
      hint: 'percent-encode % as %25 in the user name and password: a % starts an escape of two hex digits (%2F for /)',
    };
  }
}

/** Reports the problem with the userinfo of URL `text` at `at`: true when there was one. */
export function refuseUserinfo(text: string, at: KeyPath, problems: ProblemCollector): boolean {
  const problem = userinfoProblem(text);
  if (problem === null) return false;
  problems.error(at, 'SLUICE_E_CONFIG_URL', `${JSON.stringify(redactUrl(text))} ${problem.message}`, {
    hint: problem.hint,
  });
  return true;
}
