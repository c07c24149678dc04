/** A WebSocket client for tests (undici's), with what it received and how it closed. */
import { WebSocket } from 'undici';

/** An open WebSocket, its messages as text, and its close code once it closes. */
export interface TestWebSocket {
  readonly ws: WebSocket;
  readonly messages: string[];
  readonly closed: Promise<number>;
}

/** Opens a WebSocket to `url`; rejects when the handshake fails. */
export function openWebSocket(url: string): Promise<TestWebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const messages: string[] = [];
    const closed = new Promise<number>((r) => ws.addEventListener('close', (e) => r(e.code)));
    ws.addEventListener('message', (e) => messages.push(String(e.data)));
    ws.addEventListener('open', () => resolve({ ws, messages, closed }));
    ws.addEventListener('error', () => reject(new Error('websocket failed')));
  });
}
