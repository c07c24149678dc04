/** The config `sluice init` generates for when there is no `-c` and no `./sluice.yaml`. */

/** Where the default config is meant to be installed on a host. */
export const DEFAULT_CONFIG_PATH = '/etc/sluice/sluice.yaml';

/**
 * A minimal, valid config: one server on port 8080 in front of an app on 127.0.0.1:3000 (a
 * sidecar in a pod), a `/healthz` answered by sluice itself, and the admin API on loopback.
 */
export const DEFAULT_CONFIG_TEXT = `# sluice.yaml: a minimal config; replace the upstream URL with your app's.
shutdown_timeout: 30s
log:
  access: stdout
admin:
  listen: 127.0.0.1:9090
servers:
  - name: web
    listen: ":8080"
    routes:
      - match: { path: /healthz }
        respond: { body: "ok\\n" }
      - proxy: { url: "http://127.0.0.1:3000" }
`;
