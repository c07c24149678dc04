/**
 * `sluice import nginx FILE [-o OUT] [--force] [--prefix DIR]`: print (or write) the sluice.yaml
 * equivalent of an nginx config. The converter (src/ops/import-nginx/) is pure; this wrapper reads
 * the file, prints the warnings on stderr as `FILE:LINE: warning: message`, writes the YAML and
 * decides the exit code:
 *
 * - 0: converted (warnings do not change it);
 * - 1: OUT exists (without --force) or cannot be written; nothing is written;
 * - 2: FILE cannot be read, nginx would refuse it (`FILE:LINE:COL: error: message`), a location
 *   that refuses requests cannot be matched by sluice (the same form, one line each), or it holds
 *   no server to convert.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { importNginx } from '../../ops/import-nginx/import-nginx.js';
import { NginxSyntaxError } from '../../ops/import-nginx/nginx-syntax-error.js';
import { NothingToImportError } from '../../ops/import-nginx/nothing-to-import-error.js';
import { RefusedLocationError } from '../../ops/import-nginx/refused-location-error.js';
import { formatWarning } from '../../ops/import-nginx/warnings.js';
import { existing } from '../existing-path.js';

/** The command's options, as commander parses them. */
export interface ImportNginxCommandOptions {
  readonly output?: string;
  readonly force?: boolean;
  readonly prefix?: string;
}

/** Runs the command and returns the exit code. */
export async function runImportNginx(file: string, opts: ImportNginxCommandOptions): Promise<number> {
  const out = opts.output;
  if (out !== undefined) {
    const kind = existing(out);
    if (kind === 'directory') {
      process.stderr.write(`sluice import nginx: ${out} is a directory; give a file name to -o\n`);
      return 1;
    }
    if (kind === 'file' && opts.force !== true) {
      process.stderr.write(`sluice import nginx: ${out} exists; nothing written (--force overwrites)\n`);
      return 1;
    }
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    process.stderr.write(`sluice import nginx: cannot read ${file}: ${(err as Error).message}\n`);
    return 2;
  }

  let result: ReturnType<typeof importNginx>;
  try {
    result = importNginx({
      file,
      text,
      // No outputDir: certificate paths are written absolute, so the YAML names the same files
      // wherever it is moved and whatever directory sluice is started from.
      prefix: opts.prefix,
    });
  } catch (err) {
    if (
      err instanceof NginxSyntaxError ||
      err instanceof NothingToImportError ||
      err instanceof RefusedLocationError
    ) {
      process.stderr.write(`${err.format()}\n`);
      return 2;
    }
    throw err;
  }

  for (const w of result.warnings) process.stderr.write(`${formatWarning(w)}\n`);
  if (out === undefined) {
    process.stdout.write(result.yaml);
    return 0;
  }
  try {
    await writeFile(out, result.yaml);
  } catch (err) {
    process.stderr.write(`sluice import nginx: cannot write ${out}: ${(err as Error).message}\n`);
    return 1;
  }
  const n = result.warnings.length;
  process.stdout.write(`wrote ${out} (${n} warning${n === 1 ? '' : 's'}); next: sluice check -c ${out}\n`);
  return 0;
}
