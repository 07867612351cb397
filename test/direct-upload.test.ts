/**
 * Direct creator uploads over real HTTP (no mocks): minting with the official SDK, JSON and the legacy
 * v1 route; the draft's visibility; the one-time unauthenticated upload URL (refusals that do not use
 * it, a race between two uploads, tampering, another account's hash, CORS); expiry with an injected
 * clock (410 on POST, the draft removed, the start-up sweep); custom ids and deleting drafts.
 *
 * Expectations come from spec/cloudflare-images.md Part A ("Direct creator upload" is binding) and §5.11.
 */
import fs from 'node:fs';
import path from 'node:path';
import Cloudflare, { BadRequestError, ConflictError } from 'cloudflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blobUrl,
  type Envelope,
  expectApiError,
  expectOk,
  filesUnder,
  getStats,
  type ImageResult,
  listAllIds,
  readEnvelope,
} from './helpers/api.js';
import { cliOk } from './helpers/cli.js';
import { startClockServer, type TestClock, testClock } from './helpers/clock-server.js';
import { FIXTURES, fixture, startTestServer, type TestServer } from './helpers/server.js';

const MINUTE = 60_000;
const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** ≥ 128 bits of base64url. */
const SECRET_SHAPE = /^[A-Za-z0-9_-]{22,}$/;

/** Fixtures the upload must refuse (see fixtures README), with the pinned status and code (Part A "Limits"). */
const HOSTILE: Array<[name: string, status: number, code: number]> = [
  ['giant-image.jpg', 400, 5400],
  ['65536-uint32-limit.png', 400, 5400],
  ['truncated.jpg', 415, 5455],
  ['truncated.png', 415, 5455],
  ['corrupt-header.jpg', 415, 5455],
  ['pitm.avif', 415, 5455],
  ['empty.jpg', 415, 5455],
  ['not-an-image.jpg', 415, 5455],
  ['G31D.TIF', 415, 5455],
];

interface Minted {
  id: string;
  uploadURL: string;
}

// ---------------------------------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------------------------------

function sdk(t: TestServer): Cloudflare {
  return new Cloudflare({
    apiToken: t.token,
    apiKey: null,
    apiEmail: null,
    userServiceKey: null,
    baseURL: `${t.url}/client/v4`,
    maxRetries: 0,
  });
}

function fileOf(name: string, type = 'application/octet-stream'): File {
  return new File([fixture(name)], name, { type });
}

function isoIn(ms: number, from = Date.now()): string {
  return new Date(from + ms).toISOString();
}

/** The parts of an upload URL: `<base>/upload/<account_hash>/<secret>`. */
function partsOf(uploadURL: string): { hash: string; secret: string; prefix: string } {
  const url = new URL(uploadURL);
  const segments = url.pathname.split('/');
  const secret = segments[segments.length - 1] ?? '';
  const hash = segments[segments.length - 2] ?? '';
  const prefix = `${url.origin}${segments.slice(0, -2).join('/')}`;
  return { hash, secret, prefix };
}

/** Checks a mint answer and returns it typed. */
function expectMinted(t: TestServer, result: unknown, id?: string): Minted {
  expect(result).toBeTypeOf('object');
  const minted = result as Record<string, unknown>;
  expect(Object.keys(minted).sort()).toEqual(['id', 'uploadURL']);
  expect(minted.id).toBeTypeOf('string');
  expect(minted.uploadURL).toBeTypeOf('string');
  const out = { id: minted.id as string, uploadURL: minted.uploadURL as string };
  if (id === undefined) expect(out.id).toMatch(UUID_SHAPE);
  else expect(out.id).toBe(id);
  expect(() => new URL(out.uploadURL)).not.toThrow();
  expect(out.uploadURL.startsWith(`${t.url}/`), out.uploadURL).toBe(true);
  const { secret, hash } = partsOf(out.uploadURL);
  expect(secret, out.uploadURL).toMatch(SECRET_SHAPE);
  expect(hash).toMatch(/^[A-Za-z0-9_-]{22}$/);
  // The secret is not derived from the id (custom ids are guessable).
  expect(secret.includes(out.id)).toBe(false);
  expect(out.uploadURL.includes(encodeURIComponent(out.id))).toBe(false);
  return out;
}

/** Mints through multipart (FormData) with fetch. */
async function mintForm(t: TestServer, fields: Record<string, string> = {}, version = 'v2'): Promise<Response> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return fetch(`${t.imagesUrl}/${version}/direct_upload`, { method: 'POST', headers: t.auth, body: form });
}

async function mintJson(t: TestServer, body: unknown, version = 'v2'): Promise<Response> {
  return fetch(`${t.imagesUrl}/${version}/direct_upload`, {
    method: 'POST',
    headers: { ...t.auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function mint(t: TestServer, fields: Record<string, string> = {}): Promise<Minted> {
  return expectMinted(t, await expectOk<unknown>(await mintForm(t, fields)), fields.id);
}

/** The unauthenticated upload: `file` part, no credentials. */
function postFile(uploadURL: string, file: Blob | File, headers: Record<string, string> = {}): Promise<Response> {
  const form = new FormData();
  form.append('file', file);
  return fetch(uploadURL, { method: 'POST', body: form, headers });
}

function imageUrl(t: TestServer, id: string): string {
  return `${t.imagesUrl}/v1/${encodeURIComponent(id)}`;
}

async function getImage(t: TestServer, id: string): Promise<ImageResult> {
  return expectOk<ImageResult>(await fetch(imageUrl(t, id), { headers: t.auth }));
}

async function expectImageGone(t: TestServer, id: string): Promise<void> {
  await expectApiError(await fetch(imageUrl(t, id), { headers: t.auth }), 404, 5404);
}

async function blobBytes(t: TestServer, id: string): Promise<Buffer> {
  const res = await fetch(blobUrl(t, id), { headers: t.auth });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

async function v1ListIds(t: TestServer): Promise<string[]> {
  const ids: string[] = [];
  for (let page = 1; ; page++) {
    const res = await fetch(`${t.imagesUrl}/v1?page=${page}&per_page=100`, { headers: t.auth });
    const result = await expectOk<{ images: ImageResult[] }>(res);
    ids.push(...result.images.map((image) => image.id));
    if (result.images.length < 100) return ids;
  }
}

function deliveryPath(uploadURL: string, id: string, variant = 'public'): string {
  const { hash } = partsOf(uploadURL);
  return `/${hash}/${id.split('/').map(encodeURIComponent).join('/')}/${variant}`;
}

/** Checks the answer of a successful upload to an upload URL and returns the image. */
async function expectUploaded(res: Response, id: string): Promise<ImageResult> {
  const image = await expectOk<ImageResult>(res);
  expect(image.id).toBe(id);
  expect(image).not.toHaveProperty('draft');
  return image;
}

/** The same upload URL on `server` (a restarted server listens on another ephemeral port). */
function onServer(uploadURL: string, server: TestServer): string {
  const url = new URL(uploadURL);
  return `${server.url}${url.pathname}`;
}

/** Replaces one character in the middle of the secret. */
function tamper(uploadURL: string): string {
  const { prefix, hash, secret } = partsOf(uploadURL);
  const at = Math.floor(secret.length / 2);
  const changed = secret[at] === 'A' ? 'B' : 'A';
  return `${prefix}/${hash}/${secret.slice(0, at)}${changed}${secret.slice(at + 1)}`;
}

/** Polls `check` until it passes or `timeoutMs` elapses (for work the server does in the background). */
async function eventually(check: () => Promise<void>, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// One server (real clock) for everything but expiry
// ---------------------------------------------------------------------------------------------------

let t: TestServer;
let cf: Cloudflare;

beforeAll(async () => {
  t = await startTestServer();
  cf = sdk(t);
});

afterAll(async () => {
  await t?.stop();
  if (t) fs.rmSync(t.dataDir, { recursive: true, force: true });
});

describe('minting with the SDK, then uploading without credentials', () => {
  it('all fields: draft until uploaded, invisible to lists/stats/delivery; then a normal image', async () => {
    const statsBefore = await getStats(t);
    const expiry = isoIn(60 * MINUTE).replace(/\.\d{3}Z$/, 'Z');
    const id = 'sdk/with-fields';
    const result = await cf.images.v2.directUploads.create({
      account_id: t.accountId,
      id,
      creator: 'creator-7',
      expiry,
      metadata: { k: 'v' },
      requireSignedURLs: false,
    });
    const minted = expectMinted(t, result, id);

    // The draft.
    const draft = await getImage(t, id);
    expect(draft.draft).toBe(true);
    expect(draft.id).toBe(id);
    expect(draft.meta).toEqual({ k: 'v' });
    expect(draft.creator).toBe('creator-7');
    expect(draft.requireSignedURLs).toBe(false);
    expect(await v1ListIds(t)).not.toContain(id);
    expect(await listAllIds(t)).not.toContain(id);
    const creatorList = await expectOk<{ images: ImageResult[] }>(
      await fetch(`${t.imagesUrl}/v2?creator=creator-7`, { headers: t.auth }),
    );
    expect(creatorList.images).toEqual([]);
    expect(await getStats(t)).toEqual(statsBefore);
    const delivered = await fetch(`${t.url}${deliveryPath(minted.uploadURL, id)}`);
    expect(delivered.status).toBe(404);
    await delivered.arrayBuffer();
    const draftBlob = await fetch(blobUrl(t, id), { headers: t.auth });
    expect(draftBlob.status).toBe(404);
    await draftBlob.arrayBuffer();

    // The upload: no Authorization header at all.
    const res = await postFile(minted.uploadURL, fileOf('320x240.jpg', 'image/jpeg'));
    const image = await expectUploaded(res, id);
    expect(image.filename).toBe('320x240.jpg');
    expect(image.meta).toEqual({ k: 'v' });
    expect(image.creator).toBe('creator-7');
    expect(image.requireSignedURLs).toBe(false);
    expect(image.variants.some((url) => url.endsWith(deliveryPath(minted.uploadURL, id)))).toBe(true);

    const viaSdk = await cf.images.v1.get(id, { account_id: t.accountId });
    expect(viaSdk).not.toHaveProperty('draft');
    expect(viaSdk.id).toBe(id);
    expect(viaSdk.meta).toEqual({ k: 'v' });
    expect(viaSdk.creator).toBe('creator-7');
    expect(viaSdk.requireSignedURLs).toBe(false);
    expect(viaSdk.filename).toBe('320x240.jpg');

    const blob = await cf.images.v1.blobs.get(id, { account_id: t.accountId });
    expect(blob.status).toBe(200);
    expect(Buffer.from(await blob.arrayBuffer()).equals(fixture('320x240.jpg'))).toBe(true);

    expect(await v1ListIds(t)).toContain(id);
    expect(await listAllIds(t)).toContain(id);
    const afterList = await expectOk<{ images: ImageResult[] }>(
      await fetch(`${t.imagesUrl}/v2?creator=creator-7`, { headers: t.auth }),
    );
    expect(afterList.images.map((i) => i.id)).toEqual([id]);
    expect(await getStats(t)).toEqual({ ...statsBefore, current: statsBefore.current + 1 });
    const deliveredNow = await fetch(`${t.url}${deliveryPath(minted.uploadURL, id)}`);
    expect(deliveredNow.status).toBe(200);
    await deliveredNow.arrayBuffer();
  });

  it('no field but account_id (multipart body holding only the closing boundary): all defaults', async () => {
    const first = expectMinted(t, await cf.images.v2.directUploads.create({ account_id: t.accountId }));
    const second = expectMinted(t, await cf.images.v2.directUploads.create({ account_id: t.accountId }));
    expect(second.id).not.toBe(first.id);
    expect(partsOf(second.uploadURL).secret).not.toBe(partsOf(first.uploadURL).secret);
    expect(partsOf(second.uploadURL).hash).toBe(partsOf(first.uploadURL).hash);

    const draft = await getImage(t, first.id);
    expect(draft).toMatchObject({ id: first.id, draft: true, meta: {}, creator: null, requireSignedURLs: false });

    const image = await expectUploaded(await postFile(first.uploadURL, fileOf('with-alpha.png')), first.id);
    expect(image).toMatchObject({ meta: {}, creator: null, requireSignedURLs: false, filename: 'with-alpha.png' });
    expect((await blobBytes(t, first.id)).equals(fixture('with-alpha.png'))).toBe(true);
    // The other draft is untouched.
    expect((await getImage(t, second.id)).draft).toBe(true);
  });

  it('custom ids still get a secret of ≥ 128 bits, different on every mint', async () => {
    const a = expectMinted(
      t,
      await cf.images.v2.directUploads.create({ account_id: t.accountId, id: 'secret-check-a' }),
      'secret-check-a',
    );
    const b = expectMinted(
      t,
      await cf.images.v2.directUploads.create({ account_id: t.accountId, id: 'secret-check-b' }),
      'secret-check-b',
    );
    expect(partsOf(a.uploadURL).secret).not.toBe(partsOf(b.uploadURL).secret);
  });

  it('requireSignedURLs=true (generated id) is kept through the upload', async () => {
    const minted = expectMinted(
      t,
      await cf.images.v2.directUploads.create({ account_id: t.accountId, requireSignedURLs: true }),
    );
    expect((await getImage(t, minted.id)).requireSignedURLs).toBe(true);
    const image = await expectUploaded(await postFile(minted.uploadURL, fileOf('tbgn2c16.png')), minted.id);
    expect(image.requireSignedURLs).toBe(true);
    const viaSdk = await cf.images.v1.get(minted.id, { account_id: t.accountId });
    expect(viaSdk.requireSignedURLs).toBe(true);
  });
});

describe('minting with JSON and the legacy v1 route', () => {
  it('JSON {"expiry"} on v2 → {id, uploadURL}, and the URL works', async () => {
    const minted = expectMinted(t, await expectOk<unknown>(await mintJson(t, { expiry: isoIn(60 * MINUTE) })));
    expect((await getImage(t, minted.id)).draft).toBe(true);
    await expectUploaded(await postFile(minted.uploadURL, fileOf('4.webp')), minted.id);
    expect((await blobBytes(t, minted.id)).equals(fixture('4.webp'))).toBe(true);
  });

  it('JSON with every field', async () => {
    const body = {
      id: 'json/all-fields',
      creator: 'json-creator',
      expiry: isoIn(2 * 60 * MINUTE),
      metadata: { a: { b: 1 }, c: true },
      requireSignedURLs: false,
    };
    const minted = expectMinted(t, await expectOk<unknown>(await mintJson(t, body)), body.id);
    expect(await getImage(t, minted.id)).toMatchObject({
      id: body.id,
      draft: true,
      creator: 'json-creator',
      meta: body.metadata,
      requireSignedURLs: false,
    });
  });

  it('JSON {} and an empty body mean all defaults', async () => {
    expectMinted(t, await expectOk<unknown>(await mintJson(t, {})));
    const empty = await fetch(`${t.imagesUrl}/v2/direct_upload`, { method: 'POST', headers: t.auth });
    expectMinted(t, await expectOk<unknown>(empty));
  });

  it('legacy POST /images/v1/direct_upload (JSON {"expiry"}) answers the same shape and its URL works', async () => {
    const res = await mintJson(t, { expiry: isoIn(30 * MINUTE) }, 'v1');
    const body = await readEnvelope<unknown>(res);
    expect(res.status).toBe(200);
    expect(Object.keys(body).filter((key) => key !== 'result_info').sort()).toEqual([
      'errors',
      'messages',
      'result',
      'success',
    ]);
    expect(body.success).toBe(true);
    const minted = expectMinted(t, body.result);
    expect((await getImage(t, minted.id)).draft).toBe(true);
    await expectUploaded(await postFile(minted.uploadURL, fileOf('landscape.avif')), minted.id);
  });

  it('legacy v1 with a multipart body and with no body', async () => {
    expectMinted(t, await expectOk<unknown>(await mintForm(t, { creator: 'legacy' }, 'v1')));
    const empty = await fetch(`${t.imagesUrl}/v1/direct_upload`, { method: 'POST', headers: t.auth });
    expectMinted(t, await expectOk<unknown>(empty));
  });
});

describe('expiry range (now + 2 min … now + 6 h, default now + 30 min)', () => {
  const BAD: Array<[label: string, value: () => string]> = [
    ['now + 1 min', () => isoIn(MINUTE)],
    ['now + 7 h', () => isoIn(7 * 60 * MINUTE)],
    ['garbage', () => 'garbage'],
    ['a date without time', () => new Date().toISOString().slice(0, 10)],
    ['in the past', () => isoIn(-60 * MINUTE)],
  ];

  it.each(BAD)('expiry %s → 400 5400 (multipart, JSON, SDK, legacy v1); no draft is left', async (label, value) => {
    const id = `bad-expiry-${label.replace(/[^a-z0-9]+/gi, '-')}`;
    await expectApiError(await mintForm(t, { expiry: value(), id }), 400, 5400);
    await expectApiError(await mintJson(t, { expiry: value(), id }), 400, 5400);
    await expectApiError(await mintJson(t, { expiry: value(), id }, 'v1'), 400, 5400);
    const sdkError = await cf.images.v2.directUploads
      .create({ account_id: t.accountId, id, expiry: value() })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(sdkError).toBeInstanceOf(BadRequestError);
    await expectImageGone(t, id);
  });

  it('expiries inside the range are accepted (now + 3 min, now + 5 h 50 min)', async () => {
    expectMinted(t, await expectOk<unknown>(await mintForm(t, { expiry: isoIn(3 * MINUTE) })));
    expectMinted(t, await expectOk<unknown>(await mintJson(t, { expiry: isoIn(350 * MINUTE) })));
  });

  it('a non-string expiry in JSON → 400 5400', async () => {
    await expectApiError(await mintJson(t, { expiry: Date.now() + 60 * MINUTE }), 400, 5400);
  });
});

describe('the upload URL works once', () => {
  it('a second POST → 409 5409 (x-should-retry: false) and the first image stays', async () => {
    const minted = await mint(t);
    await expectUploaded(await postFile(minted.uploadURL, fileOf('320x240.jpg')), minted.id);
    const again = await postFile(minted.uploadURL, fileOf('with-alpha.png'));
    expect(again.headers.get('x-should-retry')).toBe('false');
    await expectApiError(again, 409, 5409);
    const third = await postFile(minted.uploadURL, fileOf('320x240.jpg'));
    await expectApiError(third, 409, 5409);
    expect((await blobBytes(t, minted.id)).equals(fixture('320x240.jpg'))).toBe(true);
    expect((await getImage(t, minted.id)).filename).toBe('320x240.jpg');
  });

  it('refused files do not use the URL: every hostile fixture, an 11 MB part, wrong shapes; then a good file succeeds', async () => {
    const minted = await mint(t, { metadata: JSON.stringify({ kept: 'yes' }) });
    const statsBefore = await getStats(t);
    const blobsBefore = filesUnder(path.join(t.dataDir, 'originals', 'blobs'));

    for (const [name, status, code] of HOSTILE) {
      const res = await postFile(minted.uploadURL, new File([fixture(name)], name, { type: 'image/jpeg' }));
      await expectApiError(res, status, code);
    }
    const big = Buffer.alloc(11 * 1024 * 1024, 0x41);
    fixture('320x240.jpg').copy(big);
    await expectApiError(await postFile(minted.uploadURL, new File([big], 'big.jpg', { type: 'image/jpeg' })), 413, 5413);
    // Raw image bytes instead of a form → 415 5415.
    const raw = await fetch(minted.uploadURL, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: fixture('320x240.jpg'),
    });
    await expectApiError(raw, 415, 5415);
    // A form without a `file` part → 400 5400.
    const noFile = new FormData();
    noFile.append('other', 'x');
    await expectApiError(await fetch(minted.uploadURL, { method: 'POST', body: noFile }), 400, 5400);

    // Nothing of that was stored, and the draft is still a draft.
    expect(await getStats(t)).toEqual(statsBefore);
    expect(filesUnder(path.join(t.dataDir, 'originals', 'blobs'))).toEqual(blobsBefore);
    expect(filesUnder(path.join(t.dataDir, 'originals', 'tmp'))).toEqual([]);
    expect(await getImage(t, minted.id)).toMatchObject({ draft: true, meta: { kept: 'yes' } });

    const image = await expectUploaded(await postFile(minted.uploadURL, fileOf('Landscape_6.jpg')), minted.id);
    expect(image.meta).toEqual({ kept: 'yes' });
    expect((await blobBytes(t, minted.id)).equals(fixture('Landscape_6.jpg'))).toBe(true);
  });

  it('hostile-script.svg is a valid SVG: accepted through an upload URL (sanitised only on delivery)', async () => {
    const minted = await mint(t);
    await expectUploaded(await postFile(minted.uploadURL, fileOf('hostile-script.svg', 'image/svg+xml')), minted.id);
    expect((await blobBytes(t, minted.id)).equals(fixture('hostile-script.svg'))).toBe(true);
  });

  it('two simultaneous POSTs with different files: exactly one 200, the other 409; the winner’s bytes are stored', async () => {
    // Small files, and larger ones whose decoding keeps both requests in flight longer.
    const pairs = [
      ['320x240.jpg', 'with-alpha.png'],
      ['2569067123_aca715a2ee_o.jpg', 'Channel_digital_image_CMYK_color.jpg'],
    ];
    for (let round = 0; round < 4; round++) {
      const minted = await mint(t);
      const statsBefore = await getStats(t);
      const pair = pairs[round % 2] as string[];
      const names = round < 2 ? pair : [...pair].reverse();
      const responses = await Promise.all(names.map((name) => postFile(minted.uploadURL, fileOf(name))));
      const statuses = responses.map((res) => res.status);
      expect([...statuses].sort()).toEqual([200, 409]);
      const winner = statuses.indexOf(200);
      const loser = 1 - winner;
      const image = await expectUploaded(responses[winner] as Response, minted.id);
      expect(image.filename).toBe(names[winner]);
      await expectApiError(responses[loser] as Response, 409, 5409);
      expect((await blobBytes(t, minted.id)).equals(fixture(names[winner] as string))).toBe(true);
      expect((await getImage(t, minted.id)).filename).toBe(names[winner]);
      expect(await getStats(t)).toEqual({ ...statsBefore, current: statsBefore.current + 1 });
    }
    expect(filesUnder(path.join(t.dataDir, 'originals', 'tmp'))).toEqual([]);
  });
});

describe('the URL is the credential', () => {
  it('one character of the secret changed → 404; the real URL still works afterwards', async () => {
    const minted = await mint(t);
    const tampered = tamper(minted.uploadURL);
    expect(tampered).not.toBe(minted.uploadURL);
    expect(tampered.length).toBe(minted.uploadURL.length);
    await expectApiError(await postFile(tampered, fileOf('320x240.jpg')), 404, 5404);
    // Truncated and extended secrets are unknown too.
    const { prefix, hash, secret } = partsOf(minted.uploadURL);
    await expectApiError(await postFile(`${prefix}/${hash}/${secret.slice(0, -1)}`, fileOf('320x240.jpg')), 404, 5404);
    await expectApiError(await postFile(`${prefix}/${hash}/${secret}A`, fileOf('320x240.jpg')), 404, 5404);
    expect((await getImage(t, minted.id)).draft).toBe(true);
    await expectUploaded(await postFile(minted.uploadURL, fileOf('320x240.jpg')), minted.id);
  });

  it('the same secret under another account’s hash → 404 (and does not use the URL)', async () => {
    const env = { ...t.storeEnv, PICTOR_LOG_LEVEL: 'warn' };
    const created = await cliOk(['account', 'create'], env);
    const otherId = /account id:\s+([0-9a-f]{32})/.exec(created.stdout)?.[1];
    expect(otherId, created.stdout).toBeDefined();
    const listed = await cliOk(['account', 'list'], env);
    const line = listed.stdout.split('\n').find((l) => l.startsWith(otherId as string));
    const otherHash = /hash=([A-Za-z0-9_-]+)/.exec(line ?? '')?.[1];
    expect(otherHash, listed.stdout).toMatch(/^[A-Za-z0-9_-]{22}$/);

    const minted = await mint(t);
    const { prefix, hash, secret } = partsOf(minted.uploadURL);
    expect(otherHash).not.toBe(hash);
    await expectApiError(await postFile(`${prefix}/${otherHash}/${secret}`, fileOf('320x240.jpg')), 404, 5404);
    // An account hash that belongs to nobody.
    await expectApiError(await postFile(`${prefix}/${'A'.repeat(22)}/${secret}`, fileOf('320x240.jpg')), 404, 5404);
    expect((await getImage(t, minted.id)).draft).toBe(true);
    await expectUploaded(await postFile(minted.uploadURL, fileOf('320x240.jpg')), minted.id);
  });

  it('an upload URL does not accept the API token as a substitute, nor need it', async () => {
    const minted = await mint(t);
    // Credentials sent along are simply irrelevant: the upload works.
    const res = await postFile(minted.uploadURL, fileOf('320x240.jpg'), { authorization: 'Bearer not-a-token' });
    await expectUploaded(res, minted.id);
  });
});

describe('CORS on the upload URL', () => {
  it('preflight → 204 with allow-origin and allow-methods including POST; the POST carries allow-origin', async () => {
    const minted = await mint(t);
    const origin = 'http://app.example.test:3000';
    const preflight = await fetch(minted.uploadURL, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, x-requested-with',
      },
    });
    expect(preflight.status).toBe(204);
    const allowOrigin = preflight.headers.get('access-control-allow-origin');
    expect([origin, '*']).toContain(allowOrigin);
    const methods = (preflight.headers.get('access-control-allow-methods') ?? '').toUpperCase();
    expect(methods.split(/\s*,\s*/)).toContain('POST');
    const allowHeaders = (preflight.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    if (allowHeaders !== '*') {
      expect(allowHeaders).toContain('content-type');
      expect(allowHeaders).toContain('x-requested-with');
    }

    const res = await postFile(minted.uploadURL, fileOf('320x240.jpg'), { origin });
    expect([origin, '*']).toContain(res.headers.get('access-control-allow-origin'));
    await expectUploaded(res, minted.id);

    // Errors must be readable by the page too.
    const again = await postFile(minted.uploadURL, fileOf('320x240.jpg'), { origin });
    expect([origin, '*']).toContain(again.headers.get('access-control-allow-origin'));
    await expectApiError(again, 409, 5409);
    const refused = await postFile(tamper(minted.uploadURL), fileOf('320x240.jpg'), { origin });
    expect([origin, '*']).toContain(refused.headers.get('access-control-allow-origin'));
    await expectApiError(refused, 404, 5404);
  });
});

describe('custom ids, signed URLs, deleting drafts', () => {
  it('id drafts/one: the URL works; minting the same id again → 409 5409 (while a draft and after upload)', async () => {
    const id = 'drafts/one';
    const minted = expectMinted(t, await cf.images.v2.directUploads.create({ account_id: t.accountId, id }), id);
    expect((await getImage(t, id)).draft).toBe(true);
    await expectApiError(await mintForm(t, { id }), 409, 5409);
    await expectApiError(await mintJson(t, { id }), 409, 5409);
    const sdkError = await cf.images.v2.directUploads.create({ account_id: t.accountId, id }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(sdkError).toBeInstanceOf(ConflictError);

    await expectUploaded(await postFile(minted.uploadURL, fileOf('animated-loop-3.gif')), id);
    expect((await blobBytes(t, id)).equals(fixture('animated-loop-3.gif'))).toBe(true);
    const delivered = await fetch(`${t.url}${deliveryPath(minted.uploadURL, id)}`);
    expect(delivered.status).toBe(200);
    await delivered.arrayBuffer();
    await expectApiError(await mintForm(t, { id }), 409, 5409);
    // A normal upload cannot take the id either.
    const form = new FormData();
    form.append('file', fileOf('320x240.jpg'));
    form.append('id', id);
    await expectApiError(await fetch(`${t.imagesUrl}/v1`, { method: 'POST', headers: t.auth, body: form }), 409, 5409);
  });

  it('a custom id with requireSignedURLs=true → 400 5400 (multipart, JSON, SDK); nothing is created', async () => {
    const id = 'signed-custom';
    await expectApiError(await mintForm(t, { id, requireSignedURLs: 'true' }), 400, 5400);
    await expectApiError(await mintJson(t, { id, requireSignedURLs: true }), 400, 5400);
    const sdkError = await cf.images.v2.directUploads
      .create({ account_id: t.accountId, id, requireSignedURLs: true })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(sdkError).toBeInstanceOf(BadRequestError);
    await expectImageGone(t, id);
  });

  it('bad custom ids and bad metadata → 400 5400', async () => {
    await expectApiError(await mintForm(t, { id: '/leading' }), 400, 5400);
    await expectApiError(await mintForm(t, { id: 'a//b' }), 400, 5400);
    await expectApiError(await mintForm(t, { id: 'x'.repeat(1025) }), 400, 5400);
    await expectApiError(await mintForm(t, { id: '2cdc28f0-017a-49c4-9ed7-87056c839010' }), 400, 5400);
    await expectApiError(await mintForm(t, { metadata: '[1,2]' }), 400, 5400);
    await expectApiError(await mintForm(t, { metadata: JSON.stringify({ k: 'x'.repeat(1100) }) }), 400, 5400);
    await expectApiError(await mintJson(t, { metadata: 'not an object' }), 400, 5400);
  });

  it('deleting a draft: its URL answers 404 and the draft is gone', async () => {
    for (const id of [undefined, 'drafts/to-delete']) {
      const minted = await mint(t, id === undefined ? {} : { id });
      const deleted = await fetch(imageUrl(t, minted.id), { method: 'DELETE', headers: t.auth });
      expect(await expectOk<unknown>(deleted)).toEqual({});
      await expectApiError(await postFile(minted.uploadURL, fileOf('320x240.jpg')), 404, 5404);
      await expectImageGone(t, minted.id);
    }
  });

  it('minting needs images:write credentials', async () => {
    const none = await fetch(`${t.imagesUrl}/v2/direct_upload`, { method: 'POST' });
    await expectApiError(none, 400, 6003);
    const wrong = await fetch(`${t.imagesUrl}/v2/direct_upload`, {
      method: 'POST',
      headers: { authorization: 'Bearer wrong-token' },
    });
    await expectApiError(wrong, 403, 10000);
  });
});

// ---------------------------------------------------------------------------------------------------
// Expiry, with a clock the test moves
// ---------------------------------------------------------------------------------------------------

describe('expiry (injected clock)', () => {
  let clock: TestClock;
  let c: TestServer;

  beforeAll(async () => {
    clock = testClock();
    c = await startClockServer(clock);
  });

  afterAll(async () => {
    await c?.stop();
    if (c) fs.rmSync(c.dataDir, { recursive: true, force: true });
  });

  it('default expiry is 30 min: works at +29 min; at +31 min POST → 410 and the draft is gone', async () => {
    const early = await mint(c);
    const late = await mint(c);
    clock.advance(29 * MINUTE);
    await expectUploaded(await postFile(early.uploadURL, fileOf('320x240.jpg')), early.id);
    expect((await getImage(c, late.id)).draft).toBe(true);

    clock.advance(2 * MINUTE);
    const res = await postFile(late.uploadURL, fileOf('320x240.jpg'));
    expect(res.status).toBe(410);
    const body = (await readEnvelope<null>(res)) as Envelope<null>;
    expect(body.success).toBe(false);
    expect(body.errors[0]?.code).toBe(5404);
    expect(res.headers.get('access-control-allow-origin')).not.toBeNull();
    await expectImageGone(c, late.id);
    // Still 410 (not a 404 or a success) when tried again; the uploaded image is untouched.
    const again = await postFile(late.uploadURL, fileOf('320x240.jpg'));
    expect(again.status).toBe(410);
    await again.arrayBuffer();
    expect((await getImage(c, early.id)).draft).toBeUndefined();
    expect(filesUnder(path.join(c.dataDir, 'originals', 'tmp'))).toEqual([]);
  });

  it('an explicit expiry (now + 3 min) is honoured', async () => {
    const minted = await mint(c, { expiry: isoIn(3 * MINUTE, clock.now()) });
    clock.advance(2 * MINUTE);
    expect((await getImage(c, minted.id)).draft).toBe(true);
    clock.advance(2 * MINUTE);
    const res = await postFile(minted.uploadURL, fileOf('320x240.jpg'));
    expect(res.status).toBe(410);
    await res.arrayBuffer();
    await expectImageGone(c, minted.id);
  });

  it('the expiry range is checked against the server clock', async () => {
    // Relative to the (moved) server clock, real "now + 1 h" may be in the past; use the clock.
    await expectApiError(await mintForm(c, { expiry: isoIn(MINUTE, clock.now()) }), 400, 5400);
    await expectApiError(await mintForm(c, { expiry: isoIn(7 * 60 * MINUTE, clock.now()) }), 400, 5400);
    expectMinted(c, await expectOk<unknown>(await mintForm(c, { expiry: isoIn(5 * 60 * MINUTE, clock.now()) })));
  });

  it('an expired draft is swept without any POST (restart on the same data dir with the clock moved)', async () => {
    const statsBefore = await getStats(c);
    const expiring = await mint(c, { id: 'sweep/expiring' });
    const lasting = await mint(c, { expiry: isoIn(5 * 60 * MINUTE, clock.now()) });
    const done = await mint(c);
    await expectUploaded(await postFile(done.uploadURL, fileOf('with-alpha.png')), done.id);

    await c.stop();
    clock.advance(31 * MINUTE);
    c = await startClockServer(clock, {
      ...c.storeEnv,
      PICTOR_BOOTSTRAP_ACCOUNT_ID: c.accountId,
      PICTOR_BOOTSTRAP_TOKEN: c.token,
    });

    // The start-up sweep removes the expired draft before anyone tries its URL.
    await eventually(() => expectImageGone(c, expiring.id));
    expect((await getImage(c, lasting.id)).draft).toBe(true);
    expect(await getImage(c, done.id)).not.toHaveProperty('draft');
    expect((await blobBytes(c, done.id)).equals(fixture('with-alpha.png'))).toBe(true);
    expect(await getStats(c)).toEqual({ ...statsBefore, current: statsBefore.current + 1 });

    // Its URL is expired (410), the custom id is free again, the lasting URL still works.
    const late = await postFile(onServer(expiring.uploadURL, c), fileOf('320x240.jpg'));
    expect(late.status).toBe(410);
    await late.arrayBuffer();
    expectMinted(c, await expectOk<unknown>(await mintForm(c, { id: 'sweep/expiring' })), 'sweep/expiring');
    await expectUploaded(await postFile(onServer(lasting.uploadURL, c), fileOf('320x240.jpg')), lasting.id);
  });
});

// Fixture sanity: the hostile list names real files.
it('every hostile fixture exists', () => {
  for (const [name] of HOSTILE) expect(fs.existsSync(path.join(FIXTURES, name)), name).toBe(true);
});
