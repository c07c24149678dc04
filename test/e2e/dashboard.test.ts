/**
 * The dashboard in a real browser (the system Chromium, driven by playwright-core): while traffic
 * flows through the built CLI, the numbers move and every upstream target is listed. Saves
 * docs/dashboard.png.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, killAll, ROOT, requireBuilt, spawnCli, tempDir, waitForPort } from '../helpers/cli.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

requireBuilt();

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('dashboard in Chromium', () => {
  const upstreams: TestUpstream[] = [];

  afterAll(async () => {
    await killAll();
    for (const u of upstreams) await u.close();
  });

  it('shows traffic moving and every target, and saves a screenshot', { timeout: 60_000 }, async () => {
    upstreams.push(
      await startUpstream((_req, res) => setTimeout(() => res.end('ok'), 2 + Math.random() * 20)),
      await startUpstream((_req, res) => setTimeout(() => res.end('ok'), 5 + Math.random() * 40)),
    );
    const [a, b] = upstreams;
    const port = await freePort();
    const admin = await freePort();
    const dir = (await tempDir()).path;
    const file = join(dir, 'sluice.yaml');
    await writeFile(
      file,
      `workers: 2
admin: { listen: "127.0.0.1:${admin}" }
servers:
  - name: shop
    listen: "127.0.0.1:${port}"
    routes:
      - name: api
        match: { path_prefix: /api/ }
        proxy: { upstream: catalogue }
      - name: missing
        respond: { status: 404, body: "no\\n" }
upstreams:
  catalogue:
    targets:
      - { url: "${a!.url}", weight: 2 }
      - { url: "${b!.url}" }
      - { url: "http://127.0.0.1:9", backup: true }
`,
    );
    const sluice = spawnCli(['start', '-c', file], { cwd: dir });
    await waitForPort(port, { proc: sluice });
    await waitForPort(admin, { proc: sluice });

    let stop = false;
    const agent = new Agent({ connections: 16 });
    const load = (async () => {
      let i = 0;
      while (!stop) {
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            const path = i++ % 10 === 0 ? '/nope' : '/api/items';
            const res = await request(`http://127.0.0.1:${port}${path}`, { dispatcher: agent });
            await res.body.dump();
          }),
        );
      }
    })();

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto(`http://127.0.0.1:${admin}/`);
      // Two polls are needed before rates exist; wait for a number to appear.
      await page.waitForFunction(
        // A string: it runs in the page, where `document` exists.
        "/\\d/.test(document.getElementById('rps')?.textContent ?? '')",
        undefined,
        { timeout: 15_000 },
      );
      const first = Number.parseFloat((await page.textContent('#rps')) ?? '0');
      expect(first).toBeGreaterThan(0);
      await page.waitForTimeout(4500);
      const later = await page.textContent('#rps');
      expect(Number.parseFloat(later ?? '0')).toBeGreaterThan(0);
      expect(await page.textContent('#p99')).toMatch(/\d/);
      expect(await page.textContent('#workers')).toContain('2');
      const targets = await page.textContent('#targetTable');
      expect(targets).toContain(a!.url);
      expect(targets).toContain(b!.url);
      expect(targets).toContain('backup');
      const workers = await page.textContent('#workerTable');
      expect(workers).toContain('ready');
      // The charts have drawn at least two points.
      expect(await page.locator('#chartRps canvas').count()).toBe(1);
      await page.screenshot({ path: join(ROOT, 'docs/dashboard.png'), fullPage: true });
    } finally {
      await browser.close();
      stop = true;
      await load;
      await agent.close();
    }
  });

  it('asks for a token once when the admin API has tokens, then shows the data', {
    timeout: 60_000,
  }, async () => {
    const port = await freePort();
    const admin = await freePort();
    const dir = (await tempDir()).path;
    const file = join(dir, 'sluice.yaml');
    await writeFile(
      file,
      `workers: 1
admin:
  listen: "127.0.0.1:${admin}"
  tokens: [{ name: browser, role: viewer, token_env: SLUICE_TEST_VIEWER }]
servers:
  - listen: "127.0.0.1:${port}"
    routes: [{ respond: { body: "ok\\n" } }]
`,
    );
    const token = 'viewer-token-typed-in-the-page';
    const sluice = spawnCli(['start', '-c', file], { cwd: dir, env: { SLUICE_TEST_VIEWER: token } });
    await waitForPort(admin, { proc: sluice });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${admin}/`);
      await page.waitForSelector('#token', { state: 'visible', timeout: 10_000 });
      expect(await page.textContent('#workers')).not.toContain('1');
      await page.fill('#tokenInput', token);
      await page.press('#tokenInput', 'Enter');
      await page.waitForFunction(
        "/1/.test(document.getElementById('workers')?.textContent ?? '')",
        undefined,
        {
          timeout: 10_000,
        },
      );
      // Kept for the session: a reload of the page needs no token again.
      await page.reload();
      await page.waitForFunction(
        "/1/.test(document.getElementById('workers')?.textContent ?? '')",
        undefined,
        {
          timeout: 10_000,
        },
      );
      expect(await page.isVisible('#token')).toBe(false);
    } finally {
      await browser.close();
    }
  });

  // A wrong token came back to an unchanged form under "connecting…", stayed in sessionStorage and
  // went out with every poll, each a 401 in the console.
  it('says a token was refused, forgets it and stops polling until another is typed; says a 403 is the role', {
    timeout: 60_000,
  }, async () => {
    const port = await freePort();
    const admin = await freePort();
    const dir = (await tempDir()).path;
    const file = join(dir, 'sluice.yaml');
    await writeFile(
      file,
      `workers: 1
admin:
  listen: "127.0.0.1:${admin}"
  tokens: [{ name: browser, role: viewer, token_env: SLUICE_TEST_VIEWER }]
servers:
  - listen: "127.0.0.1:${port}"
    routes: [{ respond: { body: "ok\\n" } }]
`,
    );
    const token = 'viewer-token-typed-in-the-page';
    const wrong = 'not-the-token-of-this-sluice';
    const sluice = spawnCli(['start', '-c', file], { cwd: dir, env: { SLUICE_TEST_VIEWER: token } });
    await waitForPort(admin, { proc: sluice });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu'],
    });
    try {
      const page = await browser.newPage();
      const sent: (string | undefined)[] = [];
      page.on('request', (r) => {
        if (r.url().endsWith('/api/stats')) sent.push(r.headers().authorization);
      });
      await page.goto(`http://127.0.0.1:${admin}/`);
      await page.waitForSelector('#token', { state: 'visible', timeout: 10_000 });
      expect(await page.textContent('#tokenMsg')).toBe('');

      await page.fill('#tokenInput', wrong);
      await page.press('#tokenInput', 'Enter');
      await page.waitForFunction(
        "/refused/.test(document.getElementById('tokenMsg')?.textContent ?? '')",
        undefined,
        {
          timeout: 10_000,
        },
      );
      expect(await page.textContent('#tokenMsg')).toContain('The token was refused (401)');
      expect(await page.textContent('#meta')).toBe('token refused');
      expect(await page.isVisible('#token')).toBe(true);
      expect(await page.inputValue('#tokenInput')).toBe('');
      expect(await page.evaluate("sessionStorage.getItem('sluice-token')")).toBeNull();
      // Sent once, then no poll at all until another token is typed (polls are 2 s apart).
      const after = sent.length;
      await page.waitForTimeout(4500);
      expect(sent.length).toBe(after);
      expect(sent.filter((a) => a === `Bearer ${wrong}`)).toHaveLength(1);

      // The right one: the data, and the message gone.
      await page.fill('#tokenInput', token);
      await page.press('#tokenInput', 'Enter');
      await page.waitForFunction(
        "/1/.test(document.getElementById('workers')?.textContent ?? '')",
        undefined,
        {
          timeout: 10_000,
        },
      );
      expect(await page.isVisible('#token')).toBe(false);
      expect(await page.textContent('#tokenMsg')).toBe('');

      // A token whose role may not read /api/stats (every role may today: the answer is stood in
      // for, as the admin API words it).
      const other = await browser.newPage();
      await other.route('**/api/stats', async (route) => {
        if (route.request().headers().authorization === undefined) return route.continue();
        await route.fulfill({
          status: 403,
          contentType: 'application/problem+json',
          body: JSON.stringify({
            type: 'about:blank',
            title: 'Forbidden',
            status: 403,
            detail: 'the auditor role may not call this endpoint',
          }),
        });
      });
      await other.goto(`http://127.0.0.1:${admin}/`);
      await other.waitForSelector('#token', { state: 'visible', timeout: 10_000 });
      await other.fill('#tokenInput', token);
      await other.press('#tokenInput', 'Enter');
      await other.waitForFunction(
        "/403/.test(document.getElementById('tokenMsg')?.textContent ?? '')",
        undefined,
        {
          timeout: 10_000,
        },
      );
      expect(await other.textContent('#tokenMsg')).toBe(
        'The token is known, but its role may not read the dashboard data (403): the auditor role may not call this endpoint',
      );
      expect(await other.textContent('#meta')).toBe('not allowed');
    } finally {
      await browser.close();
    }
  });
});
