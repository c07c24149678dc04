/**
 * `sluice init TARGET [-c FILE] [--out DIR] [--force]`: print or write deployment files. The
 * generators (src/ops/init/) are pure; this wrapper reads the config, prints or writes, and
 * decides the exit code: 2 for an unknown target or a config with problems, 1 when a file exists
 * (without --force) or cannot be written — in both cases before anything is written.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { loadConfigText } from '../../config/load.js';
import { formatProblem, problemCount } from '../../config/problem.js';
import { didYouMean } from '../../core/did-you-mean.js';
import { makeDirectories } from '../../core/make-directories.js';
import { procSysPath, SYSCTL_SETTINGS } from '../../ops/host-tuning.js';
import { DEFAULT_CONFIG_PATH, DEFAULT_CONFIG_TEXT } from '../../ops/init/default-config.js';
import { DEFAULT_SLUICE_BIN, type InitFile, type InitInput } from '../../ops/init/init-input.js';
import { INIT_TARGETS, type InitTarget, isInitTarget } from '../../ops/init/init-targets.js';
import { unreadableFileWarnings } from '../../ops/init/unit-file-access.js';
import { defaultConfigFile } from '../config-source.js';
import { existing } from '../existing-path.js';
import { loadConfigLeavingEnv } from '../load-leaving-env.js';

/** The command's options, as commander parses them. */
export interface InitOptions {
  readonly config?: string;
  readonly out?: string;
  readonly force?: boolean;
}

/** Runs the command and returns the exit code. */
export async function runInit(target: string, opts: InitOptions): Promise<number> {
  if (!isInitTarget(target)) {
    const names = Object.keys(INIT_TARGETS);
    const guess = didYouMean(target, names);
    process.stderr.write(
      `sluice init: unknown target ${JSON.stringify(target)}${guess === undefined ? '' : ` (did you mean ${guess}?)`}` +
        `; the targets are ${names.join(', ')}\n`,
    );
    return 2;
  }
  const generator = INIT_TARGETS[target];
  const input = await readInput(opts.config, generator);
  if (typeof input === 'number') return input;
  const files = generator.render(input);
  const isDefault = input.configPath === DEFAULT_CONFIG_PATH && input.configText === DEFAULT_CONFIG_TEXT;
  // The unit starts sluice as User= directly: a file it names that this user cannot read (a TLS key
  // readable by root only) fails the start; said here, as a warning, since the host may yet change.
  if (target === 'systemd' && !isDefault) {
    const name = opts.config ?? defaultConfigFile() ?? input.configPath;
    for (const w of unreadableFileWarnings(input, name))
      process.stderr.write(`${formatProblem(w, 'warning')}\n`);
  }
  const defaultConfig = isDefault ? DEFAULT_CONFIG_FILES[target] : undefined;
  if (opts.out === undefined) {
    if (defaultConfig !== undefined)
      process.stderr.write(
        `sluice init: the minimal config is not printed; --out DIR writes it as DIR/${defaultConfig}\n`,
      );
    process.stdout.write(
      files.length === 1
        ? files[0]!.content
        : files.map((f) => `# ==> ${f.path} <==\n${f.content}`).join('\n'),
    );
    return 0;
  }
  let code = await writeFiles(files, opts.out, opts.force === true);
  if (code === 0 && defaultConfig !== undefined)
    code = await writeDefaultConfig(join(opts.out, defaultConfig));
  if (code === 0) process.stdout.write(`next: ${generator.next.replaceAll('DIR', opts.out)}\n`);
  return code;
}

/**
 * The generators' input: the `-c` config, else ./sluice.yaml, else the minimal default; or an exit
 * code. `announce`: say on stderr which config was taken when none was named.
 */
async function readInput(option: string | undefined, generator: InitTarget): Promise<InitInput | number> {
  const announce = generator.usesConfig;
  const common = {
    cpus: availableParallelism(),
    sluiceBin: DEFAULT_SLUICE_BIN,
    hostSysctl: await hostSysctl(),
  };
  const file = option ?? defaultConfigFile();
  if (file === null) {
    // No environment: the default text has no ${NAME} references, and nothing of this host leaks in.
    const result = loadConfigText(DEFAULT_CONFIG_TEXT, DEFAULT_CONFIG_PATH, {});
    if (!result.ok)
      throw new Error(`the default config has problems: ${result.problems.map((p) => p.message)}`);
    if (announce) {
      process.stderr.write(
        `sluice init: no -c FILE and no ./sluice.yaml: using a minimal config (one server on :8080, admin on 127.0.0.1:9090) at ${DEFAULT_CONFIG_PATH}\n`,
      );
    }
    return {
      ...common,
      config: result.config,
      configText: DEFAULT_CONFIG_TEXT,
      configPath: DEFAULT_CONFIG_PATH,
    };
  }
  if (option === undefined && announce) process.stderr.write(`sluice init: using ./${file}\n`);
  // Unreadable, it is the load's problem to report.
  const configText = await readFile(file, 'utf8').catch(() => '');
  const configPath = resolve(file);
  // ${VARIABLES} the service has (a Secret, EnvironmentFile=) and this shell lacks: the generated
  // files carry the reference, not the value, so they are warnings here, unless a generated file
  // depends on one (a listen port, the workers): that one must be set.
  const result = await loadConfigLeavingEnv(file, 'the service, which reads its own environment', (config) =>
    generator.render({ ...common, config, configText, configPath }),
  );
  if (!result.ok) {
    // stderr, as the warnings: stdout is the generated file, often piped straight into place
    // (`sluice init systemd | sudo tee ...`), which must not receive error text instead.
    for (const p of result.problems) process.stderr.write(`${formatProblem(p)}\n`);
    process.stderr.write(`${file}: ${problemCount(result.problems)}; nothing generated\n`);
    return 2;
  }
  for (const w of result.warnings) process.stderr.write(`${formatProblem(w, 'warning')}\n`);
  return { ...common, config: result.config, configText, configPath };
}

/**
 * Where the minimal config goes, for targets whose files name a config file (the Dockerfile COPYs
 * it from the build context; the unit's ExecStart reads /etc/sluice/sluice.yaml). Kubernetes
 * carries it in the ConfigMap, and sysctl and limits name none.
 */
const DEFAULT_CONFIG_FILES: Partial<Record<string, string>> = {
  docker: basename(DEFAULT_CONFIG_PATH),
  systemd: DEFAULT_CONFIG_PATH.slice(1),
};

/** Writes the minimal config at `dest` unless a file is there already (never overwritten, even with --force). */
async function writeDefaultConfig(dest: string): Promise<number> {
  if (existing(dest) !== 'none') {
    process.stdout.write(`kept ${dest} (the minimal config is not written over it)\n`);
    return 0;
  }
  try {
    await makeDirectories(dirname(dest));
    await writeFile(dest, DEFAULT_CONFIG_TEXT);
  } catch (err) {
    process.stderr.write(`sluice init: cannot write ${dest}: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`wrote ${dest} (the minimal config: replace the upstream URL with your app's)\n`);
  return 0;
}

/** This host's kernel settings now, so `init sysctl` lowers none of them. */
async function hostSysctl(): Promise<Record<string, string | null>> {
  const values = await Promise.all(
    SYSCTL_SETTINGS.map((s) =>
      readFile(`/${procSysPath(s.key)}`, 'utf8').then(
        (text) => text.trim().split(/\s+/).join(' '),
        () => null,
      ),
    ),
  );
  return Object.fromEntries(SYSCTL_SETTINGS.map((s, i) => [s.key, values[i] ?? null]));
}

/**
 * Writes every file under `out`, creating directories. Every destination is checked first: one
 * that exists (without `force`) or is a directory stops the whole run before anything is written.
 */
async function writeFiles(files: readonly InitFile[], out: string, force: boolean): Promise<number> {
  const plan = files.map((f) => ({ file: f, dest: join(out, f.path) }));
  const blocked: string[] = [];
  for (const { dest } of plan) {
    const kind = existing(dest);
    if (kind === 'directory') blocked.push(`${dest} is a directory`);
    else if (kind === 'file' && !force) blocked.push(`${dest} exists`);
  }
  if (blocked.length > 0) {
    for (const b of blocked) process.stderr.write(`sluice init: ${b}\n`);
    process.stderr.write(
      `sluice init: nothing written${blocked.every((b) => b.endsWith(' exists')) ? ' (--force overwrites)' : ''}\n`,
    );
    return 1;
  }
  for (const { file, dest } of plan) {
    try {
      await makeDirectories(dirname(dest));
      await writeFile(dest, file.content);
    } catch (err) {
      process.stderr.write(`sluice init: cannot write ${dest}: ${(err as Error).message}\n`);
      return 1;
    }
    process.stdout.write(`wrote ${dest}\n`);
  }
  return 0;
}
