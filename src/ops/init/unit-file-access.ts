/**
 * Files the service must read at start that its User=/Group= could not: a TLS key readable by root
 * only (/etc/letsencrypt's privkey.pem is root:root 0600, under live/ and archive/ at 0700), a
 * handler module or the config in a directory of someone else's. Started as User=, sluice failed
 * with EACCES and systemd restarted it until the start limit; `init systemd` says so up front.
 *
 * Mode bits and owner only, as the kernel reads them for a process without CAP_DAC_OVERRIDE (the
 * unit's CapabilityBoundingSet= leaves none, even to root): owner bits when the uid owns the file,
 * else group bits when one of its groups does, else the rest. ACLs are not read. A path missing on
 * this host (a config written for another) is not checked: the config's own check reports it.
 */
import { type Stats, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ConfigProblem } from '../../config/problem.js';
import { type InitInput, serviceUser } from './init-input.js';
import { type ServiceAccount, serviceAccount } from './service-account.js';

/** A file the service reads at start, and the key that names it. */
export interface ServiceReadFile {
  readonly file: string;
  readonly what: string;
}

/** The config and every file it names that is read at start, each once, in config order. */
export function serviceReadFiles(input: InitInput): ServiceReadFile[] {
  const { config } = input;
  const out: ServiceReadFile[] = [{ file: input.configPath, what: 'the config' }];
  for (const s of config.servers) {
    if (s.tls !== null) {
      out.push({ file: s.tls.cert, what: `server ${JSON.stringify(s.name)} tls.cert` });
      out.push({ file: s.tls.key, what: `server ${JSON.stringify(s.name)} tls.key` });
      if (s.tls.clientCa !== null)
        out.push({ file: s.tls.clientCa, what: `server ${JSON.stringify(s.name)} tls.client_ca` });
    }
    for (const r of s.routes)
      if (r.action.kind === 'handler')
        out.push({ file: r.action.module, what: `route ${JSON.stringify(r.name)} handler` });
  }
  for (const u of Object.values(config.upstreams)) {
    for (const [key, file] of [
      ['ca', u.tls?.ca],
      ['cert', u.tls?.cert],
      ['key', u.tls?.key],
    ] as const)
      if (typeof file === 'string') out.push({ file, what: `upstream ${JSON.stringify(u.name)} tls.${key}` });
  }
  for (const t of config.admin?.tokens ?? [])
    if (t.file !== null) out.push({ file: t.file, what: 'admin token_file' });
  const seen = new Set<string>();
  return out.filter((f) => !seen.has(f.file) && seen.add(f.file));
}

/** One step of a path as stat sees it: a directory to enter, or the file to read. */
export interface PathStep {
  readonly path: string;
  readonly directory: boolean;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** The first step `account` is refused (a directory it cannot enter, the file it cannot read), or null. */
export function deniedStep(steps: readonly PathStep[], account: ServiceAccount): PathStep | null {
  for (const [i, step] of steps.entries()) {
    // The last step is the file itself (read); every step before it a directory (search).
    const need = i === steps.length - 1 ? 0o4 : 0o1;
    const shift = account.uid === step.uid ? 6 : account.gids.includes(step.gid) ? 3 : 0;
    if (((step.mode >> shift) & need) === 0) return step;
  }
  return null;
}

/** The directories from `/` down to `file`'s, then the file: null when one is missing or unreadable here. */
function pathSteps(file: string, stat: (path: string) => Stats): PathStep[] | null {
  const paths: string[] = [];
  for (let p = dirname(file); ; p = dirname(p)) {
    paths.unshift(p);
    if (dirname(p) === p) break;
  }
  paths.push(file);
  try {
    return paths.map((path) => {
      const s = stat(path);
      return { path, directory: s.isDirectory(), mode: s.mode & 0o777, uid: s.uid, gid: s.gid };
    });
  } catch {
    return null;
  }
}

/**
 * A warning for each file the service reads that its user could not, as config warnings read
 * (`FILE: SLUICE_E_CONFIG_FILE warning: ...`); `configName` is the config as the user named it.
 */
export function unreadableFileWarnings(
  input: InitInput,
  configName: string,
  root = '/',
  stat: (path: string) => Stats = statSync,
): ConfigProblem[] {
  const user = serviceUser(input.config);
  const account = serviceAccount(user, input.config.group, root);
  const unit = `User=${user}${input.config.group === null ? '' : ` Group=${input.config.group}`}`;
  const unknown =
    account.uid === null ? ` (not in /etc/passwd yet: a new user owns no file and is in no group)` : '';
  const problems: ConfigProblem[] = [];
  for (const f of serviceReadFiles(input)) {
    const steps = pathSteps(f.file, stat);
    const denied = steps === null ? null : deniedStep(steps, account);
    if (denied === null) continue;
    const owner = `${account.userNames.get(denied.uid) ?? denied.uid}:${account.groupNames.get(denied.gid) ?? denied.gid}`;
    const bits = `${owner} ${denied.mode.toString(8).padStart(4, '0')}`;
    const message =
      denied.path === f.file
        ? `${f.what} ${f.file} is ${bits}: ${unit}${unknown} cannot read it, and sluice would fail to start`
        : `${f.what} ${f.file}: ${denied.path} is ${bits}, and ${unit}${unknown} cannot enter it: sluice would fail to start`;
    problems.push({
      file: configName,
      line: 0,
      col: 0,
      code: 'SLUICE_E_CONFIG_FILE',
      message,
      hint: `let ${user} read it: give it a group ${user} is in (chgrp GROUP FILE && chmod g+r FILE, g+x on a directory; Group= or usermod -aG GROUP ${user}), or pass a copy with LoadCredential=NAME:FILE in the unit and name \${CREDENTIALS_DIRECTORY}/NAME in the config`,
    });
  }
  return problems;
}
