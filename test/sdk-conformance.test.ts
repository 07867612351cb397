/**
 * SDK conformance: the official `cloudflare` npm package (7.3) drives a real Pictor server, exactly as
 * a user's code would: images.v1 create/get/edit/delete/list, blobs.get, stats.get, variants.*, keys.*,
 * images.v2 list and directUploads.create, with the SDK's error classes and retry behaviour.
 * Nothing is mocked: each describe block starts its own server (temp data dir, bootstrap account and
 * token) and talks to it only through the SDK. Extra credentials (read-only token, legacy key, a second
 * account) come from the real CLI on the same data dir; URL uploads fetch from a tiny node:http origin
 * on 127.0.0.1; the direct-upload URL is used with plain fetch, as a browser would.
 *
 * Expectations come from spec/cloudflare-images.md Part A and spec/sdk-wire-captures.md.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import Cloudflare, {
  APIError,
  AuthenticationError,
  BadRequestError,
  type ClientOptions,
  ConflictError,
  NotFoundError,
  PermissionDeniedError,
  toFile,
} from 'cloudflare';
import type { Image, V1CreateParams, V1ListResponsesV4PagePagination } from 'cloudflare/resources/images/v1/v1';
import type { V2ListParams } from 'cloudflare/resources/images/v2/v2';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { FIXTURES, fixture, startTestServer, type TestServer } from './helpers/server.js';

// ---------------------------------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------------------------------

const ROOT = path.resolve(import.meta.dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const CLI = path.join(ROOT, 'src', 'cli', 'main.ts');
const run = promisify(execFile);

const JPEG = '320x240.jpg';
const PNG = 'with-alpha.png';
const WEBP = '4.webp';
/** Small and quick to probe: the fixture used wherever only "some image" is needed. */
const SMALL = 'tbgn2c16.png';

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_WITH_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const IMAGE_KEYS = ['creator', 'filename', 'id', 'meta', 'requireSignedURLs', 'uploaded', 'variants'];

type Auth = Pick<ClientOptions, 'apiToken' | 'apiKey' | 'apiEmail'>;
type CreateFields = Omit<V1CreateParams, 'account_id' | 'file'>;
type V2Query = Omit<V2ListParams, 'account_id' | 'continuation_token'>;
type ApiErrorClass<E extends APIError> = abstract new (...args: never[]) => E;

/**
 * Keep-alive connections of the SDK clients, one pool per test server, closed before that server stops.
 * (A server's graceful close waits for a connection that was still finishing a streamed response when
 * close began, until the client drops it; closing our side first keeps `stop()` prompt.)
 */
const connectionPools = new Map<string, Agent>();

function connectionPool(t: TestServer): Agent {
  let pool = connectionPools.get(t.url);
  if (!pool) {
    pool = new Agent();
    connectionPools.set(t.url, pool);
  }
  return pool;
}

async function stopServer(t: TestServer): Promise<void> {
  await connectionPools.get(t.url)?.close();
  connectionPools.delete(t.url);
  await t.stop();
  fs.rmSync(t.dataDir, { recursive: true, force: true });
}

/**
 * An SDK client for `t`. Every auth option is set explicitly (null when unused) so CLOUDFLARE_* variables
 * in the environment cannot leak in. Retries are off unless a test asks for them.
 */
function sdk(t: TestServer, auth: Auth = { apiToken: t.token }, options: Partial<ClientOptions> = {}): Cloudflare {
  return new Cloudflare({
    apiToken: null,
    apiKey: null,
    apiEmail: null,
    userServiceKey: null,
    ...auth,
    baseURL: `${t.url}/client/v4`,
    maxRetries: 0,
    // The SDK types fetchOptions with Node's bundled undici-types; the project's undici Agent is the same at runtime.
    fetchOptions: { dispatcher: connectionPool(t) } as unknown as ClientOptions['fetchOptions'],
    ...options,
  });
}

interface Harness {
  t: TestServer;
  cf: Cloudflare;
}

/** Starts a fresh server for the enclosing describe block; stops it and removes its data dir afterwards. */
function useServer(start: () => Promise<TestServer> = () => startTestServer()): Harness {
  const harness = {} as Harness;
  beforeAll(async () => {
    harness.t = await start();
    harness.cf = sdk(harness.t);
  });
  afterAll(() => stopServer(harness.t));
  return harness;
}

/**
 * A test server whose clock stands still, so every upload gets the same `uploaded` millisecond: the only
 * way to make list order fall back on the id tie-breaker. It reuses the data dir, account and token of a
 * stopped `startTestServer` and passes the server's own injectable clock (`startServer(config, {now})`).
 */
async function startFrozenClockServer(): Promise<TestServer> {
  const prepared = await startTestServer();
  await prepared.stop();
  const frozenAt = Date.now();
  const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', PICTOR_LOG_LEVEL: 'warn', ...prepared.storeEnv });
  const server = await startServer(config, { now: () => frozenAt });
  return {
    ...prepared,
    server,
    url: server.url,
    imagesUrl: `${server.url}/client/v4/accounts/${prepared.accountId}/images`,
    stop: () => server.close(),
  };
}

function fileOf(name: string, type = ''): File {
  return new File([fixture(name)], name, type === '' ? {} : { type });
}

/** Uploads a fixture (as a `File`) with optional extra fields. */
function upload(h: Harness, fields: CreateFields = {}, name = SMALL, client: Cloudflare = h.cf): Promise<Image> {
  return client.images.v1.create({ account_id: h.t.accountId, file: fileOf(name), ...fields });
}

/** Uploads `count` images one after another (so upload times are ordered) and returns them. */
async function uploadMany(h: Harness, count: number, fields: CreateFields = {}): Promise<Image[]> {
  const images: Image[] = [];
  for (let i = 0; i < count; i++) images.push(await upload(h, fields));
  return images;
}

function idOf(image: Image): string {
  expect(image.id).toBeTypeOf('string');
  return image.id as string;
}

/** Metadata whose JSON serialization is exactly `bytes` bytes long. */
function metadataOfBytes(bytes: number): { k: string } {
  const metadata = { k: 'x'.repeat(bytes - JSON.stringify({ k: '' }).length) };
  expect(Buffer.byteLength(JSON.stringify(metadata))).toBe(bytes);
  return metadata;
}

/** The SDK call must fail with `errorClass`, HTTP `status` and `errors[0].code === code`. */
async function expectApiError<E extends APIError>(
  promise: Promise<unknown>,
  errorClass: ApiErrorClass<E>,
  status: number,
  code: number,
): Promise<E> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected ${errorClass.name} ${code}, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(errorClass);
  const error = outcome.error as E;
  expect(error.status).toBe(status);
  expect(error.errors[0]?.code).toBe(code);
  expect(error.error).toMatchObject({ success: false, result: null });
  return error;
}

/** `errors[0].error_chain[0].code` of an auth error body (the SDK types `errors` without the chain). */
function errorChainCode(error: APIError): number | undefined {
  const body = error.error as unknown as { errors: Array<{ error_chain?: Array<{ code: number }> }> };
  return body.errors[0]?.error_chain?.[0]?.code;
}

/** The image id a delivery URL names: the path between the account hash and the variant, decoded. */
function deliveredId(variantUrl: string, t: TestServer): { hash: string; id: string; variant: string } {
  expect(variantUrl.startsWith(`${t.url}/`)).toBe(true);
  const segments = new URL(variantUrl).pathname.split('/').slice(1);
  const hash = segments[0] ?? '';
  const variant = segments[segments.length - 1] ?? '';
  return { hash, variant, id: segments.slice(1, -1).map(decodeURIComponent).join('/') };
}

interface ExpectedImage {
  id?: string;
  filename: string;
  meta?: unknown;
  creator?: string | null;
  requireSignedURLs?: boolean;
}

/** Checks the full Image object every endpoint returns (Part A "Responses always carry ..."). */
function expectImage(image: Image, t: TestServer, expected: ExpectedImage): void {
  expect(Object.keys(image).sort()).toEqual(IMAGE_KEYS);
  if (expected.id === undefined) expect(image.id).toMatch(UUID_SHAPE);
  else expect(image.id).toBe(expected.id);
  expect(image.filename).toBe(expected.filename);
  expect(image.meta).toEqual(expected.meta ?? {});
  expect(image.creator).toBe(expected.creator ?? null);
  expect(image.requireSignedURLs).toBe(expected.requireSignedURLs ?? false);
  expect(image.uploaded).toMatch(ISO_WITH_MS);
  const uploadedAt = Date.parse(image.uploaded ?? '');
  expect(Math.abs(Date.now() - uploadedAt)).toBeLessThan(5 * 60_000);

  expect(Array.isArray(image.variants)).toBe(true);
  const variants = image.variants ?? [];
  const publicUrl = variants.find((url) => url.endsWith('/public'));
  expect(publicUrl, `variants ${JSON.stringify(variants)} lack /public`).toBeDefined();
  const parsed = deliveredId(publicUrl ?? '', t);
  expect(parsed.hash).toMatch(/^[A-Za-z0-9_-]{22}$/);
  expect(parsed.id).toBe(image.id);
  expect(parsed.variant).toBe('public');
  const encodedId = (image.id ?? '').split('/').map(encodeURIComponent).join('/');
  expect(publicUrl).toBe(`${t.url}/${parsed.hash}/${encodedId}/public`);
}

/** Downloads the original through `blobs.get` (a raw fetch Response). */
async function blobOf(h: Harness, id: string, client: Cloudflare = h.cf): Promise<{ bytes: Buffer; type: string | null }> {
  const response = await client.images.v1.blobs.get(id, { account_id: h.t.accountId });
  expect(response).toBeInstanceOf(Response);
  expect(response.status).toBe(200);
  return { bytes: Buffer.from(await response.arrayBuffer()), type: response.headers.get('content-type') };
}

async function expectOriginal(h: Harness, id: string, name: string, contentType: string): Promise<void> {
  const blob = await blobOf(h, id);
  expect(blob.type?.split(';')[0]).toBe(contentType);
  expect(blob.bytes.equals(fixture(name))).toBe(true);
}

/** Runs the real CLI against the server's data dir and returns its stdout lines. */
async function cli(t: TestServer, ...args: string[]): Promise<string[]> {
  const { stdout } = await run(TSX, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...t.storeEnv, PICTOR_LOG_LEVEL: 'warn' },
  });
  return stdout.trim().split('\n');
}

function lastLine(lines: string[]): string {
  const line = lines[lines.length - 1] ?? '';
  expect(line).not.toBe('');
  return line;
}

/** Every image of a v2 walk, page by page, following continuation_token; `between` runs between pages. */
async function walkV2(
  h: Harness,
  query: V2Query,
  between?: (page: Image[], pageIndex: number) => Promise<void>,
): Promise<{ images: Image[]; pages: Image[][] }> {
  const pages: Image[][] = [];
  let token: string | undefined;
  for (;;) {
    const result = await h.cf.images.v2.list({
      account_id: h.t.accountId,
      ...query,
      ...(token !== undefined && { continuation_token: token }),
    });
    expect(Object.keys(result).sort()).toEqual(['continuation_token', 'images']);
    const page = result.images ?? [];
    pages.push(page);
    if (result.continuation_token === null) break;
    expect(result.continuation_token).toBeTypeOf('string');
    token = result.continuation_token as string;
    if (pages.length > 500) throw new Error('v2 walk does not terminate');
    await between?.(page, pages.length - 1);
  }
  return { images: pages.flat(), pages };
}

/** (uploaded, id) order of lists: `desc` newest first; id breaks ties in the same direction. */
function compareUploadOrder(a: Image, b: Image): number {
  const byTime = Date.parse(a.uploaded ?? '') - Date.parse(b.uploaded ?? '');
  if (byTime !== 0) return byTime;
  const [x, y] = [a.id ?? '', b.id ?? ''];
  return x < y ? -1 : x > y ? 1 : 0;
}

function expectSorted(images: Image[], order: 'asc' | 'desc'): void {
  const sorted = [...images].sort((a, b) => (order === 'asc' ? 1 : -1) * compareUploadOrder(a, b));
  expect(images.map(idOf)).toEqual(sorted.map(idOf));
}

function expectNoRepeats(ids: string[]): void {
  const repeated = ids.filter((id, index) => ids.indexOf(id) !== index);
  expect(repeated, 'ids listed more than once').toEqual([]);
}

/**
 * Images of a v1 list page. The SDK types `page.result` as `{items}` (its generic V4PagePagination), but
 * the wire shape, Cloudflare's and Pictor's, is `result: {images}`: the one place the types force a cast.
 */
function pageImages(page: V1ListResponsesV4PagePagination): Image[] {
  const result = page.result as unknown as { images?: Image[] };
  expect(Array.isArray(result.images)).toBe(true);
  return result.images ?? [];
}

/** v2 metadata filters through the SDK's own `meta` query parameter (sent as `meta.<path>[<op>]=`). */
function metaFilter(filters: Record<string, string>): V2ListParams.Meta {
  return filters as V2ListParams.Meta;
}

/** A throwaway origin on 127.0.0.1 that serves fixtures by path and records what it was asked for. */
async function startOrigin(files: Record<string, string>): Promise<{ base: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    const name = files[request.url ?? ''];
    if (name === undefined) {
      response.writeHead(404).end('not found');
      return;
    }
    const body = fixture(name);
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

// ---------------------------------------------------------------------------------------------------
// images.v1.create
// ---------------------------------------------------------------------------------------------------

describe('images.v1.create', () => {
  const h = useServer(() => startTestServer({ PICTOR_ALLOW_PRIVATE_URLS: 'true' }));

  it('uploads a File and returns the full Image shape with a generated UUID-shaped id', async () => {
    const image = await h.cf.images.v1.create({
      account_id: h.t.accountId,
      file: new File([fixture(JPEG)], 'a.jpg', { type: 'image/jpeg' }),
    });
    expectImage(image, h.t, { filename: 'a.jpg', meta: {}, creator: null, requireSignedURLs: false });
    await expectOriginal(h, idOf(image), JPEG, 'image/jpeg');
  });

  it('uploads `await toFile(buffer, name)`', async () => {
    const image = await h.cf.images.v1.create({ account_id: h.t.accountId, file: await toFile(fixture(PNG), 'x.png') });
    expectImage(image, h.t, { filename: 'x.png' });
    await expectOriginal(h, idOf(image), PNG, 'image/png');
  });

  it('uploads an fs.ReadStream: filename is the basename, the type comes from the bytes', async () => {
    const image = await h.cf.images.v1.create({
      account_id: h.t.accountId,
      file: fs.createReadStream(path.join(FIXTURES, WEBP)),
    });
    expectImage(image, h.t, { filename: WEBP });
    await expectOriginal(h, idOf(image), WEBP, 'image/webp');
  });

  it('uploads from a URL: the filename is the last path segment and the bytes are the origin’s', async () => {
    const origin = await startOrigin({ '/pics/summer/remote-photo.jpg': JPEG });
    try {
      const image = await h.cf.images.v1.create({
        account_id: h.t.accountId,
        url: `${origin.base}/pics/summer/remote-photo.jpg`,
        metadata: { source: 'origin' },
      });
      expectImage(image, h.t, { filename: 'remote-photo.jpg', meta: { source: 'origin' } });
      expect(origin.requests).toEqual(['GET /pics/summer/remote-photo.jpg']);
      await expectOriginal(h, idOf(image), JPEG, 'image/jpeg');
    } finally {
      await origin.close();
    }
  });

  it('refuses a URL the origin does not serve with BadRequestError 5400 and stores nothing', async () => {
    const origin = await startOrigin({});
    try {
      const before = await h.cf.images.v1.stats.get({ account_id: h.t.accountId });
      await expectApiError(
        h.cf.images.v1.create({ account_id: h.t.accountId, url: `${origin.base}/missing.jpg` }),
        BadRequestError,
        400,
        5400,
      );
      expect(await h.cf.images.v1.stats.get({ account_id: h.t.accountId })).toEqual(before);
    } finally {
      await origin.close();
    }
  });

  it('keeps a custom id containing "/" and builds the delivery URL from it', async () => {
    const id = 'albums/2024/beach-day';
    const image = await upload(h, { id }, JPEG);
    expectImage(image, h.t, { id, filename: JPEG });
    expect(image.variants?.[0]).toMatch(/\/albums\/2024\/beach-day\/public$/);
    expect(await h.cf.images.v1.get(id, { account_id: h.t.accountId })).toEqual(image);
  });

  it('rebuilds metadata sent as an object (SDK bracket fields): values become strings, nesting kept', async () => {
    const metadata = { k: 'v', n: 1, flag: true, tags: ['x', 'y'], nested: { a: 'b', deep: { z: 2 } } };
    const image = await upload(h, { metadata });
    const expected = { k: 'v', n: '1', flag: 'true', tags: ['x', 'y'], nested: { a: 'b', deep: { z: '2' } } };
    expectImage(image, h.t, { filename: SMALL, meta: expected });
    expect((await h.cf.images.v1.get(idOf(image), { account_id: h.t.accountId })).meta).toEqual(expected);
  });

  it('keeps JSON types of metadata sent as a JSON string', async () => {
    const metadata = { k: 'v', n: 1, ratio: 0.5, flag: true, none: null, list: [1, 'two', false], nested: { a: { b: 3 } } };
    const image = await upload(h, { metadata: JSON.stringify(metadata) });
    expectImage(image, h.t, { filename: SMALL, meta: metadata });
    expect((await h.cf.images.v1.get(idOf(image), { account_id: h.t.accountId })).meta).toEqual(metadata);
  });

  it('stores requireSignedURLs: true', async () => {
    const image = await upload(h, { requireSignedURLs: true });
    expectImage(image, h.t, { filename: SMALL, requireSignedURLs: true });
    expect((await h.cf.images.v1.get(idOf(image), { account_id: h.t.accountId })).requireSignedURLs).toBe(true);
  });

  it('stores requireSignedURLs: false (sent as the string "false")', async () => {
    const image = await upload(h, { requireSignedURLs: false });
    expectImage(image, h.t, { filename: SMALL, requireSignedURLs: false });
  });

  it('stores the creator', async () => {
    const image = await upload(h, { creator: 'user-42' });
    expectImage(image, h.t, { filename: SMALL, creator: 'user-42' });
  });

  it('takes every field at once (custom id, creator, object metadata) as in the SDK capture', async () => {
    const image = await h.cf.images.v1.create({
      account_id: h.t.accountId,
      file: fs.createReadStream(path.join(FIXTURES, PNG)),
      id: 'custom/id-1',
      creator: 'me',
      metadata: { k: 'v', n: 1, nested: { a: true } },
      requireSignedURLs: false,
    });
    expectImage(image, h.t, {
      id: 'custom/id-1',
      filename: PNG,
      creator: 'me',
      meta: { k: 'v', n: '1', nested: { a: 'true' } },
    });
    await expectOriginal(h, 'custom/id-1', PNG, 'image/png');
  });

  it('keeps a non-ASCII file name (sent as raw UTF-8 in Content-Disposition)', async () => {
    const image = await h.cf.images.v1.create({ account_id: h.t.accountId, file: new File([fixture(SMALL)], 'fötö 写真.png') });
    expectImage(image, h.t, { filename: 'fötö 写真.png' });
  });

  it('keeps a non-ASCII creator and non-ASCII metadata values', async () => {
    const image = await upload(h, { creator: 'Jürgen 写', metadata: { name: 'wért', nested: { v: '値 ✓' } } });
    expectImage(image, h.t, { filename: SMALL, creator: 'Jürgen 写', meta: { name: 'wért', nested: { v: '値 ✓' } } });
  });

  it('keeps non-ASCII metadata keys (bracket field names are sent as raw UTF-8)', async () => {
    const image = await upload(h, { metadata: { näme: 'v', 名前: { 値: 'w' } } });
    expectImage(image, h.t, { filename: SMALL, meta: { näme: 'v', 名前: { 値: 'w' } } });
  });

  it('decodes the file name of a URL upload', async () => {
    const origin = await startOrigin({ '/pics/my%20ph%C3%B6to.jpg': JPEG });
    try {
      const image = await h.cf.images.v1.create({ account_id: h.t.accountId, url: `${origin.base}/pics/my%20ph%C3%B6to.jpg` });
      expectImage(image, h.t, { filename: 'my phöto.jpg' });
    } finally {
      await origin.close();
    }
  });

  it('accepts metadata of exactly 1024 bytes serialized', async () => {
    const metadata = metadataOfBytes(1024);
    const image = await upload(h, { metadata: JSON.stringify(metadata) });
    expect(image.meta).toEqual(metadata);
  });

  it.each([
    ['ASCII with "/"', `${'a/'.repeat(511)}zz`],
    ['multibyte', '漢'.repeat(1024)],
  ])('takes a custom id of 1024 characters (%s) through create, get, edit, blob and delete', async (_label, id) => {
    expect(Array.from(id)).toHaveLength(1024);
    const account = { account_id: h.t.accountId };
    const created = await upload(h, { id });
    expectImage(created, h.t, { id, filename: SMALL });
    expect(await h.cf.images.v1.get(id, account)).toEqual(created);
    expect((await h.cf.images.v1.edit(id, { ...account, creator: 'long' })).creator).toBe('long');
    expect((await blobOf(h, id)).bytes.equals(fixture(SMALL))).toBe(true);
    expect(await h.cf.images.v1.delete(id, account)).toEqual({});
    await expectApiError(h.cf.images.v1.get(id, account), NotFoundError, 404, 5404);
  });

  it('concurrent uploads of one custom id: exactly one wins, the others get ConflictError 5409', async () => {
    const id = 'race/winner';
    const names = [JPEG, PNG, WEBP];
    const outcomes = await Promise.allSettled(names.map((name) => upload(h, { id }, name)));
    const winners = outcomes.flatMap((outcome, index) => (outcome.status === 'fulfilled' ? [names[index] as string] : []));
    expect(winners).toHaveLength(1);
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') {
        expect(outcome.reason).toBeInstanceOf(ConflictError);
        expect((outcome.reason as ConflictError).errors[0]?.code).toBe(5409);
      }
    }
    const winner = winners[0] as string;
    expect((await h.cf.images.v1.get(id, { account_id: h.t.accountId })).filename).toBe(winner);
    expect((await blobOf(h, id)).bytes.equals(fixture(winner))).toBe(true);
  });

  describe('refusals (each stores nothing)', () => {
    async function expectRefused(fields: CreateFields, status: number, code: number, name = SMALL): Promise<void> {
      const before = await h.cf.images.v1.stats.get({ account_id: h.t.accountId });
      const errorClass: ApiErrorClass<APIError> = status === 400 ? BadRequestError : APIError;
      await expectApiError(upload(h, fields, name), errorClass, status, code);
      expect(await h.cf.images.v1.stats.get({ account_id: h.t.accountId })).toEqual(before);
      if (fields.id !== undefined) {
        await expectApiError(h.cf.images.v1.get(fields.id, { account_id: h.t.accountId }), NotFoundError, 404, 5404);
      }
    }

    it('custom id combined with requireSignedURLs: true → BadRequestError 5400', async () => {
      await expectRefused({ id: 'signed/custom', requireSignedURLs: true }, 400, 5400);
    });

    it('UUID-shaped custom id → BadRequestError 5400', async () => {
      await expectRefused({ id: '083eb7b2-5392-4565-b69e-aff66acddd00' }, 400, 5400);
    });

    it('custom id with a ".." segment → BadRequestError 5400', async () => {
      await expectRefused({ id: 'a/../b' }, 400, 5400);
    });

    it('metadata over 1024 bytes → BadRequestError 5400', async () => {
      await expectRefused({ id: 'too-much-meta', metadata: { blob: 'x'.repeat(1100) } }, 400, 5400);
    });

    it('metadata JSON string that is not an object → BadRequestError 5400', async () => {
      await expectRefused({ id: 'array-meta', metadata: '[1,2,3]' }, 400, 5400);
    });

    it('custom id of 1025 characters → BadRequestError 5400', async () => {
      await expectRefused({ id: 'b'.repeat(1025) }, 400, 5400);
    });

    it('metadata of 1025 bytes serialized → BadRequestError 5400', async () => {
      await expectRefused({ id: 'meta-1025', metadata: JSON.stringify(metadataOfBytes(1025)) }, 400, 5400);
    });

    it('an empty file → APIError 415 code 5455', async () => {
      await expectRefused({ id: 'empty-file' }, 415, 5455, 'empty.jpg');
    });

    it('bytes that are not an image → APIError 415 code 5455', async () => {
      await expectRefused({ id: 'not-an-image' }, 415, 5455, 'not-an-image.jpg');
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// images.v1.get
// ---------------------------------------------------------------------------------------------------

describe('images.v1.get', () => {
  const h = useServer();

  it('returns exactly what create returned', async () => {
    const created = await upload(h, { creator: 'c', metadata: JSON.stringify({ a: 1 }) }, JPEG);
    const got = await h.cf.images.v1.get(idOf(created), { account_id: h.t.accountId });
    expect(got).toEqual(created);
    expectImage(got, h.t, { id: created.id, filename: JPEG, creator: 'c', meta: { a: 1 } });
  });

  // The SDK percent-encodes the whole id into one path segment (`/` → %2F, space → %20, % → %25).
  it.each([
    'folder/sub/pic',
    'spaced name/ünïcödé ✓',
    '50%off/a+b=c',
    'what?/hash#tag',
    'gallery/blob',
  ])('finds the custom id %j', async (id) => {
    const created = await upload(h, { id });
    expectImage(created, h.t, { id, filename: SMALL });
    const got = await h.cf.images.v1.get(id, { account_id: h.t.accountId });
    expect(got).toEqual(created);
    expect((await blobOf(h, id)).bytes.equals(fixture(SMALL))).toBe(true);
  });

  it('a missing image → NotFoundError 5404', async () => {
    await expectApiError(h.cf.images.v1.get('no-such-image', { account_id: h.t.accountId }), NotFoundError, 404, 5404);
    await expectApiError(
      h.cf.images.v1.get('f0f0f0f0-0000-4000-8000-000000000000', { account_id: h.t.accountId }),
      NotFoundError,
      404,
      5404,
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// images.v1.edit
// ---------------------------------------------------------------------------------------------------

describe('images.v1.edit', () => {
  const h = useServer();

  it('replaces metadata wholesale (JSON body: types kept) and leaves the other fields alone', async () => {
    const created = await upload(h, { creator: 'alice', metadata: { a: '1', b: '2', nested: { x: 'y' } } });
    const edited = await h.cf.images.v1.edit(idOf(created), {
      account_id: h.t.accountId,
      metadata: { c: 3, d: { e: true } },
    });
    expectImage(edited, h.t, { id: created.id, filename: SMALL, creator: 'alice', meta: { c: 3, d: { e: true } } });
    expect(edited.uploaded).toBe(created.uploaded);
    expect(edited.variants).toEqual(created.variants);
    expect(await h.cf.images.v1.get(idOf(created), { account_id: h.t.accountId })).toEqual(edited);
  });

  it('an empty metadata object clears the metadata', async () => {
    const created = await upload(h, { metadata: { a: 'b' } });
    const edited = await h.cf.images.v1.edit(idOf(created), { account_id: h.t.accountId, metadata: {} });
    expect(edited.meta).toEqual({});
  });

  it('changes the creator and keeps metadata when none is sent', async () => {
    const created = await upload(h, { creator: 'alice', metadata: JSON.stringify({ keep: 1 }) });
    const edited = await h.cf.images.v1.edit(idOf(created), { account_id: h.t.accountId, creator: 'bob' });
    expectImage(edited, h.t, { id: created.id, filename: SMALL, creator: 'bob', meta: { keep: 1 } });
  });

  it('toggles requireSignedURLs and keeps the id', async () => {
    const created = await upload(h);
    const id = idOf(created);
    const signed = await h.cf.images.v1.edit(id, { account_id: h.t.accountId, requireSignedURLs: true });
    expectImage(signed, h.t, { id, filename: SMALL, requireSignedURLs: true });
    expect((await h.cf.images.v1.get(id, { account_id: h.t.accountId })).requireSignedURLs).toBe(true);
    const unsigned = await h.cf.images.v1.edit(id, { account_id: h.t.accountId, requireSignedURLs: false });
    expectImage(unsigned, h.t, { id, filename: SMALL, requireSignedURLs: false });
  });

  it('sets metadata, requireSignedURLs and creator in one call (the SDK capture)', async () => {
    const created = await upload(h);
    const edited = await h.cf.images.v1.edit(idOf(created), {
      account_id: h.t.accountId,
      metadata: { k2: 'v2' },
      requireSignedURLs: true,
      creator: 'c',
    });
    expectImage(edited, h.t, { id: created.id, filename: SMALL, meta: { k2: 'v2' }, requireSignedURLs: true, creator: 'c' });
  });

  it('edits an image whose custom id contains "/"', async () => {
    const id = 'edit/me/please';
    await upload(h, { id });
    const edited = await h.cf.images.v1.edit(id, { account_id: h.t.accountId, metadata: { done: true }, creator: 'x' });
    expectImage(edited, h.t, { id, filename: SMALL, meta: { done: true }, creator: 'x' });
  });

  it('a custom-id image cannot require signed URLs → BadRequestError 5400, nothing changes', async () => {
    const id = 'public/only';
    const created = await upload(h, { id });
    await expectApiError(
      h.cf.images.v1.edit(id, { account_id: h.t.accountId, requireSignedURLs: true }),
      BadRequestError,
      400,
      5400,
    );
    expect(await h.cf.images.v1.get(id, { account_id: h.t.accountId })).toEqual(created);
  });

  it('metadata over 1024 bytes → BadRequestError 5400, nothing changes', async () => {
    const created = await upload(h, { metadata: { a: 'b' } });
    await expectApiError(
      h.cf.images.v1.edit(idOf(created), { account_id: h.t.accountId, metadata: { big: 'x'.repeat(1100) } }),
      BadRequestError,
      400,
      5400,
    );
    expect(await h.cf.images.v1.get(idOf(created), { account_id: h.t.accountId })).toEqual(created);
  });

  it('a missing image → NotFoundError 5404', async () => {
    await expectApiError(
      h.cf.images.v1.edit('nobody/home', { account_id: h.t.accountId, creator: 'x' }),
      NotFoundError,
      404,
      5404,
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// images.v1.delete
// ---------------------------------------------------------------------------------------------------

describe('images.v1.delete', () => {
  const h = useServer();

  it.each([
    ['a generated id', undefined],
    ['a custom id containing "/"', 'to/be/deleted'],
  ])('deletes %s: result {}, then get/blob/delete → NotFoundError 5404', async (_label, customId) => {
    const created = await upload(h, customId === undefined ? {} : { id: customId });
    const id = idOf(created);
    const account = { account_id: h.t.accountId };

    expect(await h.cf.images.v1.delete(id, account)).toEqual({});

    const notFound = await expectApiError(h.cf.images.v1.get(id, account), NotFoundError, 404, 5404);
    expect(notFound.errors).toHaveLength(1);
    await expectApiError(h.cf.images.v1.blobs.get(id, account), NotFoundError, 404, 5404);
    await expectApiError(h.cf.images.v1.delete(id, account), NotFoundError, 404, 5404);
    const listed = await h.cf.images.v1.list(account);
    expect(pageImages(listed).map(idOf)).not.toContain(id);
  });

  it('the id of a deleted custom-id image can be used again', async () => {
    const id = 'reuse/me';
    await upload(h, { id }, JPEG);
    await h.cf.images.v1.delete(id, { account_id: h.t.accountId });
    const again = await upload(h, { id }, PNG);
    expectImage(again, h.t, { id, filename: PNG });
    await expectOriginal(h, id, PNG, 'image/png');
  });
});

// ---------------------------------------------------------------------------------------------------
// images.v1.blobs.get
// ---------------------------------------------------------------------------------------------------

describe('images.v1.blobs.get', () => {
  const h = useServer();

  // Uploaded as application/octet-stream: the stored type must come from the bytes.
  it.each([
    [JPEG, 'image/jpeg'],
    [PNG, 'image/png'],
    [WEBP, 'image/webp'],
    ['animated-loop-3.gif', 'image/gif'],
    ['landscape.avif', 'image/avif'],
    ['circle.svg', 'image/svg+xml'],
  ])('returns the original %s byte for byte as %s', async (name, contentType) => {
    const image = await h.cf.images.v1.create({ account_id: h.t.accountId, file: fileOf(name, 'application/octet-stream') });
    await expectOriginal(h, idOf(image), name, contentType);
  });

  it('returns a raw Response whose content-length matches the original', async () => {
    const image = await upload(h, {}, JPEG);
    const response = await h.cf.images.v1.blobs.get(idOf(image), { account_id: h.t.accountId });
    expect(response.headers.get('content-length')).toBe(String(fixture(JPEG).length));
    expect(Buffer.from(await response.arrayBuffer()).equals(fixture(JPEG))).toBe(true);
  });

  it('a missing image → NotFoundError 5404', async () => {
    await expectApiError(h.cf.images.v1.blobs.get('missing', { account_id: h.t.accountId }), NotFoundError, 404, 5404);
  });
});

// ---------------------------------------------------------------------------------------------------
// images.v1.stats.get
// ---------------------------------------------------------------------------------------------------

describe('images.v1.stats.get', () => {
  describe('with the default quota', () => {
    const h = useServer();

    it('reports allowed 100000 and the live image count', async () => {
      const stats = () => h.cf.images.v1.stats.get({ account_id: h.t.accountId });
      expect(await stats()).toEqual({ count: { allowed: 100_000, current: 0 } });
      const [first] = await uploadMany(h, 2);
      expect(await stats()).toEqual({ count: { allowed: 100_000, current: 2 } });
      await h.cf.images.v1.delete(idOf(first as Image), { account_id: h.t.accountId });
      expect(await stats()).toEqual({ count: { allowed: 100_000, current: 1 } });
    });
  });

  describe('with PICTOR_IMAGE_QUOTA=3', () => {
    const h = useServer(() => startTestServer({ PICTOR_IMAGE_QUOTA: '3' }));

    it('reports the quota as allowed and refuses uploads past it with 403 code 5453', async () => {
      const stats = () => h.cf.images.v1.stats.get({ account_id: h.t.accountId });
      expect(await stats()).toEqual({ count: { allowed: 3, current: 0 } });
      const images = await uploadMany(h, 3);
      expect(await stats()).toEqual({ count: { allowed: 3, current: 3 } });

      await expectApiError(upload(h, { id: 'over-quota' }), PermissionDeniedError, 403, 5453);
      expect(await stats()).toEqual({ count: { allowed: 3, current: 3 } });
      await expectApiError(h.cf.images.v1.get('over-quota', { account_id: h.t.accountId }), NotFoundError, 404, 5404);

      await h.cf.images.v1.delete(idOf(images[0] as Image), { account_id: h.t.accountId });
      expect(await stats()).toEqual({ count: { allowed: 3, current: 2 } });
      await upload(h);
      expect(await stats()).toEqual({ count: { allowed: 3, current: 3 } });
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// images.v1.list (page / per_page; the SDK page object exposes result and result_info)
// ---------------------------------------------------------------------------------------------------

describe('images.v1.list', () => {
  const h = useServer();
  let all: Image[] = [];

  beforeAll(async () => {
    const plain = await uploadMany(h, 4);
    const carol = await uploadMany(h, 3, { creator: 'carol' });
    all = [...plain, ...carol];
  });

  const list = (query: { page?: number; per_page?: number; creator?: string }) =>
    h.cf.images.v1.list({ account_id: h.t.accountId, ...query });

  it('without parameters returns page 1 of 100, newest first, with result_info', async () => {
    const page = await list({});
    expect(page.result_info).toEqual({ page: 1, per_page: 100, count: 7, total_count: 7 });
    expect(Object.keys(page.result)).toEqual(['images']);
    const images = pageImages(page);
    expect(images.map(idOf)).toEqual([...all].reverse().map(idOf));
    expectSorted(images, 'desc');
    for (const image of images) expect(Object.keys(image).sort()).toEqual(IMAGE_KEYS);
    expect(images).toContainEqual(all[0]);
  });

  it('walks every page with page/per_page: no overlap, nothing missing', async () => {
    const seen: Image[] = [];
    const infos: unknown[] = [];
    for (let pageNumber = 1; pageNumber <= 4; pageNumber++) {
      const page = await list({ page: pageNumber, per_page: 3 });
      infos.push(page.result_info);
      seen.push(...pageImages(page));
    }
    expect(infos).toEqual([
      { page: 1, per_page: 3, count: 3, total_count: 7 },
      { page: 2, per_page: 3, count: 3, total_count: 7 },
      { page: 3, per_page: 3, count: 1, total_count: 7 },
      { page: 4, per_page: 3, count: 0, total_count: 7 },
    ]);
    expectNoRepeats(seen.map(idOf));
    expect(seen.map(idOf)).toEqual([...all].reverse().map(idOf));
  });

  it('clamps per_page above 100 to 100', async () => {
    const page = await list({ per_page: 500 });
    expect(page.result_info).toEqual({ page: 1, per_page: 100, count: 7, total_count: 7 });
  });

  it('filters by creator (and "" means no creator)', async () => {
    const carol = await list({ creator: 'carol', per_page: 2 });
    expect(carol.result_info).toEqual({ page: 1, per_page: 2, count: 2, total_count: 3 });
    for (const image of pageImages(carol)) expect(image.creator).toBe('carol');

    const none = await list({ creator: '' });
    expect(none.result_info).toMatchObject({ count: 4, total_count: 4 });
    expect(pageImages(none).map(idOf).sort()).toEqual(all.slice(0, 4).map(idOf).sort());
  });

  it('lists in the same order as images.v2.list (desc)', async () => {
    const v1 = await list({});
    const v2 = await h.cf.images.v2.list({ account_id: h.t.accountId });
    expect((v2.images ?? []).map(idOf)).toEqual(pageImages(v1).map(idOf));
  });

  it('rejects page=0 with BadRequestError 5400', async () => {
    await expectApiError(list({ page: 0 }), BadRequestError, 400, 5400);
  });
});

// ---------------------------------------------------------------------------------------------------
// images.v2.list (continuation_token, sort_order, creator and metadata filters)
// ---------------------------------------------------------------------------------------------------

describe('images.v2.list', () => {
  const h = useServer();

  describe('pagination', () => {
    let pager: Image[] = [];
    beforeAll(async () => {
      pager = await uploadMany(h, 11, { creator: 'pager' });
    });

    it('walks every page with continuation_token (default desc): each image exactly once', async () => {
      const walk = await walkV2(h, { creator: 'pager', per_page: 4 });
      expect(walk.pages.map((page) => page.length)).toEqual([4, 4, 3]);
      expectNoRepeats(walk.images.map(idOf));
      expect(walk.images.map(idOf)).toEqual([...pager].reverse().map(idOf));
      expectSorted(walk.images, 'desc');
      expect(walk.images).toContainEqual(pager[5]);
    });

    it('sort_order asc is the exact reverse of desc', async () => {
      const asc = await walkV2(h, { creator: 'pager', per_page: 3, sort_order: 'asc' });
      const desc = await walkV2(h, { creator: 'pager', per_page: 5, sort_order: 'desc' });
      expect(asc.images.map(idOf)).toEqual(pager.map(idOf));
      expectSorted(asc.images, 'asc');
      expect(desc.images.map(idOf)).toEqual([...asc.images].reverse().map(idOf));
    });

    it('a page that holds everything has continuation_token null', async () => {
      const result = await h.cf.images.v2.list({ account_id: h.t.accountId, creator: 'pager', per_page: 11 });
      expect(result.images).toHaveLength(11);
      expect(result.continuation_token).toBeNull();
    });

    it('rejects per_page=0, a garbage token and a token from the other sort order with BadRequestError 5400', async () => {
      const account = { account_id: h.t.accountId };
      await expectApiError(h.cf.images.v2.list({ ...account, per_page: 0 }), BadRequestError, 400, 5400);
      await expectApiError(
        h.cf.images.v2.list({ ...account, continuation_token: 'not-a-token' }),
        BadRequestError,
        400,
        5400,
      );
      const first = await h.cf.images.v2.list({ ...account, creator: 'pager', per_page: 2, sort_order: 'desc' });
      expect(first.continuation_token).toBeTypeOf('string');
      await expectApiError(
        h.cf.images.v2.list({ ...account, creator: 'pager', sort_order: 'asc', continuation_token: first.continuation_token }),
        BadRequestError,
        400,
        5400,
      );
    });
  });

  describe('stability under concurrent inserts and deletes', () => {
    it.each(['desc', 'asc'] as const)('%s walk: never skips or repeats an image that existed throughout', async (order) => {
      const creator = `walker-${order}`;
      const initial = await uploadMany(h, 15, { creator });
      const expectedOrder = order === 'asc' ? initial.map(idOf) : [...initial].reverse().map(idOf);
      const deleted = new Set<string>();
      const inserted: string[] = [];
      const seenSoFar = new Set<string>();

      const walk = await walkV2(h, { creator, per_page: 3, sort_order: order }, async (page, pageIndex) => {
        for (const image of page) seenSoFar.add(idOf(image));
        // New images land (newest) while the walk is in progress, on every turn.
        for (const image of await Promise.all([upload(h, { creator }), upload(h, { creator })])) inserted.push(idOf(image));
        if (pageIndex >= 2) return;
        // Delete the row the cursor points at, and the next image the walk has not reached yet.
        const cursor = idOf(page[page.length - 1] as Image);
        const ahead = expectedOrder.find((id) => !seenSoFar.has(id) && !deleted.has(id));
        for (const id of [cursor, ahead]) {
          if (id === undefined) continue;
          await h.cf.images.v1.delete(id, { account_id: h.t.accountId });
          deleted.add(id);
        }
      });

      const walked = walk.images.map(idOf);
      expectNoRepeats(walked);
      const stable = expectedOrder.filter((id) => !deleted.has(id));
      expect(stable.length).toBeGreaterThanOrEqual(11);
      expect(walked.filter((id) => stable.includes(id))).toEqual(stable);
      for (const id of deleted) if (!seenSoFar.has(id)) expect(walked).not.toContain(id);
      for (const id of walked) expect([...expectedOrder, ...inserted]).toContain(id);
      expectSorted(walk.images, order);
    });
  });

  describe('filters', () => {
    const ids: Record<string, string> = {};
    beforeAll(async () => {
      const owned = { creator: 'meta-set' };
      ids.m1 = idOf(
        await upload(h, {
          ...owned,
          metadata: JSON.stringify({ status: 'active', priority: 1, flag: true, region: { name: 'eu' } }),
        }),
      );
      ids.m2 = idOf(
        await upload(h, {
          ...owned,
          metadata: JSON.stringify({ status: 'pending', priority: 5, flag: false, region: { name: 'us' } }),
        }),
      );
      // Object metadata goes out as bracket fields, so these values are stored as strings.
      ids.m3 = idOf(await upload(h, { ...owned, metadata: { status: 'active', region: { name: 'us' } } }));
      ids.m4 = idOf(await upload(h, owned));
      ids.noCreator = idOf(await upload(h, { metadata: JSON.stringify({ status: 'active' }) }));
    });

    async function listIds(query: V2Query): Promise<string[]> {
      const walk = await walkV2(h, { per_page: 2, ...query });
      return walk.images.map(idOf).sort();
    }

    const pick = (...names: string[]) => names.map((name) => ids[name] as string).sort();

    it('creator filter returns only that creator’s images', async () => {
      expect(await listIds({ creator: 'meta-set' })).toEqual(pick('m1', 'm2', 'm3', 'm4'));
      expect(await listIds({ creator: 'nobody' })).toEqual([]);
    });

    it('creator "" returns only images without a creator', async () => {
      const result = await listIds({ creator: '' });
      expect(result).toContain(ids.noCreator);
      for (const id of pick('m1', 'm2', 'm3', 'm4')) expect(result).not.toContain(id);
    });

    it.each<[string, Record<string, string>, string[]]>([
      ['eq', { 'status[eq]': 'active' }, ['m1', 'm3']],
      ['eq:string', { 'status[eq:string]': 'pending' }, ['m2']],
      ['eq:number', { 'priority[eq:number]': '5' }, ['m2']],
      ['eq:boolean', { 'flag[eq:boolean]': 'true' }, ['m1']],
      ['gte + lte (AND)', { 'priority[gte:number]': '2', 'priority[lte:number]': '5' }, ['m2']],
      ['gt', { 'priority[gt]': '0' }, ['m1', 'm2']],
      ['lt:number', { 'priority[lt:number]': '5' }, ['m1']],
      ['in', { 'status[in]': 'pending|archived' }, ['m2']],
      ['nested path', { 'region.name[eq]': 'us' }, ['m2', 'm3']],
      ['contradictory', { 'priority[eq:number]': '5', 'priority[lte:number]': '3' }, []],
    ])('meta filter %s (SDK `meta` parameter)', async (_label, filters, expected) => {
      expect(await listIds({ creator: 'meta-set', meta: metaFilter(filters) })).toEqual(pick(...expected));
    });

    it('combines a meta filter with creator', async () => {
      expect(await listIds({ meta: metaFilter({ 'status[eq]': 'active' }) })).toEqual(pick('m1', 'm3', 'noCreator'));
      expect(await listIds({ creator: '', meta: metaFilter({ 'status[eq]': 'active' }) })).toEqual([ids.noCreator]);
    });

    it.each<[string, Record<string, string>]>([
      ['unknown operator', { 'status[like]': 'x' }],
      ['range operator with a non-number', { 'priority[gt]': 'high' }],
      ['more than 5 filters', { 'a[eq]': '1', 'b[eq]': '1', 'c[eq]': '1', 'd[eq]': '1', 'e[eq]': '1', 'f[eq]': '1' }],
      ['nesting deeper than 5 levels', { 'a.b.c.d.e.f[eq]': '1' }],
    ])('an invalid meta filter (%s) → BadRequestError 5400', async (_label, filters) => {
      await expectApiError(
        h.cf.images.v2.list({ account_id: h.t.accountId, meta: metaFilter(filters) }),
        BadRequestError,
        400,
        5400,
      );
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// Upload-time ties: both lists fall back on the id (Part A), so same-millisecond uploads page cleanly
// ---------------------------------------------------------------------------------------------------

describe('lists when every upload has the same millisecond', () => {
  const h = useServer(startFrozenClockServer);
  let byIdAsc: string[] = [];

  beforeAll(async () => {
    const images = await uploadMany(h, 7);
    expect(new Set(images.map((image) => image.uploaded)).size).toBe(1);
    byIdAsc = images.map(idOf).sort();
  });

  it('images.v1.list pages by id (newest first = id descending) without overlap', async () => {
    const seen: string[] = [];
    for (let pageNumber = 1; pageNumber <= 4; pageNumber++) {
      const page = await h.cf.images.v1.list({ account_id: h.t.accountId, page: pageNumber, per_page: 2 });
      expect(page.result_info).toEqual({ page: pageNumber, per_page: 2, count: pageNumber < 4 ? 2 : 1, total_count: 7 });
      seen.push(...pageImages(page).map(idOf));
    }
    expect(seen).toEqual([...byIdAsc].reverse());
  });

  it.each(['desc', 'asc'] as const)('images.v2.list %s walks by id, each image exactly once', async (order) => {
    const walk = await walkV2(h, { per_page: 2, sort_order: order });
    expect(walk.images.map(idOf)).toEqual(order === 'asc' ? byIdAsc : [...byIdAsc].reverse());
  });
});

// ---------------------------------------------------------------------------------------------------
// images.v1.variants
// ---------------------------------------------------------------------------------------------------

describe('images.v1.variants', () => {
  const h = useServer();
  const thumb = { fit: 'cover', width: 100, height: 80, metadata: 'keep' } as const;

  it('list is a map keyed by name holding the built-in public variant', async () => {
    const listed = await h.cf.images.v1.variants.list({ account_id: h.t.accountId });
    expect(listed).toEqual({
      variants: {
        public: {
          id: 'public',
          options: { fit: 'scale-down', width: 1366, height: 768, metadata: 'none' },
          neverRequireSignedURLs: false,
        },
      },
    });
  });

  it('create, get, edit, delete round trip; new variants show up in every image’s variants', async () => {
    const account = { account_id: h.t.accountId };
    const image = await upload(h, { id: 'has/variants' });
    const created = await h.cf.images.v1.variants.create({ ...account, id: 'thumb', options: thumb, neverRequireSignedURLs: true });
    expect(created).toEqual({ variant: { id: 'thumb', options: thumb, neverRequireSignedURLs: true } });
    expect(await h.cf.images.v1.variants.get('thumb', account)).toEqual(created);
    expect(Object.keys((await h.cf.images.v1.variants.list(account)).variants ?? {}).sort()).toEqual(['public', 'thumb']);

    const variantUrls = (await h.cf.images.v1.get(idOf(image), account)).variants ?? [];
    expect(variantUrls.map((url) => deliveredId(url, h.t).variant).sort()).toEqual(['public', 'thumb']);
    for (const url of variantUrls) expect(deliveredId(url, h.t).id).toBe('has/variants');

    const options = { ...thumb, width: 200, fit: 'pad' } as const;
    const edited = await h.cf.images.v1.variants.edit('thumb', { ...account, options, neverRequireSignedURLs: false });
    expect(edited).toEqual({ variant: { id: 'thumb', options, neverRequireSignedURLs: false } });

    expect(await h.cf.images.v1.variants.delete('thumb', account)).toEqual({});
    await expectApiError(h.cf.images.v1.variants.get('thumb', account), NotFoundError, 404, 5401);
    expect((await h.cf.images.v1.get(idOf(image), account)).variants).toEqual(image.variants);
  });

  it('deleting public answers {} and keeps it', async () => {
    const account = { account_id: h.t.accountId };
    expect(await h.cf.images.v1.variants.delete('public', account)).toEqual({});
    expect((await h.cf.images.v1.variants.get('public', account)).variant?.id).toBe('public');
  });

  it('errors: bad name → BadRequestError 5400, duplicate → ConflictError 5409, unknown → NotFoundError 5401', async () => {
    const account = { account_id: h.t.accountId };
    await expectApiError(h.cf.images.v1.variants.create({ ...account, id: 'no-dashes', options: thumb }), BadRequestError, 400, 5400);
    const conflict = await expectApiError(
      h.cf.images.v1.variants.create({ ...account, id: 'public', options: thumb }),
      ConflictError,
      409,
      5409,
    );
    expect(conflict.headers.get('x-should-retry')).toBe('false');
    await expectApiError(h.cf.images.v1.variants.edit('nosuch', { ...account, options: thumb }), NotFoundError, 404, 5401);
    await expectApiError(h.cf.images.v1.variants.delete('nosuch', account), NotFoundError, 404, 5401);
  });
});

// ---------------------------------------------------------------------------------------------------
// images.v1.keys (signing keys)
// ---------------------------------------------------------------------------------------------------

describe('images.v1.keys', () => {
  const h = useServer();
  const account = () => ({ account_id: h.t.accountId });
  const names = (keys: Array<{ name?: string }> | undefined) => (keys ?? []).map((key) => key.name).sort();

  it('list holds the account’s default key with a value', async () => {
    const listed = await h.cf.images.v1.keys.list(account());
    expect(names(listed.keys)).toEqual(['default']);
    expect(listed.keys?.[0]?.value).toMatch(/^\S{16,}$/);
  });

  it('update (PUT, no body) creates or rotates a key and returns all keys; delete returns the rest', async () => {
    const added = await h.cf.images.v1.keys.update('rotate1', account());
    expect(names(added.keys)).toEqual(['default', 'rotate1']);
    const firstValue = added.keys?.find((key) => key.name === 'rotate1')?.value;
    const rotated = await h.cf.images.v1.keys.update('rotate1', account());
    const secondValue = rotated.keys?.find((key) => key.name === 'rotate1')?.value;
    expect(secondValue).toBeTypeOf('string');
    expect(secondValue).not.toBe(firstValue);

    const remaining = await h.cf.images.v1.keys.delete('rotate1', account());
    expect(names(remaining.keys)).toEqual(['default']);
  });

  it('deleting the last key leaves a new default key', async () => {
    const before = (await h.cf.images.v1.keys.list(account())).keys?.[0]?.value;
    const after = await h.cf.images.v1.keys.delete('default', account());
    expect(names(after.keys)).toEqual(['default']);
    expect(after.keys?.[0]?.value).not.toBe(before);
  });

  it('deleting an unknown key → NotFoundError 5404; a bad name → BadRequestError 5400', async () => {
    await expectApiError(h.cf.images.v1.keys.delete('nosuch', account()), NotFoundError, 404, 5404);
    await expectApiError(h.cf.images.v1.keys.update('bad_name', account()), BadRequestError, 400, 5400);
  });
});

// ---------------------------------------------------------------------------------------------------
// images.v2.directUploads.create (+ the unauthenticated upload a browser makes to uploadURL)
// ---------------------------------------------------------------------------------------------------

describe('images.v2.directUploads.create', () => {
  const h = useServer();
  const account = () => ({ account_id: h.t.accountId });

  /** What the end user's browser does with the URL: one multipart POST, no credentials. */
  async function uploadTo(uploadURL: string, name: string): Promise<Response> {
    const form = new FormData();
    form.append('file', fileOf(name));
    const init = { method: 'POST', body: form, dispatcher: connectionPool(h.t) };
    return fetch(uploadURL, init as unknown as RequestInit);
  }

  it('with no parameters (an empty multipart body) mints a generated id and an absolute uploadURL', async () => {
    const minted = await h.cf.images.v2.directUploads.create(account());
    expect(Object.keys(minted).sort()).toEqual(['id', 'uploadURL']);
    expect(minted.id).toMatch(UUID_SHAPE);
    expect(minted.uploadURL?.startsWith(`${h.t.url}/`)).toBe(true);

    const draft = await h.cf.images.v1.get(minted.id ?? '', account());
    expect(draft).toMatchObject({ id: minted.id, draft: true, meta: {}, creator: null, requireSignedURLs: false });
  });

  it('a draft stays out of lists and stats until its file arrives, then is a normal image', async () => {
    const before = await h.cf.images.v1.stats.get(account());
    const minted = await h.cf.images.v2.directUploads.create({
      ...account(),
      id: 'direct/one',
      creator: 'browser-user',
      metadata: { source: 'direct' },
      expiry: new Date(Date.now() + 10 * 60_000).toISOString(),
    });
    expect(minted.id).toBe('direct/one');
    expect(await h.cf.images.v1.stats.get(account())).toEqual(before);
    expect(pageImages(await h.cf.images.v1.list(account())).map(idOf)).not.toContain('direct/one');
    expect(((await h.cf.images.v2.list(account())).images ?? []).map(idOf)).not.toContain('direct/one');

    const response = await uploadTo(minted.uploadURL ?? '', JPEG);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { success: boolean; result: Image };
    expect(body.success).toBe(true);
    expectImage(body.result, h.t, { id: 'direct/one', filename: JPEG, creator: 'browser-user', meta: { source: 'direct' } });

    expect(await h.cf.images.v1.get('direct/one', account())).toEqual(body.result);
    await expectOriginal(h, 'direct/one', JPEG, 'image/jpeg');
    expect((await h.cf.images.v1.stats.get(account())).count?.current).toBe((before.count?.current ?? 0) + 1);
    expect(((await h.cf.images.v2.list(account())).images ?? []).map(idOf)).toContain('direct/one');

    const again = await uploadTo(minted.uploadURL ?? '', PNG);
    expect(again.status).toBe(409);
    expect(((await again.json()) as { errors: Array<{ code: number }> }).errors[0]?.code).toBe(5409);
  });

  it('errors: an expiry outside 2 min … 6 h → BadRequestError 5400; a taken custom id → ConflictError 5409', async () => {
    const soon = new Date(Date.now() + 30_000).toISOString();
    await expectApiError(h.cf.images.v2.directUploads.create({ ...account(), expiry: soon }), BadRequestError, 400, 5400);
    await upload(h, { id: 'taken/id' });
    await expectApiError(h.cf.images.v2.directUploads.create({ ...account(), id: 'taken/id' }), ConflictError, 409, 5409);
  });
});

// ---------------------------------------------------------------------------------------------------
// Error classes and retries
// ---------------------------------------------------------------------------------------------------

describe('SDK error classes', () => {
  const h = useServer();

  it('a duplicate custom id → ConflictError 409 code 5409, not retried even with default maxRetries', async () => {
    const id = 'unique/one';
    const original = await upload(h, { id }, JPEG);

    let attempts = 0;
    const counting = sdk(h.t, { apiToken: h.t.token }, {
      maxRetries: 2,
      fetch: (input, init) => {
        if (String(input instanceof Request ? input.url : input).startsWith(h.t.url)) attempts += 1;
        return fetch(input, init);
      },
    });
    const error = await expectApiError(upload(h, { id }, PNG, counting), ConflictError, 409, 5409);
    expect(error.headers.get('x-should-retry')).toBe('false');
    expect(attempts).toBe(1);

    expect(await h.cf.images.v1.get(id, { account_id: h.t.accountId })).toEqual(original);
    await expectOriginal(h, id, JPEG, 'image/jpeg');
  });

  it.each<[string, (cf: Cloudflare, account: { account_id: string }) => Promise<unknown>]>([
    ['get', (cf, account) => cf.images.v1.get('ghost', account)],
    ['edit', (cf, account) => cf.images.v1.edit('ghost', { ...account, creator: 'x' })],
    ['delete', (cf, account) => cf.images.v1.delete('ghost', account)],
    ['blobs.get', (cf, account) => cf.images.v1.blobs.get('ghost', account)],
  ])('a missing image on %s → NotFoundError 5404', async (_label, call) => {
    await expectApiError(call(h.cf, { account_id: h.t.accountId }), NotFoundError, 404, 5404);
  });
});

// ---------------------------------------------------------------------------------------------------
// Credentials: tokens, legacy keys, permissions, other accounts
// ---------------------------------------------------------------------------------------------------

describe('authentication and permissions', () => {
  const h = useServer();
  let existing: Image;
  let readOnlyToken: string;
  let legacyKey: string;
  let otherAccount: { id: string; token: string };
  let revocable: { id: string; token: string };
  const EMAIL = 'e@x.com';

  beforeAll(async () => {
    existing = await upload(h, { metadata: { owner: 'a' } }, JPEG);
    const [readOnly, key, account, toRevoke] = await Promise.all([
      cli(h.t, 'token', 'create', '--account', h.t.accountId, '--permission', 'images:read'),
      cli(h.t, 'key', 'create', '--account', h.t.accountId, '--email', EMAIL),
      cli(h.t, 'account', 'create'),
      cli(h.t, 'token', 'create', '--account', h.t.accountId),
    ]);
    readOnlyToken = lastLine(readOnly);
    legacyKey = lastLine(key);
    const otherId = /account id:\s+([0-9a-f]{32})/.exec(account.join('\n'))?.[1] ?? '';
    expect(otherId).toMatch(/^[0-9a-f]{32}$/);
    otherAccount = { id: otherId, token: lastLine(await cli(h.t, 'token', 'create', '--account', otherId)) };
    const revocableId = /token id:\s+(\S+)/.exec(toRevoke.join('\n'))?.[1] ?? '';
    expect(revocableId).not.toBe('');
    revocable = { id: revocableId, token: lastLine(toRevoke) };
  }, 60_000);

  const account = () => ({ account_id: h.t.accountId });

  it('an unknown token → PermissionDeniedError 403 code 10000 on every call', async () => {
    const stranger = sdk(h.t, { apiToken: 'no-such-token-0123456789' });
    await expectApiError(stranger.images.v1.stats.get(account()), PermissionDeniedError, 403, 10000);
    await expectApiError(stranger.images.v1.get(idOf(existing), account()), PermissionDeniedError, 403, 10000);
    await expectApiError(stranger.images.v1.list(account()), PermissionDeniedError, 403, 10000);
    await expectApiError(stranger.images.v2.list(account()), PermissionDeniedError, 403, 10000);
    await expectApiError(upload(h, {}, SMALL, stranger), PermissionDeniedError, 403, 10000);
  });

  it('a malformed token → BadRequestError 400 code 6003 with error_chain 6111', async () => {
    const malformed = sdk(h.t, { apiToken: 'has a space' });
    const error = await expectApiError(malformed.images.v1.stats.get(account()), BadRequestError, 400, 6003);
    expect(errorChainCode(error)).toBe(6111);
  });

  it('X-Auth-Email without X-Auth-Key → BadRequestError 400 code 6003 with error_chain 6103', async () => {
    const half = sdk(h.t, { apiEmail: EMAIL });
    const error = await expectApiError(half.images.v1.stats.get(account()), BadRequestError, 400, 6003);
    expect(errorChainCode(error)).toBe(6103);
  });

  it('a valid token on an account that does not exist → 403 10000 (existence is not revealed)', async () => {
    await expectApiError(h.cf.images.v1.stats.get({ account_id: 'f'.repeat(32) }), PermissionDeniedError, 403, 10000);
    await expectApiError(h.cf.images.v1.get(idOf(existing), { account_id: 'f'.repeat(32) }), PermissionDeniedError, 403, 10000);
  });

  it('a token of another account → PermissionDeniedError 10000; it works on its own account only', async () => {
    const other = sdk(h.t, { apiToken: otherAccount.token });
    await expectApiError(other.images.v1.stats.get(account()), PermissionDeniedError, 403, 10000);
    await expectApiError(other.images.v1.get(idOf(existing), account()), PermissionDeniedError, 403, 10000);
    await expectApiError(other.images.v1.blobs.get(idOf(existing), account()), PermissionDeniedError, 403, 10000);
    await expectApiError(other.images.v1.delete(idOf(existing), account()), PermissionDeniedError, 403, 10000);
    await expectApiError(upload(h, {}, SMALL, other), PermissionDeniedError, 403, 10000);

    const own = { account_id: otherAccount.id };
    expect(await other.images.v1.stats.get(own)).toEqual({ count: { allowed: 100_000, current: 0 } });
    await expectApiError(other.images.v1.get(idOf(existing), own), NotFoundError, 404, 5404);
    // ...and the first account's token cannot reach the other account.
    await expectApiError(h.cf.images.v1.stats.get(own), PermissionDeniedError, 403, 10000);
    expect(await h.cf.images.v1.get(idOf(existing), account())).toEqual(existing);
  });

  it('a legacy X-Auth-Email + X-Auth-Key pair from the CLI works (apiEmail/apiKey)', async () => {
    const legacy = sdk(h.t, { apiEmail: EMAIL, apiKey: legacyKey });
    const stats = await legacy.images.v1.stats.get(account());
    expect(stats.count?.allowed).toBe(100_000);
    expect(stats.count?.current).toBeGreaterThanOrEqual(1);
    expect(await legacy.images.v1.get(idOf(existing), account())).toEqual(existing);
    const created = await upload(h, { creator: 'legacy' }, SMALL, legacy);
    expect(created.creator).toBe('legacy');
  });

  it('a legacy key with the wrong email, or presented as a Bearer token → PermissionDeniedError 10000', async () => {
    const wrongEmail = sdk(h.t, { apiEmail: 'other@x.com', apiKey: legacyKey });
    await expectApiError(wrongEmail.images.v1.stats.get(account()), PermissionDeniedError, 403, 10000);
    const asToken = sdk(h.t, { apiToken: legacyKey });
    await expectApiError(asToken.images.v1.stats.get(account()), PermissionDeniedError, 403, 10000);
  });

  it('an images:read token can read everything and write nothing (403 10000)', async () => {
    const reader = sdk(h.t, { apiToken: readOnlyToken });
    const id = idOf(existing);
    expect(await reader.images.v1.get(id, account())).toEqual(existing);
    expect(pageImages(await reader.images.v1.list(account())).map(idOf)).toContain(id);
    expect(((await reader.images.v2.list(account())).images ?? []).map(idOf)).toContain(id);
    expect((await reader.images.v1.stats.get(account())).count?.current).toBeGreaterThanOrEqual(1);
    expect((await blobOf(h, id, reader)).bytes.equals(fixture(JPEG))).toBe(true);

    await expectApiError(upload(h, {}, SMALL, reader), PermissionDeniedError, 403, 10000);
    await expectApiError(reader.images.v1.edit(id, { ...account(), creator: 'x' }), PermissionDeniedError, 403, 10000);
    await expectApiError(reader.images.v1.delete(id, account()), PermissionDeniedError, 403, 10000);
    expect(await h.cf.images.v1.get(id, account())).toEqual(existing);
  });

  it('a token revoked with the CLI stops working within a second, without a restart', async () => {
    const client = sdk(h.t, { apiToken: revocable.token });
    await client.images.v1.stats.get(account());
    await cli(h.t, 'token', 'revoke', revocable.id);
    const deadline = Date.now() + 1_000;
    let error: unknown;
    while (Date.now() <= deadline) {
      error = await client.images.v1.stats.get(account()).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (error !== undefined) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as PermissionDeniedError).errors[0]?.code).toBe(10000);
  });
  it('user.tokens.verify: a live token answers {id, status: "active"}; an unknown one is AuthenticationError 1000', async () => {
    const verified = await h.cf.user.tokens.verify();
    expect(verified).toMatchObject({ status: 'active' });
    expect(verified.id).toMatch(/^[0-9a-f]{32}$/);
    const read = await sdk(h.t, { apiToken: readOnlyToken }).user.tokens.verify();
    expect(read.id).not.toBe(verified.id);
    await expectApiError(sdk(h.t, { apiToken: 'no-such-token-0123456789' }).user.tokens.verify(), AuthenticationError, 401, 1000);
    // A legacy key is not a token.
    await expectApiError(sdk(h.t, { apiKey: legacyKey, apiEmail: EMAIL }).user.tokens.verify(), AuthenticationError, 401, 1000);
  });

  it("accounts.list: the credential's own account only, in Cloudflare's page envelope", async () => {
    const page = await h.cf.accounts.list();
    expect(page.result.map((candidate) => candidate.id)).toEqual([h.t.accountId]);
    expect(page.result[0]).toMatchObject({ type: 'standard', name: expect.stringContaining(h.t.accountId.slice(0, 8)) });
    expect(Date.parse(page.result[0]?.created_on ?? '')).not.toBeNaN();
    const other = await sdk(h.t, { apiToken: otherAccount.token }).accounts.list();
    expect(other.result.map((candidate) => candidate.id)).toEqual([otherAccount.id]);
    const viaKey = await sdk(h.t, { apiKey: legacyKey, apiEmail: EMAIL }).accounts.list();
    expect(viaKey.result.map((candidate) => candidate.id)).toEqual([h.t.accountId]);
    const res = await fetch(`${h.t.url}/client/v4/accounts?page=2&per_page=5`, { headers: h.t.auth });
    expect(await res.json()).toMatchObject({ success: true, result: [], result_info: { page: 2, per_page: 5, count: 0, total_count: 1, total_pages: 1 } });
    await expectApiError(sdk(h.t, { apiToken: 'no-such-token-0123456789' }).accounts.list(), PermissionDeniedError, 403, 10000);
  });
});
