/**
 * The queue dashboard in a real browser (headless Chromium through playwright-core): it must show labels, not
 * bull-board's raw translation keys (MENU.QUEUES, QUEUE.STATUS.ALL), whether the password is given when the
 * browser asks for it or in the address (admin:PASSWORD@host). Skipped without Chromium: set CHROMIUM_PATH, or
 * install it (Debian: `apt-get install chromium`).
 *
 * DASHBOARD_SCREENSHOT=docs/dashboard.png also writes the screenshot docs/operations.md shows.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startRedis, waitFor, type TestRedis } from '../devtools/redis-server.js';
import { startService, type TestService } from '../devtools/service.js';
import { signRequest } from '../devtools/signed-fetch.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PASSWORD = 'dashboard-test-password';
const JOBS = 3;
/** An i18n key where a label belongs: MENU.QUEUES, QUEUE.STATUS.ALL, DASHBOARD.JOBS_COUNT, JOB.TABS.DATA. */
const RAW_KEY = /\b(?:MENU|QUEUE|DASHBOARD|JOB|JOBS|SETTINGS|STATUS)\.[A-Z][A-Z0-9_.-]*/;

const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (set CHROMIUM_PATH)`;

describe('/admin/queues in Chromium', { skip }, () => {
  let redis: TestRedis;
  let svc: TestService;
  const profiles: string[] = [];
  const contexts: BrowserContext[] = [];

  before(async () => {
    redis = await startRedis();
    svc = await startService(redis.url, { adminPassword: PASSWORD });
    for (let i = 0; i < JOBS; i++) {
      const body = JSON.stringify({ description: `dashboard demo ${i + 1}`, tags: { team: 'ops' } });
      const { url, init } = await signRequest(svc.api.url, '/clientcertificates', {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      });
      assert.equal((await fetch(url, init)).status, 201);
    }
    const auth = { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` };
    await waitFor(async () => {
      const res = await fetch(`${svc.api.url}/admin/queues/api/queues`, { headers: auth });
      const body = (await res.json()) as { queues: { counts: Record<string, number> }[] };
      return body.queues[0]?.counts.completed === JOBS;
    }, 20_000);
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    for (const p of profiles) rmSync(p, { recursive: true, force: true });
    await svc?.close();
    await redis?.destroy();
  });

  /** A fresh headless Chromium with its own profile; `password`: answer the basic-auth challenge with it. */
  async function browser(password?: string): Promise<Page> {
    const profile = mkdtempSync(join(tmpdir(), 'cc-chromium-'));
    profiles.push(profile);
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      locale: 'en-US',
      viewport: { width: 1280, height: 800 },
      ...(password === undefined ? {} : { httpCredentials: { username: 'admin', password } }),
    });
    contexts.push(context);
    return context.pages()[0] ?? (await context.newPage());
  }

  /**
   * Opens `url` and waits until the UI has rendered the queue (with labels or, failing, with raw keys: when
   * its translations do not load it retries for ~10 s, then renders the keys). Returns the page's text and
   * the statuses of the translation requests.
   */
  async function open(page: Page, url: string): Promise<{ text: string; locales: number[] }> {
    const locales: number[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/static/locales/')) locales.push(r.status());
    });
    await page.goto(url);
    await page.waitForFunction(
      () => /client-certificates/.test(document.body.innerText) && !/loading/i.test(document.body.innerText),
      null,
      { timeout: 30_000 },
    );
    return { text: await page.evaluate(() => document.body.innerText), locales };
  }

  function assertLabels(text: string) {
    assert.doesNotMatch(text, RAW_KEY, 'labels, not raw translation keys');
    assert.match(text, /\bQUEUES\b/);
    assert.match(text, /\bCOMPLETED\b/);
  }

  test('password given when the browser asks: labels, not raw keys', async () => {
    const page = await browser(PASSWORD);
    const { text, locales } = await open(page, `${svc.api.url}/admin/queues`);
    assertLabels(text);
    assert.deepEqual(locales, [200], 'one translation file, served');
    assert.match(text, new RegExp(`\\b${JOBS} Jobs\\b`));

    const shot = process.env.DASHBOARD_SCREENSHOT;
    if (shot) {
      await open(page, `${svc.api.url}/admin/queues/queue/client-certificates?status=completed`);
      await page.getByText('dashboard demo', { exact: false }).first().waitFor();
      await page.screenshot({ path: shot });
    }
  });

  test('password in the address (admin:PASSWORD@host): the page reloads without it and shows labels', async () => {
    const page = await browser();
    const url = new URL(`${svc.api.url}/admin/queues/queue/client-certificates?status=completed`);
    url.username = 'admin';
    url.password = PASSWORD;
    const { text, locales } = await open(page, url.href);
    assertLabels(text);
    assert.deepEqual(locales, [200], 'the translations requested (once, after the reload) and served');
    assert.equal(await page.evaluate(() => document.baseURI), `${svc.api.url}/admin/queues/`);
  });
});
