import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { CaResponder } from '../api/ca-responder.js';
import { startRedis, type TestRedis } from '../devtools/redis-server.js';
import { ecCa } from '../devtools/tls.js';
import { certificateAuthorityFrom } from '../shared/certificate-authority.js';
import { Keys } from '../shared/keys.js';
import { createLogger } from '../shared/logger.js';
import { createRedis, patientOptions } from '../shared/redis.js';
import { RevocationStore } from '../shared/revocation-store.js';

/**
 * Two API replicas asked for the CRL at once must serve one CRL number. The race this pins down: the
 * second replica reads the stored CRL (none yet), the first signs, stores and lets go of the signing
 * turn, and only then does the second take the turn; it must read again instead of signing #2.
 */
describe('the CRL signing turn', () => {
  const pem = ecCa('Turn Test CA');
  const ca = certificateAuthorityFrom(pem.cert, pem.key, { certFile: 'ca.pem', keyFile: 'ca.key' });
  const keys = new Keys('cc-crl-turn');
  let server: TestRedis;
  let conn: Redis;
  before(async () => {
    server = await startRedis();
    conn = createRedis(server.url, patientOptions(), 'cc-crl-turn-test');
  });
  after(async () => {
    conn?.disconnect();
    await server?.destroy();
  });

  const responder = (revocations: RevocationStore) =>
    new CaResponder({
      ca,
      caCertPem: ca.certPem,
      revocations,
      log: createLogger('silent', 'test'),
      crlValiditySeconds: 86_400,
      ocspValiditySeconds: 300,
    });

  test('a replica that takes the turn after another has signed serves that CRL, not a second number', async () => {
    const first = responder(new RevocationStore(conn, keys));
    /** Takes the turn only after `first` has signed, stored and let go of it. */
    class Late extends RevocationStore {
      override async lockCrl(ms: number): Promise<boolean> {
        await first.currentCrl();
        return super.lockCrl(ms);
      }
    }
    const second = responder(new Late(conn, keys));
    const late = await second.currentCrl();
    const early = await first.currentCrl();
    assert.equal(late.number, early.number, 'both replicas serve one CRL number');
    assert.deepEqual(late.der, early.der);
    assert.equal(await conn.get(keys.crlNumber), String(early.number), 'one CRL was signed');
  });

  test('a CRL number is never below the time in ms, so a counter a failover took back is not reused', async () => {
    const revocations = new RevocationStore(conn, new Keys('cc-crl-number'));
    const before = Date.now();
    const published = await revocations.nextCrlNumber(Date.now());
    assert.ok(published >= before, `${published}`);
    assert.equal(await revocations.nextCrlNumber(0), published + 1, 'one more than the last');
    // A failover of the counter's shard loses the last increments (the counter is back at 5); it takes
    // seconds, here a few ms.
    await conn.set(new Keys('cc-crl-number').crlNumber, '5');
    await new Promise((r) => setTimeout(r, 5));
    const after = await revocations.nextCrlNumber(Date.now());
    assert.ok(after > published + 1, `${after} after ${published + 1} was published`);
  });
});
