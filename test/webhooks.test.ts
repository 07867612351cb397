/**
 * Webhooks for direct creator uploads, configured as on Cloudflare through the SDK's `alerting` calls
 * (webhook destinations and an `image_notification` policy), received by a real HTTP endpoint on
 * loopback: the test message on create, `cf-webhook-auth`, Pictor's signature, success and failure
 * events, retries after 500s with the attempts readable through the API, the notification history,
 * the SSRF rules, events surviving kill -9 between an upload's completion and its delivery, and (on
 * PostgreSQL) two nodes sharing one outbox without both sending an event.
 */
import fs from 'node:fs';
import Cloudflare, { BadRequestError, NotFoundError } from 'cloudflare';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { nextAttemptAt } from '../src/domain/notifications/webhook-dispatcher.js';
import { type ChildServer, killAllChildServers, spawnServer } from './helpers/child-server.js';
import { cliOk, lastLine } from './helpers/cli.js';
import { META_ON_POSTGRES } from './helpers/postgres.js';
import { fixture, randomAccountId, startTestServer, tempDir, type TestServer } from './helpers/server.js';
import { type ReceivedWebhook, type WebhookReceiver, freePort, signatureValid, startReceiver } from './helpers/webhook-receiver.js';

/** Fast retries and polling, loopback receivers allowed. */
const WEBHOOK_ENV = {
  PICTOR_ALLOW_PRIVATE_URLS: 'true',
  PICTOR_WEBHOOK_POLL_MS: '100',
  PICTOR_WEBHOOK_RETRY_BASE_MS: '200',
  PICTOR_WEBHOOK_RETRY_MAX_MS: '1000',
  PICTOR_WEBHOOK_TIMEOUT_MS: '2000',
};

function sdk(url: string, token: string): Cloudflare {
  return new Cloudflare({ apiToken: token, apiKey: null, apiEmail: null, userServiceKey: null, baseURL: `${url}/client/v4`, maxRetries: 0 });
}

interface Hooked {
  webhookId: string;
  policyId: string;
}

/** A destination at the receiver and an enabled Images policy sending to it, through the SDK. */
async function subscribe(cf: Cloudflare, accountId: string, receiver: WebhookReceiver, secret = 'receiver-secret'): Promise<Hooked> {
  const created = await cf.alerting.destinations.webhooks.create({ account_id: accountId, name: 'uploads', url: receiver.url, secret });
  const policy = await cf.alerting.policies.create({
    account_id: accountId,
    name: 'Image uploads',
    description: 'direct uploads of the test',
    alert_type: 'image_notification',
    enabled: true,
    mechanisms: { webhooks: [{ id: created.id as string }] },
  });
  return { webhookId: created.id as string, policyId: policy.id as string };
}

/** Mints a direct-upload URL and sends `bytes` to it; returns the image id and the upload's status. */
async function directUpload(cf: Cloudflare, accountId: string, bytes: Buffer, name = 'photo.jpg'): Promise<{ id: string; status: number; uploadURL: string }> {
  const minted = await cf.images.v2.directUploads.create({ account_id: accountId, metadata: { from: 'webhook test' } });
  const status = await postFile(minted.uploadURL as string, bytes, name);
  return { id: minted.id as string, status, uploadURL: minted.uploadURL as string };
}

async function postFile(uploadURL: string, bytes: Buffer, name: string): Promise<number> {
  const form = new FormData();
  form.append('file', new File([bytes], name));
  const res = await fetch(uploadURL, { method: 'POST', body: form });
  await res.arrayBuffer();
  return res.status;
}

async function eventsFor(receiver: WebhookReceiver, imageId: string, count = 1): Promise<ReceivedWebhook[]> {
  let found: ReceivedWebhook[] = [];
  await expect
    .poll(() => {
      found = receiver.events().filter((event) => event.body.data?.image_id === imageId);
      return found.length;
    })
    .toBeGreaterThanOrEqual(count);
  return found;
}

describe('webhook destinations and policies through the SDK', () => {
  let t: TestServer;
  let receiver: WebhookReceiver;
  let cf: Cloudflare;
  const account = () => ({ account_id: t.accountId });

  beforeAll(async () => {
    t = await startTestServer(WEBHOOK_ENV);
    receiver = await startReceiver();
    cf = sdk(t.url, t.token);
  });
  afterAll(async () => {
    await t.stop();
    await receiver.close();
    fs.rmSync(t.dataDir, { recursive: true, force: true });
  });

  it('creating a destination sends it a test message with cf-webhook-auth and a valid signature', async () => {
    const before = receiver.received.length;
    const created = await cf.alerting.destinations.webhooks.create({ ...account(), name: 'Test hook', url: receiver.url, secret: 's3cret' });
    expect(created.id).toMatch(/^[0-9a-f]{32}$/);
    const test = receiver.received[before] as ReceivedWebhook;
    expect(receiver.received).toHaveLength(before + 1);
    expect(test.headers['content-type']).toBe('application/json');
    expect(test.headers['cf-webhook-auth']).toBe('s3cret');
    expect(test.body.text).toMatch(/^Hello World! This is a test message/);
    expect(test.body.account_id).toBe(t.accountId);
    expect(signatureValid(test, 's3cret')).toBe(true);
    expect(Math.abs(Number(test.headers['pictor-webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);

    const got = await cf.alerting.destinations.webhooks.get(created.id as string, account());
    expect(got).toMatchObject({ id: created.id, name: 'Test hook', url: receiver.url, type: 'generic' });
    expect(Date.parse(got.created_at as string)).toBeGreaterThan(Date.now() - 60_000);
    expect(got).not.toHaveProperty('secret');
    const listed = [];
    for await (const hook of cf.alerting.destinations.webhooks.list(account())) listed.push(hook);
    expect(listed.map((h) => h.id)).toContain(created.id);

    // Update: tested again at the new URL; the secret given replaces the old one.
    const other = await startReceiver();
    try {
      await cf.alerting.destinations.webhooks.update(created.id as string, { ...account(), name: 'Renamed', url: other.url, secret: 'new-secret' });
      expect(other.received).toHaveLength(1);
      expect(other.received[0]?.headers['cf-webhook-auth']).toBe('new-secret');
      expect(signatureValid(other.received[0] as ReceivedWebhook, 'new-secret')).toBe(true);
      expect(await cf.alerting.destinations.webhooks.get(created.id as string, account())).toMatchObject({ name: 'Renamed', url: other.url });
    } finally {
      await other.close();
    }

    const deleted = await cf.alerting.destinations.webhooks.delete(created.id as string, account());
    expect(deleted.success).toBe(true);
    const gone = await cf.alerting.destinations.webhooks.get(created.id as string, account()).catch((error: unknown) => error);
    expect(gone).toBeInstanceOf(NotFoundError);
    expect((gone as NotFoundError).errors[0]).toMatchObject({ code: 17001 });
  });

  it('without a secret: no cf-webhook-auth, and the generated signing secret is returned once', async () => {
    const before = receiver.received.length;
    const res = await fetch(`${t.url}/client/v4/accounts/${t.accountId}/alerting/v3/destinations/webhooks`, {
      method: 'POST',
      headers: { ...t.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'no secret', url: receiver.url }),
    });
    const body = (await res.json()) as { result: { id: string; signing_secret: string } };
    expect(res.status).toBe(200);
    expect(body.result.signing_secret).toMatch(/^[0-9a-f]{64}$/);
    const test = receiver.received[before] as ReceivedWebhook;
    expect(test.headers['cf-webhook-auth']).toBeUndefined();
    expect(signatureValid(test, body.result.signing_secret)).toBe(true);
    await cf.alerting.destinations.webhooks.delete(body.result.id, account());
  });

  it('credentials in the URL are sent as Basic auth, not in the request line', async () => {
    const before = receiver.received.length;
    const url = receiver.url.replace('http://', 'http://hook-user:pa%20ss@');
    const created = await cf.alerting.destinations.webhooks.create({ ...account(), name: 'basic', url });
    const test = receiver.received[before] as ReceivedWebhook;
    expect(test.headers.authorization).toBe(`Basic ${Buffer.from('hook-user:pa ss').toString('base64')}`);
    await cf.alerting.destinations.webhooks.delete(created.id as string, account());
  });

  it('a destination whose test message fails is not saved (400, code 17002)', async () => {
    receiver.script(500);
    const refused = await cf.alerting.destinations.webhooks
      .create({ ...account(), name: 'broken', url: receiver.url })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BadRequestError);
    expect((refused as BadRequestError).errors[0]).toMatchObject({ code: 17002 });
    expect((refused as BadRequestError).errors[0]?.message).toMatch(/HTTP 500/);
    const names = [];
    for await (const hook of cf.alerting.destinations.webhooks.list(account())) names.push(hook.name);
    expect(names).not.toContain('broken');

    const port = await freePort();
    const unreachable = await cf.alerting.destinations.webhooks
      .create({ ...account(), name: 'down', url: `http://127.0.0.1:${port}/` })
      .catch((error: unknown) => error);
    expect((unreachable as BadRequestError).errors[0]).toMatchObject({ code: 17002 });
    const notHttp = await cf.alerting.destinations.webhooks.create({ ...account(), name: 'ftp', url: 'ftp://example.com/' }).catch((error: unknown) => error);
    expect((notHttp as BadRequestError).errors[0]).toMatchObject({ code: 5400 });
  });

  it('available alerts and eligible destinations say what Pictor offers: image_notification, webhooks', async () => {
    const available = await cf.alerting.availableAlerts.list(account());
    expect(available).toEqual({ Images: [expect.objectContaining({ type: 'image_notification', display_name: 'Images' })] });
    const eligible = await cf.alerting.destinations.eligible.get(account());
    expect(eligible.webhooks).toEqual([{ eligible: true, ready: expect.any(Boolean), type: 'webhook' }]);
    expect(eligible.email).toEqual([{ eligible: false, ready: false, type: 'email' }]);
  });

  it('policies: create, get, list, update, delete; only image_notification and existing webhooks', async () => {
    const hook = await cf.alerting.destinations.webhooks.create({ ...account(), name: 'for policies', url: receiver.url });
    const created = await cf.alerting.policies.create({
      ...account(),
      name: 'Uploads',
      description: 'direct uploads',
      alert_type: 'image_notification',
      enabled: true,
      mechanisms: { webhooks: [{ id: hook.id as string }] },
    });
    expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
    const got = await cf.alerting.policies.get(created.id as string, account());
    expect(got).toMatchObject({
      id: created.id,
      name: 'Uploads',
      description: 'direct uploads',
      alert_type: 'image_notification',
      enabled: true,
      mechanisms: { webhooks: [{ id: hook.id }] },
    });
    await cf.alerting.policies.update(created.id as string, { ...account(), enabled: false });
    expect(await cf.alerting.policies.get(created.id as string, account())).toMatchObject({ enabled: false, name: 'Uploads' });
    const listed = [];
    for await (const policy of cf.alerting.policies.list(account())) listed.push(policy.id);
    expect(listed).toContain(created.id);

    const wrongType = await cf.alerting.policies
      .create({ ...account(), name: 'x', alert_type: 'universal_ssl_event_type', enabled: true, mechanisms: {} })
      .catch((error: unknown) => error);
    expect((wrongType as BadRequestError).errors[0]).toMatchObject({ code: 5400 });
    const unknownHook = await cf.alerting.policies
      .create({ ...account(), name: 'x', alert_type: 'image_notification', enabled: true, mechanisms: { webhooks: [{ id: 'f'.repeat(32) }] } })
      .catch((error: unknown) => error);
    expect((unknownHook as BadRequestError).errors[0]?.message).toMatch(/no webhook destination/);

    const deleted = await cf.alerting.policies.delete(created.id as string, account());
    expect(deleted.success).toBe(true);
    expect(await cf.alerting.policies.get(created.id as string, account()).catch((error: unknown) => error)).toBeInstanceOf(NotFoundError);
    await cf.alerting.destinations.webhooks.delete(hook.id as string, account());
  });

});

describe.runIf(!META_ON_POSTGRES)('one account never sees another account\'s webhooks', () => {
  it('listing, reading, changing and deleting across accounts: 403 on the path, 404 by id', async () => {
    // A second account made with the CLI before the server starts on the same data dir.
    const dataDir = tempDir();
    const otherId = 'abcdef0123456789abcdef0123456789';
    const env = { PICTOR_DATA_DIR: dataDir, PICTOR_LOG_LEVEL: 'warn' };
    await cliOk(['account', 'create', '--id', otherId], env);
    const otherToken = lastLine((await cliOk(['token', 'create', '--account', otherId, '--name', 'other'], env)).stdout);
    const t = await startTestServer({ ...WEBHOOK_ENV, PICTOR_DATA_DIR: dataDir });
    const receiver = await startReceiver();
    try {
      const mine = sdk(t.url, t.token);
      const theirs = sdk(t.url, otherToken);
      const hook = await mine.alerting.destinations.webhooks.create({ account_id: t.accountId, name: 'mine', url: receiver.url });
      const policy = await mine.alerting.policies.create({
        account_id: t.accountId,
        name: 'mine',
        alert_type: 'image_notification',
        enabled: true,
        mechanisms: { webhooks: [{ id: hook.id as string }] },
      });
      // Their token on my account's paths: refused.
      const res = await fetch(`${t.url}/client/v4/accounts/${t.accountId}/alerting/v3/destinations/webhooks`, { headers: { authorization: `Bearer ${otherToken}` } });
      expect(res.status).toBe(403);
      // My ids on their account's paths: not found, and their lists are empty.
      const other = { account_id: otherId };
      expect(await theirs.alerting.destinations.webhooks.get(hook.id as string, other).catch((e: unknown) => e)).toBeInstanceOf(NotFoundError);
      expect(await theirs.alerting.destinations.webhooks.delete(hook.id as string, other).catch((e: unknown) => e)).toBeInstanceOf(NotFoundError);
      expect(await theirs.alerting.policies.get(policy.id as string, other).catch((e: unknown) => e)).toBeInstanceOf(NotFoundError);
      const refused = await theirs.alerting.policies
        .create({ ...other, name: 'x', alert_type: 'image_notification', enabled: true, mechanisms: { webhooks: [{ id: hook.id as string }] } })
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(BadRequestError);
      const listed = [];
      for await (const h of theirs.alerting.destinations.webhooks.list(other)) listed.push(h);
      expect(listed).toHaveLength(0);
      // An upload of theirs is not sent to my webhook.
      const upload = await directUpload(theirs, otherId, fixture('320x240.jpg'));
      expect(upload.status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(receiver.events()).toHaveLength(0);
      expect((await mine.alerting.destinations.webhooks.get(hook.id as string, { account_id: t.accountId })).name).toBe('mine');
    } finally {
      await t.stop();
      await receiver.close();
    }
  }, 60_000);
});

describe('events of direct uploads', () => {
  let t: TestServer;
  let receiver: WebhookReceiver;
  let cf: Cloudflare;
  let hooked: Hooked;

  beforeAll(async () => {
    t = await startTestServer(WEBHOOK_ENV);
    receiver = await startReceiver();
    cf = sdk(t.url, t.token);
    hooked = await subscribe(cf, t.accountId, receiver);
  });
  afterEach(() => {
    receiver.fallback = 200;
  });
  afterAll(async () => {
    await t.stop();
    await receiver.close();
    fs.rmSync(t.dataDir, { recursive: true, force: true });
  });

  it('a completed upload posts one success event with the image record, signed', async () => {
    const upload = await directUpload(cf, t.accountId, fixture('320x240.jpg'));
    expect(upload.status).toBe(200);
    const [event] = await eventsFor(receiver, upload.id);
    const got = event as ReceivedWebhook;
    expect(got.headers['cf-webhook-auth']).toBe('receiver-secret');
    expect(signatureValid(got, 'receiver-secret')).toBe(true);
    expect(got.headers['pictor-webhook-id']).toBe(got.body.alert_correlation_id);
    const details = await cf.images.v1.get(upload.id, { account_id: t.accountId });
    expect(got.body).toMatchObject({
      name: 'Image uploads',
      policy_name: 'Image uploads',
      policy_id: hooked.policyId,
      alert_type: 'image_notification',
      account_id: t.accountId,
      data: { event: 'upload.success', status: 'success', account_id: t.accountId, image_id: upload.id },
    });
    expect(got.body.data?.image).toEqual(JSON.parse(JSON.stringify(details)));
    expect(got.body.text).toContain(upload.id);
    expect(Math.abs((got.body.ts as number) - Date.now() / 1000)).toBeLessThan(60);
    // Exactly one, even after a few more polls.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(receiver.events().filter((e) => e.body.data?.image_id === upload.id)).toHaveLength(1);
  });

  it('a refused file posts a failure event, and the URL still works afterwards', async () => {
    const minted = await cf.images.v2.directUploads.create({ account_id: t.accountId });
    const id = minted.id as string;
    expect(await postFile(minted.uploadURL as string, Buffer.from('not an image at all'), 'notes.txt')).toBe(415);
    const [failure] = await eventsFor(receiver, id);
    expect(failure?.body.data).toMatchObject({ event: 'upload.failure', status: 'failure', image_id: id, error: { code: 5455 } });
    expect(failure?.body.data).not.toHaveProperty('image');

    expect(await postFile(minted.uploadURL as string, fixture('320x240.jpg'), 'ok.jpg')).toBe(200);
    const events = await eventsFor(receiver, id, 2);
    expect(events.map((e) => e.body.data?.status).sort()).toEqual(['failure', 'success']);
  });

  it('one URL reports at most 5 failures (its holder could fail uploads at will), then its success', async () => {
    const minted = await cf.images.v2.directUploads.create({ account_id: t.accountId });
    const id = minted.id as string;
    for (let i = 0; i < 7; i++) expect(await postFile(minted.uploadURL as string, Buffer.from(`junk ${i}`), 'junk.txt')).toBe(415);
    expect(await postFile(minted.uploadURL as string, fixture('320x240.jpg'), 'ok.jpg')).toBe(200);
    const events = await eventsFor(receiver, id, 6);
    await new Promise((resolve) => setTimeout(resolve, 400));
    // Events are independent deliveries: their order of arrival is not guaranteed.
    expect(receiver.events().filter((e) => e.body.data?.image_id === id).map((e) => e.body.data?.status).sort()).toEqual([
      ...Array<string>(5).fill('failure'),
      'success',
    ]);
    expect(events).toHaveLength(6);
  });

  it('a receiver answering 500 gets the event again until it answers 200; attempts and history show it', async () => {
    receiver.script(500, 503);
    const upload = await directUpload(cf, t.accountId, fixture('320x240.jpg'));
    const events = await eventsFor(receiver, upload.id, 3);
    expect(events).toHaveLength(3);
    // The same event each time: one id, the same bytes.
    expect(new Set(events.map((e) => e.headers['pictor-webhook-id'])).size).toBe(1);
    expect(new Set(events.map((e) => e.raw)).size).toBe(1);
    // Backoff: the second retry waited longer than the first (200 ms, then 400 ms, ±20%).
    const [first, second, third] = events.map((e) => e.at) as [number, number, number];
    expect(second - first).toBeGreaterThanOrEqual(150);
    expect(third - second).toBeGreaterThanOrEqual(300);

    await expect
      .poll(async () => {
        const res = await fetch(`${t.url}/client/v4/accounts/${t.accountId}/alerting/v3/destinations/webhooks/${hooked.webhookId}/attempts?limit=10`, { headers: t.auth });
        const body = (await res.json()) as { result: Array<{ status_code: number | null; event_id: string; error: string | null }> };
        return body.result.filter((a) => a.event_id === events[0]?.headers['pictor-webhook-id']).map((a) => [a.status_code, a.error]);
      })
      .toEqual([
        [200, null],
        [503, 'HTTP 503'],
        [500, 'HTTP 500'],
      ]);
    const hook = await cf.alerting.destinations.webhooks.get(hooked.webhookId, { account_id: t.accountId });
    expect(Date.parse(hook.last_success as string)).toBeGreaterThanOrEqual(Date.parse(hook.last_failure as string));

    const history = [];
    for await (const sent of cf.alerting.history.list({ account_id: t.accountId, per_page: 100 })) history.push(sent);
    const entry = history.find((h) => h.alert_body?.includes(upload.id));
    expect(entry).toMatchObject({
      alert_type: 'image_notification',
      description: 'direct uploads of the test',
      mechanism: receiver.url,
      mechanism_type: 'webhook',
      name: 'Image uploads',
      policy_id: hooked.policyId,
    });
    expect(JSON.parse(entry?.alert_body as string)).toEqual(events[0]?.body);

    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    const count = (outcome: string): number => Number(new RegExp(`^pictor_webhook_attempts_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(metrics)?.[1]);
    expect(count('retry')).toBeGreaterThanOrEqual(2);
    expect(count('delivered')).toBeGreaterThanOrEqual(2);
    expect(count('failed')).toBe(0);
  });

  it('a receiver that does not answer in time is retried (the attempt says why)', async () => {
    receiver.fallback = 200;
    receiver.script('hang');
    const upload = await directUpload(cf, t.accountId, fixture('320x240.jpg'));
    const [first] = await eventsFor(receiver, upload.id, 2);
    // The second attempt is recorded just after the receiver answered it.
    await expect
      .poll(async () => {
        const res = await fetch(`${t.url}/client/v4/accounts/${t.accountId}/alerting/v3/destinations/webhooks/${hooked.webhookId}/attempts?limit=5`, { headers: t.auth });
        const attempts = ((await res.json()) as { result: Array<{ event_id: string; status_code: number | null; error: string | null }> }).result;
        return attempts.filter((a) => a.event_id === first?.headers['pictor-webhook-id']).map((a) => [a.status_code, a.error]);
      })
      .toEqual([
        [200, null],
        [null, 'the receiver did not answer in time'],
      ]);
  }, 30_000);

  it('a disabled policy sends nothing; a policy with two destinations sends to each once', async () => {
    await cf.alerting.policies.update(hooked.policyId, { account_id: t.accountId, enabled: false });
    const quiet = await directUpload(cf, t.accountId, fixture('320x240.jpg'));
    expect(quiet.status).toBe(200);

    const second = await startReceiver();
    try {
      const extra = await cf.alerting.destinations.webhooks.create({ account_id: t.accountId, name: 'second', url: second.url, secret: 'two' });
      await cf.alerting.policies.update(hooked.policyId, {
        account_id: t.accountId,
        enabled: true,
        mechanisms: { webhooks: [{ id: hooked.webhookId }, { id: extra.id as string }] },
      });
      const loud = await directUpload(cf, t.accountId, fixture('320x240.jpg'));
      const [toFirst] = await eventsFor(receiver, loud.id);
      const [toSecond] = await eventsFor(second, loud.id);
      expect(toFirst?.headers['pictor-webhook-id']).toBe(toSecond?.headers['pictor-webhook-id']);
      expect(signatureValid(toSecond as ReceivedWebhook, 'two')).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(receiver.events().filter((e) => e.body.data?.image_id === quiet.id)).toHaveLength(0);
      expect(receiver.events().filter((e) => e.body.data?.image_id === loud.id)).toHaveLength(1);
      expect(second.events().filter((e) => e.body.data?.image_id === loud.id)).toHaveLength(1);
      await cf.alerting.destinations.webhooks.delete(extra.id as string, { account_id: t.accountId });
    } finally {
      await second.close();
    }
  });

  it('uploads through the API (not direct uploads) send nothing, as on Cloudflare', async () => {
    const image = await cf.images.v1.create({ account_id: t.accountId, file: await Cloudflare.toFile(fixture('320x240.jpg'), 'api.jpg') });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(receiver.events().filter((e) => e.body.data?.image_id === image.id)).toHaveLength(0);
  });
});

describe('retry window', () => {
  it('backoff doubles from the base, is capped, and stops once the window has passed', () => {
    const retry = { baseMs: 1000, maxMs: 8000, windowMs: 60_000 };
    const half = () => 0.5;
    expect(nextAttemptAt({ createdAt: 0, attempts: 1 }, 0, retry, half)).toBe(1000);
    expect(nextAttemptAt({ createdAt: 0, attempts: 2 }, 0, retry, half)).toBe(2000);
    expect(nextAttemptAt({ createdAt: 0, attempts: 4 }, 0, retry, half)).toBe(8000);
    expect(nextAttemptAt({ createdAt: 0, attempts: 9 }, 0, retry, half)).toBe(8000);
    expect(nextAttemptAt({ createdAt: 0, attempts: 5 }, 55_000, retry, half)).toBeUndefined();
    // ±20% jitter.
    expect(nextAttemptAt({ createdAt: 0, attempts: 1 }, 0, retry, () => 0)).toBe(800);
    expect(nextAttemptAt({ createdAt: 0, attempts: 1 }, 0, retry, () => 1)).toBe(1200);
    // The default policy: 5 s doubling to 1 h, for 24 h (about 30 attempts).
    const configured = loadConfig({}).webhooks;
    expect(configured).toMatchObject({ retryBaseMs: 5000, retryMaxMs: 3_600_000, retryWindowSeconds: 86_400 });
    const defaults = { baseMs: configured.retryBaseMs, maxMs: configured.retryMaxMs, windowMs: configured.retryWindowSeconds * 1000 };
    let now = 0;
    let attempts = 0;
    for (;;) {
      attempts += 1;
      const at = nextAttemptAt({ createdAt: 0, attempts }, now, defaults, half);
      if (at === undefined) break;
      now = at;
    }
    expect(attempts).toBeGreaterThan(25);
    expect(attempts).toBeLessThan(40);
  });

  it('with the default settings a 500 is retried about 5 s later', async () => {
    const t = await startTestServer({ PICTOR_ALLOW_PRIVATE_URLS: 'true' });
    const receiver = await startReceiver();
    try {
      const cf = sdk(t.url, t.token);
      await subscribe(cf, t.accountId, receiver);
      receiver.script(500);
      const upload = await directUpload(cf, t.accountId, fixture('320x240.jpg'));
      await expect.poll(() => receiver.events().length, { timeout: 15_000 }).toBe(2);
      const [first, second] = receiver.events();
      expect(second?.body.data?.image_id).toBe(upload.id);
      const gap = (second?.at ?? 0) - (first?.at ?? 0);
      expect(gap).toBeGreaterThanOrEqual(3900);
      expect(gap).toBeLessThan(8000);
    } finally {
      await t.stop();
      await receiver.close();
    }
  });

  it('a receiver that never succeeds is given up after the window; nothing is sent afterwards', async () => {
    const t = await startTestServer({ ...WEBHOOK_ENV, PICTOR_WEBHOOK_RETRY_WINDOW_SECONDS: '1' });
    const receiver = await startReceiver();
    try {
      const cf = sdk(t.url, t.token);
      await subscribe(cf, t.accountId, receiver);
      receiver.fallback = 500;
      const upload = await directUpload(cf, t.accountId, fixture('320x240.jpg'));
      await eventsFor(receiver, upload.id, 2);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const count = receiver.events().length;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(receiver.events()).toHaveLength(count);
      expect(count).toBeLessThan(10);
    } finally {
      await t.stop();
      await receiver.close();
    }
  });
});

describe('SSRF rules', () => {
  it('without PICTOR_ALLOW_PRIVATE_URLS a loopback destination is refused and nothing is sent to it', async () => {
    const t = await startTestServer({});
    const receiver = await startReceiver();
    try {
      const cf = sdk(t.url, t.token);
      for (const url of [receiver.url, `http://localhost:${receiver.port}/`, 'http://169.254.169.254/latest/meta-data', 'http://[::1]:9/']) {
        const refused = await cf.alerting.destinations.webhooks.create({ account_id: t.accountId, name: 'internal', url }).catch((error: unknown) => error);
        expect((refused as BadRequestError).errors[0], url).toMatchObject({ code: 17002 });
        expect((refused as BadRequestError).errors[0]?.message).toMatch(/private, loopback or link-local/);
      }
      expect(receiver.received).toHaveLength(0);
    } finally {
      await t.stop();
      await receiver.close();
    }
  });
});

describe('the outbox survives kill -9', () => {
  afterAll(killAllChildServers);

  it('an upload completed while the receiver hangs is delivered by the restarted server', async () => {
    const dataDir = tempDir();
    const accountId = randomAccountId();
    const token = `token-${accountId}`;
    const env = WEBHOOK_ENV;
    const receiver = await startReceiver();
    let server: ChildServer = await spawnServer({ dataDir, accountId, token, env: { ...env, ...(await sharedStores()) } });
    try {
      const cf = sdk(server.url, token);
      await subscribe(cf, accountId, receiver);
      // The server sends the event at once; the receiver takes it and never answers. The server dies
      // mid-delivery, before it could record anything.
      receiver.script('hang');
      const upload = await directUpload(cf, accountId, fixture('320x240.jpg'));
      expect(upload.status).toBe(200);
      await eventsFor(receiver, upload.id);
      await server.stop('SIGKILL');

      server = await spawnServer({ dataDir, accountId, token, env: { ...env, ...(await sharedStores()) } });
      // The restarted node sends it again: at once on the embedded store (the only sender, it drops the
      // dead process's claims at start), once the dead node's claim lapses (timeout + 5 s) on PostgreSQL.
      await expect.poll(() => receiver.events().filter((e) => e.body.data?.image_id === upload.id).length, { timeout: 20_000 }).toBe(2);
      const [first, second] = receiver.events().filter((e) => e.body.data?.image_id === upload.id);
      expect(second?.raw).toBe(first?.raw);
      expect(second?.headers['pictor-webhook-id']).toBe(first?.headers['pictor-webhook-id']);
    } finally {
      await server.stop('SIGKILL');
      await receiver.close();
    }
  }, 60_000);

  it('an upload completed while the receiver is down is delivered once it is back, after a restart', async () => {
    const dataDir = tempDir();
    const accountId = randomAccountId();
    const token = `token-${accountId}`;
    let receiver = await startReceiver();
    const port = receiver.port;
    let server: ChildServer = await spawnServer({ dataDir, accountId, token, env: { ...WEBHOOK_ENV, ...(await sharedStores()) } });
    try {
      const cf = sdk(server.url, token);
      await subscribe(cf, accountId, receiver);
      await receiver.close();
      const upload = await directUpload(cf, accountId, fixture('320x240.jpg'));
      expect(upload.status).toBe(200);
      await server.stop('SIGKILL');

      receiver = await startReceiver(port);
      server = await spawnServer({ dataDir, accountId, token, env: { ...WEBHOOK_ENV, ...(await sharedStores()) } });
      await expect.poll(() => receiver.events().filter((e) => e.body.data?.image_id === upload.id).length, { timeout: 20_000 }).toBe(1);
      const [event] = receiver.events();
      expect(event?.body.data).toMatchObject({ status: 'success', image_id: upload.id });
    } finally {
      await server.stop('SIGKILL');
      await receiver.close();
    }
  }, 60_000);
});

/** In a PostgreSQL run the child servers share one database per test (a restart finds it again). */
let sharedDatabase: string | undefined;
async function sharedStores(): Promise<Record<string, string>> {
  if (!META_ON_POSTGRES) return {};
  if (sharedDatabase === undefined) {
    const { createTestDatabase } = await import('./helpers/postgres.js');
    sharedDatabase = (await createTestDatabase()).url;
  }
  return { PICTOR_DATABASE_URL: sharedDatabase };
}

describe.runIf(META_ON_POSTGRES)('two nodes share one outbox', () => {
  let a: TestServer;
  let b: TestServer;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    a = await startTestServer(WEBHOOK_ENV);
    b = await startTestServer({
      ...WEBHOOK_ENV,
      ...a.storeEnv,
      PICTOR_DATA_DIR: tempDir(),
      PICTOR_BOOTSTRAP_ACCOUNT_ID: a.accountId,
      PICTOR_BOOTSTRAP_TOKEN: a.token,
    });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await b.stop();
    await a.stop();
    await receiver.close();
  });

  it('each event is sent by one node, retries included', async () => {
    const cfA = sdk(a.url, a.token);
    const cfB = sdk(b.url, b.token);
    await subscribe(cfA, a.accountId, receiver);
    // The first 12 attempts fail, so retries are claimed by whichever node polls first.
    receiver.script(...Array<number>(12).fill(500));
    const uploads = await Promise.all(
      Array.from({ length: 12 }, (_, i) => directUpload(i % 2 === 0 ? cfA : cfB, a.accountId, fixture('320x240.jpg'))),
    );
    expect(uploads.every((u) => u.status === 200)).toBe(true);
    await expect
      .poll(() => new Set(receiver.events().filter((e) => e.headers['content-type'] && e.body.data?.status === 'success').map((e) => e.body.data?.image_id)).size, {
        timeout: 20_000,
      })
      .toBe(12);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // 12 answers of 500 went to whichever attempts came first; every event was then accepted exactly once.
    const accepted = new Map<string, number>();
    for (const event of receiver.events()) {
      const id = String(event.headers['pictor-webhook-id']);
      accepted.set(id, (accepted.get(id) ?? 0) + (event.answer === 200 ? 1 : 0));
    }
    expect(accepted.size).toBe(12);
    expect([...accepted.values()]).toEqual(Array(12).fill(1));
    expect(receiver.events().filter((e) => e.answer === 500)).toHaveLength(12);
  }, 60_000);
});
