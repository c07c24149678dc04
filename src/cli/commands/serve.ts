/**
 * `sluice serve APP [--port P] [--host H] [--workers N] [--access-log DEST] [--handler-timeout D]`:
 * run one handler module on every core, no config file needed. The port defaults to $PORT, else
 * 3000; the host to 0.0.0.0; access lines to stdout (`off`, or a file path relative to the current
 * directory, as `log.access`); the answer deadline to 60s (a route's `handler_timeout`).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { resolveConfigObject } from '../../config/load.js';
import { formatProblem } from '../../config/problem.js';
import type { SluiceConfigInput } from '../../config/schema.js';
import { runPrimary } from './start.js';

/** Serves `app`; returns the exit code. */
export async function runServe(
  app: string,
  opts: {
    port?: number;
    host?: string;
    workers?: number;
    user?: string;
    group?: string;
    allowRoot?: boolean;
    accessLog?: string;
    handlerTimeout?: string;
  },
): Promise<number> {
  const env = process.env.PORT;
  // An empty $PORT is unset (3000); anything else must be a port: `Number('')` listened on a
  // random port, and `abc` was reported as servers[0].listen "NaN".
  if (
    opts.port === undefined &&
    env !== undefined &&
    env !== '' &&
    (!/^\d{1,5}$/.test(env.trim()) || Number(env) > 65535)
  ) {
    process.stderr.write(
      `sluice serve: $PORT is ${JSON.stringify(env)}, not a port number (give --port or fix $PORT)\n`,
    );
    return 2;
  }
  const port = opts.port ?? (env === undefined || env === '' ? 3000 : Number(env));
  const host = opts.host ?? '0.0.0.0';
  const input: SluiceConfigInput = {
    workers: opts.workers ?? 'auto',
    ...(opts.user === undefined ? {} : { user: opts.user }),
    ...(opts.group === undefined ? {} : { group: opts.group }),
    ...(opts.allowRoot ? { allow_root_handlers: true } : {}),
    log: { access: opts.accessLog ?? 'stdout' },
    servers: [
      {
        name: 'app',
        listen: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
        routes: [
          {
            name: 'app',
            handler: app,
            ...(opts.handlerTimeout === undefined ? {} : { handler_timeout: opts.handlerTimeout }),
          },
        ],
      },
    ],
  };
  // Said in the command's terms: the config problem would name servers[0].routes[0].handler.
  if (!existsSync(resolve(app))) {
    process.stderr.write(`sluice serve: ${app}: no such file\n`);
    return 2;
  }
  const result = resolveConfigObject(input, null, { hostUsers: true });
  if (!result.ok) {
    for (const p of result.problems) process.stderr.write(`${formatProblem(p)}\n`);
    return 2;
  }
  // SIGHUP (and `systemctl reload`) deploys a new version of the app: the same settings, new
  // workers, which load the module afresh (a config with handler routes always rolls the workers).
  const reloadSource = async () => resolveConfigObject(input, null, { hostUsers: true });
  return runPrimary(
    result.config,
    null,
    reloadSource,
    null,
    async (primary) => {
      const { servers } = await primary.addresses();
      // An IPv6 literal is bracketed in a URL (RFC 3986 3.2.2), as in the listen address above.
      const origin = host.includes(':') ? `[${host}]` : host;
      primary.logger.info({ app, url: `http://${origin}:${servers[0]?.port ?? port}` }, 'serving');
    },
    {
      SLUICE_E_HANDLER_ROOT:
        'pass --user (and --group) to run the workers as an unprivileged account, or --allow-root if you really mean it',
    },
  );
}
