/**
 * The metadata store's contract as clients see it, run on every adapter pair (the `embedded`,
 * `postgres` and `s3` test projects): the races one SQLite writer hides and a pool of PostgreSQL
 * connections shows, ids of 1,024 four-byte characters, and the readiness ping.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openMetaStore } from '../src/store/open.js';
import { expectApiError, expectOk, getStats, type ImageResult } from './helpers/api.js';
import { jsonRequest, listKeys } from './helpers/delivery.js';
import { META_ON_POSTGRES, createTestDatabase } from './helpers/postgres.js';
import { fixture, type TestServer, tempDir, upload, useServer } from './helpers/server.js';

function tinyFile(name = 'a.jpg'): File {
  return new File([fixture('320x240.jpg')], name);
}

describe('races on one account, many connections', () => {
  const h = useServer();

  it('ten concurrent deletes of one image: one 200, nine 404, the count drops by exactly one', async () => {
    const t: TestServer = h.t;
    const image = await expectOk<ImageResult>(await upload(t, { file: tinyFile() }));
    const before = (await getStats(t)).current;
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => fetch(`${t.imagesUrl}/v1/${image.id}`, { method: 'DELETE', headers: t.auth })),
    );
    expect(answers.map((r) => r.status).sort()).toEqual([200, 404, 404, 404, 404, 404, 404, 404, 404, 404]);
    expect((await getStats(t)).current).toBe(before - 1);
  });

  it('concurrent variant creates cannot pass the cap of 100', async () => {
    const t = h.t;
    const body = (id: string): unknown => ({ id, options: { width: 10, height: 10 } });
    for (let i = 0; i < 97; i++) await expectOk(await jsonRequest(t, 'POST', '/v1/variants', body(`v${i}`)));
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => jsonRequest(t, 'POST', '/v1/variants', body(`race${i}`))));
    expect(answers.filter((r) => r.status === 200)).toHaveLength(2);
    for (const res of answers.filter((r) => r.status !== 200)) await expectApiError(res, 400, 5400);
    const list = await expectOk<{ variants: Record<string, unknown> }>(await jsonRequest(t, 'GET', '/v1/variants'));
    expect(Object.keys(list.variants)).toHaveLength(100);
  });

  it('concurrent creates of one variant name: one 200, the others 409 5409 (never a raw 500)', async () => {
    // Room under the cap, so only the name can collide.
    for (let i = 0; i < 6; i++) await expectOk(await jsonRequest(h.t, 'DELETE', `/v1/variants/v${i}`));
    const creates = await Promise.all(
      Array.from({ length: 6 }, () => jsonRequest(h.t, 'POST', '/v1/variants', { id: 'same', options: { width: 5 } })),
    );
    expect(creates.filter((r) => r.status === 200)).toHaveLength(1);
    for (const res of creates.filter((r) => r.status !== 200)) await expectApiError(res, 409, 5409);
  });

  it('concurrent PUTs of one signing-key name all succeed and leave one key of that name', async () => {
    const answers = await Promise.all(Array.from({ length: 8 }, () => jsonRequest(h.t, 'PUT', '/v1/keys/rotating')));
    expect(answers.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect((await listKeys(h.t)).filter((k) => k.name === 'rotating')).toHaveLength(1);
  });

  it('concurrent PUTs of new key names stop at 10 keys', async () => {
    const have = (await listKeys(h.t)).length;
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => jsonRequest(h.t, 'PUT', `/v1/keys/extra${i}`)));
    expect(answers.filter((r) => r.status === 200)).toHaveLength(10 - have);
    expect(await listKeys(h.t)).toHaveLength(10);
  });

  it('deleting every key at once never leaves the account without one', async () => {
    const names = (await listKeys(h.t)).map((k) => k.name);
    const answers = await Promise.all(names.map((name) => jsonRequest(h.t, 'DELETE', `/v1/keys/${name}`)));
    expect(answers.every((r) => r.status === 200)).toBe(true);
    const left = await listKeys(h.t);
    expect(left.length).toBeGreaterThanOrEqual(1);
  });
});

describe('long ids', () => {
  const h = useServer();

  it('a custom id of 1,024 different 4-byte UTF-8 characters uploads, reads, lists and deletes', async () => {
    // Different code points, so the index entry cannot be compressed under PostgreSQL's 2,704-byte limit.
    const id = Array.from({ length: 1024 }, (_, i) => String.fromCodePoint(0x20000 + ((i * 7919) % 40000))).join('');
    expect(Buffer.byteLength(id)).toBe(4096);
    const image = await expectOk<ImageResult>(await upload(h.t, { file: tinyFile(), id }));
    expect(image.id).toBe(id);
    const got = await expectOk<ImageResult>(await fetch(`${h.t.imagesUrl}/v1/${encodeURIComponent(id)}`, { headers: h.t.auth }));
    expect(got.id).toBe(id);
    await expectApiError(await upload(h.t, { file: tinyFile(), id }), 409, 5409);
    const list = await expectOk<{ images: ImageResult[] }>(await fetch(`${h.t.imagesUrl}/v2`, { headers: h.t.auth }));
    expect(list.images.map((i) => i.id)).toContain(id);
    await expectOk(await fetch(`${h.t.imagesUrl}/v1/${encodeURIComponent(id)}`, { method: 'DELETE', headers: h.t.auth }));
  });
});


describe('ping (readiness)', () => {
  it('answers while the store is open and fails once it is closed', async () => {
    const dir = tempDir();
    const database = META_ON_POSTGRES ? await createTestDatabase() : undefined;
    try {
      const meta = await openMetaStore({ dataDir: dir, database: database && { url: database.url, poolSize: 2, migrate: true } });
      try {
        await expect(meta.ping()).resolves.toBeUndefined();
      } finally {
        await meta.close();
      }
      await expect(meta.ping()).rejects.toThrow();
    } finally {
      await database?.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('batch tokens', () => {
  it('counts requests per token and second, and forgets expired tokens and past windows', async () => {
    const dir = tempDir();
    const database = META_ON_POSTGRES ? await createTestDatabase() : undefined;
    try {
      const meta = await openMetaStore({ dataDir: dir, database: database && { url: database.url, poolSize: 4, migrate: true } });
      try {
        const account = 'ba7cba7cba7cba7cba7cba7cba7cba7c';
        await meta.createAccount(
          { id: account, hash: 'batchhash0000000000000', createdAt: 0, flexibleVariants: false, browserTtl: 172800 },
          {
            variant: { accountId: account, name: 'public', options: { fit: 'scale-down', width: 1366, height: 768, metadata: 'none' }, neverRequireSignedUrls: false, version: 1 },
            signingKey: { accountId: account, name: 'default', value: 'k'.repeat(44), createdAt: 0 },
          },
        );
        await meta.insertBatchToken({ tokenHash: 'a'.repeat(64), accountId: account, permission: 'images:write', createdAt: 1_000, expiresAt: 2_000 });
        await meta.insertBatchToken({ tokenHash: 'b'.repeat(64), accountId: account, permission: 'images:read', createdAt: 1_000, expiresAt: 9_000_000 });
        // Concurrent counts of one window are each counted once.
        const counts = await Promise.all(Array.from({ length: 10 }, () => meta.countBatchRequest('a'.repeat(64), 1)));
        expect([...counts].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        expect(await meta.countBatchRequest('a'.repeat(64), 2)).toBe(1);
        expect(await meta.removeExpiredBatchTokens(3_000)).toBe(1);
        expect(await meta.findBatchToken('a'.repeat(64))).toBeUndefined();
        expect(await meta.findBatchToken('b'.repeat(64))).toMatchObject({ accountId: account, permission: 'images:read', expiresAt: 9_000_000 });
        // Windows before the cut-off (in seconds) are gone: counting starts again.
        expect(await meta.countBatchRequest('a'.repeat(64), 1)).toBe(1);
      } finally {
        await meta.close();
      }
    } finally {
      await database?.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
