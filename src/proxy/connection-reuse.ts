/**
 * Tells whether an upstream request went out on a reused keep-alive connection — the fact the
 * keep-alive race rule needs (BEHAVIOUR.md section 2), which undici's handler interface does not
 * give. undici publishes `undici:client:sendHeaders` with the socket synchronously right after it
 * calls the handler's `onConnect` for the same request, so the handler registers itself in
 * `onConnect` and the subscriber answers it. Costs one WeakMap update per request.
 */
import diagnosticsChannel from 'node:diagnostics_channel';

/** Receives whether its connection had carried a request before. */
export interface ReuseListener {
  connectionReused(reused: boolean): void;
}

const requestsPerSocket = new WeakMap<object, number>();
let waiting: ReuseListener | null = null;

diagnosticsChannel.subscribe('undici:client:sendHeaders', (message) => {
  const socket = (message as { socket: object }).socket;
  const before = requestsPerSocket.get(socket) ?? 0;
  requestsPerSocket.set(socket, before + 1);
  const listener = waiting;
  waiting = null;
  listener?.connectionReused(before > 0);
});

/** Call from `onConnect`: the next request headers undici sends belong to `listener`. */
export function awaitConnection(listener: ReuseListener): void {
  waiting = listener;
}
