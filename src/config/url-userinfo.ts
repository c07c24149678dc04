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

/**
 * The problem with the userinfo of URL `text`, or null when its client can read it. Read from the
 * text, not a parsed URL: what a parser takes for userinfo ends before a `/` of the password.
 */
function userinfoProblem(text: string): UserinfoProblem | null {
  const rest = text.replace(/^[A-Za-z][A-Za-z0-9+.-]*:[/\\]*/, '');
  const userinfo = rest.slice(0, Math.max(rest.lastIndexOf('@'), 0));
  // A URL parser ends the userinfo at a `/`, `?` or `#` of the password: the URL is refused, or
  // a piece of the password is taken for the host and the rest sent to it as a path or query.
  if (/[/\\?#]/.test(userinfo)) {
    return {
      message: 'has an @ after a /, ? or #: a user name or password that holds one ends there',
      hint: 'percent-encode /, ?, # and @ in the user name and password as %2F, %3F, %23 and %40',
    };
  }
  try {
    decodeURIComponent(userinfo);
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
