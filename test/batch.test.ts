/**
 * Batch tokens and the batch host (Cloudflare's Images batch API): `GET …/images/v1/batch_token`, then the
 * image routes under the batch prefix without the account in the path. The official SDK is driven
 * through the batch host by rewriting its request paths (the SDK has no batch client), so the same
 * calls check the same wire. Expiry uses an injected clock; the per-token rate limit is checked on one
 * node and, with PostgreSQL, across two nodes of one database.
 */
import Cloudflare, { NotFoundError, PermissionDeniedError } from 'cloudflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliOk, lastLine } from './helpers/cli.js';
import { startClockServer, testClock } from './helpers/clock-server.js';
import { fixture, startTestServer, type TestServer, useServer } from './helpers/server.js';
import { META_ON_POSTGRES } from './helpers/postgres.js';

interface Envelope<T> {
  success: boolean;
  errors: Array<{ code: number; message: string }>;
  result: T;
}

async function mint(t: TestServer, auth = t.auth): Promise<{ token: string; expiresAt: string }> {
  const res = await fetch(`${t.imagesUrl}/v1/batch_token`, { headers: auth });
  const body = (await res.json()) as Envelope<{ token: string; expiresAt: string }>;
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.result;
}

/** The SDK, with every `/accounts/<id>/images/…` request sent to `<batch>/images/…` with the batch token. */
function batchSdk(t: TestServer, batchToken: string): Cloudflare {
  const accountPath = `/client/v4/accounts/${t.accountId}/images/`;
  return new Cloudflare({
    apiToken: batchToken,
    apiKey: null,
    apiEmail: null,
    userServiceKey: null,
    baseURL: `${t.url}/client/v4`,
    maxRetries: 0,
    fetch: (input, init) => fetch(String(input instanceof Request ? input.url : input).replace(accountPath, '/batch/images/'), init),
  });
}

function batchFetch(t: TestServer, token: string, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${t.url}/batch${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) } });
}

describe('batch tokens and the batch host', () => {
  const s = useServer();
  const account = () => ({ account_id: s.t.accountId });

  it('mints a token that expires in an hour', async () => {
    const { token, expiresAt } = await mint(s.t);
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(Math.abs(Date.parse(expiresAt) - (Date.now() + 3_600_000))).toBeLessThan(60_000);
  });

  it('the SDK works through the batch host: upload, details, edit, v2 list, direct upload, delete', async () => {
    const cf = batchSdk(s.t, (await mint(s.t)).token);
    const created = await cf.images.v1.create({
      ...account(),
      file: await Cloudflare.toFile(fixture('320x240.jpg'), 'batch.jpg'),
      id: 'batch/one',
      metadata: { via: 'batch' },
    });
    expect(created).toMatchObject({ id: 'batch/one', filename: 'batch.jpg', meta: { via: 'batch' } });
    expect(await cf.images.v1.get('batch/one', account())).toMatchObject({ id: 'batch/one' });
    expect(await cf.images.v1.edit('batch/one', { ...account(), metadata: { edited: true } })).toMatchObject({ meta: { edited: true } });
    const listed = await cf.images.v2.list(account());
    expect(listed.images?.map((image) => image.id)).toContain('batch/one');
    const direct = await cf.images.v2.directUploads.create(account());
    const form = new FormData();
    form.append('file', new File([fixture('with-alpha.png')], 'direct.png'));
    expect((await fetch(direct.uploadURL ?? '', { method: 'POST', body: form })).status).toBe(200);
    await cf.images.v1.delete('batch/one', account());
    await expect(cf.images.v1.get('batch/one', account())).rejects.toBeInstanceOf(NotFoundError);
    // The same image, seen through the account routes.
    const viaAccount = await fetch(`${s.t.imagesUrl}/v1/${direct.id}`, { headers: s.t.auth });
    expect(((await viaAccount.json()) as Envelope<{ filename: string }>).result.filename).toBe('direct.png');
  });

  it('only batch tokens open it; a read-only token\'s batch token reads but cannot write; routes outside the batch API are 7003', async () => {
    const apiToken = await batchFetch(s.t, s.t.token, '/images/v2');
    expect([apiToken.status, ((await apiToken.json()) as Envelope<null>).errors[0]?.code]).toEqual([403, 10000]);
    const readOnly = lastLine((await cliOk(['token', 'create', '--account', s.t.accountId, '--permission', 'images:read'], s.t.storeEnv)).stdout);
    const { token } = await mint(s.t, { authorization: `Bearer ${readOnly}` });
    expect((await batchFetch(s.t, token, '/images/v2')).status).toBe(200);
    const cf = batchSdk(s.t, token);
    await expect(cf.images.v1.create({ ...account(), file: await Cloudflare.toFile(fixture('320x240.jpg'), 'x.jpg') })).rejects.toBeInstanceOf(PermissionDeniedError);
    const unknown = await batchFetch(s.t, token, '/images/v3');
    expect([unknown.status, ((await unknown.json()) as Envelope<null>).errors[0]?.code]).toEqual([404, 7003]);
    // Stats and blobs are not batch routes: `stats` reads as an image id there (none can have it).
    const stats = await batchFetch(s.t, token, '/images/v1/stats');
    expect([stats.status, ((await stats.json()) as Envelope<null>).errors[0]?.code]).toEqual([404, 5404]);
  });
});

describe('batch token expiry and rate limit', () => {
  it('a token stops working when it expires', async () => {
    const clock = testClock();
    const t = await startClockServer(clock);
    try {
      const { token } = await mint(t);
      expect((await batchFetch(t, token, '/images/v2')).status).toBe(200);
      clock.advance(3_600_001);
      const expired = await batchFetch(t, token, '/images/v2');
      expect([expired.status, ((await expired.json()) as Envelope<null>).errors[0]?.code]).toEqual([403, 10000]);
    } finally {
      await t.stop();
    }
  });

  it('a token makes at most PICTOR_BATCH_RATE requests a second: the rest get 429 code 971 with Retry-After', async () => {
    const clock = testClock(Math.floor(Date.now() / 1000) * 1000);
    const t = await startClockServer(clock, { PICTOR_BATCH_RATE: '5' });
    try {
      const { token } = await mint(t);
      const answers = await Promise.all(Array.from({ length: 8 }, () => batchFetch(t, token, '/images/v2')));
      const refused = answers.filter((res) => res.status === 429);
      expect(answers.filter((res) => res.status === 200)).toHaveLength(5);
      expect(refused).toHaveLength(3);
      expect(refused[0]?.headers.get('retry-after')).toBe('1');
      expect(((await refused[0]?.json()) as Envelope<null>).errors[0]?.code).toBe(971);
      // Another token has its own budget; the next second the first one works again.
      expect((await batchFetch(t, (await mint(t)).token, '/images/v2')).status).toBe(200);
      clock.advance(1000);
      expect((await batchFetch(t, token, '/images/v2')).status).toBe(200);
    } finally {
      await t.stop();
    }
  });
});

describe.runIf(META_ON_POSTGRES)('batch rate limit across two nodes of one database', () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    a = await startTestServer({ PICTOR_BATCH_RATE: '6' });
    b = await startTestServer({
      PICTOR_BATCH_RATE: '6',
      PICTOR_DATABASE_URL: a.storeEnv.PICTOR_DATABASE_URL ?? '',
      PICTOR_BOOTSTRAP_ACCOUNT_ID: a.accountId,
      PICTOR_BOOTSTRAP_TOKEN: a.token,
      ...(a.storeEnv.PICTOR_STORAGE_URL !== undefined && { PICTOR_STORAGE_URL: a.storeEnv.PICTOR_STORAGE_URL }),
    });
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('a token minted on one node works on the other, and the two share its budget', async () => {
    const { token } = await mint(a);
    // Within one second (retried if the second turns over while sending).
    for (let attempt = 0; attempt < 5; attempt++) {
      const started = Math.floor(Date.now() / 1000);
      const answers = await Promise.all([...Array.from({ length: 5 }, () => batchFetch(a, token, '/images/v2')), ...Array.from({ length: 5 }, () => batchFetch(b, token, '/images/v2'))]);
      if (Math.floor(Date.now() / 1000) !== started) {
        await new Promise((resolve) => setTimeout(resolve, 1100));
        continue;
      }
      expect(answers.filter((res) => res.status === 200)).toHaveLength(6);
      expect(answers.filter((res) => res.status === 429)).toHaveLength(4);
      return;
    }
    throw new Error('could not send ten requests within one second');
  });
});
