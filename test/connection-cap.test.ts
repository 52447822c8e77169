import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { DESCRIPTOR_HEADROOM, defaultMaxConnections } from '../shared/config.js';
import { serviceEnv, spawnApi } from '../devtools/processes.js';
import { waitFor } from '../devtools/redis-server.js';
import { signRequest } from '../devtools/signed-fetch.js';
import { useRedis, useService } from './helpers/fixture.js';
import { reportConnectionCloses } from '../api/connection-guard.js';
import type { Logger } from '../shared/logger.js';

describe('MAX_CONNECTIONS', () => {
  it("defaults to the soft open-files limit minus the headroom, from /proc/self/limits' format", () => {
    const limits = [
      'Limit                     Soft Limit           Hard Limit           Units     ',
      'Max open files            512                  4096                 files     ',
    ].join('\n');
    assert.equal(defaultMaxConnections(limits), 512 - DESCRIPTOR_HEADROOM);
    assert.equal(
      defaultMaxConnections('Max open files unlimited unlimited files'),
      4096 - DESCRIPTOR_HEADROOM,
    );
    assert.equal(defaultMaxConnections(''), 4096 - DESCRIPTOR_HEADROOM);
  });
});

describe('an API under `prlimit --nofile=512:512` flooded with idle connections', () => {
  const fx = useRedis();

  it('closes the oldest idle unauthenticated connections first and still answers a new signed client', async () => {
    // Idle connections are closed only by the cap here, not by the idle timeout.
    const env = serviceEnv({ url: fx.redis.url }, { UNAUTHENTICATED_IDLE_TIMEOUT_MS: '0' });
    const api = await spawnApi(env, 30_000, { nofile: 512 });
    const { port } = new URL(api.url);
    const open = () =>
      new Promise<Socket>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: Number(port) }, () => resolve(s));
        s.once('error', reject);
      });
    const closed = new Set<number>();
    const sockets: Socket[] = [];
    try {
      // One authenticated keep-alive connection, older than every idle one.
      const authed = await open();
      authed.on('error', () => undefined);
      authed.on('close', () => closed.add(-1));
      const { url, init } = await signRequest(api.url, '/clientcertificates');
      const u = new URL(url);
      const headers = { ...(init.headers as Record<string, string>), host: u.host };
      let got = '';
      authed.on('data', (d: Buffer) => (got += d.toString()));
      authed.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\n${Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('')}\r\n`,
      );
      await waitFor(() => /^HTTP\/1\.1 200 /.test(got) && got.includes('\r\n\r\n'), 10_000);

      // More idle connections than the process has descriptors for, in order, a batch at a time.
      const TOTAL = 600;
      for (let i = 0; i < TOTAL; i += 50) {
        const batch = await Promise.all(Array.from({ length: 50 }, open));
        batch.forEach((s, j) => {
          s.on('error', () => undefined);
          s.on('close', () => closed.add(i + j));
          sockets.push(s);
        });
      }
      const cap = 512 - DESCRIPTOR_HEADROOM;
      const fresh = await signRequest(api.url, '/clientcertificates');
      const res = await fetch(fresh.url, { ...fresh.init, signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 200, await res.text());

      // The API closed at least what exceeded its cap, and the oldest first.
      await waitFor(() => closed.size >= TOTAL - cap, 10_000);
      for (let i = 0; i < 100; i++)
        assert.ok(closed.has(i), `idle connection ${i} (among the oldest) is still open`);
      for (let i = TOTAL - 100; i < TOTAL; i++)
        assert.ok(!closed.has(i), `idle connection ${i} (among the newest) was closed`);
      assert.ok(!closed.has(-1), 'the authenticated connection was closed before idle unauthenticated ones');
      authed.destroy();
    } finally {
      for (const s of sockets) s.destroy();
      await api.kill();
    }
  });
});

describe('MAX_CONNECTIONS with nothing idle to close', () => {
  // No workers: each Generate stays in flight until GENERATE_TIMEOUT_MS, so its connection is not idle.
  const fx = useService({
    workers: 0,
    generateTimeoutMs: 20_000,
    loadShedding: false,
    api: { maxConnections: 6 },
  });

  it('closes a new connection at once, and keeps every busy one', async () => {
    const body = JSON.stringify({ description: 'held' });
    const busy = await Promise.all(
      Array.from({ length: 6 }, () =>
        signRequest(fx.svc.api.url, '/clientcertificates', {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json' },
        }),
      ),
    );
    const ac = new AbortController();
    let settled = 0;
    const inFlight: Promise<unknown>[] = [];
    try {
      // One at a time: a connection whose request has not arrived yet is idle, and may be closed.
      for (const { url, init } of busy) {
        inFlight.push(
          fetch(url, { ...init, signal: ac.signal }).then(
            (r) => (settled++, r.status),
            () => (settled++, 'failed'),
          ),
        );
        await waitFor(() => fx.svc.api.inFlight === inFlight.length, 10_000);
      }
      const port = Number(new URL(fx.svc.api.url).port);
      // Three over the cap: each is closed and counted, and one line is logged for the three.
      for (let i = 0; i < 3; i++) {
        const extra = connect({ host: '127.0.0.1', port });
        extra.on('error', () => undefined);
        const refused = await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), 5000);
          extra.once('close', () => (clearTimeout(t), resolve(true)));
        });
        assert.equal(refused, true, 'a connection over the cap, with nothing idle, was kept');
      }
      assert.equal(settled, 0, 'a busy connection was closed or answered');
    } finally {
      ac.abort();
      await Promise.all(inFlight);
    }
    const lines = fx.svc.logs.lines.filter((l) => l.includes('closed at MAX_CONNECTIONS'));
    assert.equal(lines.length, 1, `log lines about the cap: ${lines.join('\n')}`);
    const line = JSON.parse(lines[0]!) as { level: number | string; reason: string; closed: number };
    assert.equal(line.reason, 'max_connections');
    assert.equal(line.closed, 1);
    // The busy connections are gone: /metrics can be asked now.
    let text = '';
    await waitFor(async () => {
      const res = await fetch(`${fx.svc.api.url}/metrics`).catch(() => undefined);
      text = res?.ok ? await res.text() : '';
      return text !== '';
    }, 10_000);
    // Three, and any /metrics request above refused while the busy connections were still closing.
    const closedAtCap = /^http_connections_closed_total\{reason="max_connections"\} (\d+)$/m.exec(text);
    assert.ok(closedAtCap && Number(closedAtCap[1]) >= 3, text.slice(0, 2000));
  });
});

describe('reporting the connections the guard closes', () => {
  it('counts every close and logs at most one line per reason a minute, with the closes since the last', () => {
    const lines: { reason: string; closed: number }[] = [];
    const counted: string[] = [];
    const log = { warn: (o: { reason: string; closed: number }) => lines.push(o) } as unknown as Logger;
    let now = 0;
    const report = reportConnectionCloses(
      log,
      (r) => counted.push(r),
      60_000,
      () => now,
    );
    const d = { connections: 10, address: '127.0.0.1' };
    for (let i = 0; i < 5; i++) report('max_connections', d);
    report('unauthenticated_idle', d); // counted, never logged: the idle timeout is routine
    now = 60_000;
    report('max_connections', d);
    report('per_address', d);
    assert.equal(counted.length, 8);
    assert.deepEqual(
      lines.map((l) => [l.reason, l.closed]),
      [
        ['max_connections', 1],
        ['max_connections', 5],
        ['per_address', 1],
      ],
    );
  });
});
