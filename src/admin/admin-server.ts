/**
 * The admin listener: read-only status for now (`GET /api/status`, `GET /api/upstreams`) and a
 * small status page at `GET /`. Without tokens it is read-only and refuses non-loopback addresses
 * (CONTRACT section 6).
 */
import http from 'node:http';
import type { ListenAddress } from '../config/types.js';
import { SluiceError } from '../errors/sluice-error.js';
import { statusPage } from './status-page.js';

/** What the admin API reads from the running instance. */
export interface AdminControl {
  status(): Promise<Record<string, unknown>>;
  upstreams(): Promise<Record<string, unknown>>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** The admin HTTP listener. */
export class AdminServer {
  readonly #server: http.Server;
  readonly #address: ListenAddress;

  constructor(address: ListenAddress, control: AdminControl) {
    if (!LOOPBACK.has(address.host) && !address.host.startsWith('127.')) {
      throw new SluiceError(
        'SLUICE_E_RUNTIME_LISTEN',
        `the admin listener without tokens serves only loopback addresses, not ${address.key}`,
      );
    }
    this.#address = address;
    this.#server = http.createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') return problem(res, 405, 'Method Not Allowed');
      switch (path) {
        case '/':
          return send(res, 200, 'text/html; charset=utf-8', statusPage());
        case '/api/status':
          return answer(res, control.status());
        case '/api/upstreams':
          return answer(res, control.upstreams());
        default:
          return problem(res, 404, 'Not Found');
      }
    });
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
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

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

function answer(res: http.ServerResponse, value: Promise<unknown>): void {
  value.then(
    (v) => sendJson(res, v),
    () => problem(res, 500, 'Internal Server Error'),
  );
}

function sendJson(res: http.ServerResponse, value: unknown): void {
  send(res, 200, 'application/json', `${JSON.stringify(value, null, 2)}\n`);
}

function problem(res: http.ServerResponse, status: number, title: string): void {
  send(
    res,
    status,
    'application/problem+json',
    `${JSON.stringify({ type: 'about:blank', title, status })}\n`,
  );
}
