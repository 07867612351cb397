/**
 * Upload validation (spec Part A, "Limits" / "Identity" / "URL uploads"): bad input gets Cloudflare's
 * error and stores nothing; every good fixture is stored byte for byte with the content type its bytes
 * (not its name or declared type) decide.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blobUrl,
  expectApiError,
  expectOk,
  filesUnder,
  getStats,
  type ImageResult,
  listAllIds,
} from './helpers/api.js';
import { FIXTURES, fileBlob, fixture, startTestServer, type TestServer, upload } from './helpers/server.js';

const CONTENT_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.svg': 'image/svg+xml',
  '.heic': 'image/heic',
};

const TOO_BIG = ['giant-image.jpg', '65536-uint32-limit.png'];
const UNREADABLE = [
  'truncated.jpg',
  'truncated.png',
  'corrupt-header.jpg',
  'pitm.avif',
  'empty.jpg',
  'not-an-image.jpg',
  'G31D.TIF',
];
const GOOD = fs
  .readdirSync(FIXTURES, { recursive: true, encoding: 'utf8' })
  .filter((name) => fs.statSync(path.join(FIXTURES, name)).isFile())
  .filter((name) => !TOO_BIG.includes(name) && !UNREADABLE.includes(name))
  .sort();

interface StoreSnapshot {
  current: number;
  ids: string[];
  blobs: string[];
}

async function snapshot(t: TestServer): Promise<StoreSnapshot> {
  return {
    current: (await getStats(t)).current,
    ids: (await listAllIds(t)).sort(),
    blobs: filesUnder(path.join(t.dataDir, 'originals', 'blobs')),
  };
}

/**
 * Sends a request that must be refused with `status`/`code`, and checks that nothing was stored:
 * stats count, v2 list and the blob folder are unchanged and originals/tmp is empty.
 */
async function expectRefused(
  t: TestServer,
  send: () => Promise<Response>,
  status: number,
  code: number,
): Promise<void> {
  const before = await snapshot(t);
  await expectApiError(await send(), status, code);
  expect(await snapshot(t)).toEqual(before);
  expect(filesUnder(path.join(t.dataDir, 'originals', 'tmp'))).toEqual([]);
}

async function uploadOk(t: TestServer, fields: Record<string, string | Blob>): Promise<ImageResult> {
  return expectOk<ImageResult>(await upload(t, fields));
}

async function fetchBlob(url: string, t: TestServer): Promise<{ status: number; type: string | null; bytes: Buffer }> {
  const res = await fetch(url, { headers: t.auth });
  return { status: res.status, type: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
}

/** A POST /images/v1 whose body is not built by FormData. */
function postRaw(t: TestServer, body: Buffer | string, contentType: string): Promise<Response> {
  return fetch(`${t.imagesUrl}/v1`, {
    method: 'POST',
    headers: { ...t.auth, 'content-type': contentType },
    body,
  });
}

let t: TestServer;

beforeAll(async () => {
  // A short fetch timeout keeps a wrongly allowed private-address fetch from hanging the suite.
  t = await startTestServer({ PICTOR_URL_FETCH_TIMEOUT_MS: '3000' });
});

afterAll(async () => {
  await t?.stop();
});

describe('fixtures', () => {
  it.each(TOO_BIG)('%s (over 12,000 px / 100 MP) → 400 5400, nothing stored', async (name) => {
    await expectRefused(t, () => upload(t, { file: fileBlob(name, 'image/jpeg') }), 400, 5400);
  });

  it.each(UNREADABLE)('%s (unreadable or unsupported) → 415 5455, nothing stored', async (name) => {
    await expectRefused(t, () => upload(t, { file: new File([fixture(name)], name, { type: 'image/jpeg' }) }), 415, 5455);
  });

  it.each(GOOD)('%s uploads and its blob comes back byte for byte with the right content type', async (name) => {
    const bytes = fixture(name);
    const image = await uploadOk(t, { file: new File([bytes], name, { type: 'application/octet-stream' }) });
    // A part's filename is its last path segment (heic/photo.heic → photo.heic).
    expect(image.filename).toBe(path.basename(name));
    const blob = await fetchBlob(blobUrl(t, image.id), t);
    expect(blob.status).toBe(200);
    expect(blob.type).toBe(CONTENT_TYPES[path.extname(name).toLowerCase()]);
    expect(blob.bytes.equals(bytes)).toBe(true);
  });

  it('the bytes decide the content type, not the filename or declared type', async () => {
    const bytes = fixture('320x240.jpg');
    const image = await uploadOk(t, { file: new File([bytes], 'photo.png', { type: 'image/png' }) });
    expect(image.filename).toBe('photo.png');
    const blob = await fetchBlob(blobUrl(t, image.id), t);
    expect(blob.type).toBe('image/jpeg');
    expect(blob.bytes.equals(bytes)).toBe(true);
  });
});

describe('request shape', () => {
  it('an 11 MB file part → 413 5413 as JSON (not a reset), nothing stored', async () => {
    const big = Buffer.alloc(11 * 1024 * 1024, 0x41);
    fixture('320x240.jpg').copy(big);
    await expectRefused(t, () => upload(t, { file: new File([big], 'big.jpg', { type: 'image/jpeg' }) }), 413, 5413);
  });

  it('raw image bytes with content-type image/jpeg → 415 5415', async () => {
    await expectRefused(t, () => postRaw(t, fixture('320x240.jpg'), 'image/jpeg'), 415, 5415);
  });

  it('a JSON body → 415 5415', async () => {
    await expectRefused(t, () => postRaw(t, JSON.stringify({ url: 'https://example.com/a.jpg' }), 'application/json'), 415, 5415);
  });

  it.each(['application/x-www-form-urlencoded', 'text/plain', 'multipart/mixed; boundary=x', 'application/octet-stream'])(
    'a body of type %s → 415 5415',
    async (type) => {
      await expectRefused(t, () => postRaw(t, 'url=https%3A%2F%2Fexample.com%2Fa.jpg', type), 415, 5415);
    },
  );

  it('a POST with no body at all → 415 5415', async () => {
    await expectRefused(t, () => fetch(`${t.imagesUrl}/v1`, { method: 'POST', headers: t.auth }), 415, 5415);
  });

  it('multipart with neither file nor url → 400 5400', async () => {
    await expectRefused(t, () => upload(t, { metadata: '{"a":"b"}' }), 400, 5400);
  });

  it('multipart with both file and url → 400 5400', async () => {
    await expectRefused(
      t,
      () => upload(t, { file: fileBlob('320x240.jpg'), url: 'https://example.com/a.jpg' }),
      400,
      5400,
    );
  });
});

describe('metadata and flags', () => {
  const file = (): Blob => fileBlob('320x240.jpg', 'image/jpeg');

  it('metadata that is not valid JSON → 400 5400', async () => {
    await expectRefused(t, () => upload(t, { file: file(), metadata: '{"a":' }), 400, 5400);
  });

  it('metadata that is a JSON array → 400 5400', async () => {
    await expectRefused(t, () => upload(t, { file: file(), metadata: '["a","b"]' }), 400, 5400);
  });

  it('a metadata JSON string over 1024 bytes → 400 5400', async () => {
    const metadata = JSON.stringify({ note: 'x'.repeat(1100) });
    await expectRefused(t, () => upload(t, { file: file(), metadata }), 400, 5400);
  });

  it('bracket metadata fields totalling over 1024 bytes → 400 5400', async () => {
    const fields = { file: file(), 'metadata[a]': 'x'.repeat(520), 'metadata[b][c]': 'y'.repeat(520) };
    await expectRefused(t, () => upload(t, fields), 400, 5400);
  });

  it('metadata of exactly 1024 bytes serialized is accepted; 1025 is refused', async () => {
    // {"n":"…"} is 8 bytes around the value.
    const meta = { n: 'x'.repeat(1016) };
    expect(Buffer.byteLength(JSON.stringify(meta))).toBe(1024);
    const image = await uploadOk(t, { file: file(), metadata: JSON.stringify(meta) });
    expect(image.meta).toEqual(meta);
    const over = JSON.stringify({ n: 'x'.repeat(1017) });
    await expectRefused(t, () => upload(t, { file: file(), metadata: over }), 400, 5400);
  });

  it('the 1024 limit counts bytes, not characters (518 chars, 1028 UTF-8 bytes) → 400 5400', async () => {
    const metadata = JSON.stringify({ n: 'é'.repeat(510) });
    expect(Buffer.byteLength(metadata)).toBe(1028);
    await expectRefused(t, () => upload(t, { file: file(), metadata }), 400, 5400);
  });

  it('bracket metadata fields under the limit are rebuilt into an object (control)', async () => {
    const image = await uploadOk(t, { file: file(), 'metadata[a]': '1', 'metadata[b][c]': 'two' });
    expect(image.meta).toEqual({ a: '1', b: { c: 'two' } });
  });

  it('requireSignedURLs=maybe → 400 5400', async () => {
    await expectRefused(t, () => upload(t, { file: file(), requireSignedURLs: 'maybe' }), 400, 5400);
  });
});

describe('custom ids', () => {
  const file = (): Blob => fileBlob('320x240.jpg', 'image/jpeg');
  const bad: Array<[string, string]> = [
    ['UUID-shaped', '3fa85f64-5717-4562-b3fc-2c963f66afa6'],
    ['a/../b', 'a/../b'],
    ['/lead', '/lead'],
    ['trail/', 'trail/'],
    ['a//b', 'a//b'],
    ['.', '.'],
    ['..', '..'],
    ['a/./b', 'a/./b'],
    ['empty', ''],
    ['1025 chars', 'x'.repeat(1025)],
  ];

  it.each(bad)('%s → 400 5400, nothing stored', async (_label, id) => {
    await expectRefused(t, () => upload(t, { file: file(), id }), 400, 5400);
  });

  it('a custom id with requireSignedURLs=true → 400 5400', async () => {
    await expectRefused(t, () => upload(t, { file: file(), id: 'signed-custom', requireSignedURLs: 'true' }), 400, 5400);
  });

  it('an id of exactly 1024 characters works and can be fetched back', async () => {
    const id = `deep/${'k'.repeat(1019)}`;
    expect(id.length).toBe(1024);
    const image = await uploadOk(t, { file: file(), id });
    expect(image.id).toBe(id);
    const got = await expectOk<ImageResult>(await fetch(`${t.imagesUrl}/v1/${encodeURIComponent(id)}`, { headers: t.auth }));
    expect(got.id).toBe(id);
    const blob = await fetchBlob(blobUrl(t, id), t);
    expect(blob.status).toBe(200);
    expect(blob.bytes.equals(fixture('320x240.jpg'))).toBe(true);
  });

  it('an id with slashes is addressable encoded and with raw slashes', async () => {
    const id = 'folder/sub/img.jpg';
    const bytes = fixture('with-alpha.png');
    await uploadOk(t, { file: new File([bytes], 'w.png'), id });
    for (const url of [`${t.imagesUrl}/v1/${encodeURIComponent(id)}`, `${t.imagesUrl}/v1/${id}`]) {
      const got = await expectOk<ImageResult>(await fetch(url, { headers: t.auth }));
      expect(got.id).toBe(id);
      const blob = await fetchBlob(`${url}/blob`, t);
      expect(blob.type).toBe('image/png');
      expect(blob.bytes.equals(bytes)).toBe(true);
    }
  });

  it('a duplicate id → 409 5409 with x-should-retry: false; the first bytes stay', async () => {
    const id = 'dup/one';
    const first = fixture('320x240.jpg');
    await uploadOk(t, { file: new File([first], 'a.jpg'), id });
    let retryHeader: string | null = null;
    await expectRefused(
      t,
      async () => {
        const res = await upload(t, { file: new File([fixture('with-alpha.png')], 'b.png'), id });
        retryHeader = res.headers.get('x-should-retry');
        return res;
      },
      409,
      5409,
    );
    expect(retryHeader).toBe('false');
    const blob = await fetchBlob(blobUrl(t, id), t);
    expect(blob.type).toBe('image/jpeg');
    expect(blob.bytes.equals(first)).toBe(true);
  });

  it('concurrent uploads with the same new id: one wins, the others get 409 5409 and store nothing', async () => {
    const id = `race/${Date.now()}`;
    const blobsBefore = filesUnder(path.join(t.dataDir, 'originals', 'blobs')).length;
    const countBefore = (await getStats(t)).current;
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => upload(t, { file: fileBlob('320x240.jpg'), id })),
    );
    const statuses = answers.map((res) => res.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409]);
    for (const res of answers) {
      if (res.status === 409) await expectApiError(res, 409, 5409);
      else await res.arrayBuffer();
    }
    expect((await getStats(t)).current).toBe(countBefore + 1);
    expect(filesUnder(path.join(t.dataDir, 'originals', 'blobs'))).toHaveLength(blobsBefore + 1);
    expect(filesUnder(path.join(t.dataDir, 'originals', 'tmp'))).toEqual([]);
  });
});

/** A RIFF chunk, padded to an even length. */
function riffChunk(fourcc: string, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.write(fourcc, 0, 'ascii');
  header.writeUInt32LE(payload.length, 4);
  return Buffer.concat([header, payload, Buffer.alloc(payload.length % 2)]);
}

function uint24(value: number): Buffer {
  const bytes = Buffer.alloc(3);
  bytes.writeUIntLE(value, 0, 3);
  return bytes;
}

/**
 * An animated WebP of `frames` copies of a still (simple-format) WebP: a few hundred bytes that
 * declare `frames` full-size frames, so the animated-total limit can be tested without a huge file.
 */
function animatedWebp(still: Buffer, width: number, height: number, frames: number): Buffer {
  const frameData = still.subarray(12);
  const vp8x = Buffer.concat([Buffer.from([0x02, 0, 0, 0]), uint24(width - 1), uint24(height - 1)]);
  const anmf = riffChunk(
    'ANMF',
    Buffer.concat([uint24(0), uint24(0), uint24(width - 1), uint24(height - 1), uint24(100), Buffer.from([0]), frameData]),
  );
  const body = Buffer.concat([
    Buffer.from('WEBP', 'ascii'),
    riffChunk('VP8X', vp8x),
    riffChunk('ANIM', Buffer.alloc(6)),
    ...Array.from({ length: frames }, () => anmf),
  ]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'ascii');
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

function solid(width: number, height: number): Sharp {
  return sharp({ create: { width, height, channels: 3, background: '#808080' } });
}

describe('pixel limits (generated images)', () => {
  it('12,000 px on a side is accepted; 12,001 → 400 5400', async () => {
    const ok = await solid(12_000, 1).png().toBuffer();
    await uploadOk(t, { file: new File([ok], 'wide.png') });
    const wide = await solid(12_001, 1).png().toBuffer();
    await expectRefused(t, () => upload(t, { file: new File([wide], 'wider.png') }), 400, 5400);
    const tall = await solid(1, 12_001).png().toBuffer();
    await expectRefused(t, () => upload(t, { file: new File([tall], 'tall.png') }), 400, 5400);
  });

  it('a frame over 100 megapixels (10001x10000) → 400 5400', async () => {
    const big = await solid(10_001, 10_000).png({ compressionLevel: 1 }).toBuffer();
    expect(big.length).toBeLessThan(10 * 1024 * 1024);
    await expectRefused(t, () => upload(t, { file: new File([big], 'area.png') }), 400, 5400);
  });

  it('an animation over 100 MP in total (7 frames of 4000x4000) → 413 5443; a small one is accepted', async () => {
    const still = await solid(4000, 4000).webp({ lossless: true, effort: 0 }).toBuffer();
    const bomb = animatedWebp(still, 4000, 4000, 7);
    await expectRefused(t, () => upload(t, { file: new File([bomb], 'anim.webp') }), 413, 5443);

    const smallStill = await solid(100, 100).webp({ lossless: true }).toBuffer();
    const small = animatedWebp(smallStill, 100, 100, 3);
    const image = await uploadOk(t, { file: new File([small], 'small-anim.webp') });
    const blob = await fetchBlob(blobUrl(t, image.id), t);
    expect(blob.type).toBe('image/webp');
    expect(blob.bytes.equals(small)).toBe(true);
  });
});

describe('quota', () => {
  let q: TestServer;
  beforeAll(async () => {
    q = await startTestServer({ PICTOR_IMAGE_QUOTA: '2' });
  });
  afterAll(async () => {
    await q?.stop();
  });

  it('the third upload on a quota of 2 → 403 5453; stats.count.allowed is 2', async () => {
    await uploadOk(q, { file: fileBlob('320x240.jpg') });
    await uploadOk(q, { file: fileBlob('circle.svg') });
    await expectRefused(q, () => upload(q, { file: fileBlob('with-alpha.png') }), 403, 5453);
    expect(await getStats(q)).toEqual({ allowed: 2, current: 2 });
  });

  it('concurrent uploads cannot overshoot the quota, and refused ones leave no file', async () => {
    const r = await startTestServer({ PICTOR_IMAGE_QUOTA: '2' });
    try {
      const answers = await Promise.all(Array.from({ length: 5 }, () => upload(r, { file: fileBlob('circle.svg') })));
      expect(answers.map((res) => res.status).sort()).toEqual([200, 200, 403, 403, 403]);
      for (const res of answers) {
        if (res.status === 403) await expectApiError(res, 403, 5453);
        else await res.arrayBuffer();
      }
      expect(await getStats(r)).toEqual({ allowed: 2, current: 2 });
      expect(filesUnder(path.join(r.dataDir, 'originals', 'blobs'))).toHaveLength(2);
      expect(filesUnder(path.join(r.dataDir, 'originals', 'tmp'))).toEqual([]);
    } finally {
      await r.stop();
    }
  });
});

/** A local origin for URL uploads that records every request it receives. */
interface Origin {
  server: http.Server;
  port: number;
  requests: Array<{ url: string; authorization: string | undefined }>;
}

const HUGE_BYTES = 10 * 1024 * 1024 + 64 * 1024;

function handleOrigin(origin: Origin, req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://origin');
  origin.requests.push({ url: url.pathname, authorization: req.headers.authorization });
  const redirect = /^\/redirect\/(\d+)$/.exec(url.pathname);
  if (redirect) {
    const left = Number(redirect[1]);
    res.writeHead(302, { location: left > 1 ? `/redirect/${left - 1}` : '/img/320x240.jpg' }).end();
    return;
  }
  const image = /^\/(?:img|auth)\/([^/]+)$/.exec(url.pathname);
  if (image?.[1] && fs.existsSync(path.join(FIXTURES, image[1]))) {
    res.writeHead(200, { 'content-type': 'image/jpeg' }).end(fixture(image[1]));
    return;
  }
  if (url.pathname === '/huge.jpg') {
    res.writeHead(200, { 'content-type': 'image/jpeg' });
    const chunk = Buffer.alloc(64 * 1024, 0x42);
    let sent = 0;
    const pump = (): void => {
      while (sent < HUGE_BYTES) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    res.on('error', () => undefined);
    pump();
    return;
  }
  if (url.pathname === '/slow.jpg') return; // never answers
  if (url.pathname === '/drip.jpg') {
    // Headers at once, then one byte every 200 ms for ever: only a total time limit ends it.
    res.writeHead(200, { 'content-type': 'image/jpeg' });
    res.write(fixture('320x240.jpg').subarray(0, 1024));
    const timer = setInterval(() => {
      if (res.destroyed) clearInterval(timer);
      else res.write('x');
    }, 200);
    res.on('close', () => clearInterval(timer));
    return;
  }
  if (url.pathname === '/to-ftp') {
    res.writeHead(302, { location: 'ftp://127.0.0.1/x.jpg' }).end();
    return;
  }
  if (url.pathname === '/text.jpg') {
    res.writeHead(200, { 'content-type': 'image/jpeg' }).end('this is plain text, not an image at all\n');
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
}

async function startOrigin(host: string, port = 0): Promise<Origin> {
  const origin: Origin = { server: http.createServer(), port: 0, requests: [] };
  origin.server.on('request', (req, res) => handleOrigin(origin, req, res));
  await new Promise<void>((resolve, reject) => {
    origin.server.once('error', reject);
    origin.server.listen(port, host, () => resolve());
  });
  origin.port = (origin.server.address() as AddressInfo).port;
  return origin;
}

async function stopOrigin(origin: Origin | undefined): Promise<void> {
  if (!origin) return;
  origin.server.closeAllConnections();
  await new Promise<void>((resolve) => origin.server.close(() => resolve()));
}

describe('URL uploads without PICTOR_ALLOW_PRIVATE_URLS', () => {
  let v4: Origin;
  let v6: Origin | undefined;
  const requestCount = (): number => v4.requests.length + (v6?.requests.length ?? 0);

  beforeAll(async () => {
    v4 = await startOrigin('127.0.0.1');
    // Same port on ::1 when the host has IPv6 loopback, so "localhost" and [::1] would land here too.
    v6 = await startOrigin('::1', v4.port).catch(() => undefined);
  });
  afterAll(async () => {
    await stopOrigin(v4);
    await stopOrigin(v6);
  });

  const targets = (): string[] => [
    `http://127.0.0.1:${v4.port}/img/320x240.jpg`,
    `http://localhost:${v4.port}/img/320x240.jpg`,
    `http://[::1]:${v4.port}/img/320x240.jpg`,
    `http://169.254.169.254/latest/meta-data/`,
    `http://10.0.0.1/x.jpg`,
    `http://[::ffff:127.0.0.1]:${v4.port}/img/320x240.jpg`,
    `http://2130706433:${v4.port}/img/320x240.jpg`,
    `http://127.1:${v4.port}/img/320x240.jpg`,
    `http://0.0.0.0:${v4.port}/img/320x240.jpg`,
    `http://[::]:${v4.port}/img/320x240.jpg`,
    `http://LOCALHOST:${v4.port}/img/320x240.jpg`,
    `http://sub.localhost:${v4.port}/img/320x240.jpg`,
    `http://192.168.1.1/x.jpg`,
    `http://172.16.0.1/x.jpg`,
  ];

  it('private, loopback and link-local targets → 400 5400 and the origin receives nothing', async () => {
    for (const url of targets()) {
      await expectRefused(t, () => upload(t, { url }), 400, 5400);
    }
    expect(requestCount()).toBe(0);
  });

  it('a non-http(s) url → 400 5400', async () => {
    await expectRefused(t, () => upload(t, { url: `ftp://127.0.0.1:${v4.port}/img/320x240.jpg` }), 400, 5400);
    await expectRefused(t, () => upload(t, { url: 'file:///etc/passwd' }), 400, 5400);
    expect(requestCount()).toBe(0);
  });
});

const FETCH_TIMEOUT_MS = 3000;

describe('URL uploads with PICTOR_ALLOW_PRIVATE_URLS=true', () => {
  let p: TestServer;
  let origin: Origin;
  const base = (): string => `http://127.0.0.1:${origin.port}`;

  beforeAll(async () => {
    origin = await startOrigin('127.0.0.1');
    p = await startTestServer({ PICTOR_ALLOW_PRIVATE_URLS: 'true', PICTOR_URL_FETCH_TIMEOUT_MS: String(FETCH_TIMEOUT_MS) });
  });
  afterAll(async () => {
    await p?.stop();
    await stopOrigin(origin);
  });

  it('fetches a fixture; the filename is the last path segment; bytes are kept', async () => {
    const image = await uploadOk(p, { url: `${base()}/img/4.webp` });
    expect(image.filename).toBe('4.webp');
    const blob = await fetchBlob(blobUrl(p, image.id), p);
    expect(blob.type).toBe('image/webp');
    expect(blob.bytes.equals(fixture('4.webp'))).toBe(true);
  });

  it('basic auth in the URL reaches the origin as an Authorization header', async () => {
    origin.requests.length = 0;
    const image = await uploadOk(p, { url: `http://alice:p%40ss@127.0.0.1:${origin.port}/auth/with-alpha.png` });
    expect(image.filename).toBe('with-alpha.png');
    expect(origin.requests.map((r) => r.authorization)).toEqual([
      `Basic ${Buffer.from('alice:p@ss').toString('base64')}`,
    ]);
  });

  it('follows 3 redirects', async () => {
    origin.requests.length = 0;
    const image = await uploadOk(p, { url: `${base()}/redirect/3` });
    expect(origin.requests.map((r) => r.url)).toEqual(['/redirect/3', '/redirect/2', '/redirect/1', '/img/320x240.jpg']);
    const blob = await fetchBlob(blobUrl(p, image.id), p);
    expect(blob.bytes.equals(fixture('320x240.jpg'))).toBe(true);
  });

  it('refuses a 4th redirect → 400 5400', async () => {
    await expectRefused(p, () => upload(p, { url: `${base()}/redirect/4` }), 400, 5400);
  });

  it('an origin 404 → 400 5400', async () => {
    await expectRefused(p, () => upload(p, { url: `${base()}/missing.jpg` }), 400, 5400);
  });

  it('a body over 10 MB → 413 5413', async () => {
    await expectRefused(p, () => upload(p, { url: `${base()}/huge.jpg` }), 413, 5413);
  });

  it('a non-image body → 415 5455', async () => {
    await expectRefused(p, () => upload(p, { url: `${base()}/text.jpg` }), 415, 5455);
  });

  it('a redirect to a non-http(s) URL → 400 5400', async () => {
    await expectRefused(p, () => upload(p, { url: `${base()}/to-ftp` }), 400, 5400);
  });

  it('an origin that never answers → 400 5400 after the fetch timeout', async () => {
    await expectRefused(p, () => upload(p, { url: `${base()}/slow.jpg` }), 400, 5400);
  });

  it('an origin that drip-feeds its body past the timeout → 400 5400 (not a 500)', async () => {
    const started = Date.now();
    await expectRefused(p, () => upload(p, { url: `${base()}/drip.jpg` }), 400, 5400);
    expect(Date.now() - started).toBeLessThan(FETCH_TIMEOUT_MS + 5000);
  });
});
