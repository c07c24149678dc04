/**
 * A full garbage collection when memory outside V8's heap has grown by EXTERNAL_GROWTH_BYTES since
 * the last look, checked every CHECK_MS.
 *
 * Why: the strings Node makes for HTTP/2 header fields live outside the heap, and V8 is not told
 * their size, so it never collects for them. A client sending large header blocks (60 KB methods,
 * each answered 431) left their garbage in place: a worker reached 1.2 GB of RSS after 20,000 such
 * requests in 11 s and stayed there (3.7 GB after 60,000; measured on Node 20, and a bare
 * `http2.createSecureServer` does the same). One full collection frees it all: with this the same
 * flood, twice over, leaves the worker at about 310 MB (a look every second let it reach 430 MB).
 * The growth is twice V8's own trigger for memory it is told of (64 MB over the last collection),
 * so Buffers, which V8 collects itself, do not set this off. A collection costs about 3 ms for a
 * worker's heap, and comes only while external memory grows that fast; process.memoryUsage()
 * costs about 9 µs a look.
 *
 * `gc` is V8's, made reachable at run time (`--expose-gc` then a new context): Node exposes it only
 * with that flag given at start, and passing it to every worker would hand it to handler code.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

const CHECK_MS = 250;
const EXTERNAL_GROWTH_BYTES = 128 * 1024 * 1024;

type Collect = () => void;

let collect: Collect | null = null;
function collector(): Collect {
  if (collect === null) {
    const exposed = (globalThis as { gc?: Collect }).gc;
    if (exposed !== undefined) collect = exposed;
    else {
      v8.setFlagsFromString('--expose-gc');
      collect = vm.runInNewContext('gc') as Collect;
    }
  }
  return collect;
}

/** Watches external memory until the returned function is called. */
export function guardExternalMemory(
  growthBytes = EXTERNAL_GROWTH_BYTES,
  external: () => number = () => process.memoryUsage().external,
): () => void {
  const gc = collector();
  let base = external();
  const timer = setInterval(() => {
    const now = external();
    if (now < base) base = now;
    else if (now - base >= growthBytes) {
      gc();
      base = external();
    }
  }, CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
