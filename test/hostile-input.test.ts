/**
 * Hostile input over HTTP against the real server: ids that collide with account routes, metadata
 * nested deeper than the stack, malformed URL credentials and redirects, IPv4 addresses hidden in IPv6
 * literals, lax number spellings in flexible variants, prototype names in filters; then fast-check
 * fuzzing of every parser that takes user text, asserting that no input ever yields a 5xx and that
 * every refusal is Cloudflare-shaped (JSON envelope with an API code, or `Cf-Resized: err=9xxx`).
 *
 * No fuzzed request may leave the machine: URL uploads only ever name loopback/private literals,
 * `.invalid` names or text that is not a URL, and `safeUrlText` replaces anything else before sending.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../src/errors.js';
import { type Envelope, expectApiError, expectOk, type ImageResult, readEnvelope } from './helpers/api.js';
import { deliver, deliverImage, expectDeliveryError, listKeys, patchConfig, putKey, uploadFixture } from './helpers/delivery.js';
import { startTestServer, type TestServer, upload, useServer } from './helpers/server.js';

// ---------------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------------

const DEEP_ARRAYS = `{"a":${'['.repeat(30_000)}${']'.repeat(30_000)}}`;
/** 10,000 levels of `{"a":…}` fit in the 64 KB form-field limit and still overflow JSON.stringify. */
const DEEP_OBJECTS = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;

function mintJson(t: TestServer, body: string): Promise<Response> {
  return fetch(`${t.imagesUrl}/v2/direct_upload`, {
    method: 'POST',
    headers: { ...t.auth, 'content-type': 'application/json' },
    body,
  });
}

function mintForm(t: TestServer, fields: Record<string, string>): Promise<Response> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return fetch(`${t.imagesUrl}/v2/direct_upload`, { method: 'POST', headers: t.auth, body: form });
}

function patchImage(t: TestServer, id: string, body: string, contentType = 'application/json'): Promise<Response> {
  return fetch(`${t.imagesUrl}/v1/${encodeURIComponent(id)}`, {
    method: 'PATCH',
    headers: { ...t.auth, 'content-type': contentType },
    body,
  });
}

/** A 1x1 PNG: the cheapest file that passes upload validation, so fuzzed uploads reach the database. */
let tinyPng: Buffer;
beforeAll(async () => {
  tinyPng = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#f00' } }).png().toBuffer();
});
const tinyFile = (): File => new File([tinyPng], 'tiny.png', { type: 'image/png' });

/** A local origin that counts the requests it receives (none may arrive when a URL is refused). */
interface CountingOrigin {
  server: http.Server;
  port: number;
  requests: string[];
}

async function startOrigin(handle: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<CountingOrigin> {
  const origin: CountingOrigin = { server: http.createServer(), port: 0, requests: [] };
  origin.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    origin.requests.push(req.url ?? '');
    handle(req, res);
  });
  await new Promise<void>((resolve) => origin.server.listen(0, '127.0.0.1', () => resolve()));
  origin.port = (origin.server.address() as AddressInfo).port;
  return origin;
}

async function stopOrigin(origin: CountingOrigin | undefined): Promise<void> {
  if (!origin) return;
  origin.server.closeAllConnections();
  await new Promise<void>((resolve) => origin.server.close(() => resolve()));
}

// ---------------------------------------------------------------------------------------------------
// 1. Custom ids that collide with account routes
// ---------------------------------------------------------------------------------------------------

describe('custom ids that collide with routes under /images/v1/', () => {
  const h = useServer();
  const ROUTES = ['stats', 'keys', 'variants', 'config', 'batch_token', 'direct_upload'];

  it('an image id keys/k2 is refused (400 5400), so DELETE …/images/v1/keys/k2 can only mean the signing key', async () => {
    const t = h.t;
    await putKey(t, 'k2');
    await expectApiError(await upload(t, { file: tinyFile(), id: 'keys/k2' }), 400, 5400);
    expect((await listKeys(t)).map((key) => key.name)).toContain('k2');
  });

  it.each(ROUTES)('an id whose first segment is %j → 400 5400', async (route) => {
    await expectApiError(await upload(h.t, { file: tinyFile(), id: `${route}/x` }), 400, 5400);
  });

  it('"blob" alone and ids ending in /blob stay addressable (the SDK sends `/` as %2F)', async () => {
    const t = h.t;
    const nested = await expectOk<ImageResult>(await upload(t, { file: tinyFile(), id: 'album/blob' }));
    expect(nested.id).toBe('album/blob');
    const byEncodedId = await expectOk<ImageResult>(await fetch(`${t.imagesUrl}/v1/album%2Fblob`, { headers: t.auth }));
    expect(byEncodedId.id).toBe('album/blob');
    const image = await expectOk<ImageResult>(await upload(t, { file: tinyFile(), id: 'blob' }));
    expect(image.id).toBe('blob');
    const got = await expectOk<ImageResult>(await fetch(`${t.imagesUrl}/v1/blob`, { headers: t.auth }));
    expect(got.id).toBe('blob');
  });

  it('direct-upload minting refuses the same ids (multipart id field and JSON)', async () => {
    const t = h.t;
    await expectApiError(await mintForm(t, { id: 'keys/k2' }), 400, 5400);
    await expectApiError(await mintForm(t, { id: 'variants/x' }), 400, 5400);
    await expectApiError(await mintJson(t, JSON.stringify({ id: 'stats/a' })), 400, 5400);
    const variant = await fetch(`${t.imagesUrl}/v1/variants/x`, { headers: t.auth });
    await expectApiError(variant, 404, 5401);
  });

  it('direct-upload minting refuses a JSON id with a lone surrogate (it would be stored as U+FFFD)', async () => {
    await expectApiError(await mintJson(h.t, '{"id":"a\\ud800b"}'), 400, 5400);
  });

  it('a creator with a lone surrogate is refused on minting and on PATCH (it would come back as U+FFFD)', async () => {
    await expectApiError(await mintJson(h.t, '{"creator":"a\\ud800b"}'), 400, 5400);
    const image = await expectOk<ImageResult>(await upload(h.t, { file: tinyFile() }));
    const patched = await fetch(`${h.t.imagesUrl}/v1/${image.id}`, {
      method: 'PATCH',
      headers: { ...h.t.auth, 'content-type': 'application/json' },
      body: '{"creator":"a\\ud800b"}',
    });
    await expectApiError(patched, 400, 5400);
  });
});

// ---------------------------------------------------------------------------------------------------
// 2a. Metadata nested deeper than the call stack
// ---------------------------------------------------------------------------------------------------

describe('metadata nested 10,000-30,000 levels deep → 400 5400, not a stack overflow', () => {
  const h = useServer();

  it.each([
    ['arrays', DEEP_ARRAYS],
    ['objects', DEEP_OBJECTS],
  ])('as the upload metadata field (%s)', async (_label, metadata) => {
    const res = await upload(h.t, { file: tinyFile(), metadata });
    const body = await expectApiError(res, 400, 5400);
    expect(body.errors[0]?.message).toMatch(/Metadata must not exceed 1024 bytes/);
  });

  it.each([
    ['arrays', DEEP_ARRAYS],
    ['objects', DEEP_OBJECTS],
  ])('as a PATCH {"metadata": …} body (%s)', async (_label, metadata) => {
    const image = await expectOk<ImageResult>(await upload(h.t, { file: tinyFile() }));
    await expectApiError(await patchImage(h.t, image.id, `{"metadata":${metadata}}`), 400, 5400);
  });

  it.each([
    ['arrays', DEEP_ARRAYS],
    ['objects', DEEP_OBJECTS],
  ])('as direct-upload metadata, multipart and JSON (%s)', async (_label, metadata) => {
    await expectApiError(await mintForm(h.t, { metadata }), 400, 5400);
    await expectApiError(await mintJson(h.t, `{"metadata":${metadata}}`), 400, 5400);
  });
});

// ---------------------------------------------------------------------------------------------------
// 2b / 3. URL uploads: malformed credentials, malformed redirects, IPv4 inside IPv6
// ---------------------------------------------------------------------------------------------------

describe('URL uploads with malformed text → 400 5400', () => {
  const h = useServer();

  it.each(['http://%zz:x@host.invalid/p.jpg', 'http://user:%C0%80@host.invalid/p.jpg', 'https://%E0%A4%A@host.invalid/'])(
    'percent-encoding in the credentials of %s is refused before any connection',
    async (url) => {
      const body = await expectApiError(await upload(h.t, { url }), 400, 5400);
      expect(body.errors[0]?.message).toMatch(/malformed/);
    },
  );
});

describe('URL uploads that redirect to a malformed Location (PICTOR_ALLOW_PRIVATE_URLS=true)', () => {
  let t: TestServer;
  let origin: CountingOrigin;

  beforeAll(async () => {
    origin = await startOrigin((_req, res) => res.writeHead(302, { location: 'http://[' }).end());
    t = await startTestServer({ PICTOR_ALLOW_PRIVATE_URLS: 'true', PICTOR_URL_FETCH_TIMEOUT_MS: '3000' });
  });
  afterAll(async () => {
    await t?.stop();
    await stopOrigin(origin);
  });

  it('→ 400 5400 (the Location is not a URL), not a 500', async () => {
    const body = await expectApiError(await upload(t, { url: `http://127.0.0.1:${origin.port}/r` }), 400, 5400);
    expect(body.errors[0]?.message).toMatch(/redirected to a malformed URL/);
    expect(origin.requests).toEqual(['/r']);
  });
});

describe('URL uploads to IPv6 literals that carry a private IPv4', () => {
  const h = useServer();
  let origin: CountingOrigin;

  beforeAll(async () => {
    origin = await startOrigin((_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(tinyPng));
  });
  afterAll(async () => stopOrigin(origin));

  const hosts = (): string[] => [
    // URL parsing turns [::127.0.0.1] into [::7f00:1] (IPv4-compatible, ::/96).
    `[::127.0.0.1]:${origin.port}`,
    `[::ffff:0:127.0.0.1]:${origin.port}`,
    `[64:ff9b::127.0.0.1]:${origin.port}`,
    `[64:ff9b:1::127.0.0.1]:${origin.port}`,
    `[2002:7f00:1::1]:${origin.port}`,
    `[2001:0:7f00:1::1]:${origin.port}`,
    // Teredo with a public server (8.8.8.8) and the client 127.0.0.1 stored inverted.
    `[2001:0:808:808::80ff:fffe]:${origin.port}`,
  ];

  it('each is refused as a private address (400 5400) and no request reaches the origin', async () => {
    for (const host of hosts()) {
      const res = await upload(h.t, { url: `http://${host}/x.jpg` });
      const body = await expectApiError(res, 400, 5400);
      expect(body.errors[0]?.message, host).toMatch(/private, loopback or link-local/);
    }
    expect(origin.requests).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// 4. Flexible variants: only plain integers and decimals
// ---------------------------------------------------------------------------------------------------

describe('flexible variant numbers must be spelled plainly', () => {
  const h = useServer();
  let path: string;

  beforeAll(async () => {
    path = (await uploadFixture(h.t, '320x240.jpg')).path;
    await patchConfig(h.t, { flexible_variants: true });
  });

  it.each(['w=1e3', 'w=0x10', 'w=%205', 'w=+5', 'w=5.0', 'h=1e2', 'q=8e1', 'q=constructor', 'q=toString', 'rotate=0x5a',
    'dpr=1e0', 'blur=+1', 'g=0.5x5e-1', 'trim=0;0;0;1e1', 'trim.left=0x1'])('%s → 400 9401', async (options) => {
    await expectDeliveryError(await deliver(h.t, `${path}/${options}`), 400, 9401);
  });

  it('plain spellings still render', async () => {
    const { meta } = await deliverImage(h.t, `${path}/w=50,h=40,fit=cover,q=80,dpr=.5,blur=0.5,g=0.25x1,f=png`);
    expect({ width: meta.width, height: meta.height }).toEqual({ width: 25, height: 20 });
  });
});

describe('metadata filter operators named like Object.prototype members', () => {
  const h = useServer();

  it('meta.a[constructor]=1 → 400 5400, not a 500', async () => {
    await expectApiError(await fetch(`${h.t.imagesUrl}/v2?meta.a[constructor]=1`, { headers: h.t.auth }), 400, 5400);
  });
});

// ---------------------------------------------------------------------------------------------------
// 5. Fuzzing: no input yields a 5xx
// ---------------------------------------------------------------------------------------------------

/** API codes a 4xx envelope may carry (delivery codes are 9xxx and never appear under /client/v4). */
const API_4XX_CODES = new Set(
  Object.entries(ERRORS)
    .filter(([code, entry]) => entry.status < 500 && (Number(code) < 9000 || Number(code) === 10000))
    .map(([code]) => Number(code)),
);

function describeInput(input: unknown): string {
  const text = typeof input === 'string' ? JSON.stringify(input) : JSON.stringify(input, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
  return (text ?? String(input)).slice(0, 400);
}

/** Any API answer: success, or a 4xx Cloudflare envelope with a known API code. Never a 5xx. */
async function expectApiAnswer(res: Response, input: unknown): Promise<Envelope> {
  const text = await res.text();
  const context = `${res.status} ${text.slice(0, 300)} ← ${describeInput(input)}`;
  expect(res.status, context).toBeLessThan(500);
  expect(res.headers.get('content-type') ?? '', context).toMatch(/^application\/json\b/);
  const body = JSON.parse(text) as Envelope;
  if (res.status === 200) {
    expect(body.success, context).toBe(true);
  } else {
    expect(res.status, context).toBeGreaterThanOrEqual(400);
    expect(body.success, context).toBe(false);
    expect(API_4XX_CODES.has(body.errors[0]?.code ?? -1), context).toBe(true);
  }
  return body;
}

/** Any delivery answer: 2xx/304, or a 4xx with `Cf-Resized: err=9xxx` and an `ERROR 9xxx` text body. */
async function expectDeliveryAnswer(res: Response, input: unknown): Promise<void> {
  const text = await res.text();
  const context = `${res.status} cf-resized=${res.headers.get('cf-resized') ?? ''} ${text.slice(0, 200)} ← ${describeInput(input)}`;
  expect(res.status, context).toBeLessThan(500);
  if (res.status >= 400) {
    expect(res.headers.get('cf-resized') ?? '', context).toMatch(/^err=9\d{3}$/);
    expect(text, context).toMatch(/^ERROR 9\d{3}/);
  }
}

/** One "character" of hostile text: ASCII, any code point, graphemes, lone surrogates and nasty pieces. */
const hostileChar: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('%', '%zz', '%2F', '%00', '%C0%80', '%ED%A0%80', '/', '\\', '[', ']', '.', '..', '=', ',',
      '\u0000', '"', '\r\n', '@', ':', '?', '#', ';', '|', '&', '__proto__', 'constructor', 'blob', 'keys/'),
  },
);

const hostileString = (maxLength: number): fc.Arbitrary<string> => fc.string({ unit: hostileChar, maxLength });

/** Strings with no lone surrogate, as FormData and fetch turn them (USVString conversion). */
function wellFormed(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

/** Long, deep and prototype-shaped metadata texts every metadata surface must survive. */
const METADATA_SEEDS = [
  DEEP_ARRAYS,
  DEEP_OBJECTS,
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
  '{"a":"\\u0000"}',
  '{"\\ud800":"\\udfff"}',
  '{"a":1e400}',
  '{"a":-0}',
  `{"k":"${'é'.repeat(600)}"}`,
  `{"k":"${'x'.repeat(60_000)}"}`,
  'x'.repeat(70_000),
  '[]',
  'null',
  '"text"',
  '{',
  '',
  '%zz',
];

const jsonText = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4, stringUnit: hostileChar }).map((value) => JSON.stringify(value)) },
  { weight: 2, arbitrary: fc.dictionary(hostileString(10), fc.jsonValue({ maxDepth: 3 })).map((value) => JSON.stringify(value)) },
  { weight: 2, arbitrary: hostileString(60) },
  { weight: 1, arbitrary: fc.constantFrom(...METADATA_SEEDS) },
);

/** Rough check that no fuzzed request polluted Object.prototype in this (the server's) process. */
function expectPrototypeClean(): void {
  const probe: Record<string, unknown> = {};
  expect(probe.polluted).toBeUndefined();
  expect(Object.keys(Object.prototype)).toEqual([]);
}

// --- URL safety: what a fuzzed `url` field may name --------------------------------------------------

const PRIVATE_V4: Array<[ipaddr.IPv4, number]> = ['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '0.0.0.0/8'].map(
  (cidr) => ipaddr.IPv4.parseCIDR(cidr),
);

/** Literal hosts the URL fuzzer uses: loopback, private, link-local, IPv4-in-IPv6 of those, `.invalid`. */
const FUZZ_HOSTS = [
  '127.0.0.1', '127.1', '0x7f.1', '2130706433', '0', '0.0.0.0', '10.0.0.1', '172.16.0.1', '192.168.0.1', '169.254.169.254',
  'localhost', 'LOCALHOST', 'a.localhost', '[::1]', '[::]', '[::127.0.0.1]', '[::ffff:127.0.0.1]', '[::ffff:0:10.0.0.1]',
  '[64:ff9b::127.0.0.1]', '[64:ff9b:1::10.0.0.1]', '[2002:7f00:1::]', '[2001:0:a00:1::1]', '[fe80::1]', '[fd00::1]',
  'x.invalid', 'a.b.invalid', 'ünï.invalid', 'xn--zz.invalid', '%zz.invalid', 'bad host.invalid', '[', '[::1', '[::1]]', '',
  '@', '::1', '[fe80::1%25eth0]',
];

/** Normalized IPv6 hosts of FUZZ_HOSTS (the ones that carry a private IPv4). */
const SAFE_V6 = new Set(
  FUZZ_HOSTS.flatMap((host) => {
    try {
      const name = new URL(`http://${host}/`).hostname.replace(/^\[|\]$/g, '');
      return net.isIPv6(name) ? [name] : [];
    } catch {
      return [];
    }
  }),
);

/** Independent of src/: true when the server could not possibly connect to a public host for `text`. */
function isSafeUrlText(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return true;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return true;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (host.endsWith('.invalid') || host.endsWith('.invalid.')) return true;
  if (net.isIPv4(host)) return PRIVATE_V4.some(([range, bits]) => ipaddr.IPv4.parse(host).match(range, bits));
  if (net.isIPv6(host)) {
    return SAFE_V6.has(host) || ['loopback', 'unspecified', 'linkLocal', 'uniqueLocal'].includes(ipaddr.IPv6.parse(host).range());
  }
  return false;
}

/** `text`, or a harmless `.invalid` URL if the server could read `text` as a URL to a real host. */
function safeUrlText(text: string): string {
  const sent = wellFormed(text);
  const variants = [sent, sent.replace(/\r(?!\n)|(?<!\r)\n/g, '\r\n')];
  return variants.every(isSafeUrlText) ? sent : 'http://replaced.invalid/x.jpg';
}

/** Mostly http(s) URLs (so most reach the address checks), some other schemes and some plain text. */
const urlText: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.oneof(
          { weight: 6, arbitrary: fc.constantFrom('http://', 'https://') },
          { weight: 1, arbitrary: fc.constantFrom('HTTP://', 'http:/', 'http:\\\\', 'ftp://', 'file://', 'javascript:', '') },
        ),
        fc.option(fc.oneof(hostileString(12), fc.constantFrom('%zz:x', 'u:%C0%80', ':', 'a:b:c', '%')).map((u) => `${u}@`), { nil: '' }),
        fc.constantFrom(...FUZZ_HOSTS),
        fc.option(fc.oneof(fc.nat({ max: 70_000 }).map(String), hostileString(6)).map((p) => `:${p}`), { nil: '' }),
        fc.oneof(hostileString(30).map((p) => `/${p}`), fc.constantFrom('/x.jpg', '/%zz', '/a?b#c', '/../../etc/passwd', '')),
      )
      .map((parts) => parts.join('')),
  },
  { weight: 1, arbitrary: hostileString(60) },
  { weight: 1, arbitrary: fc.constantFrom('http://%zz:x@host.invalid/p.jpg', `http://x.invalid/${'a'.repeat(9000)}`, 'http://[::127.0.0.1]/x.jpg') },
);

// --- Raw multipart bodies ------------------------------------------------------------------------

interface RawPart {
  name: string;
  value: string;
  file: boolean;
}

/** A multipart body written by hand, so names may hold quotes, CR/LF or NUL that FormData would escape. */
function rawMultipart(boundary: string, parts: RawPart[], closing: string): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = part.file
      ? `form-data; name="${part.name}"; filename="f.png"\r\nContent-Type: image/png`
      : `form-data; name="${part.name}"`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n\r\n`));
    chunks.push(part.file ? tinyPng : Buffer.from(safeUrlText(part.value)));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(closing.replace('BOUNDARY', boundary)));
  return Buffer.concat(chunks);
}

const FIELD_NAMES = ['id', 'creator', 'metadata', 'requireSignedURLs', 'expiry', 'file', 'metadata[a]', 'metadata[a][]', 'metadata[]', 'metadata[__proto__][x]'];

const rawPart: fc.Arbitrary<RawPart> = fc.record({
  name: fc.oneof(fc.constantFrom(...FIELD_NAMES), hostileString(16)),
  value: fc.oneof(hostileString(40), jsonText),
  file: fc.boolean(),
});

// --- Flexible option strings -----------------------------------------------------------------------

const OPTION_KEYS = ['width', 'w', 'height', 'h', 'fit', 'gravity', 'g', 'quality', 'q', 'format', 'f', 'dpr', 'metadata', 'anim',
  'background', 'blur', 'sharpen', 'rotate', 'flip', 'brightness', 'contrast', 'gamma', 'saturation', 'trim', 'trim.width',
  'trim.height', 'trim.left', 'trim.top', 'compression', 'onerror', 'zoom', 'constructor', '__proto__', 'toString', ''];

/** Real option names other than the sizes, for the property that renders. */
const RENDER_KEYS = OPTION_KEYS.filter((key) => !['width', 'w', 'height', 'h', 'constructor', '__proto__', 'toString', ''].includes(key));

const numberText = fc.oneof(
  fc.nat({ max: 13_000 }).map(String),
  fc.double().map(String),
  fc.stringMatching(/^[+-]?\d{0,5}(\.\d{0,3})?(e[+-]?\d{1,3})?$/),
  fc.constantFrom('1e3', '0x10', '+5', '-5', '5.0', '.5', '5.', '00', '1_0', 'Infinity', 'NaN', '0.5x0.5', '1x1', '.5x.5',
    '1;2;3;4', '0;0;0;0', '12000;0;0;0', '1;2;3', '%205', '%2B5'),
);

const wordText = fc.constantFrom('cover', 'contain', 'pad', 'crop', 'scale-down', 'squeeze', 'auto', 'avif', 'webp', 'json', 'png',
  'jpeg', 'baseline-jpeg', 'keep', 'copyright', 'none', 'true', 'false', 'h', 'v', 'hv', 'left', 'face', 'high', 'low',
  'medium-high', 'red', '%23fff', '%23ff000080', 'rgb(1%2C2%2C3)', 'hsl(0%2C0%25%2C0%25)', 'transparent', 'constructor',
  'toString', '__proto__');

/** Any value for any key: numbers in every spelling, words of other options, hostile text. */
const optionValue = fc.oneof(numberText, wordText, hostileString(16));

const integerIn = (min: number, max: number): fc.Arbitrary<string> => fc.integer({ min, max }).map(String);
/** A plain decimal in [min, max] with 0-3 fraction digits (`.5` spelled both ways). */
const decimalIn = (min: number, max: number): fc.Arbitrary<string> =>
  fc
    .tuple(fc.double({ min, max, noNaN: true }), fc.integer({ min: 0, max: 3 }), fc.boolean())
    .map(([value, digits, bare]) => {
      const text = value.toFixed(digits);
      return bare && text.startsWith('0.') ? text.slice(1) : text;
    });

/** Plausible values per option (sizes bounded by `maxSide`), so most generated lists are valid. */
function validValues(maxSide: number): Map<string, fc.Arbitrary<string>> {
  const side = integerIn(1, maxSide);
  const factor = decimalIn(0, 10);
  const trimSide = integerIn(0, 400);
  const quality = fc.oneof(integerIn(1, 100), fc.constantFrom('high', 'medium-high', 'medium-low', 'low'));
  const format = fc.constantFrom('auto', 'avif', 'webp', 'jpeg', 'baseline-jpeg', 'png', 'json');
  const gravity = fc.oneof(
    fc.constantFrom('auto', 'face', 'left', 'right', 'top', 'bottom', 'center'),
    fc.tuple(decimalIn(0, 1), decimalIn(0, 1)).map(([x, y]) => `${x}x${y}`),
  );
  // A Map: the option keys include `constructor` and `toString`, which an object literal would answer.
  return new Map(Object.entries({
    width: side, w: side, height: side, h: side,
    fit: fc.constantFrom('scale-down', 'contain', 'cover', 'crop', 'pad', 'squeeze'),
    gravity, g: gravity,
    quality, q: quality,
    format, f: format,
    dpr: decimalIn(0.1, 3),
    metadata: fc.constantFrom('keep', 'copyright', 'none'),
    anim: fc.constantFrom('true', 'false', '1', '0'),
    background: fc.constantFrom('red', '%23fff', '%23ff000080', 'rgb(1%2C2%2C3)', 'hsl(120%2C50%25%2C50%25)', 'transparent'),
    blur: decimalIn(0, 250), sharpen: factor, brightness: factor, contrast: factor, gamma: factor, saturation: factor,
    rotate: fc.constantFrom('0', '90', '180', '270'),
    flip: fc.constantFrom('h', 'v', 'hv'),
    trim: fc.tuple(trimSide, trimSide, trimSide, trimSide).map((sides) => sides.join(';')),
    'trim.width': trimSide, 'trim.height': trimSide, 'trim.left': trimSide, 'trim.top': trimSide,
    compression: fc.constant('fast'), onerror: fc.constant('redirect'), zoom: decimalIn(0, 1),
  }));
}

/**
 * Lists of 1-6 distinct options: mostly valid pairs, some with any value, some pure junk, so both the
 * happy path and every refusal are reached.
 */
function optionList(maxSide: number, keys: readonly string[] = OPTION_KEYS): fc.Arbitrary<string> {
  const valid = validValues(maxSide);
  const pairFor = (key: string): fc.Arbitrary<string> =>
    fc.oneof(
      { weight: 12, arbitrary: (valid.get(key) ?? optionValue).map((value) => `${key}=${value}`) },
      { weight: 1, arbitrary: optionValue.map((value) => `${key}=${value}`) },
      { weight: 1, arbitrary: hostileString(16) },
    );
  return fc
    .uniqueArray(fc.constantFrom(...keys), { minLength: 1, maxLength: 6 })
    .chain((chosen) => fc.tuple(...chosen.map(pairFor)))
    .map((pairs) => pairs.join(','));
}

/**
 * The option text as one raw path segment: `/ \ ? #` escaped so it stays one segment; other characters
 * are left for fetch's URL parser to percent-encode. With `wellFormedOnly`, a `%` that does not start a
 * decodable escape becomes `%25` (see the skipped property below for what malformed ones do).
 */
function pathSegment(text: string, wellFormedOnly: boolean): string {
  let segment = text.replace(/[/\\?#]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  if (wellFormedOnly) {
    try {
      decodeURIComponent(wellFormed(segment));
    } catch {
      segment = segment.replace(/%/g, '%25');
    }
  }
  return segment;
}

// --- Meta filters -----------------------------------------------------------------------------------

const fieldName = fc.oneof(
  fc.constantFrom('a', 'b', 'n', 's', 'region', 'name', 'list', 'constructor', 'toString', '__proto__', 'prototype'),
  fc.stringMatching(/^[A-Za-z0-9_]{1,8}$/),
);
const filterPath = fc.oneof(
  { weight: 5, arbitrary: fc.array(fieldName, { minLength: 1, maxLength: 5 }).map((segments) => segments.join('.')) },
  { weight: 1, arbitrary: hostileString(20) },
  {
    weight: 1,
    arbitrary: fc
      .array(fc.constantFrom('a', '', 'x'.repeat(101), 'a-b', 'é'), { minLength: 1, maxLength: 7 })
      .map((segments) => segments.join('.')),
  },
);
const filterOp = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom('eq', 'eq:string', 'eq:number', 'eq:boolean', 'gt', 'gte', 'lt', 'lte', 'in', 'in:string', 'in:number', 'gt:number', 'lte:number') },
  { weight: 1, arbitrary: fc.constantFrom('constructor', 'tostring', 'valueof', '__proto__', '', 'EQ') },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z:]{1,12}$/) },
  { weight: 1, arbitrary: hostileString(8) },
);
const filterValue = fc.oneof(
  { weight: 2, arbitrary: fc.oneof(fc.integer().map(String), fc.double().map(String), fc.constantFrom('true', 'false', 'eu', '7', 'x')) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom('1', '2', 'eu', 'x', ''), { maxLength: 12 }).map((values) => values.join('|')) },
  { weight: 2, arbitrary: hostileString(30) },
  { weight: 1, arbitrary: fc.constantFrom('-0', '1e400', '0x10', '|'.repeat(20), 'NaN', '') },
);

interface FilterQuery {
  filters: Array<[string, string, string]>;
  raw: boolean;
  extra: Array<[string, string]>;
}

const extraParam: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.tuple(fc.constant('per_page'), fc.oneof(integerIn(1, 20_000), hostileString(6))),
  fc.tuple(fc.constant('sort_order'), fc.oneof(fc.constantFrom('asc', 'desc'), hostileString(6))),
  fc.tuple(fc.constantFrom('continuation_token', 'creator'), hostileString(20)),
);

const filterQuery: fc.Arbitrary<FilterQuery> = fc.record({
  filters: fc.array(fc.tuple(filterPath, filterOp, filterValue), { minLength: 1, maxLength: 6 }),
  raw: fc.boolean(),
  // Usually none: a bad per_page or sort_order would refuse the request before the filters run.
  extra: fc.oneof({ weight: 3, arbitrary: fc.array(extraParam, { maxLength: 0 }) }, { weight: 1, arbitrary: fc.array(extraParam, { minLength: 1, maxLength: 2 }) }),
});

function queryText({ filters, raw, extra }: FilterQuery): string {
  const pairs: Array<[string, string]> = [...filters.map(([path, op, value]): [string, string] => [`meta.${path}[${op}]`, value]), ...extra];
  if (!raw) return new URLSearchParams(pairs).toString();
  // Raw: as a careless client writes it; only `#` is escaped so the text stays in the query.
  return pairs.map(([key, value]) => `${key}=${value}`.replace(/#/g, '%23')).join('&');
}

// --- The fuzzing suite --------------------------------------------------------------------------

/**
 * Every property runs in about a second; on a failure, shrinking (one HTTP request per step, over
 * inputs up to 70 KB) is cut off after this long and the smallest failure found so far is reported.
 */
const FUZZ_LIMITS = { interruptAfterTimeLimit: 15_000, markInterruptAsFailure: true } as const;

describe('fuzzing: no user text yields a 5xx', () => {
  const h = useServer();
  let targetId: string;
  let deliveryPath: string;

  beforeAll(async () => {
    const t = h.t;
    targetId = (await expectOk<ImageResult>(await upload(t, { file: tinyFile() }))).id;
    deliveryPath = (await uploadFixture(t, '320x240.jpg')).path;
    await patchConfig(t, { flexible_variants: true });
    // Rows for the filter SQL function to walk, in both metadata forms.
    for (const metadata of ['{"a":{"b":1},"n":5,"s":"7","region":{"name":"eu"}}', '{"constructor":"x","toString":{"a":true}}', '{}']) {
      await expectOk(await upload(t, { file: tinyFile(), metadata }));
    }
    await expectOk(await upload(t, { file: tinyFile(), 'metadata[a][b]': '1', 'metadata[list][]': 'x' }));
  });

  // Hand-picked seeds run as plain loops, not as fast-check `examples`: shrinking an example has no
  // generation context, and re-parsing a 60 KB string into multi-character units takes minutes.

  it('hand-picked metadata seeds on every metadata surface (upload, bracket fields, PATCH, both mints)', async () => {
    const t = h.t;
    for (const seed of METADATA_SEEDS) {
      await expectApiAnswer(await upload(t, { file: tinyFile(), metadata: seed }), seed);
      await expectApiAnswer(await upload(t, { file: tinyFile(), metadata: seed, 'metadata[b][]': '1' }), seed);
      await expectApiAnswer(await patchImage(t, targetId, `{"metadata":${seed}}`), seed);
      await expectApiAnswer(await mintForm(t, { metadata: seed }), seed);
      await expectApiAnswer(await mintJson(t, `{"metadata":${seed}}`), seed);
    }
    for (const name of ['metadata[__proto__][polluted]', 'metadata[constructor][prototype][polluted]', `metadata${'[a]'.repeat(30)}`,
      'metadata[a][]', 'metadata[]', 'metadata[', 'metadata]', 'metadata[a]b']) {
      await expectApiAnswer(await upload(t, { file: tinyFile(), [name]: '1' }), name);
    }
    expectPrototypeClean();
  });

  const ID_SEEDS = ['keys/k2', 'variants/x', 'a/blob', 'blob', 'stats', '..', 'a%2Fb', '__proto__', 'constructor', 'x'.repeat(1024),
    'x'.repeat(1025), '漢'.repeat(1024), 'a\u0000b', 'a\ud800b', '3fa85f64-5717-4562-b3fc-2c963f66afa6'];

  /**
   * An accepted id must read back as itself, percent-encoded as one segment (catches ids the store would
   * alter) and with raw slashes (catches ids a route would shadow). A raw `…/<a>/blob` is the original
   * of `<a>` by design, so ids ending in `/blob` are only read back encoded.
   */
  async function expectReadBack(id: string): Promise<void> {
    const forms = [encodeURIComponent(id)];
    if (!id.endsWith('/blob')) forms.push(id.split('/').map(encodeURIComponent).join('/'));
    for (const form of forms) {
      const res = await fetch(`${h.t.imagesUrl}/v1/${form}`, { headers: h.t.auth });
      const body = await readEnvelope<ImageResult>(res);
      expect({ status: res.status, id: body.result?.id }, `GET …/v1/${form}`).toEqual({ status: 200, id });
    }
  }

  it('hand-picked custom id seeds, uploaded and minted (JSON keeps lone surrogates)', async () => {
    for (const id of ID_SEEDS) {
      const uploaded = await expectApiAnswer(await upload(h.t, { file: tinyFile(), id }), id);
      if (uploaded.success) await expectReadBack((uploaded.result as ImageResult).id);
      const minted = await expectApiAnswer(await mintJson(h.t, JSON.stringify({ id: `m/${id}` })), id);
      if (minted.success) await expectReadBack((minted.result as { id: string }).id);
    }
  });

  it('the upload metadata field (JSON text)', async () => {
    await fc.assert(
      fc.asyncProperty(jsonText, async (metadata) => {
        await expectApiAnswer(await upload(h.t, { file: tinyFile(), metadata }), metadata);
      }),
      { ...FUZZ_LIMITS, numRuns: 200 },
    );
    expectPrototypeClean();
  });

  it('bracket metadata fields metadata[a][b] (alone and next to a JSON metadata field)', async () => {
    const segment = fc.oneof(hostileString(10), fc.constantFrom('', '__proto__', 'constructor', 'prototype', 'a', 'b', '0', '[', ']', ']['));
    const name = fc.oneof(
      { weight: 4, arbitrary: fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => `metadata${s.map((x) => `[${x}]`).join('')}`) },
      { weight: 1, arbitrary: hostileString(16).map((s) => `metadata${s}`) },
    );
    const form = fc.record({
      fields: fc.array(fc.tuple(name, hostileString(30)), { minLength: 1, maxLength: 8 }),
      json: fc.option(jsonText, { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(form, async ({ fields, json }) => {
        const body = new FormData();
        body.append('file', tinyFile());
        if (json !== undefined) body.append('metadata', json);
        for (const [field, value] of fields) body.append(field, value);
        const res = await fetch(`${h.t.imagesUrl}/v1`, { method: 'POST', headers: h.t.auth, body });
        await expectApiAnswer(res, { fields, json });
      }),
      { ...FUZZ_LIMITS, numRuns: 200 },
    );
    expectPrototypeClean();
  });

  const idText = fc.oneof(
    { weight: 4, arbitrary: hostileString(40) },
    {
      weight: 1,
      arbitrary: fc
        .array(fc.constantFrom('keys', 'stats', 'variants', 'blob', 'a', '.', '..', '', '%2F', '__proto__'), { minLength: 1, maxLength: 4 })
        .map((segments) => segments.join('/')),
    },
  );

  it('custom ids (multipart id field); accepted ids read back unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(idText, async (id) => {
        const body = await expectApiAnswer(await upload(h.t, { file: tinyFile(), id }), id);
        if (body.success) await expectReadBack((body.result as ImageResult).id);
      }),
      { ...FUZZ_LIMITS, numRuns: 200 },
    );
  });

  it('direct-upload minting with JSON (id, metadata, creator, expiry, requireSignedURLs)', async () => {
    const mint = fc.record(
      {
        id: idText,
        metadata: fc.oneof(
          { weight: 3, arbitrary: fc.dictionary(hostileString(8), fc.jsonValue({ maxDepth: 2, stringUnit: hostileChar }), { maxKeys: 5 }) },
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3, stringUnit: hostileChar }) },
          { weight: 1, arbitrary: fc.constant('deep') },
        ),
        creator: fc.oneof({ weight: 3, arbitrary: hostileString(30) }, fc.jsonValue({ maxDepth: 1 }), fc.constant('c'.repeat(1025))),
        expiry: fc.oneof(
          { weight: 2, arbitrary: fc.integer({ min: 3, max: 359 }).map((minutes) => new Date(Date.now() + minutes * 60_000).toISOString()) },
          { weight: 1, arbitrary: hostileString(30) },
          { weight: 1, arbitrary: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()) },
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
        ),
        requireSignedURLs: fc.oneof({ weight: 4, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(mint, async (input) => {
        const text = JSON.stringify(input).replace('"metadata":"deep"', `"metadata":${DEEP_OBJECTS}`);
        const body = await expectApiAnswer(await mintJson(h.t, text), input);
        if (body.success && typeof input.id === 'string') await expectReadBack((body.result as { id: string }).id);
      }),
      { ...FUZZ_LIMITS, numRuns: 200 },
    );
  });

  it('flexible option strings on a real image (parsing and resolution; If-None-Match: * skips the render)', async () => {
    const seeds = ['q=constructor', 'w=1e3', 'w=%205', 'trim=12000;0;0;0', 'g=.5x.5,dpr=3,w=12000', 'background=constructor', 'w=5,w=6'];
    const options = fc.oneof({ weight: 9, arbitrary: optionList(12_000) }, { weight: 1, arbitrary: fc.constantFrom(...seeds) });
    await fc.assert(
      fc.asyncProperty(options, async (text) => {
        const res = await deliver(h.t, `${deliveryPath}/${pathSegment(text, true)}`, { headers: { 'if-none-match': '*' } });
        await expectDeliveryAnswer(res, text);
      }),
      { ...FUZZ_LIMITS, numRuns: 300 },
    );
  });

  it('flexible option strings that render (sizes up to 64 px, every other option free)', async () => {
    const sized = fc
      .tuple(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 64 }), optionList(64, RENDER_KEYS))
      .map(([w, h, rest]) => `w=${w},h=${h},${rest}`);
    await fc.assert(
      fc.asyncProperty(sized, async (options) => {
        await expectDeliveryAnswer(await deliver(h.t, `${deliveryPath}/${pathSegment(options, true)}`), options);
      }),
      { ...FUZZ_LIMITS, numRuns: 60 },
    );
  });

  // A malformed percent-escape (`%zz`, `%`, bytes that are not UTF-8) is refused by Fastify's router before
  // any route runs; app.ts answers it in the delivery format all the same (400 9401).
  it('flexible option strings with malformed percent-escapes are 400 9401 in the delivery format', async () => {
    const options = fc.oneof(optionList(12_000), fc.constantFrom('w=%zz', '%', 'background=%E0%A4%A'));
    await fc.assert(
      fc.asyncProperty(options, async (text) => {
        await expectDeliveryAnswer(await deliver(h.t, `${deliveryPath}/${pathSegment(text, false)}`), text);
      }),
      { ...FUZZ_LIMITS, numRuns: 100 },
    );
  });

  it('meta filters: GET …/images/v2?meta.<path>[<op>]=<value>', async () => {
    const seeds: FilterQuery[] = [
      { filters: [['a', 'constructor', '1']], raw: true, extra: [] },
      { filters: [['constructor', 'eq', 'x'], ['toString.a', 'eq:boolean', 'true']], raw: false, extra: [] },
      { filters: [['__proto__', 'eq', 'x']], raw: true, extra: [['continuation_token', '%zz']] },
      { filters: [['a', 'in:number', '1|2|x']], raw: false, extra: [['per_page', '1e3']] },
    ];
    const query = fc.oneof({ weight: 9, arbitrary: filterQuery }, { weight: 1, arbitrary: fc.constantFrom(...seeds) });
    await fc.assert(
      fc.asyncProperty(query, async (input) => {
        const res = await fetch(`${h.t.imagesUrl}/v2?${queryText(input)}`, { headers: h.t.auth });
        await expectApiAnswer(res, input);
      }),
      { ...FUZZ_LIMITS, numRuns: 200 },
    );
  });

  it('raw multipart bodies: any field names and values, odd boundaries and endings', async () => {
    const body = fc.record({
      target: fc.constantFrom('/v1', '/v2/direct_upload', '/v1/direct_upload'),
      boundary: fc.oneof({ weight: 6, arbitrary: fc.constant('XyZ123') }, fc.constantFrom('a'.repeat(70), '-', 'b c', '"q"'), hostileString(8)),
      contentType: fc.oneof(
        { weight: 6, arbitrary: fc.constant('multipart/form-data; boundary=BOUNDARY') },
        fc.constantFrom('multipart/form-data; boundary="BOUNDARY"', 'multipart/form-data', 'multipart/form-data; boundary=',
          'multipart/form-data; charset=utf-8; boundary=BOUNDARY', 'MULTIPART/FORM-DATA; boundary=BOUNDARY'),
      ),
      parts: fc.array(rawPart, { maxLength: 6 }),
      closing: fc.oneof(
        { weight: 6, arbitrary: fc.constant('--BOUNDARY--\r\n') },
        fc.constantFrom('--BOUNDARY--', '--BOUNDARY', '', '--BOUNDARY--\r\ntrailing garbage', '\r\n--BOUNDARY\r\n'),
      ),
    });
    await fc.assert(
      fc.asyncProperty(body, async (input) => {
        const boundary = wellFormed(input.boundary).replace(/[\r\n]/g, '');
        const res = await fetch(`${h.t.imagesUrl}${input.target}`, {
          method: 'POST',
          headers: { ...h.t.auth, 'content-type': input.contentType.replace('BOUNDARY', boundary) },
          body: rawMultipart(boundary, input.parts, input.closing),
        }).catch((error: unknown) => error);
        // fetch itself refuses some header values (e.g. NUL in the boundary): nothing reached the server.
        if (!(res instanceof Response)) return;
        await expectApiAnswer(res, input);
      }),
      { ...FUZZ_LIMITS, numRuns: 200 },
    );
  });

  it('PATCH …/images/v1/<id> JSON bodies', async () => {
    const seeds = ['{"__proto__":{"polluted":1},"metadata":{"__proto__":{"polluted":1}}}', '{"metadata":{"a":1e400},"creator":"\\ud800"}',
      '{"requireSignedURLs":"true"}', '{"creator":null,"metadata":null}'];
    const patch = fc.record({
      body: fc.oneof(
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4, stringUnit: hostileChar }).map((v) => JSON.stringify(v)) },
        {
          weight: 6,
          arbitrary: fc
            .record(
              {
                metadata: fc.oneof(
                  { weight: 3, arbitrary: fc.dictionary(hostileString(8), fc.jsonValue({ maxDepth: 3, stringUnit: hostileChar }), { maxKeys: 5 }) },
                  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4, stringUnit: hostileChar }) },
                ),
                creator: fc.oneof({ weight: 3, arbitrary: hostileString(30) }, fc.jsonValue({ maxDepth: 1 }), fc.constant('c'.repeat(1025))),
                requireSignedURLs: fc.oneof({ weight: 4, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }),
              },
              { requiredKeys: [] },
            )
            .map((v) => JSON.stringify(v)),
        },
        { weight: 1, arbitrary: jsonText.map((metadata) => `{"metadata":${metadata}}`) },
        { weight: 1, arbitrary: hostileString(60) },
        { weight: 1, arbitrary: fc.constantFrom(...seeds) },
      ),
      contentType: fc.oneof(
        { weight: 6, arbitrary: fc.constant('application/json') },
        fc.constantFrom('application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded'),
      ),
      // Mostly the real image (so edits are applied); sometimes an id that does not exist.
      otherImage: fc.oneof(
        { weight: 4, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.oneof(hostileString(20), fc.constantFrom('keys/k2', 'variants/public', 'a/blob')).map(wellFormed) },
      ),
    });
    await fc.assert(
      fc.asyncProperty(patch, async ({ body, contentType, otherImage }) => {
        await expectApiAnswer(await patchImage(h.t, otherImage ?? targetId, body, contentType), { body, contentType, otherImage });
      }),
      { ...FUZZ_LIMITS, numRuns: 200 },
    );
    expectPrototypeClean();
  });

  it('the url upload field (only private, loopback, .invalid or malformed targets)', async () => {
    await fc.assert(
      fc.asyncProperty(urlText, async (url) => {
        await expectApiAnswer(await upload(h.t, { url: safeUrlText(url) }), url);
      }),
      { ...FUZZ_LIMITS, numRuns: 200 },
    );
  });
});

describe('paths that are not valid percent-encoding, on every surface', () => {
  const h = useServer();

  it('API: 400 5400 in the envelope', async () => {
    for (const path of ['/v1/%zz', '/v1/a%E0%A4%A', '/v2%x=1']) {
      await expectApiError(await fetch(`${h.t.imagesUrl}${path}`, { headers: h.t.auth }), 400, 5400);
    }
  });

  it('upload host: 400 5400 in the envelope, with CORS', async () => {
    const res = await fetch(`${h.t.url}/upload/%zz/abc`, { method: 'POST' });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    await expectApiError(res, 400, 5400);
  });

  it('delivery: 400 ERROR 9401 with Cf-Resized', async () => {
    const res = await fetch(`${h.t.url}/someaccounthash/%zz/public`);
    expect(res.status).toBe(400);
    expect(res.headers.get('cf-resized')).toBe('err=9401');
    expect(await res.text()).toMatch(/^ERROR 9401: /);
  });
});
