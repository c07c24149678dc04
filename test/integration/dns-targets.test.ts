/** `resolve: true` targets against the system resolver: `localhost` becomes its address. */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('DNS targets', () => {
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await startUpstream();
    sluice = await startSluice({
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { upstream: 'named', preserve_host: false } }] }],
      upstreams: { named: { targets: [{ url: `http://localhost:${up.port}`, resolve: true }] } },
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  it('connects to the resolved address and sends the configured name as Host', async () => {
    const res = await request(`${sluice.url}/x`);
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(up.seen.at(-1)?.headers.host).toBe(`localhost:${up.port}`);
    const view = sluice.instance.upstreams().upstreams[0] as { targets: { target: string; host: string }[] };
    expect(view.targets).toMatchObject([
      { target: `http://127.0.0.1:${up.port}`, host: `localhost:${up.port}` },
    ]);
    expect(sluice.logs.some((l) => l.msg === 'dns targets updated' && l.host === 'localhost')).toBe(true);
  });
});
