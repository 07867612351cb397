/**
 * Operations over real HTTP against the real server (real sharp, real SQLite or PostgreSQL): `/health`,
 * `/ready` (and what makes it fail: an originals directory that cannot be written, a database that
 * cannot be reached), `/metrics` read before and after known traffic (every counter must move by exactly
 * what the traffic explains), the metrics token, `x-request-id` on every answer of every surface, and the
 * request log: one JSON line per request, with no token, signature, upload secret or metadata value.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectApiError, expectOk, filesUnder, type ImageResult } from './helpers/api.js';
import {
  ACCEPT,
  accountHashOf,
  deliver,
  deliverImage,
  expectDeliveryError,
  listKeys,
  nowSeconds,
  signedPath,
  type Uploaded,
  uploadFixture,
} from './helpers/delivery.js';
import { META_ON_POSTGRES, TEST_DATABASE_URL, createTestDatabase } from './helpers/postgres.js';
import { connect } from './helpers/raw-http.js';
import { fileBlob, fixture, startTestServer, type TestServer, upload } from './helpers/server.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { redactUrl } from '../src/http/redact-url.js';
import { RenderPool } from '../src/imaging/render-pool.js';
import { moved, sampleKey, scrape } from './helpers/metrics.js';
import { Readiness } from '../src/observability/readiness.js';

// ---------------------------------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `/ready` until it answers `status` (a readiness result is reused for up to a second). */
async function readyAnswer(t: TestServer, status: number): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await fetch(`${t.url}/ready`);
    const body = await res.text();
    if (res.status === status || Date.now() > deadline) return { status: res.status, body };
    await sleep(100);
  }
}

async function mintUploadUrl(t: TestServer): Promise<string> {
  const res = await fetch(`${t.imagesUrl}/v2/direct_upload`, { method: 'POST', headers: t.auth, body: new FormData() });
  return (await expectOk<{ id: string; uploadURL: string }>(res)).uploadURL;
}

function postToUploadUrl(uploadURL: string, file: File, headers: Record<string, string> = {}): Promise<Response> {
  const form = new FormData();
  form.append('file', file);
  return fetch(uploadURL, { method: 'POST', body: form, headers });
}

/** Collects the server's log lines. */
function logCapture(): { lines: string[]; write(line: string): void } {
  const lines: string[] = [];
  return { lines, write: (chunk) => lines.push(...chunk.split('\n').filter((line) => line !== '')) };
}

interface LogLine {
  msg?: string;
  reqId?: string;
  surface?: string;
  method?: string;
  url?: string;
  status?: number;
  durationMs?: number;
  cache?: string;
}

function requestLines(lines: string[]): LogLine[] {
  return lines.map((line) => JSON.parse(line) as LogLine).filter((line) => line.msg === 'request');
}

async function stopAndRemove(t: TestServer | undefined): Promise<void> {
  if (!t) return;
  await t.stop();
  fs.rmSync(t.dataDir, { recursive: true, force: true });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// ---------------------------------------------------------------------------------------------------

describe('health, readiness and metrics', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => stopAndRemove(t));

  it('/health and /ready answer 200 with a tiny JSON body, without credentials and without configuration', async () => {
    const health = await fetch(`${t.url}/health`);
    expect(health.status).toBe(200);
    expect(health.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${t.url}/ready`);
    const text = await ready.text();
    expect(ready.status).toBe(200);
    expect(JSON.parse(text)).toEqual({ status: 'ready' });
    expect(text).not.toContain(t.dataDir);
    expect((await fetch(`${t.url}/health`, { method: 'HEAD' })).status).toBe(200);
  });

  it('uploads: accepted bytes grow by the sizes of the originals; refusals are counted by surface and code', async () => {
    const names = ['320x240.jpg', 'with-alpha.png', 'landscape.avif'];
    const before = await scrape(t);
    for (const name of names) await expectOk<ImageResult>(await upload(t, { file: fileBlob(name) }));
    await expectApiError(await upload(t, { file: fileBlob('not-an-image.jpg') }), 415, 5455);
    await expectApiError(await upload(t, { file: fileBlob('giant-image.jpg') }), 400, 5400);
    const uploadURL = await mintUploadUrl(t);
    await expectApiError(await postToUploadUrl(uploadURL, fileBlob('not-an-image.jpg')), 415, 5455);
    await expectOk<ImageResult>(await postToUploadUrl(uploadURL, fileBlob('tbgn2c16.png')));
    const after = await scrape(t);

    const apiBytes = names.reduce((sum, name) => sum + fixture(name).length, 0);
    expect(moved(before, after, 'pictor_uploads_accepted_total', { surface: 'api' })).toBe(3);
    expect(moved(before, after, 'pictor_upload_accepted_bytes_total', { surface: 'api' })).toBe(apiBytes);
    expect(moved(before, after, 'pictor_uploads_accepted_total', { surface: 'upload_host' })).toBe(1);
    expect(moved(before, after, 'pictor_upload_accepted_bytes_total', { surface: 'upload_host' })).toBe(fixture('tbgn2c16.png').length);
    expect(moved(before, after, 'pictor_upload_refusals_total', { surface: 'api', code: '5455' })).toBe(1);
    expect(moved(before, after, 'pictor_upload_refusals_total', { surface: 'api', code: '5400' })).toBe(1);
    expect(moved(before, after, 'pictor_upload_refusals_total', { surface: 'upload_host', code: '5455' })).toBe(1);
    // Three uploads and one minted URL; the scrapes themselves are the ops surface's.
    expect(moved(before, after, 'pictor_http_requests_total', { surface: 'api', status: '200' })).toBe(4);
    expect(moved(before, after, 'pictor_http_request_duration_seconds_count', { surface: 'api', status: '200' })).toBe(4);
    expect(moved(before, after, 'pictor_http_requests_total', { surface: 'api', status: '415' })).toBe(1);
    expect(moved(before, after, 'pictor_http_requests_total', { surface: 'upload_host', status: '200' })).toBe(1);
    expect(moved(before, after, 'pictor_http_requests_total', { surface: 'upload_host', status: '415' })).toBe(1);
    expect(moved(before, after, 'pictor_http_requests_total', { surface: 'ops', status: '200' })).toBe(1);
  });

  it('deliveries: two cold ones render, three more come from memory, a 304 is not_modified; each render times its stages once', async () => {
    const a = await uploadFixture(t, 'Landscape_1.jpg');
    const b = await uploadFixture(t, 'Landscape_2.jpg');
    const before = await scrape(t);
    const first = await deliverImage(t, `${a.path}/public`, { accept: ACCEPT.legacy });
    await deliverImage(t, `${b.path}/public`, { accept: ACCEPT.legacy });
    const afterCold = await scrape(t);
    for (const target of [a, a, b]) await deliverImage(t, `${target.path}/public`, { accept: ACCEPT.legacy });
    const etag = first.res.headers.get('etag') ?? '';
    const notModified = await deliver(t, `${a.path}/public`, { accept: ACCEPT.legacy, headers: { 'if-none-match': etag } });
    expect(notModified.status).toBe(304);
    const after = await scrape(t);

    expect(moved(before, afterCold, 'pictor_delivery_outcomes_total', { outcome: 'render' })).toBe(2);
    expect(moved(before, afterCold, 'pictor_delivery_outcomes_total', { outcome: 'memory' })).toBe(0);
    expect(moved(afterCold, after, 'pictor_delivery_outcomes_total', { outcome: 'memory' })).toBe(3);
    expect(moved(afterCold, after, 'pictor_delivery_outcomes_total', { outcome: 'render' })).toBe(0);
    expect(moved(before, after, 'pictor_delivery_outcomes_total', { outcome: 'not_modified' })).toBe(1);
    expect(moved(before, after, 'pictor_delivery_outcomes_total', { outcome: 'render_cache' })).toBe(0);
    for (const stage of ['queue_wait', 'storage_read', 'transform_encode']) {
      expect(moved(before, after, 'pictor_render_stage_duration_seconds_count', { stage }), stage).toBe(2);
    }
    expect(moved(before, after, 'pictor_render_stage_duration_seconds_sum', { stage: 'transform_encode' })).toBeGreaterThan(0);
    expect(moved(before, after, 'pictor_render_stage_duration_seconds_count', { stage: 'svg_sanitize' })).toBe(0);
    expect(moved(before, after, 'pictor_http_requests_total', { surface: 'delivery', status: '200' })).toBe(5);
    expect(moved(before, after, 'pictor_http_requests_total', { surface: 'delivery', status: '304' })).toBe(1);
  });

  it('identical concurrent cold deliveries render once; the others are coalesced or served from memory', async () => {
    const image = await uploadFixture(t, 'Landscape_3.jpg');
    const before = await scrape(t);
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => deliverImage(t, `${image.path}/public`, { accept: ACCEPT.webp })),
    );
    expect(answers.map((answer) => answer.res.status)).toEqual([200, 200, 200, 200]);
    const after = await scrape(t);
    expect(moved(before, after, 'pictor_delivery_outcomes_total', { outcome: 'render' })).toBe(1);
    expect(
      moved(before, after, 'pictor_delivery_outcomes_total', { outcome: 'coalesced' }) +
        moved(before, after, 'pictor_delivery_outcomes_total', { outcome: 'memory' }),
    ).toBe(3);
    expect(moved(before, after, 'pictor_render_stage_duration_seconds_count', { stage: 'transform_encode' })).toBe(1);
  });

  it('an SVG is timed as svg_sanitize, not as a raster transform', async () => {
    const svg = await uploadFixture(t, 'circle.svg');
    const before = await scrape(t);
    await deliver(t, `${svg.path}/public`).then((res) => expect(res.status).toBe(200));
    const after = await scrape(t);
    expect(moved(before, after, 'pictor_render_stage_duration_seconds_count', { stage: 'svg_sanitize' })).toBe(1);
    expect(moved(before, after, 'pictor_render_stage_duration_seconds_count', { stage: 'transform_encode' })).toBe(0);
  });

  it('signed-URL denials are counted by reason: missing, malformed, expired, mismatch', async () => {
    const priv = await uploadFixture(t, '320x240.jpg', { requireSignedURLs: 'true' });
    const key = (await listKeys(t))[0]?.value ?? '';
    const url = `${priv.path}/public`;
    const before = await scrape(t);
    await expectDeliveryError(await deliver(t, url), 403, 9425);
    await expectDeliveryError(await deliver(t, `${url}?sig=not-hex`), 403, 9425);
    await expectDeliveryError(await deliver(t, signedPath(url, key, `exp=${nowSeconds() - 10}`)), 403, 9425);
    await expectDeliveryError(await deliver(t, signedPath(url, 'not-the-key', `exp=${nowSeconds() + 600}`)), 403, 9425);
    await deliverImage(t, signedPath(url, key, `exp=${nowSeconds() + 600}`), { accept: ACCEPT.legacy });
    const after = await scrape(t);
    for (const reason of ['missing', 'malformed', 'expired', 'mismatch']) {
      expect(moved(before, after, 'pictor_signed_url_denials_total', { reason }), reason).toBe(1);
    }
    expect(moved(before, after, 'pictor_http_requests_total', { surface: 'delivery', status: '403' })).toBe(4);
    expect(moved(before, after, 'pictor_delivery_outcomes_total', { outcome: 'render' })).toBe(1);
  });

  it('exports the render pool, libvips and process gauges', async () => {
    const samples = await scrape(t);
    for (const weight of ['light', 'heavy']) {
      expect(samples.get(sampleKey('pictor_render_queue_depth', { weight }))).toBe(0);
      expect(samples.get(sampleKey('pictor_renders_in_progress', { weight }))).toBe(0);
    }
    expect(samples.get('pictor_render_slots')).toBeGreaterThanOrEqual(1);
    for (const name of ['pictor_vips_memory_bytes', 'pictor_vips_memory_peak_bytes', 'pictor_vips_cache_operations', 'pictor_vips_open_files']) {
      expect(samples.get(name), name).toBeGreaterThanOrEqual(0);
    }
    expect(samples.has(sampleKey('pictor_sharp_tasks', { state: 'queued' }))).toBe(true);
    expect(samples.get('pictor_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(samples.has('pictor_nodejs_heap_size_used_bytes')).toBe(true);
  });
});

describe('render cache layer', () => {
  let t: TestServer;
  beforeAll(async () => {
    // No memory cache: a repeat delivery must come from the render cache.
    t = await startTestServer({ PICTOR_MEMORY_CACHE_BYTES: '0' });
  });
  afterAll(() => stopAndRemove(t));

  it('without a memory cache, repeats are served from the render cache', async () => {
    const image = await uploadFixture(t, 'Landscape_4.jpg');
    const before = await scrape(t);
    await deliverImage(t, `${image.path}/public`, { accept: ACCEPT.legacy });
    // The render cache is written after the answer: wait until the render is on disk.
    const cacheDir = path.join(t.dataDir, 'cache');
    const deadline = Date.now() + 10_000;
    while (filesUnder(cacheDir).filter((file) => !file.startsWith('tmp')).length === 0 && Date.now() < deadline) await sleep(20);
    await sleep(50);
    await deliverImage(t, `${image.path}/public`, { accept: ACCEPT.legacy });
    await deliverImage(t, `${image.path}/public`, { accept: ACCEPT.legacy });
    const after = await scrape(t);
    expect(moved(before, after, 'pictor_delivery_outcomes_total', { outcome: 'render' })).toBe(1);
    expect(moved(before, after, 'pictor_delivery_outcomes_total', { outcome: 'render_cache' })).toBe(2);
    expect(moved(before, after, 'pictor_delivery_outcomes_total', { outcome: 'memory' })).toBe(0);
  });
});

describe('metrics token', () => {
  const METRICS_TOKEN = 'metrics-Token_9f8e7d';
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ PICTOR_METRICS_TOKEN: METRICS_TOKEN });
  });
  afterAll(() => stopAndRemove(t));

  it('/metrics refuses without the bearer token (401), with a wrong one or another scheme; serves with it', async () => {
    const refused: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: `Basic ${METRICS_TOKEN}` },
      { authorization: `Bearer ${METRICS_TOKEN}x` },
    ];
    for (const headers of refused) {
      const res = await fetch(`${t.url}/metrics`, { headers });
      const text = await res.text();
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(res.headers.get('x-request-id')).toBeTruthy();
      expect(text).not.toContain('pictor_');
    }
    const samples = await scrape(t, { authorization: `Bearer ${METRICS_TOKEN}` });
    expect(samples.get(sampleKey('pictor_http_requests_total', { surface: 'ops', status: '401' }))).toBe(4);
    // The API token is not the metrics token.
    expect((await fetch(`${t.url}/metrics`, { headers: t.auth })).status).toBe(401);
  });

  it('/health and /ready stay open', async () => {
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
    expect((await fetch(`${t.url}/ready`)).status).toBe(200);
  });

  it('PICTOR_METRICS_TOKEN is optional; a token with spaces or control characters stops the start naming it', () => {
    expect(loadConfig({}).metricsToken).toBeUndefined();
    expect(loadConfig({ PICTOR_METRICS_TOKEN: METRICS_TOKEN }).metricsToken).toBe(METRICS_TOKEN);
    for (const bad of ['two words', 'tab\there', 'x'.repeat(513)]) {
      expect(() => loadConfig({ PICTOR_METRICS_TOKEN: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ PICTOR_METRICS_TOKEN: bad })).toThrow(/PICTOR_METRICS_TOKEN/);
    }
  });
});

describe('request ids', () => {
  let t: TestServer;
  let image: Uploaded;
  beforeAll(async () => {
    t = await startTestServer();
    image = await uploadFixture(t, '320x240.jpg');
  });
  afterAll(() => stopAndRemove(t));

  it('a sane incoming x-request-id is kept; a long or oddly spelled one is replaced by a fresh UUID', async () => {
    for (const sane of ['req-42', 'a.b:c_D-9', 'x'.repeat(128)]) {
      const res = await fetch(`${t.url}/health`, { headers: { 'x-request-id': sane } });
      expect(res.headers.get('x-request-id')).toBe(sane);
    }
    const seen = new Set<string>();
    for (const insane of ['x'.repeat(129), 'y'.repeat(300), 'has space', 'semi;colon', 'per%cent']) {
      const res = await fetch(`${t.url}/health`, { headers: { 'x-request-id': insane } });
      const id = res.headers.get('x-request-id') ?? '';
      expect(id, insane).toMatch(UUID);
      seen.add(id);
    }
    const none = await fetch(`${t.url}/health`);
    seen.add(none.headers.get('x-request-id') ?? '');
    expect(seen.size).toBe(6);
  });

  it('every surface puts it on its successes, 404s and errors, including those answered before routing', async () => {
    const hash = accountHashOf(image);
    const answers: Array<[string, Response]> = [
      ['api 200', await fetch(`${t.imagesUrl}/v1/stats`, { headers: t.auth })],
      ['api 400 without credentials', await fetch(`${t.imagesUrl}/v1/stats`)],
      ['api 404 unknown route', await fetch(`${t.url}/client/v4/no/such/route`, { headers: t.auth })],
      ['delivery 200', await deliver(t, `${image.path}/public`)],
      ['delivery 404', await deliver(t, `/${hash}/no-such-image/public`)],
      ['delivery 400 undecodable path', await deliver(t, '/%zz/a/b')],
      ['upload host 404', await postToUploadUrl(`${t.url}/upload/${hash}/no-such-secret`, fileBlob('320x240.jpg'))],
      ['upload host preflight', await fetch(`${t.url}/upload/${hash}/x`, { method: 'OPTIONS' })],
      ['ops 200', await fetch(`${t.url}/ready`)],
      ['no route for the method', await fetch(`${t.url}/nothing`, { method: 'POST' })],
    ];
    for (const [what, res] of answers) {
      await res.arrayBuffer();
      expect(res.headers.get('x-request-id') ?? '', `${what} (${res.status})`).toMatch(UUID);
    }
    expect(answers.map(([, res]) => res.status)).toEqual([200, 400, 404, 200, 404, 400, 404, 204, 200, 404]);
  });

  it('even bytes that are not HTTP are answered with one', async () => {
    const connection = await connect(t.url);
    await connection.write('NOT HTTP AT ALL\r\n\r\n');
    const answer = await connection.nextResponse();
    connection.close();
    expect(answer.status).toBe(400);
    expect(answer.headers['x-request-id']).toMatch(UUID);
  });
});

describe('request log', () => {
  const log = logCapture();
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ PICTOR_LOG_LEVEL: 'info' }, { logDestination: log });
  });
  afterAll(() => stopAndRemove(t));

  it('one JSON line per request with its id, surface, method, redacted URL, status, duration and cache outcome; no secret', async () => {
    const metadataValue = 'meta-value-7f3a91';
    const ids: string[] = [];
    const call = async (url: string, init: RequestInit = {}): Promise<Response> => {
      const res = await fetch(url, init);
      await res.arrayBuffer();
      ids.push(res.headers.get('x-request-id') ?? '');
      return res;
    };
    const form = (file: File, fields: Record<string, string> = {}): FormData => {
      const body = new FormData();
      for (const [name, value] of Object.entries(fields)) body.append(name, value);
      body.append('file', file);
      return body;
    };

    const linesBefore = log.lines.length;
    const uploaded = await call(`${t.imagesUrl}/v1`, {
      method: 'POST',
      headers: t.auth,
      body: form(fileBlob('320x240.jpg'), { metadata: JSON.stringify({ owner: metadataValue }) }),
    });
    expect(uploaded.status).toBe(200);
    const listed = await call(`${t.imagesUrl}/v2?per_page=5&meta.owner[eq]=${metadataValue}`, { headers: t.auth });
    expect(listed.status).toBe(200);
    const mint = await fetch(`${t.imagesUrl}/v2/direct_upload`, { method: 'POST', headers: t.auth, body: new FormData() });
    ids.push(mint.headers.get('x-request-id') ?? '');
    const { uploadURL } = await expectOk<{ uploadURL: string }>(mint);
    const secret = uploadURL.split('/').pop() ?? '';
    expect(secret.length).toBeGreaterThan(20);
    expect((await call(uploadURL, { method: 'POST', body: form(fileBlob('with-alpha.png')) })).status).toBe(200);

    const priv = await uploadFixture(t, 'Landscape_5.jpg', { requireSignedURLs: 'true' });
    const key = (await listKeys(t))[0]?.value ?? '';
    const signed = signedPath(`${priv.path}/public`, key, `exp=${nowSeconds() + 600}`);
    const signature = /sig=([0-9a-f]+)/.exec(signed)?.[1] ?? '';
    expect((await call(`${t.url}${signed}`, { headers: { accept: ACCEPT.legacy } })).status).toBe(200);
    const forged = `${priv.path}/public?exp=${nowSeconds() + 600}&sig=${'ab'.repeat(32)}`;
    expect((await call(`${t.url}${forged}`)).status).toBe(403);
    const publicImage = await uploadFixture(t, 'Landscape_6.jpg');
    const first = await call(`${t.url}${publicImage.path}/public`, { headers: { accept: ACCEPT.legacy } });
    expect((await call(`${t.url}${publicImage.path}/public`, { headers: { accept: ACCEPT.legacy } })).status).toBe(200);
    const etag = first.headers.get('etag') ?? '';
    expect((await call(`${t.url}${publicImage.path}/public`, { headers: { accept: ACCEPT.legacy, 'if-none-match': etag } })).status).toBe(304);
    expect((await call(`${t.url}/health`)).status).toBe(200);
    expect((await call(`${t.url}/%zz/a/b`)).status).toBe(400);
    // uploadFixture and listKeys went through fetch without `call`: 3 more requests, found by their lines.
    const expectedLines = ids.length + 3;

    const deadline = Date.now() + 5000;
    while (requestLines(log.lines.slice(linesBefore)).length < expectedLines && Date.now() < deadline) await sleep(20);
    await sleep(100);
    const lines = log.lines.slice(linesBefore);
    const requests = requestLines(lines);
    expect(requests.length).toBe(expectedLines);

    // Exactly one line per request: every answered id appears once.
    const logged = requests.map((line) => line.reqId);
    expect(new Set(logged).size).toBe(logged.length);
    for (const id of ids) expect(logged.filter((reqId) => reqId === id), id).toHaveLength(1);

    for (const line of requests) {
      expect(typeof line.reqId).toBe('string');
      expect(['api', 'delivery', 'upload_host', 'ops']).toContain(line.surface);
      expect(typeof line.method).toBe('string');
      expect(typeof line.url).toBe('string');
      expect(typeof line.status).toBe('number');
      expect(line.durationMs).toBeGreaterThanOrEqual(0);
      if (line.surface === 'delivery' && (line.status === 200 || line.status === 304)) {
        expect(['memory', 'render_cache', 'render', 'coalesced', 'not_modified']).toContain(line.cache);
      } else {
        expect(line.cache).toBeUndefined();
      }
    }
    const byId = (id: string | undefined): LogLine | undefined => requests.find((line) => line.reqId === id);
    expect(byId(ids[0])).toMatchObject({ surface: 'api', method: 'POST', status: 200 });
    expect(byId(ids[3])).toMatchObject({ surface: 'upload_host', method: 'POST', status: 200, url: `${new URL(uploadURL).pathname.replace(secret, '[redacted]')}` });
    expect(byId(ids[4])?.url).toContain('sig=[redacted]');
    expect(byId(ids[6])).toMatchObject({ surface: 'delivery', status: 200, cache: 'render' });
    expect(byId(ids[7])).toMatchObject({ surface: 'delivery', status: 200, cache: 'memory' });
    expect(byId(ids[8])).toMatchObject({ surface: 'delivery', status: 304, cache: 'not_modified' });
    expect(byId(ids[9])).toMatchObject({ surface: 'ops', url: '/health', status: 200 });
    expect(byId(ids[10])).toMatchObject({ surface: 'delivery', url: '/%zz/a/b', status: 400 });

    // Nothing secret in the whole log of these requests.
    const text = lines.join('\n');
    for (const [what, secretText] of [
      ['API token', t.token],
      ['signature', signature],
      ['forged signature', 'ab'.repeat(32)],
      ['upload secret', secret],
      ['metadata value', metadataValue],
      ['signing key', key],
    ] as const) {
      expect(secretText.length, what).toBeGreaterThan(5);
      expect(text.includes(secretText), what).toBe(false);
    }
  });
});

describe('URLs in the log', () => {
  it('signatures, upload secrets and metadata filter values are redacted; the rest is kept', () => {
    expect(redactUrl('/h/id/public?exp=1&sig=abcdef')).toBe('/h/id/public?exp=1&sig=[redacted]');
    expect(redactUrl('/upload/HASH/s3cr3t?x=1')).toBe('/upload/HASH/[redacted]?x=1');
    expect(redactUrl('/client/v4/accounts/a/images/v2?per_page=5&meta.user[eq]=alice&META%2Eteam=red&creator=c')).toBe(
      '/client/v4/accounts/a/images/v2?per_page=5&meta.user[eq]=[redacted]&META%2Eteam=[redacted]&creator=c',
    );
    expect(redactUrl('/h/meta.jpg/public')).toBe('/h/meta.jpg/public');
  });
});

/** The readiness warnings logged for `part` (why it failed is told to the operator, not to the prober). */
function readinessWarnings(lines: string[], part: string): Array<{ part?: string; err?: { message?: string } }> {
  return lines
    .map((line) => JSON.parse(line) as { msg?: string; part?: string; err?: { message?: string } })
    .filter((line) => line.msg === 'readiness: not usable' && line.part === part);
}

describe('readiness failures', () => {
  const log = logCapture();
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({}, { logDestination: log });
  });
  afterAll(() => stopAndRemove(t));

  it('503 naming "blob" while originals cannot be written (the directory replaced by a file, which stops root too), 200 again after', async () => {
    expect((await readyAnswer(t, 200)).status).toBe(200);
    const originals = path.join(t.dataDir, 'originals');
    const moved = path.join(t.dataDir, 'originals.moved');
    fs.renameSync(originals, moved);
    fs.writeFileSync(originals, 'not a directory');
    try {
      const failing = await readyAnswer(t, 503);
      expect(failing.status).toBe(503);
      expect(JSON.parse(failing.body)).toEqual({ status: 'unavailable', failing: ['blob'] });
      expect(failing.body).not.toContain(t.dataDir);
      expect(readinessWarnings(log.lines, 'blob')[0]?.err?.message).toMatch(/ENOTDIR/);
      // The process is alive all the same.
      expect((await fetch(`${t.url}/health`)).status).toBe(200);
    } finally {
      fs.rmSync(originals);
      fs.renameSync(moved, originals);
    }
    expect((await readyAnswer(t, 200)).status).toBe(200);
  });
});

describe('readiness parts on their own', () => {
  it('a check that never answers fails after the timeout; the others are unaffected', async () => {
    const readiness = new Readiness(
      { metadata: () => new Promise<void>(() => undefined), blob: async () => undefined, render_pool: () => undefined },
      { timeoutMs: 50, reuseMs: 0 },
    );
    const started = Date.now();
    expect(await readiness.failing()).toEqual(['metadata']);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('the render pool accepts while a slot or a queue place is free, and never once closed', async () => {
    const pool = new RenderPool({ slots: 1, heavySlots: 1, heavyCost: 100, maxQueue: 1, maxHeavyQueue: 1, maxWaitMs: 60_000 });
    let finish = (): void => undefined;
    const running = pool.run(1, () => new Promise<void>((resolve) => (finish = resolve)));
    expect(pool.accepting).toBe(true);
    const queued = pool.run(1, async () => undefined);
    expect(pool.accepting).toBe(false);
    finish();
    await Promise.all([running, queued]);
    expect(pool.accepting).toBe(true);
    pool.close();
    expect(pool.accepting).toBe(false);
    await expect(pool.run(1, async () => undefined)).rejects.toThrow(/stopping/);
  });
});

/** A TCP relay in front of PostgreSQL, so the test can make the database unreachable and reachable again. */
class Relay {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Refuses new connections and cuts the open ones, as a stopped database would. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe.runIf(META_ON_POSTGRES)('readiness on PostgreSQL', () => {
  const log = logCapture();
  let t: TestServer;
  let relay: Relay;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const database = await createTestDatabase();
    drop = database.drop;
    const url = new URL(database.url);
    relay = new Relay({ host: url.hostname === 'localhost' ? '127.0.0.1' : url.hostname, port: Number(url.port || 5432) });
    await relay.open();
    url.hostname = '127.0.0.1';
    url.port = String(relay.port);
    t = await startTestServer({ PICTOR_DATABASE_URL: url.toString() }, { logDestination: log });
  });
  afterAll(async () => {
    await relay.open().catch(() => undefined);
    await stopAndRemove(t);
    await relay.cut();
    await drop?.();
  });

  it('503 naming "metadata" while the database is unreachable, 200 again once it is back', async () => {
    expect(TEST_DATABASE_URL).toBeTruthy();
    expect((await readyAnswer(t, 200)).status).toBe(200);
    await relay.cut();
    const failing = await readyAnswer(t, 503);
    expect(failing.status).toBe(503);
    expect(JSON.parse(failing.body)).toEqual({ status: 'unavailable', failing: ['metadata'] });
    expect(failing.body).not.toMatch(/postgres|127\.0\.0\.1|password/i);
    expect(readinessWarnings(log.lines, 'metadata')).toHaveLength(1);
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
    await relay.open();
    expect((await readyAnswer(t, 200)).status).toBe(200);
  });
});
