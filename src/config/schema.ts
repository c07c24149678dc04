/**
 * The schema of `sluice.yaml`: the single source of truth for the config's TypeScript input type
 * (`SluiceConfigInput`, used by `defineConfig`) and for the published `schema/sluice.schema.json`.
 *
 * It checks shapes only. Meaning (durations to milliseconds, listen addresses, cross references)
 * is checked and resolved by `normalise.ts`, which reports problems at the same YAML positions.
 */
import { z } from 'zod';
import { DURATION_PATTERN, durationAtMost, formatDuration, MAX_DURATION_MS } from '../core/duration.js';
import { formatSize, SIZE_PATTERN, sizeAtMost } from '../core/size.js';
import { MAX_WORKERS } from './max-workers.js';
import { unwrapSchema } from './schema-walk.js';

/** A duration string with a unit, at most `maxMs` long (a longer one is a `custom` issue). */
function boundedDuration(maxMs: number, description: string) {
  return z
    .string()
    .regex(new RegExp(DURATION_PATTERN))
    .refine((text) => durationAtMost(text, maxMs), { error: `must be at most ${formatDuration(maxMs)}` })
    .meta({ description });
}

/** A duration string such as `500ms`, `10s`, `5m`; at most 24d, since it arms a timer. */
export const durationSchema = boundedDuration(
  MAX_DURATION_MS,
  'A duration with a unit: ms, s, m, h or d (e.g. 500ms, 10s, 5m), at most 24d.',
);

/**
 * The longest ban and ban window: 365 days. Bans are compared with the clock (and kept in Redis
 * with that expiry), not timed, so they may outlast the 24 days of a timer.
 */
export const MAX_BAN_DURATION_MS = 365 * 86_400_000;

/** A ban's window or length: a duration of at most 365d. */
export const banDurationSchema = boundedDuration(
  MAX_BAN_DURATION_MS,
  'A duration with a unit: ms, s, m, h or d (e.g. 10m, 1h, 7d), at most 365d.',
);

/**
 * The largest size any key takes: 1024gb. Past 2^53 bytes a size is no longer an exact number,
 * and Node refuses such a value where it becomes an option (`99999999gb` as `max_header` killed
 * every worker as it started, after `sluice check` had passed it).
 */
export const MAX_SIZE_BYTES = 1024 ** 4;

/**
 * The largest `max_header`: 1mb. Node's HTTP/2 settings hold the header list bound (4 × this) in
 * 32 bits, and a head that large is already 32 times nginx's default buffers (4 × 8k).
 */
export const MAX_HEADER_BYTES = 1024 ** 2;

function boundedSize(maxBytes: number, description: string) {
  return z
    .string()
    .regex(new RegExp(SIZE_PATTERN))
    .refine((text) => sizeAtMost(text, maxBytes), { error: `must be at most ${formatSize(maxBytes)}` })
    .meta({ description });
}

/** A size string such as `16kb`, `10mb` (1 kb = 1024 bytes), at most 1024gb. */
export const sizeSchema = boundedSize(
  MAX_SIZE_BYTES,
  'A size with a unit: b, kb, mb or gb (1kb = 1024 bytes), at most 1024gb.',
);

/** `max_header`: a size of at most 1mb. */
export const headerSizeSchema = boundedSize(
  MAX_HEADER_BYTES,
  'A size with a unit: b, kb, mb or gb (1kb = 1024 bytes), at most 1mb.',
);

/** Whether `unit` is one of the size schemas (their problems read alike). */
export function isSizeSchema(unit: unknown): unit is z.ZodString {
  return unit === sizeSchema || unit === headerSizeSchema;
}

const stringOrList = (what: string) =>
  z.union([z.string(), z.array(z.string())], { error: `expected ${what}: a string or a list of strings` });

/** A listen address: a port, `:PORT`, `HOST:PORT` or `[IPV6]:PORT`; one or a list. */
const listenEntry = z.union([z.string(), z.number().int()], {
  error: 'expected a listen address such as ":8080" or "127.0.0.1:8080"',
});
const listenSchema = z
  .union([listenEntry, z.array(listenEntry).min(1)], {
    error: 'expected a listen address or a list of them, e.g. ":8080" or ["127.0.0.1:8080", "[::1]:8080"]',
  })
  .meta({ description: 'Addresses to listen on: ":8080", "127.0.0.1:8080", "[::]:8443", or a list.' });

/** The schemas of strings read as `$variable` templates (see `templateString`). */
const TEMPLATE_STRINGS = new WeakSet<z.ZodType>();

/**
 * A string read as a `$variable` template. `${NAME}` interpolation asks for it (`isTemplateSchema`):
 * an environment value put into one is taken verbatim, its `$` written `$$` so the template does
 * not read a secret's `$w0rd` as a variable.
 */
function templateString(description?: string): z.ZodString {
  const schema = description === undefined ? z.string() : z.string().meta({ description });
  TEMPLATE_STRINGS.add(schema);
  return schema;
}

/** Whether `schema` (found with `schemaAt`) checks a `$variable` template. */
export function isTemplateSchema(schema: z.ZodType | undefined): boolean {
  return schema !== undefined && TEMPLATE_STRINGS.has(unwrapSchema(schema));
}

const templateHeaderMap = z
  .record(z.string(), templateString())
  .meta({ description: 'Header name to value; values may use $variables.' });

const headerMap = z.record(z.string(), z.string()).meta({ description: 'Header name to value.' });

const limitsSchema = z
  .strictObject({
    max_body: sizeSchema
      .optional()
      .meta({ description: 'Largest request body (413 beyond it). Default 1mb.' }),
    max_header: headerSizeSchema.optional().meta({
      description: 'Largest request head, request line included (431 beyond it). Default 16kb.',
    }),
    max_uri: sizeSchema.optional().meta({
      description: 'Longest request target, path and query (414 beyond it). Default 8kb.',
    }),
    header_timeout: durationSchema
      .optional()
      .meta({ description: 'Time allowed to send the request head (408 and close after). Default 10s.' }),
    keepalive_timeout: durationSchema
      .optional()
      .meta({ description: 'How long an idle client keep-alive connection stays open. Default 75s.' }),
    request_timeout: durationSchema.optional().meta({
      description: 'Time allowed to send the whole request, head and body; 0s disables. Default 60s.',
    }),
    send_timeout: durationSchema.optional().meta({
      description:
        'A client that takes no byte of a response for this long is closed (nginx send_timeout); 0s disables. Default 60s.',
    }),
    backlog: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({ description: 'Listen queue length (capped by net.core.somaxconn). Default 4096.' }),
    max_requests_per_connection: z.number().int().min(0).optional().meta({
      description:
        'Requests on one keep-alive connection before it is closed, so clients rebalance across workers; 0 = no limit. Default 1000.',
    }),
    max_connections: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({ description: 'Open client connections per listener and worker. Default 10000.' }),
  })
  .meta({ description: 'Hard limits against slow or hostile clients.' });

const matchSchema = z
  .strictObject({
    path: z
      .string()
      .optional()
      .meta({ description: 'Exact path (nginx "location ="). Wins over everything else.' }),
    path_prefix: z
      .string()
      .optional()
      .meta({ description: 'Path prefix; the longest matching prefix wins.' }),
    path_regex: z.string().optional().meta({
      description: 'Regular expression on the path, tried in the order written, after exact paths.',
    }),
    methods: z.array(z.string()).min(1).optional().meta({ description: 'Only these methods match.' }),
    headers: z.record(z.string(), z.string()).optional().meta({
      description: 'Request headers that must be present with these values ("~regex" for a pattern).',
    }),
  })
  .meta({ description: 'What a route matches. No match keys: every path.' });

const proxySchema = z
  .strictObject({
    upstream: z.string().optional().meta({ description: 'Name of an upstream under upstreams:.' }),
    url: z
      .string()
      .optional()
      .meta({ description: 'A single target, e.g. http://127.0.0.1:9001 (with a base path).' }),
    strip_prefix: z
      .string()
      .optional()
      .meta({ description: 'Removed from the start of the path before forwarding.' }),
    preserve_host: z
      .boolean()
      .optional()
      .meta({ description: "Send the client's Host upstream. Default true." }),
    set_headers: templateHeaderMap
      .optional()
      .meta({ description: 'Request headers set (replaced) before forwarding.' }),
    remove_headers: z
      .array(z.string())
      .optional()
      .meta({ description: 'Request headers removed before forwarding.' }),
    response_headers: z
      .strictObject({
        set: templateHeaderMap.optional(),
        remove: z.array(z.string()).optional(),
        add: templateHeaderMap.optional().meta({
          description:
            "Response headers added beside the target's own (nginx add_header), on 200, 201, 204, 206, 301, 302, 303, 304, 307 and 308 answers only.",
        }),
        add_always: templateHeaderMap.optional().meta({
          description:
            "Response headers added beside the target's own on every answer of the target (nginx add_header ... always).",
        }),
      })
      .optional()
      .meta({ description: 'Response headers set, added or removed before answering the client.' }),
    timeouts: z
      .strictObject({
        connect: durationSchema.optional().meta({ description: 'Connecting to a target. Default 5s.' }),
        read: durationSchema.optional().meta({
          description: 'Between two reads from the target, the response head included. Default 60s.',
        }),
        send: durationSchema
          .optional()
          .meta({ description: 'Between two writes of the request body to the target. Default 60s.' }),
      })
      .optional(),
  })
  .meta({ description: 'Forward matching requests to an upstream.' });

const respondSchema = z
  .strictObject({
    status: z
      .number()
      .int()
      // A 1xx is no final answer: a client waits on for one that never comes.
      .min(200)
      .max(599)
      .optional()
      .meta({ description: 'Default 200; 200–599.' }),
    body: z.string().optional(),
    headers: headerMap.optional(),
  })
  .meta({ description: 'Answer directly with a fixed response.' });

const redirectSchema = z
  .strictObject({
    to: templateString('Target URL; may use $variables such as $request_uri.'),
    status: z
      .union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)], {
        error: 'expected a redirect status: 301, 302, 303, 307 or 308',
      })
      .optional()
      .meta({ description: 'Default 302.' }),
  })
  .meta({ description: 'Answer with a redirect.' });

/** CIDR rules: `{ allow: [...], deny: [...] }`, or an ordered list of `{ allow: X }` / `{ deny: X }` (nginx order). */
const accessSchema = z
  .union(
    [
      z.strictObject({
        allow: z.array(z.string()).optional(),
        deny: z.array(z.string()).optional(),
      }),
      z.array(
        z.union([z.strictObject({ allow: z.string() }), z.strictObject({ deny: z.string() })], {
          error: 'expected { allow: CIDR } or { deny: CIDR }',
        }),
      ),
    ],
    {
      error: 'expected { allow: [...], deny: [...] } or an ordered list of { allow: CIDR } / { deny: CIDR }',
    },
  )
  .meta({ description: 'Client addresses allowed or denied (403), IPv4 and IPv6 CIDR blocks or "all".' });

const rateLimitSchema = z
  .strictObject({
    rate: z
      .string()
      .regex(/^\d+(\.\d+)?\/(s|m|h)$/, { error: 'expected a rate such as 100/s, 600/m or 1000/h' })
      .meta({ description: 'Sustained requests per key: 100/s, 600/m, 1000/h.' }),
    burst: z
      .number()
      .int()
      .min(0)
      .optional()
      .meta({ description: 'Requests allowed above the rate at once. Default 0.' }),
    key: templateString().optional().meta({
      description:
        'What is limited: $remote_addr (default), $remote_net (an IPv6 client counts as its /64), $http_<name>, $client_spiffe_id.',
    }),
    zone: z.string().optional().meta({
      description:
        "Buckets shared with every rate_limit of this zone, on any server or route (nginx's limit_req_zone); they take the same rate and key.",
    }),
  })
  .meta({ description: 'Token bucket per key; 429 with Retry-After and RateLimit headers beyond it.' });

const banSchema = z
  .strictObject({
    statuses: z
      .array(z.number().int().min(100).max(599))
      .min(1)
      .meta({ description: 'Answer statuses that count.' }),
    max: z.number().int().min(1).meta({ description: 'Counted answers within window that ban the client.' }),
    window: banDurationSchema.optional().meta({ description: 'The counting window. Default 1m.' }),
    duration: banDurationSchema
      .optional()
      .meta({ description: 'How long a ban lasts (403 meanwhile). Default 10m.' }),
    per: z.enum(['address', 'network']).optional().meta({
      description:
        'What is counted and banned: the client address (default), or its network ($remote_net: an IPv6 address stands for its /64).',
    }),
  })
  .meta({ description: 'fail2ban for HTTP: clients that collect too many of these statuses are banned.' });

const routeSchema = z.strictObject({
  name: z
    .string()
    .optional()
    .meta({ description: 'Used in metrics and logs. Default: the match, e.g. "/api/".' }),
  match: matchSchema.optional(),
  proxy: proxySchema.optional(),
  respond: respondSchema.optional(),
  redirect: redirectSchema.optional(),
  access: accessSchema.optional(),
  rate_limit: rateLimitSchema.optional(),
  ban: banSchema.optional(),
  handler: z.string().optional().meta({
    description: 'A module (.ts or .js, relative to the config file) whose default export serves the route.',
  }),
  handler_timeout: durationSchema.optional().meta({
    description:
      "With handler: how long the handler may take to start its answer (send its head); then 504, as nginx's proxy_read_timeout. Default 60s; 0s disables it.",
  }),
  max_body: sizeSchema.optional().meta({
    description:
      "Largest request body on this route, in place of the server's limits.max_body (nginx: client_max_body_size in a location).",
  }),
});

const serverSchema = z.strictObject({
  name: z
    .string()
    .optional()
    .meta({ description: 'Used in metrics and logs. Default: the first server_name, else web<N>.' }),
  listen: listenSchema,
  server_name: stringOrList('host names')
    .optional()
    .meta({ description: 'Exact names, "*.example.com" / "example.*" wildcards, or "~regex"; nginx order.' }),
  default: z
    .boolean()
    .optional()
    .meta({ description: 'The default server of its listen addresses (else the first).' }),
  trusted_proxies: z
    .array(z.string())
    .optional()
    .meta({ description: 'Addresses or CIDR blocks whose X-Forwarded-For is believed.' }),
  limits: limitsSchema.optional(),
  merge_slashes: z.boolean().optional().meta({
    description:
      "Merge runs of '/' in the path before matching routes and forwarding (nginx's merge_slashes). Default true.",
  }),
  http2: z
    .boolean()
    .optional()
    .meta({ description: 'Serve HTTP/2 (with HTTP/1.1 fallback by ALPN) on TLS listeners.' }),
  tls: z
    .strictObject({
      cert: z.string().meta({ description: 'Certificate chain (PEM), re-read when it changes on disk.' }),
      key: z.string().meta({ description: 'Private key (PEM).' }),
      min_version: z.enum(['TLSv1.2', 'TLSv1.3']).optional().meta({ description: 'Default TLSv1.2.' }),
      client_ca: z
        .string()
        .optional()
        .meta({ description: 'CA (PEM) that client certificates must chain to.' }),
      require_client_cert: z
        .boolean()
        .optional()
        .meta({ description: 'Refuse clients without a valid certificate. Default false.' }),
    })
    .optional()
    .meta({
      description:
        'Terminate TLS on this server; SNI picks the certificate among servers sharing an address.',
    }),
  access: accessSchema.optional(),
  rate_limit: rateLimitSchema.optional(),
  ban: banSchema.optional(),
  routes: z.array(routeSchema).min(1),
});

const targetSchema = z.strictObject({
  url: z.string().meta({ description: 'http://HOST:PORT or https://HOST:PORT.' }),
  weight: z.number().int().min(1).max(1000).optional().meta({ description: 'Share of requests. Default 1.' }),
  backup: z.boolean().optional().meta({
    description: 'Used only when no primary target can take the request (round_robin, least_conn).',
  }),
  down: z.boolean().optional().meta({ description: 'Never used; with ip_hash and hash it keeps its slot.' }),
  max_conns: z
    .number()
    .int()
    .min(0)
    .optional()
    .meta({ description: 'Requests in flight to this target per worker; 0 = no limit. Default 0.' }),
  resolve: z
    .boolean()
    .optional()
    .meta({ description: "Every A/AAAA record of the URL's host is a target, re-resolved on its TTL." }),
});

/** Conditions under which a request is passed to the next target (nginx proxy_next_upstream). */
export const RETRY_CONDITIONS = [
  'error',
  'timeout',
  'invalid_header',
  'http_500',
  'http_502',
  'http_503',
  'http_504',
  'http_5xx',
  'http_429',
  'http_403',
  'http_404',
  'off',
] as const;

const healthCheckSchema = z
  .strictObject({
    path: z.string().optional().meta({ description: 'Probed with GET. Default /.' }),
    interval: durationSchema.optional().meta({ description: 'Between probes of one target. Default 5s.' }),
    timeout: durationSchema.optional().meta({ description: 'For one probe, head and body. Default 2s.' }),
    rise: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({ description: 'Passes in a row that mark a target up. Default 2.' }),
    fall: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({ description: 'Failures in a row that mark a target down. Default 3.' }),
    expect_status: z
      .union([z.string(), z.number().int()], {
        error: 'expected a status or ranges, e.g. "200-399" or "200,204"',
      })
      .optional()
      .meta({ description: 'Statuses that pass: "200-399", "200", "200,204,300-399". Default "200-399".' }),
    host: z
      .string()
      .optional()
      .meta({ description: "Host header of probes. Default: the target's host:port." }),
  })
  .meta({ description: 'Active health checks, run once per node and shared with every worker.' });

const retrySchema = z
  .strictObject({
    on: z.array(z.enum(RETRY_CONDITIONS)).optional().meta({
      description: 'When to try the next target (nginx proxy_next_upstream). Default [error, timeout].',
    }),
    tries: z
      .number()
      .int()
      .min(0)
      .optional()
      .meta({ description: 'Attempts per request, the first included; 0 = one per target. Default 0.' }),
    timeout: durationSchema
      .optional()
      .meta({ description: 'No new attempt after this long since the first; 0s = no limit. Default 0s.' }),
    non_idempotent: z
      .boolean()
      .optional()
      .meta({ description: 'Also retry POST, LOCK and PATCH once sent. Default false.' }),
  })
  .meta({ description: 'Retries on the next target, with nginx proxy_next_upstream rules.' });

const upstreamSchema = z.strictObject({
  balance: z
    .enum(['round_robin', 'least_conn', 'ip_hash', 'hash', 'random'])
    .optional()
    .meta({ description: 'How targets are picked. Default round_robin (smooth weighted, as nginx).' }),
  hash_key: templateString()
    .optional()
    .meta({ description: 'With balance: hash, the key to hash, e.g. $http_x_user_id or $request_uri.' }),
  keepalive: z.number().int().min(0).optional().meta({
    description: 'Idle connections kept per target and worker; 0 = a connection per request. Default 32.',
  }),
  keepalive_timeout: durationSchema.optional().meta({
    description: "Idle connection lifetime; keep it below the target's own (Node: 5s). Default 4s.",
  }),
  max_fails: z
    .number()
    .int()
    .min(0)
    .optional()
    .meta({ description: 'Failures within fail_timeout that take a target out; 0 = never. Default 1.' }),
  fail_timeout: durationSchema
    .optional()
    .meta({ description: 'Window for counting failures, and how long a failed target rests. Default 10s.' }),
  targets: z.array(targetSchema).min(1),
  health_check: healthCheckSchema.optional(),
  retry: retrySchema.optional(),
  tls: z
    .strictObject({
      ca: z
        .string()
        .optional()
        .meta({ description: "CA (PEM) the targets' certificates must chain to. Default: the system CAs." }),
      cert: z.string().optional().meta({ description: 'Client certificate (PEM) for mTLS.' }),
      key: z.string().optional().meta({ description: 'Client key (PEM) for mTLS.' }),
      server_name: z
        .string()
        .optional()
        .meta({ description: 'SNI and the name the certificate must carry. Default: the target host.' }),
      spiffe_id: z.string().optional().meta({
        description:
          "The SPIFFE id (URI SAN) the target's certificate must carry, e.g. spiffe://example.org/backend.",
      }),
    })
    .optional()
    .meta({ description: 'TLS to https:// targets: CA, client certificate, SNI, SPIFFE id pinning.' }),
  dns: z
    .strictObject({
      min_ttl: durationSchema.optional().meta({ description: 'Re-resolve no sooner than this. Default 1s.' }),
      max_ttl: durationSchema.optional().meta({ description: 'Re-resolve at least this often. Default 5m.' }),
    })
    .optional()
    .meta({ description: 'Bounds on the TTL of targets with resolve: true.' }),
});

const logSchema = z.strictObject({
  level: z
    .enum(['trace', 'debug', 'info', 'warn', 'error'])
    .optional()
    .meta({ description: 'Default info.' }),
  access: z.string().optional().meta({ description: 'stdout, off, or a file path. Default stdout.' }),
  format: z.enum(['json', 'pretty']).optional().meta({ description: 'Default json.' }),
});

const tracingSchema = z.strictObject({
  otlp_endpoint: z.string().optional().meta({
    description:
      'OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces. Without it no spans are exported (traceparent is still propagated).',
  }),
  sample_ratio: z
    .number()
    .min(0)
    .max(1)
    .optional()
    .meta({ description: "Share of new traces recorded (0–1); a parent's decision is followed. Default 1." }),
  service_name: z.string().optional().meta({ description: 'service.name of the spans. Default sluice.' }),
});

const tokenSchema = z
  .strictObject({
    name: z.string().meta({ description: 'Shown in audit logs.' }),
    role: z.enum(['viewer', 'developer', 'operator']),
    token_env: z.string().optional().meta({ description: 'Environment variable holding the token.' }),
    token_file: z.string().optional().meta({ description: 'File holding the token.' }),
    token_sha256: z.string().optional().meta({ description: 'Hex SHA-256 of the token.' }),
  })
  .meta({ description: 'A bearer token and its role; exactly one of token_env, token_file, token_sha256.' });

const adminSchema = z.strictObject({
  listen: z
    .string()
    .optional()
    .meta({ description: 'Admin API and dashboard address. Default 127.0.0.1:9090.' }),
  metrics_auth: z.boolean().optional().meta({ description: '/metrics needs a token too. Default false.' }),
  tokens: z
    .array(tokenSchema)
    .optional()
    .meta({ description: 'Bearer tokens; without any, read-only and loopback only.' }),
});

const egressSchema = z
  .strictObject({
    listen: z.string().meta({ description: 'Forward-proxy address, e.g. 127.0.0.1:3128.' }),
    policies: z
      .array(
        z.strictObject({
          name: z.string(),
          sources: z
            .array(z.string())
            .min(1)
            .meta({ description: 'Client addresses or CIDR blocks the policy is for.' }),
          hosts: z
            .array(z.string())
            .min(1)
            .meta({ description: 'Hosts they may reach: exact, *.wildcard, optionally with :port.' }),
        }),
      )
      .min(1),
  })
  .meta({
    description:
      'Forward proxy (absolute-form HTTP and CONNECT) letting each source reach only its listed hosts.',
  });

const stateSchema = z.strictObject({
  redis: z
    .string()
    .optional()
    .meta({ description: 'redis://HOST:PORT/DB: rate limits and bans shared by every sluice node.' }),
});

/** The whole `sluice.yaml`. */
export const sluiceConfigSchema = z
  .strictObject({
    $schema: z.string().optional().meta({ description: 'Editor hint; ignored.' }),
    version: z.literal(1, { error: 'expected version: 1' }).optional(),
    workers: z
      .union([z.literal('auto'), z.number().int().min(1).max(MAX_WORKERS)], {
        error: `expected "auto" or a number of worker processes, 1 to ${MAX_WORKERS}`,
      })
      .optional()
      .meta({ description: 'Worker processes; auto = one per CPU core.' }),
    user: z.string().optional().meta({ description: 'Drop to this user in the workers after binding.' }),
    group: z.string().optional().meta({ description: "Drop to this group (default: the user's group)." }),
    pid_file: z
      .string()
      .optional()
      .meta({ description: 'Write the primary process id here (for sluice reload).' }),
    allow_root_handlers: z
      .boolean()
      .optional()
      .meta({ description: 'Let handler routes run as root (refused by default). Default false.' }),
    shutdown_timeout: durationSchema
      .optional()
      .meta({ description: 'Graceful drain deadline. Default 30s.' }),
    log: logSchema.optional(),
    tracing: tracingSchema.optional(),
    admin: adminSchema.optional(),
    egress: egressSchema.optional(),
    state: stateSchema.optional(),
    servers: z.array(serverSchema).min(1),
    upstreams: z.record(z.string(), upstreamSchema).optional(),
  })
  .meta({ title: 'sluice.yaml', description: 'Configuration of the sluice HTTP edge server.' });

/** What a user writes: the input side of the schema (`defineConfig` takes this). */
export type SluiceConfigInput = z.input<typeof sluiceConfigSchema>;
/** The schema's output: shapes checked, meaning not yet resolved. */
export type SluiceConfigParsed = z.output<typeof sluiceConfigSchema>;
