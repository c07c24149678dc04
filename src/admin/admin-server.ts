/**
 * The admin listener (CONTRACT section 6): the dashboard at `/`, the status API, Prometheus
 * metrics, and pprof profiles. Without tokens it serves only these read-only endpoints and only on
 * a loopback address.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { ListenAddress } from '../config/types.js';
import { SluiceError } from '../errors/sluice-error.js';
import { dashboardPage } from './dashboard-page.js';
import { dashboardStats, type MetricsJson } from './dashboard-stats.js';

export type { MetricsJson } from './dashboard-stats.js';

/** What the admin API reads from the running sluice (the primary, or a lone instance). */
export interface AdminControl {
  status(): Promise<Record<string, unknown>>;
  upstreams(): Promise<Record<string, unknown>>;
  /** The Prometheus text of every process, summed. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** The same metrics as prom-client JSON (for the dashboard). */
  metricsJson(): Promise<MetricsJson>;
  /** pprof CPU profile of a worker (index; default the first) over `seconds`. */
  cpuProfile(seconds: number, worker?: number): Promise<Buffer>;
  /** pprof heap profile of a worker. */
  heapProfile(worker?: number): Promise<Buffer>;
  /** Active handles and requests in flight, per worker. */
  handles(): Promise<Record<string, unknown>>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const MAX_PROFILE_SECONDS = 60;

const require = createRequire(import.meta.url);
/** uPlot, served as it ships (no build step): 50 KB of chart library. */
const ASSETS: Record<string, { type: string; file: string }> = {
  '/assets/uplot.js': {
    type: 'text/javascript; charset=utf-8',
    file: require.resolve('uplot/dist/uPlot.iife.min.js'),
  },
  '/assets/uplot.css': { type: 'text/css; charset=utf-8', file: require.resolve('uplot/dist/uPlot.min.css') },
};

/** The admin HTTP listener. */
export class AdminServer {
  readonly #server: http.Server;
  readonly #address: ListenAddress;
  readonly #control: AdminControl;

  constructor(address: ListenAddress, control: AdminControl) {
    if (!LOOPBACK.has(address.host) && !address.host.startsWith('127.')) {
      throw new SluiceError(
        'SLUICE_E_RUNTIME_LISTEN',
        `the admin listener without tokens serves only loopback addresses, not ${address.key}`,
      );
    }
    this.#address = address;
    this.#control = control;
    this.#server = http.createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
      this.#route(req, res).catch((err: unknown) => {
        if (!res.headersSent)
          problem(res, 500, 'Internal Server Error', err instanceof Error ? err.message : String(err));
        else res.destroy();
      });
    });
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 120_000;
  }

  async #route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (req.method !== 'GET' && req.method !== 'HEAD') return problem(res, 405, 'Method Not Allowed');
    const control = this.#control;
    const worker = url.searchParams.has('worker') ? Number(url.searchParams.get('worker')) : undefined;
    if (worker !== undefined && (!Number.isInteger(worker) || worker < 0)) {
      return problem(
        res,
        400,
        'Bad Request',
        'worker must be a worker index (0, 1, ...) as listed by /api/status',
      );
    }
    switch (url.pathname) {
      case '/':
        return send(res, 200, 'text/html; charset=utf-8', dashboardPage());
      case '/api/status':
        return sendJson(res, await control.status());
      case '/api/upstreams':
        return sendJson(res, await control.upstreams());
      case '/api/stats': {
        const [metrics, status] = await Promise.all([control.metricsJson(), control.status()]);
        return sendJson(res, dashboardStats(metrics, status));
      }
      case '/metrics': {
        const m = await control.metrics();
        return send(res, 200, m.contentType, m.body);
      }
      case '/debug/pprof/profile': {
        const seconds = Number(url.searchParams.get('seconds') ?? '30');
        if (!Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_PROFILE_SECONDS) {
          return problem(res, 400, 'Bad Request', `seconds must be between 0 and ${MAX_PROFILE_SECONDS}`);
        }
        return sendProfile(res, await control.cpuProfile(seconds, worker), 'cpu');
      }
      case '/debug/pprof/heap':
        return sendProfile(res, await control.heapProfile(worker), 'heap');
      case '/debug/handles':
        return sendJson(res, await control.handles());
      default: {
        const asset = ASSETS[url.pathname];
        if (asset !== undefined)
          return send(res, 200, asset.type, readFileSync(asset.file), 'public, max-age=3600');
        return problem(res, 404, 'Not Found');
      }
    }
  }

  /** Binds the admin address. */
  async listen(): Promise<void> {
    const { host, port, key } = this.#address;
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new SluiceError(
            'SLUICE_E_RUNTIME_LISTEN',
            `cannot listen on ${key} (admin): ${err.code ?? err.message}`,
          ),
        ),
      );
      this.#server.listen({ host, port }, () => resolve());
    });
  }

  /** The bound port. */
  get port(): number {
    const a = this.#server.address();
    return typeof a === 'object' && a !== null ? a.port : this.#address.port;
  }

  /** Stops the listener. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

function send(
  res: http.ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  cache = 'no-store',
): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': cache,
  });
  res.end(body);
}

function sendJson(res: http.ServerResponse, value: unknown): void {
  send(res, 200, 'application/json', `${JSON.stringify(value, null, 2)}\n`);
}

function sendProfile(res: http.ServerResponse, profile: Buffer, kind: string): void {
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-disposition': `attachment; filename="sluice-${kind}.pb.gz"`,
    'content-length': profile.length,
    'cache-control': 'no-store',
  });
  res.end(profile);
}

/** An RFC 9457 problem answer. */
export function problem(res: http.ServerResponse, status: number, title: string, detail?: string): void {
  const doc = { type: 'about:blank', title, status, ...(detail === undefined ? {} : { detail }) };
  send(res, status, 'application/problem+json', `${JSON.stringify(doc)}\n`);
}
