import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_KEEP_ALIVE_TIMEOUT_MS, loadConfig } from '../shared/config.js';
import { useService } from './helpers/fixture.js';

/** One GET over `agent`: the status, whether the agent reused a pooled socket, and that socket's local port. */
function get(url: string, agent: Agent): Promise<{ status: number; reused: boolean; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/health`, { agent }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, localPort: req.socket!.localPort! }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('keep-alive', () => {
  it('defaults to 65 s, and KEEP_ALIVE_TIMEOUT_MS changes it', () => {
    assert.equal(DEFAULT_KEEP_ALIVE_TIMEOUT_MS, 65_000);
    assert.equal(loadConfig({}).keepAliveTimeoutMs, 65_000);
    assert.equal(loadConfig({ KEEP_ALIVE_TIMEOUT_MS: '120000' }).keepAliveTimeoutMs, 120_000);
    assert.throws(
      () => loadConfig({ KEEP_ALIVE_TIMEOUT_MS: '5s' }),
      /KEEP_ALIVE_TIMEOUT_MS must be a whole number/,
    );
  });

  describe('the API server', () => {
    const fx = useService({ workers: 1 });

    it('keeps the idle timeout at the default and the headers timeout above it', () => {
      const server = fx.svc.api.server as unknown as { keepAliveTimeout: number; headersTimeout: number };
      assert.equal(server.keepAliveTimeout, 65_000);
      assert.ok(server.headersTimeout > server.keepAliveTimeout, `headersTimeout ${server.headersTimeout}`);
    });

    it('lets a client idle for 7 s reuse its socket (Node closes idle sockets after 5 s by default)', async () => {
      // An agent that keeps its socket as long as the server does, like the AWS SDK's.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const first = await get(fx.svc.api.url, agent);
        assert.equal(first.status, 200);
        assert.equal(first.reused, false);
        await sleep(7000);
        const second = await get(fx.svc.api.url, agent);
        assert.equal(second.status, 200);
        assert.equal(second.reused, true, 'the pooled socket was still open');
        assert.equal(second.localPort, first.localPort, 'the same connection');
      } finally {
        agent.destroy();
      }
    });
  });
});
