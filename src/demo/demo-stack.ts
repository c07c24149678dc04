/**
 * `sluice start` without a config: two demo backends, a gateway balancing over them, and the
 * admin listener (CONTRACT section 9). Ports come from SLUICE_DEMO_PORT and
 * SLUICE_DEMO_ADMIN_PORT when set (0 picks free ones), else 8080 and 9090.
 */
import type { SluiceConfigInput } from '../config/schema.js';
import { type DemoBackend, startDemoBackend } from './demo-backend.js';

/** The demo's backends and the gateway config pointing at them. */
export interface DemoStack {
  readonly backends: readonly DemoBackend[];
  readonly config: SluiceConfigInput;
  close(): Promise<void>;
}

/** Starts the demo backends and returns the gateway config to serve in front of them. */
export async function startDemoStack(env: NodeJS.ProcessEnv = process.env): Promise<DemoStack> {
  const backends = [await startDemoBackend('demo-a'), await startDemoBackend('demo-b')];
  const port = env.SLUICE_DEMO_PORT ?? '8080';
  const adminPort = env.SLUICE_DEMO_ADMIN_PORT ?? '9090';
  const config: SluiceConfigInput = {
    version: 1,
    workers: 1,
    log: {
      level: 'info',
      access: 'stdout',
      format: env.SLUICE_DEMO_LOG_FORMAT === 'json' ? 'json' : 'pretty',
    },
    admin: { listen: `127.0.0.1:${adminPort}` },
    servers: [
      {
        name: 'demo',
        listen: `127.0.0.1:${port}`,
        limits: { max_connections: 20_000 },
        routes: [
          { name: 'health', match: { path: '/healthz' }, respond: { status: 200, body: 'ok\n' } },
          { name: 'app', proxy: { upstream: 'demo', set_headers: { 'X-Request-Id': '$request_id' } } },
        ],
      },
    ],
    upstreams: {
      demo: { targets: backends.map((b) => ({ url: `http://127.0.0.1:${b.port}` })) },
    },
  };
  return {
    backends,
    config,
    close: async () => {
      await Promise.all(backends.map((b) => b.close()));
    },
  };
}
