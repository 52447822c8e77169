/**
 * The yardstick for GetClientCertificate: a bare Hono app on @hono/node-server answering
 * `GET /clientcertificates/:id` with a fixed record of the same size, no auth, no Redis. Run by the
 * bench as its own process; PORT from the environment.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const record = {
  clientCertificateId: 'abc123',
  description: 'bench',
  pemEncodedCertificate:
    `-----BEGIN CERTIFICATE-----\r\n${'A'.repeat(64)}\r\n`.repeat(16) + '-----END CERTIFICATE-----',
  createdDate: 1_780_000_000,
  expirationDate: 1_811_536_000,
  tags: {},
};

const app = new Hono();
app.get('/clientcertificates/:id', (c) => c.json({ ...record, clientCertificateId: c.req.param('id') }));
app.get('/health', (c) => c.json({ status: 'ok' }));

const port = Number(process.env.PORT ?? 0);
const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, (info) => {
  process.stdout.write(`${JSON.stringify({ msg: 'bare hono listening', port: info.port })}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
