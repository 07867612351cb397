/** The image routes over plain HTTP: lists, filters, edits, deletes, ids, URLs. */
import fs from 'node:fs';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageResult } from './helpers/api.js';
import { STORAGE_ON_S3 } from './helpers/s3.js';
import { type TestServer, fileBlob, fixture, startTestServer, upload } from './helpers/server.js';

type ImageBody = ImageResult;

interface Envelope<T> {
  success: boolean;
  errors: Array<{ code: number; message: string }>;
  messages: unknown[];
  result: T;
  result_info?: { page: number; per_page: number; count: number; total_count: number };
}

let t: TestServer;

async function call<T>(pathAndQuery: string, init: RequestInit = {}): Promise<{ status: number; body: Envelope<T> }> {
  const response = await fetch(`${t.imagesUrl}${pathAndQuery}`, {
    ...init,
    headers: { ...t.auth, ...(init.headers as Record<string, string> | undefined) },
  });
  return { status: response.status, body: (await response.json()) as Envelope<T> };
}

async function uploadOk(fields: Record<string, string | Blob> = {}): Promise<ImageBody> {
  const response = await upload(t, { file: fileBlob('320x240.jpg'), ...fields });
  const body = (await response.json()) as Envelope<ImageBody>;
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body.result;
}

const patchJson = (body: unknown): RequestInit => ({
  method: 'PATCH',
  body: JSON.stringify(body),
  headers: { 'content-type': 'application/json' },
});

beforeAll(async () => {
  t = await startTestServer({ PICTOR_PUBLIC_URL: 'https://img.example.test/' });
});
afterAll(async () => t.stop());

describe('image shape and ids', () => {
  it('returns every field, delivery URLs from PICTOR_PUBLIC_URL, and round-trips odd custom ids', async () => {
    const id = 'albums/été 2026/#1 50%.jpg';
    const image = await uploadOk({ id });
    expect(image).toMatchObject({ id, filename: '320x240.jpg', requireSignedURLs: false, meta: {}, creator: null });
    expect(image.uploaded).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const accountHash = image.variants[0]?.split('/')[3] ?? '';
    expect(accountHash).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(image.variants).toEqual([
      `https://img.example.test/${accountHash}/albums/%C3%A9t%C3%A9%202026/%231%2050%25.jpg/public`,
    ]);
    const encoded = await call<ImageBody>(`/v1/${encodeURIComponent(id)}`);
    expect(encoded.body.result.id).toBe(id);
    const raw = await call<ImageBody>(`/v1/${id.split('/').map(encodeURIComponent).join('/')}`);
    expect(raw.body.result.id).toBe(id);
    expect(await call(`/v1/${encodeURIComponent('albums/nope')}`)).toMatchObject({ status: 404 });
  });

  it('generates UUID-shaped ids and refuses reserved names as custom ids', async () => {
    const image = await uploadOk();
    expect(image.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const response = await upload(t, { file: fileBlob('320x240.jpg'), id: 'stats' });
    expect(response.status).toBe(400);
  });
});

describe('PATCH and DELETE', () => {
  it('replaces metadata wholesale, sets creator and requireSignedURLs, keeps the id', async () => {
    const image = await uploadOk({ metadata: JSON.stringify({ a: 1, b: 2 }) });
    const edited = await call<ImageBody>(`/v1/${image.id}`, patchJson({ metadata: { c: 3 }, creator: 'u1', requireSignedURLs: true }));
    expect(edited.status).toBe(200);
    expect(edited.body.result).toMatchObject({ id: image.id, meta: { c: 3 }, creator: 'u1', requireSignedURLs: true });
    const cleared = await call<ImageBody>(`/v1/${image.id}`, patchJson({ creator: null }));
    expect(cleared.body.result).toMatchObject({ meta: { c: 3 }, creator: null, requireSignedURLs: true });
  });

  it('refuses bad edits with 5400 and unknown images with 5404', async () => {
    const custom = await uploadOk({ id: 'patch/custom' });
    for (const body of [{ requireSignedURLs: true }, { metadata: [1] }, { metadata: { big: 'x'.repeat(1100) } }, { creator: 5 }]) {
      const response = await call(`/v1/${encodeURIComponent(custom.id)}`, patchJson(body));
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.errors[0]?.code).toBe(5400);
    }
    const notJson = await call(`/v1/${encodeURIComponent(custom.id)}`, {
      method: 'PATCH',
      body: '{oops',
      headers: { 'content-type': 'application/json' },
    });
    expect(notJson.body.errors[0]?.code).toBe(5400);
    const missing = await call('/v1/missing-image', patchJson({ creator: 'x' }));
    expect(missing).toMatchObject({ status: 404, body: { success: false, errors: [{ code: 5404 }] } });
  });

  // With originals in S3 the same is checked through the store in storage-contract.test.ts.
  it.skipIf(STORAGE_ON_S3)('deletes the row and the bytes on disk', async () => {
    const blobsDir = path.join(t.dataDir, 'originals', 'blobs');
    const countFiles = (): number => fs.readdirSync(blobsDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
    const before = countFiles();
    const image = await uploadOk();
    expect(countFiles()).toBe(before + 1);
    const deleted = await call<Record<string, never>>(`/v1/${image.id}`, { method: 'DELETE' });
    expect(deleted).toMatchObject({ status: 200, body: { success: true, result: {} } });
    expect(countFiles()).toBe(before);
    expect((await call(`/v1/${image.id}`)).status).toBe(404);
    expect((await fetch(`${t.imagesUrl}/v1/${image.id}/blob`, { headers: t.auth })).status).toBe(404);
    // An empty JSON body on DELETE (some clients send one) is accepted.
    const again = await uploadOk();
    const withEmptyJson = await call(`/v1/${again.id}`, { method: 'DELETE', headers: { 'content-type': 'application/json' } });
    expect(withEmptyJson.status).toBe(200);
  });

  it('serves the original with its type and safe headers', async () => {
    const image = await uploadOk();
    const response = await fetch(`${t.imagesUrl}/v1/${image.id}/blob`, { headers: { ...t.auth, accept: 'image/*' } });
    expect(response.headers.get('content-type')).toBe('image/jpeg');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(Buffer.from(await response.arrayBuffer()).equals(fixture('320x240.jpg'))).toBe(true);
  });
});

describe('lists', () => {
  let lister: TestServer;
  const ids: string[] = [];

  beforeAll(async () => {
    lister = await startTestServer();
    const saved = t;
    t = lister;
    for (let i = 0; i < 7; i++) {
      const fields: Record<string, string> = { metadata: JSON.stringify({ n: i, tag: i % 2 ? 'odd' : 'even', nested: { ok: i < 3 } }) };
      if (i < 3) fields.creator = 'alice';
      ids.push((await uploadOk(fields)).id);
    }
    t = saved;
  });
  afterAll(async () => lister.stop());

  async function get<T>(query: string) {
    const response = await fetch(`${lister.imagesUrl}${query}`, { headers: lister.auth });
    return { status: response.status, body: (await response.json()) as Envelope<T> };
  }

  it('v1 pages newest first with result_info, clamps per_page and refuses bad numbers', async () => {
    const first = await get<{ images: ImageBody[] }>('/v1?page=1&per_page=3');
    expect(first.body.result.images.map((i) => i.id)).toEqual(ids.slice().reverse().slice(0, 3));
    expect(first.body.result_info).toEqual({ page: 1, per_page: 3, count: 3, total_count: 7 });
    const last = await get<{ images: ImageBody[] }>('/v1?page=3&per_page=3');
    expect(last.body.result.images.map((i) => i.id)).toEqual([ids[0]]);
    const clamped = await get<{ images: ImageBody[] }>('/v1?per_page=5000');
    expect(clamped.body.result_info?.per_page).toBe(100);
    for (const query of ['/v1?page=0', '/v1?per_page=0', '/v1?page=abc', '/v2?per_page=-1', '/v2?sort_order=up']) {
      const bad = await get(query);
      expect(bad.status, query).toBe(400);
      expect(bad.body.errors[0]?.code).toBe(5400);
    }
  });

  it('v2 walks both orders with continuation tokens and refuses forged tokens', async () => {
    for (const order of ['asc', 'desc'] as const) {
      const seen: string[] = [];
      let token: string | null = null;
      do {
        const query: string = `/v2?per_page=2&sort_order=${order}${token ? `&continuation_token=${encodeURIComponent(token)}` : ''}`;
        const page: { status: number; body: Envelope<{ images: ImageBody[]; continuation_token: string | null }> } = await get<{ images: ImageBody[]; continuation_token: string | null }>(query);
        expect(page.status).toBe(200);
        seen.push(...page.body.result.images.map((i) => i.id));
        token = page.body.result.continuation_token;
      } while (token);
      expect(seen).toEqual(order === 'asc' ? ids : ids.slice().reverse());
    }
    expect((await get('/v2?continuation_token=garbage')).body.errors[0]?.code).toBe(5400);
  });

  it('filters by creator and metadata', async () => {
    const byCreator = await get<{ images: ImageBody[] }>('/v2?creator=alice&sort_order=asc');
    expect(byCreator.body.result.images.map((i) => i.id)).toEqual(ids.slice(0, 3));
    const noCreator = await get<{ images: ImageBody[] }>('/v1?creator=');
    expect(noCreator.body.result_info?.total_count).toBe(4);
    const odd = await get<{ images: ImageBody[] }>('/v2?sort_order=asc&meta.tag[eq]=odd&meta.n[gte:number]=3');
    expect(odd.body.result.images.map((i) => i.id)).toEqual([ids[3], ids[5]]);
    const nested = await get<{ images: ImageBody[] }>('/v2?sort_order=asc&meta.nested.ok[eq:boolean]=true&meta.n[in:number]=0|2|4');
    expect(nested.body.result.images.map((i) => i.id)).toEqual([ids[0], ids[2]]);
    const bad = await get('/v2?meta.n[between]=1');
    expect(bad).toMatchObject({ status: 400, body: { errors: [{ code: 5400 }] } });
  });

  it('stats count live images', async () => {
    const stats = await get<{ count: { allowed: number; current: number } }>('/v1/stats');
    expect(stats.body.result).toEqual({ count: { allowed: 100000, current: 7 } });
  });
});

describe('shutdown', () => {
  it('closes while a client still holds a keep-alive connection', async () => {
    const own = await startTestServer();
    const agent = new Agent({ keepAliveTimeout: 120_000 });
    const form = new FormData();
    form.append('file', fileBlob('320x240.jpg'));
    const uploaded = await fetch(`${own.imagesUrl}/v1`, { method: 'POST', body: form, headers: own.auth });
    const { result } = (await uploaded.json()) as Envelope<ImageBody>;
    const blob = await request(`${own.imagesUrl}/v1/${result.id}/blob`, { dispatcher: agent, headers: own.auth });
    await blob.body.arrayBuffer();
    const closed = await Promise.race([
      own.stop().then(() => 'closed'),
      new Promise((resolve) => setTimeout(() => resolve('still open after 10 s'), 10_000)),
    ]);
    await agent.close();
    expect(closed).toBe('closed');
  });
});
