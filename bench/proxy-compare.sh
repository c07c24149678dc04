#!/usr/bin/env bash
# Side-by-side reverse-proxy benchmark on loopback: the same upstream, the same load generator,
# the same run. Measures: direct to the upstream (the limit), nginx as a proxy (1 worker),
# HAProxy (1 thread, when installed), sluice (workers: 1), node-http-proxy and @fastify/http-proxy. Rounds alternate the targets so
# that machine drift hits all of them alike; medians and ratios are printed, and a JSON summary
# is the last line.
#
# usage: proxy-compare.sh [REPO_DIR]   (default: the current directory, a sluice checkout)
# env:   ROUNDS (3) DURATION (5, seconds) CONNS (64) BODY (small|16k) PEERS_DIR ($TMPDIR/sluice-bench-peers)
#        ONLY (space-separated subset of: direct nginx haproxy sluice http-proxy fastify-proxy)
#        SLUICE_ACCESS_LOG (stdout: sluice's default, lines written to a file; off: like nginx's access_log off)
set -euo pipefail
REPO=$(cd "${1:-.}" && pwd)
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5} CONNS=${CONNS:-64} BODY=${BODY:-small}
PEERS_DIR=${PEERS_DIR:-${TMPDIR:-/tmp}/sluice-bench-peers}
ONLY=${ONLY:-"direct nginx haproxy sluice http-proxy fastify-proxy"}
SLUICE_ACCESS_LOG=${SLUICE_ACCESS_LOG:-stdout}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$WORK"/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.3; rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1 || { [[ $(id -u) == 0 ]] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1; } || { echo "missing $1 (apt package $2)" >&2; exit 3; }; }
command -v wrk >/dev/null 2>&1 || command -v nginx >/dev/null 2>&1 || { [[ $(id -u) == 0 ]] && apt-get update -qq >/dev/null 2>&1 || true; }
need wrk wrk; need nginx nginx

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

UP=$(free_port); NGX=$(free_port); SLU=$(free_port); HPX=$(free_port); FPX=$(free_port); HAP=$(free_port)
if [[ " $ONLY " == *" haproxy "* ]] && ! command -v haproxy >/dev/null 2>&1; then
  { [[ $(id -u) == 0 ]] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null 2>&1; } || ONLY=${ONLY/haproxy/}
fi
if [[ $BODY == 16k ]]; then head -c 16384 /dev/zero | tr '\0' 'x' > "$WORK/body.txt"; chmod 755 "$WORK"; chmod 644 "$WORK/body.txt"; RET="root $WORK; try_files /body.txt =404;"; else RET='return 200 "hello world\n";'; fi
cat > "$WORK/up.conf" <<NGX
worker_processes 1; pid $WORK/up.pid; error_log $WORK/up.err; daemon on;
events { worker_connections 8192; }
http { access_log off; server { listen 127.0.0.1:$UP; location / { $RET } } }
NGX
cat > "$WORK/ngx.conf" <<NGX
worker_processes 1; pid $WORK/ngx.pid; error_log $WORK/ngx.err; daemon on;
events { worker_connections 8192; }
http { access_log off;
  upstream be { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$NGX; location / { proxy_pass http://be; proxy_http_version 1.1;
    proxy_set_header Connection ""; proxy_set_header Host \$host; proxy_set_header X-Real-IP \$remote_addr;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } } }
NGX
nginx -c "$WORK/up.conf"; nginx -c "$WORK/ngx.conf"; wait_port "$UP"; wait_port "$NGX"

if [[ " $ONLY " == *" haproxy "* ]]; then
  cat > "$WORK/hap.cfg" <<HAP
global
  nbthread 1
  pidfile $WORK/hap.pid
  daemon
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend f
  bind 127.0.0.1:$HAP
  default_backend b
backend b
  http-reuse always
  option forwardfor
  server s1 127.0.0.1:$UP
HAP
  haproxy -f "$WORK/hap.cfg" && wait_port "$HAP"
fi
declare -A PORT=([direct]=$UP [nginx]=$NGX [haproxy]=$HAP [sluice]=$SLU [http-proxy]=$HPX [fastify-proxy]=$FPX)
declare -A ROOTPID=()
ROOTPID[direct]=$(cat "$WORK/up.pid"); ROOTPID[nginx]=$(cat "$WORK/ngx.pid")
[[ -f $WORK/hap.pid ]] && ROOTPID[haproxy]=$(head -1 "$WORK/hap.pid")

if [[ " $ONLY " == *" sluice "* ]]; then
  if [[ ! -d $REPO/node_modules ]]; then (cd "$REPO" && { [[ -f package-lock.json ]] && npm ci --no-audit --no-fund || npm install --no-audit --no-fund; } >/dev/null 2>&1) || true; fi
  (cd "$REPO" && npm run build --if-present >/dev/null 2>&1) || true
  BIN=$(cd "$REPO" && node -e 'const p=require("./package.json");const b=typeof p.bin==="string"?p.bin:Object.values(p.bin||{})[0];if(!b)process.exit(1);console.log(require("path").resolve(b))') || { echo "no bin in $REPO/package.json" >&2; exit 3; }
  cat > "$WORK/sluice.yaml" <<YML
workers: 1
log: { access: $SLUICE_ACCESS_LOG }
servers:
  - listen: 127.0.0.1:$SLU
    routes:
      - proxy: { upstream: be }
upstreams:
  be:
    keepalive: 64
    targets:
      - url: http://127.0.0.1:$UP
YML
  (cd "$WORK" && exec node "$BIN" start -c "$WORK/sluice.yaml" >"$WORK/sluice.log" 2>&1) & PIDS+=($!); ROOTPID[sluice]=$!
  wait_port "$SLU" || { cat "$WORK/sluice.log" >&2; exit 4; }
fi
if [[ " $ONLY " == *"-proxy "* ]]; then
  if [[ ! -d $PEERS_DIR/node_modules/@fastify/http-proxy || ! -d $PEERS_DIR/node_modules/http-proxy ]]; then
    mkdir -p "$PEERS_DIR" && (cd "$PEERS_DIR" && { [[ -f package.json ]] || npm init -y >/dev/null; } && npm install --silent http-proxy @fastify/http-proxy fastify >/dev/null 2>&1)
  fi
  cat > "$WORK/hpx.js" <<JS
const http = require('http'); const httpProxy = require('$PEERS_DIR/node_modules/http-proxy');
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const proxy = httpProxy.createProxyServer({ target: 'http://127.0.0.1:$UP', agent, xfwd: true });
proxy.on('error', (e, req, res) => { res.writeHead(502); res.end(); });
http.createServer((req, res) => proxy.web(req, res)).listen($HPX, '127.0.0.1');
JS
  cat > "$WORK/fpx.js" <<JS
const fastify = require('$PEERS_DIR/node_modules/fastify')({ logger: false });
fastify.register(require('$PEERS_DIR/node_modules/@fastify/http-proxy'), { upstream: 'http://127.0.0.1:$UP' });
fastify.listen({ port: $FPX, host: '127.0.0.1' });
JS
  if [[ " $ONLY " == *" http-proxy "* ]]; then node "$WORK/hpx.js" & PIDS+=($!); ROOTPID[http-proxy]=$!; wait_port "$HPX"; fi
  if [[ " $ONLY " == *" fastify-proxy "* ]]; then node "$WORK/fpx.js" & PIDS+=($!); ROOTPID[fastify-proxy]=$!; wait_port "$FPX"; fi
fi

tree_rss_kb() { local total=0 p; for p in $(pgrep -g "$(ps -o pgid= -p "$1" | tr -d ' ')" 2>/dev/null || echo "$1"); do total=$((total + $(ps -o rss= -p "$p" 2>/dev/null || echo 0))); done; echo $total; }
desc_rss_kb() { local total=$(ps -o rss= -p "$1" 2>/dev/null || echo 0) c; for c in $(pgrep -P "$1" 2>/dev/null); do total=$((total + $(desc_rss_kb "$c"))); done; echo $total; }
# CPU ticks (1/100 s) used so far by a process and its children, from /proc.
tree_ticks() { local total=$(awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0) c; for c in $(pgrep -P "$1" 2>/dev/null); do total=$((total + $(tree_ticks "$c"))); done; echo $total; }
to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us$/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v+0} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000} else print v }'; }

# sanity: every target answers 200 before timing
for t in $ONLY; do code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$t]}/bench"); [[ $code == 200 ]] || { echo "$t answered $code" >&2; [[ $t == sluice ]] && cat "$WORK/sluice.log" >&2; exit 5; }; done
for t in $ONLY; do wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:${PORT[$t]}/warm" >/dev/null 2>&1; done

declare -A RPS P50 P99 ERR RSS WRSS CPU
for r in $(seq 1 "$ROUNDS"); do
  for t in $ONLY; do
    # 1 s unmeasured first: a target that idled while the others ran (its upstream keep-alive
    # connections expired, its heap shrunk) is measured warm, as in steady service.
    wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:${PORT[$t]}/warm" >/dev/null 2>&1
    t0=$(tree_ticks "${ROOTPID[$t]}")
    out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:${PORT[$t]}/bench?round=$r" 2>&1)
    t1=$(tree_ticks "${ROOTPID[$t]}")
    # A figure wrk did not print is null in this round's lists (the rounds stay aligned) and is
    # left out of the median.
    rps=$(awk '/Requests\/sec/{print $2}' <<<"$out"); rps=${rps:-null}
    # CPU microseconds per request: ticks are 10 ms; requests = rps × duration.
    CPU[$t]+="$(awk -v d=$((t1 - t0)) -v r="$rps" -v s="$DURATION" 'BEGIN{ if (r > 0) printf "%.1f", d * 10000 / (r * s); else print "null" }') "
    p50=$(to_ms "$(awk '$1=="50%"{print $2}' <<<"$out")"); p99=$(to_ms "$(awk '$1=="99%"{print $2}' <<<"$out")")
    p50=${p50:-null}; p99=${p99:-null}
    err=$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' <<<"$out")
    RPS[$t]+="$rps "; P50[$t]+="$p50 "; P99[$t]+="$p99 "; ERR[$t]+="$err "
    RSS[$t]+="$(desc_rss_kb "${ROOTPID[$t]}") "
    # The largest process of the tree: sluice's worker (its primary only supervises), nginx's worker.
    WRSS[$t]+="$( { ps -o rss= -p "${ROOTPID[$t]}"; for c in $(pgrep -P "${ROOTPID[$t]}"); do ps -o rss= -p "$c"; done; } 2>/dev/null | sort -n | tail -1) "
  done
done
median() { tr ' ' '\n' <<<"$1" | grep -E '^-?[0-9.]+$' | sort -g | awk '{a[NR]=$1} END{ if (NR == 0) print "null"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
json_list() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | paste -sd, | sed 's/^/[/; s/$/]/'; }
printf '%-14s %10s %9s %9s %8s %9s\n' target rps p50_ms p99_ms errors rss_mb
json="{"
for t in $ONLY; do
  m=$(median "${RPS[$t]}"); a=$(median "${P50[$t]}"); b=$(median "${P99[$t]}"); e=$(tr ' ' '\n' <<<"${ERR[$t]}" | awk '{s+=$1} END{print s+0}'); k=$(median "${RSS[$t]}"); w=$(median "${WRSS[$t]}"); u=$(median "${CPU[$t]}")
  printf '%-14s %10.0f %9.2f %9.2f %8d %9.1f\n' "$t" "$m" "$a" "$b" "$e" "$(awk -v k="$k" 'BEGIN{print k/1024}')"
  json+="\"$t\":{\"rps\":$m,\"p50_ms\":$a,\"p99_ms\":$b,\"errors\":$e,\"rss_mb\":$(awk -v k="$k" 'BEGIN{printf "%.1f", k/1024}'),\"largest_process_rss_mb\":$(awk -v k="$w" 'BEGIN{printf "%.1f", k/1024}'),\"cpu_us_per_request\":$u"
  # Every round's figures, in round order: the spread the medians hide.
  json+=",\"rounds\":{\"rps\":$(json_list "${RPS[$t]}"),\"p99_ms\":$(json_list "${P99[$t]}"),\"cpu_us_per_request\":$(json_list "${CPU[$t]}")}},"
done
json="${json%,}}"
echo "$json"
