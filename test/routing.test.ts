import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useService } from './helpers/fixture.js';
import { signedFetch } from '../devtools/signed-fetch.js';

/**
 * What the route registrations alone decide (api/app.ts, api/routing.ts): which paths need a signature,
 * and which wrong methods get a 405 with the methods that path serves.
 */
describe('routing derived from the registered routes', () => {
  const fx = useService({ workers: 0 });

  const expectError = async (res: Response, status: number, type: string, allow?: string) => {
    assert.equal(res.status, status, await res.clone().text());
    assert.equal(res.headers.get('x-amzn-errortype'), type);
    assert.equal(res.headers.get('allow') ?? undefined, allow);
  };

  it('answers a wrong method on a signed route with 405 and the methods it serves, after the signature', async () => {
    const url = fx.svc.api.url;
    await expectError(
      await signedFetch(url, '/clientcertificates', { method: 'DELETE' }),
      405,
      'MethodNotAllowedException',
      'GET, POST',
    );
    await expectError(
      await signedFetch(url, '/clientcertificates/abc', { method: 'POST', body: '{}' }),
      405,
      'MethodNotAllowedException',
      'GET, PATCH, DELETE',
    );
    await expectError(
      await fetch(`${url}/clientcertificates`, { method: 'DELETE' }),
      403,
      'MissingAuthenticationTokenException',
    );
  });

  it('treats a trailing slash as the same path for 405 and as no route for a method it serves', async () => {
    const url = fx.svc.api.url;
    await expectError(
      await signedFetch(url, '/clientcertificates/', { method: 'DELETE' }),
      405,
      'MethodNotAllowedException',
      'GET, POST',
    );
    await expectError(await signedFetch(url, '/clientcertificates/'), 404, 'NotFoundException');
  });

  it('answers public routes without a signature, and a wrong method there with 405', async () => {
    const url = fx.svc.api.url;
    assert.notEqual((await fetch(`${url}/health`)).status, 403);
    await expectError(
      await fetch(`${url}/health/`, { method: 'POST' }),
      405,
      'MethodNotAllowedException',
      'GET',
    );
    // The dashboard is off: its paths are a 404, never a request for a signature.
    await expectError(await fetch(`${url}/admin/queues/anything`), 404, 'NotFoundException');
  });

  it('asks for a signature on a path nobody serves, and answers 404 once signed', async () => {
    const url = fx.svc.api.url;
    await expectError(await fetch(`${url}/nope`), 403, 'MissingAuthenticationTokenException');
    await expectError(await signedFetch(url, '/nope'), 404, 'NotFoundException');
  });
});
