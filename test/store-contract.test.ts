/**
 * The metadata store's contract as clients see it, run on every adapter pair (the `embedded`,
 * `postgres` and `s3` test projects): the races one SQLite writer hides and a pool of PostgreSQL
 * connections shows, ids of 1,024 four-byte characters, and the readiness ping.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AlertPolicy, ClaimedDelivery, WebhookAttempt, WebhookDestination } from '../src/domain/model.js';
import { openMetaStore } from '../src/store/open.js';
import type { MetaStore, NotificationFanOut } from '../src/store/ports.js';
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

/** A fresh store (SQLite, or a database of its own on PostgreSQL) holding one account, closed afterwards. */
async function withStore(account: string, work: (meta: MetaStore) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const database = META_ON_POSTGRES ? await createTestDatabase() : undefined;
  try {
    const meta = await openMetaStore({ dataDir: dir, database: database && { url: database.url, poolSize: 4, migrate: true } });
    try {
      await meta.createAccount(
        { id: account, hash: `${account.slice(0, 8)}hash00000000000000`, createdAt: 0, flexibleVariants: false, browserTtl: 172800 },
        {
          variant: { accountId: account, name: 'public', options: { fit: 'scale-down', width: 1366, height: 768, metadata: 'none' }, neverRequireSignedUrls: false, version: 1 },
          signingKey: { accountId: account, name: 'default', value: 'k'.repeat(44), createdAt: 0 },
        },
      );
      await work(meta);
    } finally {
      await meta.close();
    }
  } finally {
    await database?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('batch tokens', () => {
  it('counts requests per token and second, and forgets expired tokens and past windows', async () => {
    const account = 'ba7cba7cba7cba7cba7cba7cba7cba7c';
    await withStore(account, async (meta) => {
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
    });
  });
});

describe('webhook outbox', () => {
  const account = 'ab0cab0cab0cab0cab0cab0cab0cab0c';
  const destination = (id: string): WebhookDestination => ({
    id,
    accountId: account,
    name: id,
    url: `http://example.com/${id}`,
    secret: null,
    signingSecret: 'sign',
    createdAt: 0,
    lastSuccess: null,
    lastFailure: null,
  });
  const policy = (id: string, webhookIds: string[], enabled = true): AlertPolicy => ({
    id,
    accountId: account,
    name: `policy ${id}`,
    description: '',
    alertType: 'image_notification',
    enabled,
    alertInterval: null,
    filters: {},
    webhookIds,
    createdAt: 0,
    modifiedAt: 0,
  });
  /** An event fanned out to its subscribers, due at `at`. */
  const event = (eventId: string, at = 0): NotificationFanOut<undefined> => ({
    alertType: 'image_notification',
    build: (subscriptions) =>
      subscriptions.map((s) => ({
        id: randomUUID(),
        accountId: account,
        destinationId: s.destinationId,
        policyId: s.policyId,
        eventId,
        alertType: 'image_notification',
        body: JSON.stringify({ eventId, policy: s.policyName }),
        attempts: 0,
        createdAt: at,
        nextAttemptAt: at,
      })),
  });
  const attemptOf = (delivery: ClaimedDelivery, statusCode: number | null, at: number): WebhookAttempt => ({
    id: randomUUID(),
    deliveryId: delivery.id,
    destinationId: delivery.destinationId,
    eventId: delivery.eventId,
    attemptedAt: at,
    statusCode,
    error: statusCode === 200 ? null : 'failed',
    durationMs: 5,
  });

  it('fans out to enabled policies only; concurrent claims never share a delivery; lost claims are ignored', async () => {
    await withStore(account, async (meta) => {
      const store = meta.notifications;
      await store.insertWebhookDestination(destination('d1'.padEnd(32, '0')), 100);
      await store.insertWebhookDestination(destination('d2'.padEnd(32, '0')), 100);
      await store.insertAlertPolicy(policy('p-on', ['d1'.padEnd(32, '0'), 'd2'.padEnd(32, '0')]), 100);
      await store.insertAlertPolicy(policy('p-off', ['d1'.padEnd(32, '0')], false), 100);
      expect(await store.enqueue(account, { ...event('none'), alertType: 'other_type' })).toBe(0);
      for (let i = 0; i < 10; i++) expect(await store.enqueue(account, event(`e${i}`))).toBe(2);

      // Eight claimers at once, as eight nodes would: each of the 20 deliveries goes to exactly one.
      const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => store.claimDueDeliveries(100, 10_000, `node${i}`, 5)));
      const ids = claims.flat().map((d) => d.id);
      expect(new Set(ids).size).toBe(ids.length);
      const rest = await store.claimDueDeliveries(100, 10_000, 'late', 100);
      expect(ids.length + rest.length).toBe(20);
      expect(await store.claimDueDeliveries(100, 10_000, 'again', 100)).toHaveLength(0);

      // Claims lapse: another node takes the delivery, and the first node's late result is ignored.
      const first = claims.flat()[0] as ClaimedDelivery;
      const retaken = await store.claimDueDeliveries(20_000, 30_000, 'taker', 100);
      expect(retaken.map((d) => d.id)).toContain(first.id);
      expect(await store.finishAttempt(first, attemptOf(first, 200, 20_001), { kind: 'delivered' })).toBe(false);
      const mine = retaken.find((d) => d.id === first.id) as ClaimedDelivery;
      expect(mine).toMatchObject({ url: first.url, signingSecret: 'sign', secret: null });
      expect(await store.finishAttempt(mine, attemptOf(mine, 500, 20_002), { kind: 'retry', at: 25_000 })).toBe(true);
      const other = retaken.filter((d) => d.id !== first.id);
      for (const d of other) await store.finishAttempt(d, attemptOf(d, 200, 20_003), { kind: 'delivered' });

      // The retry is due at 25 000, not before; delivered ones never come back.
      expect(await store.claimDueDeliveries(24_999, 40_000, 'n', 100)).toHaveLength(0);
      const retry = await store.claimDueDeliveries(25_000, 40_000, 'n', 100);
      expect(retry.map((d) => [d.id, d.attempts])).toEqual([[first.id, 1]]);
      await store.finishAttempt(retry[0] as ClaimedDelivery, attemptOf(retry[0] as ClaimedDelivery, 200, 25_001), { kind: 'delivered' });

      const attempts = await store.listWebhookAttempts(account, first.destinationId, 100);
      expect(attempts.filter((a) => a.deliveryId === first.id).map((a) => a.statusCode)).toEqual([200, 500]);
      const dest = await store.findWebhookDestination(account, first.destinationId);
      expect(dest).toMatchObject({ lastSuccess: expect.any(Number), lastFailure: 20_002 });
      const sent = await store.listSentNotifications(account, { since: 0, before: 100_000 }, 0, 5);
      expect(sent.total).toBe(20);
      expect(sent.items).toHaveLength(5);
      expect(sent.items[0]).toMatchObject({ policyId: 'p-on', policyName: 'policy p-on', alertType: 'image_notification' });
    });
  });

  it('a released claim is due at once; deleting a destination takes its deliveries, attempts and policy links', async () => {
    await withStore(account, async (meta) => {
      const store = meta.notifications;
      const d1 = 'e1'.padEnd(32, '0');
      await store.insertWebhookDestination(destination(d1), 100);
      await store.insertAlertPolicy(policy('p1', [d1]), 100);
      await store.enqueue(account, event('x'));
      const [claimed] = await store.claimDueDeliveries(0, 1_000_000, 'dead node', 10);
      expect(claimed).toBeDefined();
      expect(await store.releaseClaims()).toBe(1);
      const [again] = await store.claimDueDeliveries(1, 1_000_000, 'restarted', 10);
      expect(again?.id).toBe(claimed?.id);
      await store.finishAttempt(again as ClaimedDelivery, attemptOf(again as ClaimedDelivery, 500, 2), { kind: 'retry', at: 10 });

      expect(await store.deleteWebhookDestination(account, d1)).toBe(true);
      expect(await store.deleteWebhookDestination(account, d1)).toBe(false);
      expect((await store.findAlertPolicy(account, 'p1'))?.webhookIds).toEqual([]);
      expect(await store.claimDueDeliveries(100, 1000, 'n', 10)).toHaveLength(0);
      expect(await store.listWebhookAttempts(account, d1, 10)).toHaveLength(0);

      // Caps hold under concurrent creates (the count is taken under the account's lock).
      const created = await Promise.all(Array.from({ length: 8 }, (_, i) => store.insertWebhookDestination(destination(`c${i}`.padEnd(32, '0')), 3)));
      expect(created.filter(Boolean)).toHaveLength(3);
      for (const hook of await store.listWebhookDestinations(account)) await store.deleteWebhookDestination(account, hook.id);

      // Pruning keeps the newest attempts per destination and forgets finished deliveries past the cut-off.
      const d2 = 'e2'.padEnd(32, '0');
      await store.insertWebhookDestination(destination(d2), 100);
      await store.replaceAlertPolicy({ ...policy('p1', [d2]), modifiedAt: 5 });
      for (let i = 0; i < 4; i++) {
        await store.enqueue(account, event(`p${i}`, 1000 + i));
        const [d] = await store.claimDueDeliveries(2000, 3000, 'n', 1);
        await store.finishAttempt(d as ClaimedDelivery, attemptOf(d as ClaimedDelivery, 200, 2000 + i), { kind: 'delivered' });
      }
      await store.prune(0, 2);
      expect((await store.listWebhookAttempts(account, d2, 10)).map((a) => a.attemptedAt)).toEqual([2003, 2002]);
      await store.prune(1_000_000, 2);
      expect((await store.listSentNotifications(account, { since: 0, before: 1_000_000 }, 0, 10)).total).toBe(0);
    });
  });
});
