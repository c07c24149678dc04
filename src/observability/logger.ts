/**
 * Logs as JSON lines (pino): `time` in UTC ISO 8601, `level` as a word, `msg`. Writes go through
 * pino's asynchronous destination (SonicBoom) with a 4 KiB batch, so a request never waits on
 * log I/O; a 250 ms timer flushes partial batches. An unwritable destination costs one error line
 * on stderr, never the process. `reopen()` serves SIGUSR1 after logrotate.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import type { ResolvedLog } from '../config/types.js';
import type { LineSink } from './access-log.js';

/** The application logger, where access lines go (none when `access: off`), and their lifecycle. */
export interface Loggers {
  readonly app: Logger;
  /** JSON format: the destination access lines are written to directly. */
  readonly accessSink: LineSink | null;
  /** Pretty format: access lines go through this logger instead. */
  readonly access: Logger | null;
  /** Reopens file destinations (SIGUSR1, logrotate). */
  reopen(): void;
  /** Writes out everything buffered, synchronously (before exit). */
  flush(): void;
  /** Stops the flush timer and flushes. */
  close(): void;
}

type SonicBoom = DestinationStream & {
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
  reopen(file?: string): void;
  on(event: 'error', cb: (err: Error) => void): void;
  end(): void;
};

const BATCH_BYTES = 8 * 1024;
const FLUSH_EVERY_MS = 250;

/** Options shared by every sluice logger. */
function loggerOptions(level: string): pino.LoggerOptions {
  return {
    level,
    messageKey: 'msg',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Never log credentials, wherever they appear in a logged object.
    redact: {
      paths: [
        'authorization',
        'cookie',
        'set-cookie',
        'token',
        '*.authorization',
        '*.cookie',
        '*.token',
        'headers.authorization',
        'headers.cookie',
        'headers["set-cookie"]',
      ],
      censor: '[redacted]',
    },
  };
}

/** Creates the loggers for a `log:` config. */
export function createLoggers(log: ResolvedLog): Loggers {
  const destinations: SonicBoom[] = [];
  const files: SonicBoom[] = [];
  let reported = false;
  const open = (dest: number | string): SonicBoom => {
    const d = pino.destination({
      dest,
      sync: false,
      minLength: BATCH_BYTES,
      mkdir: typeof dest === 'string',
    }) as SonicBoom;
    d.on('error', (err) => {
      // Serving goes on without logs; say so once rather than once per request.
      if (reported) return;
      reported = true;
      process.stderr.write(
        `sluice: cannot write logs to ${String(dest)}: ${err.message}; serving continues\n`,
      );
    });
    destinations.push(d);
    if (typeof dest === 'string') files.push(d);
    return d;
  };

  let app: Logger;
  let access: Logger | null = null;
  let accessSink: LineSink | null = null;
  if (log.format === 'pretty') {
    const pretty = pino.transport({
      target: 'pino-pretty',
      options: {
        destination: 1,
        translateTime: 'UTC:yyyy-mm-dd HH:MM:ss.l',
        ignore: 'pid',
        singleLine: true,
      },
    }) as DestinationStream;
    app = pino(loggerOptions(log.level), pretty);
    if (log.access === 'stdout') access = app.child({}, { level: 'info' });
    else if (log.access !== 'off') access = pino(loggerOptions('info'), open(log.access));
  } else {
    const stdout = open(1);
    app = pino(loggerOptions(log.level), stdout);
    if (log.access === 'stdout') accessSink = stdout;
    else if (log.access !== 'off') accessSink = open(log.access);
  }

  const timer = setInterval(() => {
    for (const d of destinations) d.flush(() => undefined);
  }, FLUSH_EVERY_MS);
  timer.unref();

  const flush = () => {
    for (const d of destinations) {
      try {
        d.flushSync();
      } catch {
        // Flushing an unwritable destination at exit is best effort.
      }
    }
  };
  return {
    app,
    access,
    accessSink,
    reopen: () => {
      for (const d of files) d.reopen();
    },
    flush,
    close: () => {
      clearInterval(timer);
      flush();
    },
  };
}
