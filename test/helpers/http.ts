/** A small HTTP client for tests that, unlike fetch, may set Host and other forbidden headers. */
import { request } from 'undici';

/** A buffered response. */
export interface TestResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  json(): unknown;
}

/** Sends one request and buffers the answer. */
export async function http(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<TestResponse> {
  const res = await request(url, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: opts.headers,
    body: opts.body,
  });
  const body = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    body,
    json: () => JSON.parse(body),
  };
}
