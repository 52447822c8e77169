import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  DeleteClientCertificateCommand,
  GenerateClientCertificateCommand,
  paginateGetClientCertificates,
  type APIGatewayClient,
} from '@aws-sdk/client-api-gateway';
import { useService } from './helpers/fixture.js';
import { awsClient } from '../devtools/aws-client.js';

describe('paginateGetClientCertificates while certificates are created and deleted (real worker, AWS SDK)', () => {
  const fx = useService({ workers: 1 });
  let client: APIGatewayClient;

  before(() => {
    client = awsClient(fx.svc.api.url);
  });
  after(() => {
    client.destroy();
  });

  const generate = async () =>
    (await client.send(new GenerateClientCertificateCommand({ description: 'paging' }))).clientCertificateId!;
  const remove = (id: string) => client.send(new DeleteClientCertificateCommand({ clientCertificateId: id }));

  it('never repeats or skips a certificate that existed for the whole walk', async () => {
    const initial: string[] = [];
    for (let i = 0; i < 8; i++) initial.push(await generate());
    const deletedDuringWalk = new Set<string>();
    const createdDuringWalk = new Set<string>();

    // Background churn for the whole walk: create one, delete one of those, again and again.
    let walking = true;
    const churn = (async () => {
      while (walking) {
        const id = await generate();
        createdDuringWalk.add(id);
        if (walking) {
          await remove(id);
          deletedDuringWalk.add(id);
        }
      }
    })();

    const seen: string[] = [];
    let pages = 0;
    try {
      for await (const page of paginateGetClientCertificates({ client, pageSize: 2 }, {})) {
        pages++;
        const ids = (page.items ?? []).map((c) => c.clientCertificateId!);
        seen.push(...ids);
        // Between pages, deterministically: delete a certificate this walk already returned (with an
        // offset cursor that shifts every later certificate one place back, so one would be skipped)
        // and create a new one (which lands before or after the cursor by its random id).
        // At most 3 such deletions, so at least 5 of the 8 initial certificates exist for the whole walk.
        const already = ids.find((id) => initial.includes(id) && !deletedDuringWalk.has(id));
        if (already && initial.filter((id) => deletedDuringWalk.has(id)).length < 3) {
          await remove(already);
          deletedDuringWalk.add(already);
        }
        createdDuringWalk.add(await generate());
      }
    } finally {
      walking = false;
      await churn;
    }

    assert.ok(pages > 2, `walked ${pages} pages`);
    assert.ok(
      deletedDuringWalk.size >= 2 && createdDuringWalk.size >= 3,
      'the set really changed during the walk',
    );
    assert.equal(new Set(seen).size, seen.length, `no certificate repeated: ${seen.join(' ')}`);
    assert.deepEqual(seen, [...seen].sort(), 'pages come in id order');
    const stable = initial.filter((id) => !deletedDuringWalk.has(id));
    assert.ok(stable.length >= 5, `${stable.length} certificates existed for the whole walk`);
    for (const id of stable)
      assert.ok(seen.includes(id), `certificate ${id} that existed for the whole walk was skipped`);
    for (const id of seen) {
      assert.ok(initial.includes(id) || createdDuringWalk.has(id), `${id} is a certificate that existed`);
    }
  });
});
