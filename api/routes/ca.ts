import { Hono, type Context } from 'hono';
import { CA_PATHS } from '../../shared/ca-urls.js';
import type { ClientCertificateStore } from '../../shared/client-certificate-store.js';
import { ocspError, RESPONSE_STATUS, type CaResponder } from '../ca-responder.js';
import type { AppEnv } from '../context.js';

/** Largest OCSP request accepted (a request for a few certificates is a few hundred bytes). */
const OCSP_REQUEST_MAX = 8 * 1024;

/**
 * CA mode's public routes, unsigned as a CA's distribution points are: the CRL (DER, and PEM), the CA
 * certificate, and the OCSP responder (RFC 6960 appendix A: POST the DER request, or GET it base64
 * and URL-encoded after the path).
 */
export function caRoutes(ca: CaResponder, store: ClientCertificateStore): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  // Redis failing: the app's error handler answers 503 with Retry-After.
  const crl = () => ca.currentCrl();
  app.get(CA_PATHS.crl, async (c) => {
    const { der, thisUpdate } = await crl();
    return c.body(new Uint8Array(der), 200, {
      'content-type': 'application/pkix-crl',
      'last-modified': new Date(thisUpdate).toUTCString(),
    });
  });
  app.get(CA_PATHS.crlPem, async (c) => {
    const { der } = await crl();
    return c.body(pem('X509 CRL', der), 200, { 'content-type': 'application/x-pem-file' });
  });
  app.get(CA_PATHS.cert, (c) =>
    c.body(new Uint8Array(ca.caDer), 200, { 'content-type': 'application/pkix-cert' }),
  );

  const answer = async (c: Context<AppEnv>, der: Uint8Array | undefined) => {
    const body = der ? (await ca.ocsp(der, store)).der : ocspError(RESPONSE_STATUS.malformedRequest);
    return c.body(new Uint8Array(body), 200, { 'content-type': 'application/ocsp-response' });
  };
  app.post(CA_PATHS.ocsp, async (c) => {
    const body = new Uint8Array(await c.req.arrayBuffer());
    return answer(c, body.byteLength > 0 && body.byteLength <= OCSP_REQUEST_MAX ? body : undefined);
  });
  app.get(`${CA_PATHS.ocsp}/:request{.+}`, (c) => {
    // The raw path: Hono's parameter is already URL-decoded once, and base64 holds '/' and '+'.
    const raw = new URL(c.req.url).pathname.slice(CA_PATHS.ocsp.length + 1);
    let der: Uint8Array | undefined;
    try {
      const b64 = decodeURIComponent(raw);
      if (/^[A-Za-z0-9+/]+={0,2}$/.test(b64) && b64.length <= (OCSP_REQUEST_MAX * 4) / 3) {
        der = new Uint8Array(Buffer.from(b64, 'base64'));
      }
    } catch {
      der = undefined;
    }
    return answer(c, der);
  });
  return app;
}

function pem(type: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`;
}
