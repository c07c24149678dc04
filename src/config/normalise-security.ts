/**
 * The security settings of a config: allow/deny rules, rate limits, bans, TLS files, admin
 * tokens (resolved to their SHA-256 at load time: the secret itself never enters the resolved
 * config, which is printed by `check --print` and sent to every worker), egress policies, Redis.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { isSpiffeId } from '../core/spiffe-id.js';
import { canonicalHost } from '../egress/egress-target.js';
import type { ConfigDir } from './config-dir.js';
import type { ConfigDraft, RouteDraft, ServerDraft, UpstreamDraft } from './config-draft.js';
import { durationOr } from './config-units.js';
import { normaliseCidr } from './ip-cidr.js';
import type { KeyPath } from './key-path.js';
import { parseListenAddress } from './listen-address.js';
import { nonEmpty } from './non-empty.js';
import type { ProblemCollector } from './problem-collector.js';
import { parseTemplate } from './template.js';
import { checkTlsFiles } from './tls-files.js';
import type {
  AccessRule,
  ResolvedAccess,
  ResolvedAdmin,
  ResolvedBan,
  ResolvedEgress,
  ResolvedGuards,
  ResolvedRateLimit,
  ResolvedServerTls,
  ResolvedToken,
  ResolvedUpstreamTls,
} from './types.js';

type AccessDraft = NonNullable<ServerDraft['access']>;
type RateDraft = NonNullable<ServerDraft['rate_limit']>;
type BanDraft = NonNullable<ServerDraft['ban']>;

/** No guards at all. */
export const NO_GUARDS: ResolvedGuards = { access: null, rateLimit: null, ban: null };

/** A server's or route's guards; a route inherits each guard its server sets unless it sets its own. */
export function normaliseGuards(
  draft: Pick<ServerDraft | RouteDraft, 'access' | 'rate_limit' | 'ban'>,
  path: KeyPath,
  problems: ProblemCollector,
  inherited: ResolvedGuards | null = null,
): ResolvedGuards {
  const level = inherited === null ? 'server' : 'route';
  const from = inherited ?? NO_GUARDS;
  return {
    access:
      draft.access === undefined ? from.access : normaliseAccess(draft.access, [...path, 'access'], problems),
    rateLimit:
      draft.rate_limit === undefined
        ? from.rateLimit
        : normaliseRateLimit(draft.rate_limit, [...path, 'rate_limit'], problems, level),
    ban: draft.ban === undefined ? from.ban : normaliseBan(draft.ban, [...path, 'ban'], problems, level),
  };
}

function cidrs(text: string, path: KeyPath, problems: ProblemCollector): string[] {
  if (text === 'all') return ['0.0.0.0/0', '::/0'];
  const parsed = normaliseCidr(text);
  if ('error' in parsed) {
    problems.error(path, 'SLUICE_E_CONFIG_CIDR', parsed.error);
    return [];
  }
  return [parsed.cidr];
}

/** What to write instead of an access setting that names no client. */
const EMPTY_ACCESS_HINT =
  "to let every client in, write allow: [all] (or remove access: a route then has its server's); to let none in, write deny: [all]";

/**
 * `{ allow, deny }` is checked allow first, then deny; an address neither lists is allowed unless
 * there is an allow list (then it is denied: `allow: [10.0.0.0/8]` alone means "only these").
 * The ordered list form is nginx's exactly: first match wins, no match allowed.
 *
 * A setting that names no client is refused: `allow: []` let everyone in (an allow list meant
 * "only these", and this one named none), and on a route an empty setting replaced the server's,
 * so `access: { allow: [] }` there opened what the server restricted.
 */
export function normaliseAccess(
  draft: AccessDraft,
  path: KeyPath,
  problems: ProblemCollector,
): ResolvedAccess {
  const rules: AccessRule[] = [];
  if (Array.isArray(draft)) {
    if (draft.length === 0) {
      problems.error(
        path,
        'SLUICE_E_CONFIG_VALUE',
        'an empty access list names no client: it would let every client in (on a route, whatever its server allows)',
        { hint: EMPTY_ACCESS_HINT },
      );
    }
    draft.forEach((entry, i) => {
      if (entry === undefined) return;
      const allow = 'allow' in entry && entry.allow !== undefined;
      const text: unknown = allow ? (entry as { allow: string }).allow : (entry as { deny?: string }).deny;
      // What the schema refused salvages to an entry with neither (`{ alow: x }`, `{}`): reported there.
      if (typeof text !== 'string') return;
      for (const cidr of cidrs(text, [...path, i, allow ? 'allow' : 'deny'], problems))
        rules.push({ allow, cidr });
    });
    return { rules, otherwise: true };
  }
  const object = draft as { allow?: (string | undefined)[]; deny?: (string | undefined)[] };
  if (object.allow?.length === 0) {
    problems.error(
      [...path, 'allow'],
      'SLUICE_E_CONFIG_VALUE',
      'an empty allow list names no client to let in',
      { hint: EMPTY_ACCESS_HINT },
    );
  } else if (object.allow === undefined && (object.deny === undefined || object.deny.length === 0)) {
    problems.error(
      path,
      'SLUICE_E_CONFIG_VALUE',
      'access names no client in allow or deny: it would let every client in (on a route, whatever its server allows)',
      { hint: EMPTY_ACCESS_HINT },
    );
  }
  object.allow?.forEach((t, i) => {
    if (t !== undefined)
      for (const cidr of cidrs(t, [...path, 'allow', i], problems)) rules.push({ allow: true, cidr });
  });
  object.deny?.forEach((t, i) => {
    if (t !== undefined)
      for (const cidr of cidrs(t, [...path, 'deny', i], problems)) rules.push({ allow: false, cidr });
  });
  // An allow list, even one refused above as empty, lets in only what it names.
  return { rules, otherwise: object.allow === undefined };
}

const PER = { s: 1, m: 60, h: 3600 } as const;

/** Requests per second of a rate as the schema has it (`100/s`, `600/m`); NaN for another text. */
export function ratePerSecond(rate: string): number {
  const [amount = '0', unit = 's'] = rate.split('/');
  return Number(amount) / (PER[unit as keyof typeof PER] ?? Number.NaN);
}

function normaliseRateLimit(
  draft: RateDraft,
  path: KeyPath,
  problems: ProblemCollector,
  level: 'server' | 'route',
): ResolvedRateLimit {
  const perSecond = ratePerSecond(draft.rate ?? '0/s');
  if (!(perSecond > 0))
    problems.error([...path, 'rate'], 'SLUICE_E_CONFIG_VALUE', 'the rate must be more than 0', {
      hint: 'write requests per unit above 0, e.g. 100/s or 600/m',
    });
  const key = draft.key ?? '$remote_addr';
  const parsed = parseTemplate(key);
  if ('error' in parsed && !key.includes('$client_spiffe_id')) {
    problems.error([...path, 'key'], 'SLUICE_E_CONFIG_VARIABLE', parsed.error);
  }
  const zone = nonEmpty(
    draft.zone,
    [...path, 'zone'],
    'name the zone whose buckets this rule shares, or remove zone: to give it buckets of its own',
    problems,
  );
  return { perSecond, burst: draft.burst ?? 0, key, level, zone };
}

function normaliseBan(
  draft: BanDraft,
  path: KeyPath,
  problems: ProblemCollector,
  level: 'server' | 'route',
): ResolvedBan {
  const windowMs = durationOr(draft.window, 60_000);
  const durationMs = durationOr(draft.duration, 600_000);
  if (windowMs <= 0)
    problems.error([...path, 'window'], 'SLUICE_E_CONFIG_VALUE', 'must be more than 0s', {
      hint: 'write the counting window, e.g. 1m (the default)',
    });
  if (durationMs <= 0)
    problems.error([...path, 'duration'], 'SLUICE_E_CONFIG_VALUE', 'must be more than 0s', {
      hint: 'write how long a ban lasts, e.g. 10m (the default)',
    });
  const statuses = (draft.statuses ?? []).filter((x): x is number => x !== undefined);
  return {
    statuses: [...new Set(statuses)],
    max: draft.max ?? 1,
    windowMs,
    durationMs,
    per: draft.per ?? 'address',
    level,
  };
}

/**
 * A file the config names: resolved next to the config file; it must exist now. An empty name is
 * said to be empty (it resolved to the config's directory: "cannot read /dir: EISDIR"), and gives
 * `''`, which the TLS checks skip.
 */
function existingFile(text: string, baseDir: ConfigDir, path: KeyPath, problems: ProblemCollector): string {
  if (nonEmpty(text, path, 'write the path of the PEM file, relative to the config file', problems) === null)
    return '';
  const file = baseDir.resolve(text);
  if (!existsSync(file)) problems.error(path, 'SLUICE_E_CONFIG_FILE', `${file} does not exist`);
  return file;
}

/** A server's `tls:`. */
export function normaliseServerTls(
  draft: NonNullable<ServerDraft['tls']>,
  path: KeyPath,
  baseDir: ConfigDir,
  problems: ProblemCollector,
): ResolvedServerTls {
  const requireClientCert = draft.require_client_cert ?? false;
  if (requireClientCert && draft.client_ca === undefined) {
    problems.error(
      [...path, 'require_client_cert'],
      'SLUICE_E_CONFIG_MISSING_KEY',
      'require_client_cert needs client_ca',
      {
        hint: 'give client_ca: the CA (PEM) that signs the client certificates',
      },
    );
  }
  const resolved: ResolvedServerTls = {
    cert: existingFile(draft.cert ?? '', baseDir, [...path, 'cert'], problems),
    key: existingFile(draft.key ?? '', baseDir, [...path, 'key'], problems),
    minVersion: draft.min_version ?? 'TLSv1.2',
    clientCa:
      draft.client_ca === undefined
        ? null
        : existingFile(draft.client_ca, baseDir, [...path, 'client_ca'], problems),
    requireClientCert,
  };
  checkTlsFiles(path, { ...resolved, ca: resolved.clientCa }, 'client_ca', problems);
  return resolved;
}

/** An upstream's `tls:`. */
export function normaliseUpstreamTls(
  draft: UpstreamDraft['tls'],
  path: KeyPath,
  baseDir: ConfigDir,
  problems: ProblemCollector,
): ResolvedUpstreamTls | null {
  if (draft === undefined) return null;
  if ((draft.cert === undefined) !== (draft.key === undefined)) {
    problems.error(path, 'SLUICE_E_CONFIG_MISSING_KEY', 'a client certificate needs both cert and key');
  }
  // The rule a target's certificate is held to (core/spiffe-id.ts): a pin it breaks never matches.
  if (draft.spiffe_id !== undefined && !isSpiffeId(draft.spiffe_id)) {
    problems.error(
      [...path, 'spiffe_id'],
      'SLUICE_E_CONFIG_VALUE',
      `${JSON.stringify(draft.spiffe_id)} is not a SPIFFE id`,
      {
        hint: 'write spiffe://TRUST-DOMAIN/PATH, e.g. spiffe://example.org/backend: a lower-case trust domain of a-z 0-9 . - _, path segments of A-Z a-z 0-9 . - _, no port, query or fragment',
      },
    );
  }
  const file = (t: string | undefined, key: string) =>
    t === undefined ? null : existingFile(t, baseDir, [...path, key], problems);
  const resolved: ResolvedUpstreamTls = {
    ca: file(draft.ca, 'ca'),
    cert: file(draft.cert, 'cert'),
    key: file(draft.key, 'key'),
    serverName: draft.server_name ?? null,
    spiffeId: draft.spiffe_id ?? null,
  };
  checkTlsFiles(path, resolved, 'ca', problems);
  return resolved;
}

/** What to write in each token source. */
const TOKEN_SOURCE_HINTS = {
  token_env: 'write the name of the variable that holds the token, e.g. SLUICE_OPS_TOKEN',
  token_file: 'write the path of the file that holds the token, relative to the config file',
  token_sha256: 'write the SHA-256 of the token in hex: printf %s "$TOKEN" | sha256sum',
} as const;

/** The admin tokens, each reduced to its SHA-256. */
export function normaliseTokens(
  draft: NonNullable<ConfigDraft['admin']>['tokens'],
  baseDir: ConfigDir,
  env: Readonly<Record<string, string | undefined>>,
  problems: ProblemCollector,
): ResolvedToken[] {
  const tokens: ResolvedToken[] = [];
  const names = new Set<string>();
  /** The entry each token (by its SHA-256, whatever its source) was first given to. */
  const owners = new Map<string, { name: string; role: string; index: number }>();
  draft?.forEach((t, i) => {
    if (t === undefined) return;
    const path: KeyPath = ['admin', 'tokens', i];
    const sources = (['token_env', 'token_file', 'token_sha256'] as const).filter((k) => t[k] !== undefined);
    if (sources.length !== 1) {
      problems.error(
        path,
        'SLUICE_E_CONFIG_VALUE',
        'give exactly one of token_env, token_file and token_sha256',
        {
          hint: 'token_env names the variable holding the token, token_file the file holding it, token_sha256 is its SHA-256',
        },
      );
      return;
    }
    if (t.name === undefined || t.role === undefined) return;
    if (t.name.trim() === '')
      problems.error([...path, 'name'], 'SLUICE_E_CONFIG_VALUE', 'must not be empty', {
        hint: 'write the name audit log lines give this token, e.g. ci-deploy',
      });
    else if (names.has(t.name))
      problems.error(
        [...path, 'name'],
        'SLUICE_E_CONFIG_DUPLICATE_NAME',
        `token name ${JSON.stringify(t.name)} is used twice`,
        { hint: 'give each token its own name: audit log lines name the token that made a change' },
      );
    names.add(t.name);
    let secret: string | null = null;
    let sha256: string | null = null;
    const source = sources[0]!;
    const named = nonEmpty(t[source], [...path, source], TOKEN_SOURCE_HINTS[source], problems);
    if (named === null) return;
    if (t.token_env !== undefined) {
      secret = env[t.token_env] ?? null;
      if (secret === null || secret === '') {
        problems.error(
          [...path, 'token_env'],
          'SLUICE_E_CONFIG_ENV',
          `environment variable ${t.token_env} is not set`,
          {
            hint: `set ${t.token_env} in the environment sluice runs in (systemd: Environment= or EnvironmentFile=), or use token_file`,
          },
        );
        return;
      }
    } else if (t.token_file !== undefined) {
      const file = baseDir.resolve(t.token_file);
      try {
        secret = readFileSync(file, 'utf8').trim();
      } catch (err) {
        problems.error(
          [...path, 'token_file'],
          'SLUICE_E_CONFIG_FILE',
          `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`,
        );
        return;
      }
    } else {
      sha256 = String(t.token_sha256).toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(sha256)) {
        problems.error(
          [...path, 'token_sha256'],
          'SLUICE_E_CONFIG_VALUE',
          'expected 64 hex digits (sha256sum of the token)',
          { hint: TOKEN_SOURCE_HINTS.token_sha256 },
        );
        return;
      }
    }
    if (secret !== null) {
      if (secret.length < 16) {
        problems.error(
          path,
          'SLUICE_E_CONFIG_VALUE',
          `token ${JSON.stringify(t.name)} is shorter than 16 characters`,
          {
            hint: 'generate one with: openssl rand -hex 32',
          },
        );
        return;
      }
      // The admin API reads `Authorization: Bearer <token>` as one run of visible ASCII: a token
      // with a space, a control character (a newline left in a variable) or a non-ASCII letter
      // passed check and could never be presented, every call answered 401.
      if (!/^[\x21-\x7e]+$/.test(secret)) {
        problems.error(
          path,
          'SLUICE_E_CONFIG_VALUE',
          `token ${JSON.stringify(t.name)} holds a space, a control character or a non-ASCII character, which an Authorization header cannot carry`,
          { hint: 'use letters, digits and -._~+/= only, e.g. from: openssl rand -hex 32' },
        );
        return;
      }
      sha256 = createHash('sha256').update(secret).digest('hex');
    }
    // A presented token is matched to the first entry holding it: a second entry with the same
    // token (from any source: secrets are known only now, so hashes are compared) could never be
    // used, and its role never granted. Neither the token nor its hash is printed.
    const owner = owners.get(sha256!);
    if (owner !== undefined) {
      problems.error(
        path,
        'SLUICE_E_ADMIN_DUPLICATE_TOKEN',
        `token ${JSON.stringify(t.name)} (${t.role}) is the same token as ${JSON.stringify(owner.name)} (${owner.role}, admin.tokens[${owner.index}]): every call with it would be taken as ${JSON.stringify(owner.name)}'s`,
        { hint: 'give each entry its own token, e.g. from: openssl rand -hex 32' },
      );
      return;
    }
    owners.set(sha256!, { name: t.name, role: t.role, index: i });
    tokens.push({
      name: t.name,
      role: t.role,
      sha256: sha256!,
      file: t.token_file === undefined ? null : baseDir.resolve(t.token_file),
    });
  });
  return tokens;
}

/** Admin settings (listen already parsed by the caller). */
export function normaliseAdmin(
  draft: NonNullable<ConfigDraft['admin']>,
  listen: ResolvedAdmin['listen'],
  baseDir: ConfigDir,
  env: Readonly<Record<string, string | undefined>>,
  problems: ProblemCollector,
): ResolvedAdmin {
  const tokens = normaliseTokens(draft.tokens, baseDir, env, problems);
  if ((draft.tokens ?? []).length === 0 && !isLoopback(listen.host)) {
    problems.error(
      ['admin', 'listen'],
      'SLUICE_E_ADMIN_EXPOSED',
      `the admin API without tokens serves only loopback addresses, not ${listen.key}`,
      {
        hint: 'listen on 127.0.0.1 (or ::1), or configure admin.tokens',
      },
    );
  }
  // Without tokens every read is open to loopback callers, /metrics included: say so rather than
  // let the file look as if /metrics were protected.
  if (draft.metrics_auth === true && (draft.tokens ?? []).length === 0) {
    problems.warn(
      ['admin', 'metrics_auth'],
      'SLUICE_E_CONFIG_VALUE',
      'metrics_auth: true has no effect without admin.tokens: /metrics stays open to loopback callers',
      { hint: 'configure admin.tokens (any role may then read /metrics), or remove metrics_auth' },
    );
  }
  return { listen, metricsAuth: draft.metrics_auth ?? false, tokens };
}

/** Whether a listen host is a loopback address (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The egress forward proxy. */
export function normaliseEgress(
  draft: ConfigDraft['egress'],
  problems: ProblemCollector,
): ResolvedEgress | null {
  if (draft?.listen === undefined) return null;
  const listen = parseListenAddress(draft.listen);
  // The policies are checked all the same: a bad address must not hide their problems.
  if ('error' in listen) problems.error(['egress', 'listen'], 'SLUICE_E_CONFIG_LISTEN', listen.error);
  const names = new Set<string>();
  const policies = (draft.policies ?? []).flatMap((p, i) => {
    if (p?.name === undefined) return [];
    // The log names the policy that let a request through: two of one name would say neither.
    if (names.has(p.name))
      problems.error(
        ['egress', 'policies', i, 'name'],
        'SLUICE_E_CONFIG_DUPLICATE_NAME',
        `policy name ${JSON.stringify(p.name)} is used twice`,
        {
          hint: "give each policy its own name: an egress log line's `policy` names the one that allowed it",
        },
      );
    names.add(p.name);
    const sources = (p.sources ?? []).flatMap((t, j) =>
      t === undefined ? [] : cidrs(t, ['egress', 'policies', i, 'sources', j], problems),
    );
    const hosts = (p.hosts ?? []).flatMap((h, j) => {
      if (h === undefined) return [];
      const host = policyHost(h);
      if (typeof host !== 'string') {
        problems.error(['egress', 'policies', i, 'hosts', j], 'SLUICE_E_CONFIG_VALUE', host.error, {
          hint: host.hint ?? HOST_HINT,
        });
        return [];
      }
      return [host];
    });
    return [{ name: p.name, sources, hosts }];
  });
  return 'error' in listen ? null : { listen, policies };
}

const HOST_HINT =
  'write a name (api.example.com), *.example.com, an address (10.0.0.7, [fd00::7]), each with an optional :PORT from 1 to 65535';

/**
 * An egress policy's host entry, canonical as request targets are (egress-target.ts): lower case,
 * an internationalised name in its `xn--` form (a client's `bücher.example` arrives as
 * `xn--bcher-kva.example`), no trailing dot, an IPv4 address as four numbers (`127.1` is
 * `127.0.0.1`), an IPv6 address compressed, the port without leading zeros. An entry that could
 * never match a request is refused: one the target parser would not take (`foo.123`, read as a
 * bad IPv4 address; `x..example.com`), and a wildcard over an address (wildcards match names only).
 */
function policyHost(entry: string): string | { error: string; hint?: string } {
  const what = JSON.stringify(entry);
  const beyond = beyondHost(entry.trim(), what);
  if (beyond !== null) return beyond;
  const m = /^(\*\.)?(\[[^\]]*\]|[^:[\]]*)(?::(\d+))?$/.exec(entry.trim());
  if (m === null) return { error: `${what} is not a host, *.domain or host:port` };
  const wildcard = m[1] !== undefined;
  const written = m[2]!;
  const port = m[3];
  const host = canonicalHost(written);
  if (host === null) {
    if (/[^\x00-\x7f]/.test(written) && domainToASCII(written) === '') {
      return { error: `${what} is not a valid internationalised name` };
    }
    return {
      error: `${what} is not a host, *.domain or host:port`,
      hint: `${HOST_HINT}; a name is labels of letters, digits, hyphens and underscores, 1 to 63 characters each, and does not end in a number (a.123 is read as an IPv4 address)`,
    };
  }
  if (wildcard && (host.startsWith('[') || isIP(host) !== 0)) {
    return {
      error: `${what}: a wildcard never matches an IP address`,
      hint: 'list the address itself (10.0.0.7, [fd00::7]), or use *. with a domain name',
    };
  }
  if (port !== undefined && (port.length > 5 || Number(port) < 1 || Number(port) > 65535)) {
    return { error: `${what}: port ${port} is not between 1 and 65535` };
  }
  const name = wildcard ? `*.${host}` : host;
  return port === undefined ? name : `${name}:${Number(port)}`;
}

/** What the proxy can check: HTTPS arrives as a CONNECT tunnel that shows a host and a port, nothing more. */
const NO_PATHS =
  'write host, host:PORT or *.domain[:PORT] (api.example.com:443); egress checks only the host and port, not paths: HTTPS goes through CONNECT tunnels, which show the proxy nothing else';

/**
 * An entry that says more than a host, refused with what it says. The URL host parser behind
 * canonicalHost stops at `/`, `?`, `#` and `\` and drops what comes before an `@`, so such an
 * entry was kept as a bare host, wider than written (`localhost/only/this/path` allowed all of
 * localhost) or another one (`evil.com@api.example.com:443` allowed api.example.com:443); and a
 * CIDR block was kept as its first address alone.
 */
function beyondHost(entry: string, what: string): { error: string; hint: string } | null {
  const cidr = /^(\[[^\]]*\]|[^/[\]]*)\/\d+(?::\d+)?$/.exec(entry);
  if (cidr !== null && isIP(cidr[1]!.replace(/^\[(.*)\]$/, '$1')) !== 0) {
    return {
      error: `${what} is a CIDR block: hosts match the target as the client wrote it, a name or one address`,
      hint: 'list each address (10.0.0.7, [fd00::7]) or the names the clients use: a request for a name is never matched by the address it resolves to',
    };
  }
  if (entry.includes('://')) return { error: `${what} is a URL, not a host`, hint: NO_PATHS };
  if (entry.includes('@')) {
    return { error: `${what} has a user part before "@", which a host entry cannot have`, hint: NO_PATHS };
  }
  if (entry.includes('\\'))
    return { error: `${what} has a backslash, which a host cannot have`, hint: NO_PATHS };
  const at = entry.search(/[/?#]/);
  if (at === -1) return null;
  const part = entry[at] === '/' ? 'a path' : entry[at] === '?' ? 'a query' : 'a fragment';
  return { error: `${what} has ${part}: egress allows whole hosts, not URLs`, hint: NO_PATHS };
}
