import assert from 'node:assert/strict';
import { NOT_FOUND } from '../model/client-certificates-model.js';

/** Asserts that `p` rejects with exactly this HTTP status, exception name and message, as the SDK surfaces them. */
export async function rejectsWith(
  p: Promise<unknown>,
  status: number,
  name: string,
  message: string,
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    assert.equal(e.$metadata?.httpStatusCode, status, `status of ${e.name}: ${e.message}`);
    assert.equal(e.name, name);
    assert.equal(e.message, message);
    return true;
  });
}

/** Asserts that `p` rejects as AWS answers an id that does not exist (or is another tenant's): 404 NotFoundException. */
export function rejectsNotFound(p: Promise<unknown>): Promise<void> {
  return rejectsWith(p, 404, 'NotFoundException', NOT_FOUND);
}
