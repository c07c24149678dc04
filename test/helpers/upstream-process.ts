/**
 * An upstream in a process of its own, so a test can SIGKILL it mid-load (the kernel closes its
 * sockets as it would for a crashed server) and start it again on the same port. It answers
 * every request with 200 `ok\n` and names itself in `x-upstream`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { waitForPort } from './cli.js';

const SERVER = `
const http = require('node:http');
const [port, name] = process.argv.slice(1);
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3', 'x-upstream': name });
    res.end('ok\\n');
  });
});
server.listen(Number(port), '127.0.0.1');
`;

/** A killable upstream process on a fixed port. */
export interface UpstreamProcess {
  readonly port: number;
  readonly url: string;
  /** The pid of the running process, or null while it is down. */
  pid(): number | null;
  /** SIGKILLs the process and waits for it to be gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
}

/** Starts an upstream process on `port`, named `name`. */
export async function startUpstreamProcess(port: number, name: string): Promise<UpstreamProcess> {
  let child: ChildProcess | null = null;
  const start = async () => {
    const c = spawn(process.execPath, ['-e', SERVER, String(port), name], { stdio: 'ignore' });
    child = c;
    process.once('exit', () => c.kill('SIGKILL'));
    await waitForPort(port, { timeoutMs: 10_000 });
  };
  await start();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    pid: () => child?.pid ?? null,
    async kill() {
      const c = child;
      if (c === null || c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
      child = null;
    },
    restart: start,
  };
}
