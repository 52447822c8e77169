import assert from 'node:assert/strict';

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
