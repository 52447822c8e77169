import { Hono } from 'hono';
import { toJson } from '../../shared/client-certificate.js';
import { parseJsonObject, validateDescription, validateTags } from '../../shared/validation.js';
import type { AppDeps } from '../app.js';
import type { AppEnv } from '../context.js';

/** The ClientCertificate operations. Handlers validate, call the domain, and map the result. */
export function clientCertificateRoutes(deps: Pick<AppDeps, 'issuer' | 'store'>) {
  const app = new Hono<AppEnv>();

  // GenerateClientCertificate
  app.post('/clientcertificates', async (c) => {
    const body = parseJsonObject(await c.req.text());
    const description = validateDescription(body.description);
    const tags = validateTags(body.tags);
    const cert = await deps.issuer.generate(c.get('tenant'), { description, tags }, c.get('log'));
    return c.json(toJson(cert), 201);
  });

  return app;
}
