/**
 * The doctor's only effects: read host files under a root directory into HostFacts.
 *
 *   root/proc/sys/...            ─▶ sysctl
 *   root/proc/self/limits        ─▶ nofile
 *   root/etc/security/limits*    ─▶ limitsConf
 *   root/run/systemd/timesync/…  ─▶ timeSync  (live host: then timedatectl, chronyc if installed)
 *   root/etc/ssl/… CA bundles    ─▶ caBundle  (live host: $SSL_CERT_FILE first)
 *   root/etc/ssh/sshd_config     ─▶ sshd      (with its Includes)
 *   this process                 ─▶ uid, nodeVersion, cores
 *
 * A file that is missing or unreadable becomes null (or an `unknown`/`absent` state); nothing here
 * throws for a host's sake. Commands and environment variables describe the live host only, so
 * they are not consulted under a fixture root: its results depend on its files alone.
 */
import { execFile } from 'node:child_process';
import { constants, readdirSync, readFileSync } from 'node:fs';
import { access, readdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { delimiter, join, posix } from 'node:path';
import { procSysPath, SYSCTL_SETTINGS } from '../host-tuning.js';
import {
  AUX_SYSCTL_KEYS,
  type CaBundleFact,
  type HostFacts,
  type LimitsConfEntry,
  type SshdFact,
  type TimeSyncFact,
} from './host-facts.js';
import { parseLimitsConf } from './limits-conf.js';
import { parseProcLimits } from './proc-limits.js';
import { parseSshdConfig, type SshdConfigFile } from './sshd-config.js';

/** Where and how to probe. */
export interface ProbeOptions {
  /** Host files are read under this directory: `/` for this host, a fixture tree in tests. */
  readonly root: string;
  /** True for this host: may run `timedatectl`/`chronyc` and read `$SSL_CERT_FILE`. */
  readonly live: boolean;
  readonly env: NodeJS.ProcessEnv;
}

/** CA bundle locations of the common distributions, in the order Go's crypto/x509 tries them. */
export const CA_BUNDLE_PATHS: readonly string[] = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Gentoo, Arch
  '/etc/pki/tls/certs/ca-bundle.crt', // Fedora, RHEL 6
  '/etc/ssl/ca-bundle.pem', // openSUSE
  '/etc/pki/tls/cacert.pem', // OpenELEC
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem', // CentOS, RHEL 7+
  '/etc/ssl/cert.pem', // Alpine
];

/** The sshd config file. */
export const SSHD_CONFIG = '/etc/ssh/sshd_config';

/** Present when systemd-timesyncd has synchronised the clock since boot (systemd 239+). */
export const TIMESYNCD_FLAG = '/run/systemd/timesync/synchronized';

/** How long a status command may take before the answer is "cannot tell". */
const COMMAND_TIMEOUT_MS = 3000;

/** Reads the facts. Never rejects for a missing or unreadable file. */
export async function probeHost(opts: ProbeOptions): Promise<HostFacts> {
  const at = (hostPath: string) => join(opts.root, hostPath);
  const keys = [...SYSCTL_SETTINGS.map((s) => s.key), ...AUX_SYSCTL_KEYS];
  const [values, limitsText, limitsConf, timeSync, caBundle, sshd] = await Promise.all([
    Promise.all(keys.map((key) => readText(at(procSysPath(key))))),
    readText(at('/proc/self/limits')),
    probeLimitsConf(at),
    probeTimeSync(at, opts),
    probeCaBundle(at, opts),
    probeSshd(at),
  ]);
  const sysctl: Record<string, string | null> = {};
  keys.forEach((key, i) => {
    const text = values[i] ?? null;
    sysctl[key] = text === null ? null : text.trim().split(/\s+/).join(' ');
  });
  return {
    root: opts.root,
    sysctl,
    nofile: limitsText === null ? null : parseProcLimits(limitsText),
    limitsConf,
    timeSync,
    caBundle,
    sshd,
    uid: typeof process.getuid === 'function' ? process.getuid() : null,
    nodeVersion: process.versions.node,
    cores: availableParallelism(),
  };
}

async function readText(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return null;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

async function probeLimitsConf(at: (p: string) => string): Promise<LimitsConfEntry[] | null> {
  const main = await readText(at('/etc/security/limits.conf'));
  if (main === null) return null;
  const entries = parseLimitsConf(main, '/etc/security/limits.conf');
  let names: string[] = [];
  try {
    names = (await readdir(at('/etc/security/limits.d'))).filter((n) => n.endsWith('.conf')).sort();
  } catch {
    // no limits.d: limits.conf alone
  }
  for (const name of names) {
    const file = `/etc/security/limits.d/${name}`;
    const text = await readText(at(file));
    if (text !== null) entries.push(...parseLimitsConf(text, file));
  }
  return entries;
}

async function probeTimeSync(at: (p: string) => string, opts: ProbeOptions): Promise<TimeSyncFact> {
  if (await exists(at(TIMESYNCD_FLAG))) return { state: 'synchronised', source: TIMESYNCD_FLAG };
  const tried = [`no ${TIMESYNCD_FLAG}`];
  if (!opts.live) return { state: 'unknown', tried: [...tried, 'commands are not run under --root'] };

  // NTPSynchronized is the kernel's own flag (adjtimex STA_UNSYNC), whichever daemon steers it.
  const timedatectl = await runIfInstalled(
    'timedatectl',
    ['show', '-p', 'NTPSynchronized', '--value'],
    opts.env,
  );
  const answer = typeof timedatectl === 'string' ? timedatectl.trim() : null;
  if (answer === 'yes') return { state: 'synchronised', source: 'timedatectl' };
  if (answer === 'no') return { state: 'unsynchronised', source: 'timedatectl' };
  tried.push(commandNote('timedatectl', timedatectl));

  const chronyc = await runIfInstalled('chronyc', ['-n', 'tracking'], opts.env);
  const leap =
    typeof chronyc === 'string' ? /^Leap status\s*:\s*(.+)$/m.exec(chronyc)?.[1]?.trim() : undefined;
  if (leap === 'Normal' || leap === 'Insert second' || leap === 'Delete second') {
    return { state: 'synchronised', source: 'chronyc tracking' };
  }
  if (leap === 'Not synchronised') return { state: 'unsynchronised', source: 'chronyc tracking' };
  tried.push(commandNote('chronyc', chronyc));
  return { state: 'unknown', tried };
}

/** What a command that gave no usable answer did, for the message. */
function commandNote(command: string, outcome: CommandOutcome): string {
  if (outcome === NOT_INSTALLED) return `${command} not installed`;
  return outcome === null ? `${command} failed` : `${command} gave no answer`;
}

const NOT_INSTALLED = Symbol('not installed');

/** A command's stdout; null when it failed or timed out; NOT_INSTALLED when it is not on PATH. */
type CommandOutcome = string | null | typeof NOT_INSTALLED;

/** Runs a command found on PATH, with a time bound; never rejects. */
async function runIfInstalled(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<CommandOutcome> {
  const dirs = (env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  let found: string | null = null;
  for (const dir of dirs) {
    const candidate = join(dir, command);
    try {
      await access(candidate, constants.X_OK);
      found = candidate;
      break;
    } catch {
      // not in this directory
    }
  }
  if (found === null) return NOT_INSTALLED;
  return new Promise((resolve) => {
    execFile(
      found,
      [...args],
      { timeout: COMMAND_TIMEOUT_MS, env: { ...env, LC_ALL: 'C' }, encoding: 'utf8' },
      (err, stdout) => resolve(err ? null : stdout),
    );
  });
}

async function probeCaBundle(at: (p: string) => string, opts: ProbeOptions): Promise<CaBundleFact> {
  const fromEnv = opts.live ? opts.env.SSL_CERT_FILE : undefined;
  const candidates = [...(fromEnv ? [fromEnv] : []), ...CA_BUNDLE_PATHS];
  for (const path of candidates) {
    const text = await readText(at(path));
    if (text === null) continue;
    const certificates = text.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
    return { state: 'found', path, certificates };
  }
  return { state: 'missing', tried: candidates };
}

async function probeSshd(at: (p: string) => string): Promise<SshdFact> {
  let text: string;
  try {
    text = await readFile(at(SSHD_CONFIG), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { state: 'absent', path: SSHD_CONFIG };
    return { state: 'unreadable', path: SSHD_CONFIG, reason: code ?? String(err) };
  }
  const parsed = parseSshdConfig({ path: SSHD_CONFIG, text }, (pattern) => includedFiles(at, pattern));
  return { state: 'read', settings: parsed.settings, origins: parsed.origins, files: parsed.files };
}

/**
 * The files one `Include` word names, sorted as glob(3) returns them. Relative paths are under
 * /etc/ssh; wildcards (`*`, `?`) are expanded in the last path component only — the form
 * distributions ship (`/etc/ssh/sshd_config.d/*.conf`). Unreadable files are skipped.
 */
function includedFiles(at: (p: string) => string, pattern: string): SshdConfigFile[] {
  const path = posix.isAbsolute(pattern) ? pattern : posix.join('/etc/ssh', pattern);
  const dir = posix.dirname(path);
  const base = posix.basename(path);
  let paths: string[];
  if (!/[*?[]/.test(base)) {
    paths = [path];
  } else if (/[*?[]/.test(dir)) {
    paths = [];
  } else {
    const re = new RegExp(
      `^${base
        .replace(/[.+^${}()|\\]/g, '\\$&')
        .replaceAll('*', '[^/]*')
        .replaceAll('?', '[^/]')}$`,
    );
    try {
      paths = readdirSync(at(dir))
        .filter((name) => re.test(name) && !name.startsWith('.'))
        .sort()
        .map((name) => posix.join(dir, name));
    } catch {
      paths = [];
    }
  }
  const files: SshdConfigFile[] = [];
  for (const p of paths) {
    try {
      files.push({ path: p, text: readFileSync(at(p), 'utf8') });
    } catch {
      // a missing or unreadable include: sshd would skip a glob miss too
    }
  }
  return files;
}
