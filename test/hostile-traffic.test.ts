/**
 * Hostile traffic, as an attacker on loopback would send it: SVG bombs at one direct-upload URL, drips
 * and slowloris connections, bodies to URLs that do not exist, 100-megapixel flexible renders next to
 * a thumbnail, early answers on a reused keep-alive connection, and the exact 10 MiB boundary.
 * Every test drives the real server over HTTP (or raw sockets where fetch cannot misbehave enough).
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Envelope, expectApiError, expectOk, type ImageResult } from './helpers/api.js';
import { type ChildServer, killAllChildServers, spawnServer } from './helpers/child-server.js';
import { ACCEPT, deliver, expectDeliveryError, patchConfig, uploadFixture } from './helpers/delivery.js';
import { BOUNDARY, connect, multipartFile, requestHead, sleep } from './helpers/raw-http.js';
import { fixture, randomAccountId, startTestServer, type TestServer, tempDir, upload } from './helpers/server.js';

/** About 9.9 MB of small rectangles: the document the security review used against the upload host. */
function svgBomb(rects = 170_000): Buffer {
  const parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="1000">'];
  for (let i = 0; i < rects; i++) parts.push(`<rect x="${i % 997}" y="${i % 991}" width="2" height="2" fill="#a1b2c3"/>`);
  parts.push('</svg>');
  return Buffer.from(parts.join(''));
}

function svgFile(text: string | Buffer, name = 'drawing.svg'): File {
  return new File([text], name, { type: 'image/svg+xml' });
}

async function mintUploadUrl(baseImagesUrl: string, auth: Record<string, string>): Promise<{ id: string; uploadURL: string }> {
  const res = await fetch(`${baseImagesUrl}/v2/direct_upload`, { method: 'POST', headers: auth });
  return expectOk<{ id: string; uploadURL: string }>(res);
}

function postFile(uploadURL: string, file: File): Promise<Response> {
  const form = new FormData();
  form.append('file', file);
  return fetch(uploadURL, { method: 'POST', body: form });
}

/** Peak resident memory of a process (kB in /proc, returned in bytes). */
function peakRss(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return Number(match?.[1] ?? 0) * 1024;
}

async function stopped(t: TestServer): Promise<void> {
  await t.stop();
  fs.rmSync(t.dataDir, { recursive: true, force: true });
}

describe('SVG bombs', () => {
  let child: ChildServer;
  let imagesUrl: string;
  let auth: Record<string, string>;

  beforeAll(async () => {
    const accountId = randomAccountId();
    const token = `token-${accountId}`;
    child = await spawnServer({ dataDir: tempDir(), accountId, token });
    imagesUrl = `${child.url}/client/v4/accounts/${accountId}/images`;
    auth = { authorization: `Bearer ${token}` };
  });
  afterAll(killAllChildServers);

  it('four concurrent POSTs of a 170,000-element SVG to one upload URL: one 200, three 409 at once, RSS under 1 GB', async () => {
    const bomb = svgBomb();
    expect(bomb.length).toBeLessThanOrEqual(10 * 1024 * 1024);
    const minted = await mintUploadUrl(imagesUrl, auth);
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 4 }, () => postFile(minted.uploadURL, svgFile(bomb))));
    const elapsed = Date.now() - started;
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409]);
    for (const res of answers) {
      const body = (await res.json()) as Envelope;
      if (res.status === 409) expect(body.errors[0]?.code).toBe(5409);
    }
    expect(elapsed).toBeLessThan(30_000);
    expect(peakRss(child.pid)).toBeLessThan(1024 ** 3);
  });

  it('three concurrent API uploads of the bomb are accepted without the server growing past 1 GB', async () => {
    const bomb = svgBomb();
    const answers = await Promise.all(
      Array.from({ length: 3 }, () => {
        const form = new FormData();
        form.append('file', svgFile(bomb));
        return fetch(`${imagesUrl}/v1`, { method: 'POST', headers: auth, body: form });
      }),
    );
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(peakRss(child.pid)).toBeLessThan(1024 ** 3);
  });
});

describe('SVG limits and sanitising once', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ PICTOR_SVG_MAX_ELEMENTS: '50', PICTOR_SVG_MAX_DEPTH: '8', PICTOR_SVG_MAX_PATH_COORDINATES: '100' });
    await patchConfig(t, { flexible_variants: true });
  });
  afterAll(() => stopped(t));

  const open = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30">';

  it('more elements than PICTOR_SVG_MAX_ELEMENTS → 400 5400, nothing stored', async () => {
    const rects = '<rect width="1" height="1"/>'.repeat(60);
    await expectApiError(await upload(t, { file: svgFile(`${open}${rects}</svg>`) }), 400, 5400);
  });

  it('nesting deeper than PICTOR_SVG_MAX_DEPTH → 400 5400', async () => {
    const nested = `${'<g>'.repeat(10)}<rect width="1" height="1"/>${'</g>'.repeat(10)}`;
    await expectApiError(await upload(t, { file: svgFile(`${open}${nested}</svg>`) }), 400, 5400);
  });

  it('more path coordinates than PICTOR_SVG_MAX_PATH_COORDINATES → 400 5400', async () => {
    const d = `M0 0 ${Array.from({ length: 60 }, (_, i) => `L${i} ${i}`).join(' ')}`;
    await expectApiError(await upload(t, { file: svgFile(`${open}<path d="${d}"/></svg>`) }), 400, 5400);
  });

  it('markup that is not SVG → 415 5455', async () => {
    await expectApiError(await upload(t, { file: svgFile('<html><body>hi</body></html>', 'page.svg') }), 415, 5455);
  });

  it('a DOCTYPE is dropped, not refused; every variant and option string serves the one sanitized document', async () => {
    const text = `<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">${open}<rect width="5" height="5"/></svg>`;
    const image = await expectOk<ImageResult>(await upload(t, { file: svgFile(text) }));
    const base = new URL(image.variants[0] as string).pathname.replace(/\/public$/, '');
    const etags = new Set<string>();
    for (const variant of ['public', 'w=100', 'w=200,q=50', 'width=300,fit=cover']) {
      const res = await deliver(t, `${base}/${variant}`, { accept: ACCEPT.avif });
      expect(res.status, variant).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
      const body = await res.text();
      expect(body).not.toContain('DOCTYPE');
      expect(body).toContain('<rect');
      etags.add(res.headers.get('etag') ?? '');
    }
    expect(etags.size).toBe(1);
  });
});

describe('the upload host answers before reading a body', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      PICTOR_LINGER_MS: '1500',
      PICTOR_BODY_RATE_WINDOW_MS: '1500',
      PICTOR_BODY_MIN_BYTES_PER_SECOND: '2048',
    });
  });
  afterAll(() => stopped(t));

  it('a drip to an upload URL that does not exist is answered 404 within 3 s and then closed', async () => {
    const conn = await connect(t.url);
    const url = `${t.url}/upload/AAAAAAAAAAAAAAAAAAAAAA/${'x'.repeat(43)}`;
    await conn.write(requestHead('POST', url, { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': 10_000_000 }));
    const dripping = (async () => {
      for (let i = 0; i < 40 && !conn.socket.destroyed; i++) {
        await conn.write('x');
        await sleep(250);
      }
    })();
    const response = await conn.nextResponse(0, 3000);
    expect(response.status).toBe(404);
    expect(JSON.parse(response.body).errors[0].code).toBe(5404);
    expect(response.headers['access-control-allow-origin']).toBe('*');
    // The rest of the body is drained for PICTOR_LINGER_MS at most, then the connection goes.
    expect(await conn.closed).toBeLessThan(response.at + 1500 + 2500);
    await dripping;
  });

  it('while one upload to a URL is in progress, others to the same URL get 409 at once; it then completes', async () => {
    const minted = await mintUploadUrl(t.imagesUrl, t.auth);
    const body = multipartFile(fixture('320x240.jpg'), 'slow.jpg');
    const conn = await connect(t.url);
    await conn.write(requestHead('POST', minted.uploadURL, { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': body.length }));
    await conn.write(body.subarray(0, 20_000));
    await sleep(200);
    const started = Date.now();
    const others = await Promise.all(Array.from({ length: 3 }, () => postFile(minted.uploadURL, new File([fixture('320x240.jpg')], 'b.jpg'))));
    expect(Date.now() - started).toBeLessThan(2000);
    for (const res of others) await expectApiError(res, 409, 5409);
    await conn.write(body.subarray(20_000));
    const done = await conn.nextResponse();
    expect(done.status).toBe(200);
    expect(JSON.parse(done.body).result.id).toBe(minted.id);
    conn.close();
  });

  it('a refused file does not use the URL: after 415 the same URL accepts an image', async () => {
    const minted = await mintUploadUrl(t.imagesUrl, t.auth);
    await expectApiError(await postFile(minted.uploadURL, new File([fixture('not-an-image.jpg')], 'x.jpg')), 415, 5455);
    const image = await expectOk<ImageResult>(await postFile(minted.uploadURL, new File([fixture('320x240.jpg')], 'ok.jpg')));
    expect(image.id).toBe(minted.id);
  });

  it('a body dripped below the minimum rate is cut within a window or two, and the URL can be used again', async () => {
    const minted = await mintUploadUrl(t.imagesUrl, t.auth);
    const conn = await connect(t.url);
    await conn.write(requestHead('POST', minted.uploadURL, { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': 500_000 }));
    const started = Date.now();
    for (let i = 0; i < 40 && !conn.socket.destroyed; i++) {
      await conn.write('y');
      await sleep(100);
    }
    await conn.closed;
    expect(Date.now() - started).toBeLessThan(3 * 1500 + 1000);
    // Give the server a moment to see the abort and give the lease back.
    await sleep(200);
    const image = await expectOk<ImageResult>(await postFile(minted.uploadURL, new File([fixture('320x240.jpg')], 'ok.jpg')));
    expect(image.id).toBe(minted.id);
  });

  it('a slow but steady upload (well above the minimum rate) finishes', async () => {
    const body = multipartFile(fixture('2569067123_aca715a2ee_o.jpg'), 'big.jpg');
    const conn = await connect(t.url);
    await conn.write(
      requestHead('POST', `${t.imagesUrl}/v1`, { ...t.auth, 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': body.length }),
    );
    // About 200 KB/s, so the upload spans several rate windows.
    const chunk = 20_000;
    for (let offset = 0; offset < body.length; offset += chunk) {
      await conn.write(body.subarray(offset, offset + chunk));
      await sleep(100);
    }
    const done = await conn.nextResponse(0, 30_000);
    expect(done.status).toBe(200);
    conn.close();
  });
});

describe('connection timeouts', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ PICTOR_HEADERS_TIMEOUT_MS: '2000' });
  });
  afterAll(() => stopped(t));

  it('slowloris connections are closed within the headers timeout while the server keeps answering', async () => {
    const conns = await Promise.all(Array.from({ length: 20 }, () => connect(t.url)));
    const started = Date.now();
    let stop = false;
    const drips = conns.map(async (conn, i) => {
      await conn.write(`GET /client/v4/accounts/x/images/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-${i}: `);
      while (!stop && !conn.socket.destroyed) {
        await conn.write('a');
        await sleep(300);
      }
    });
    const res = await fetch(`${t.imagesUrl}/v1/stats`, { headers: t.auth });
    expect(res.status).toBe(200);
    const closedAt = await Promise.all(conns.map((c) => c.closed));
    stop = true;
    await Promise.all(drips);
    // 2 s timeout, checked every second, plus scheduling slack.
    expect(Math.max(...closedAt)).toBeLessThan(2000 + 1000 + 2000);
    expect(Date.now() - started).toBeLessThan(6000);
  });
});

describe('bounded uploads in progress', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ PICTOR_MAX_UPLOADS_IN_PROGRESS: '1', PICTOR_UPLOAD_QUEUE_WAIT_MS: '300' });
  });
  afterAll(() => stopped(t));

  it('past the bound an upload waits briefly, then gets 503 5503 with Retry-After; afterwards uploads work again', async () => {
    const body = multipartFile(fixture('320x240.jpg'), 'held.jpg');
    const conn = await connect(t.url);
    await conn.write(
      requestHead('POST', `${t.imagesUrl}/v1`, { ...t.auth, 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': body.length }),
    );
    await conn.write(body.subarray(0, 1000));
    await sleep(200);
    const refused = await upload(t, { file: new File([fixture('320x240.jpg')], 'second.jpg') });
    expect(refused.headers.get('retry-after')).toBe('1');
    await expectApiError(refused, 503, 5503);
    await conn.write(body.subarray(1000));
    expect((await conn.nextResponse()).status).toBe(200);
    conn.close();
    await expectOk(await upload(t, { file: new File([fixture('320x240.jpg')], 'third.jpg') }));
  });
});

describe('huge flexible renders', () => {
  /** A server with flexible variants on and photo-4000w.jpg uploaded; stopped (and its data removed) after `work`. */
  async function withPhoto(env: Record<string, string>, work: (t: TestServer, photoPath: string) => Promise<void>): Promise<void> {
    const t = await startTestServer(env);
    try {
      await patchConfig(t, { flexible_variants: true });
      await work(t, (await uploadFixture(t, 'photo-4000w.jpg')).path);
    } finally {
      await stopped(t);
    }
  }

  it('by default a flexible output over 50 MP is refused at once with 403 9413', () =>
    withPhoto({}, async (t, photo) => {
      await expectDeliveryError(await deliver(t, `${photo}/w=11999,h=8333,fit=squeeze`), 403, 9413);
    }));

  it('with 100 MP allowed, a 77 px render stays fast while four 100 MP renders are in flight', () =>
    withPhoto({ PICTOR_FLEXIBLE_MAX_PIXELS: '100000000', PICTOR_RENDER_TIMEOUT_SECONDS: '6' }, async (t, photo) => {
      const small = await uploadFixture(t, 'Landscape_1.jpg');
      const big = [8333, 8332, 8331, 8330].map((h) => deliver(t, `${photo}/w=11999,h=${h},fit=squeeze,f=jpeg`));
      await sleep(500);
      const started = Date.now();
      const thumb = await deliver(t, `${small.path}/w=77,f=jpeg`);
      const elapsed = Date.now() - started;
      expect(thumb.status).toBe(200);
      expect(elapsed).toBeLessThan(5000);
      const answers = await Promise.all(big);
      for (const res of answers) {
        expect([200, 503]).toContain(res.status);
        if (res.status === 503) expect(res.headers.get('cf-resized')).toBe('err=9523');
        await res.arrayBuffer();
      }
      // Only one heavy render runs at a time (2 cores) and two may wait: at least one is refused at once.
      expect(answers.some((r) => r.status === 503)).toBe(true);
    }));

  it('a render past PICTOR_RENDER_TIMEOUT_SECONDS is a 503 9523 timeout, not a bad image', () =>
    withPhoto({ PICTOR_FLEXIBLE_MAX_PIXELS: '100000000', PICTOR_RENDER_TIMEOUT_SECONDS: '1' }, async (t, photo) => {
      const res = await deliver(t, `${photo}/w=11999,h=8333,fit=squeeze,f=png`);
      const text = await expectDeliveryError(res, 503, 9523);
      expect(text).toMatch(/longer than 1 s/);
      expect(res.headers.get('retry-after')).toBe('1');
    }));
});

describe('keep-alive after an early answer', () => {
  let t: TestServer;
  let imageId: string;
  beforeAll(async () => {
    t = await startTestServer();
    imageId = (await expectOk<ImageResult>(await upload(t, { file: new File([fixture('320x240.jpg')], 'a.jpg') }))).id;
  });
  afterAll(() => stopped(t));

  /** Sends `first` (head + whole body) and then a GET on the same connection; both must be answered. */
  async function twoRequestsOnOneConnection(head: string, body: Buffer, expectedStatus: number): Promise<void> {
    const conn = await connect(t.url);
    await conn.write(head);
    void conn.write(body);
    const first = await conn.nextResponse(0, 10_000);
    expect(first.status).toBe(expectedStatus);
    await conn.write(requestHead('GET', `${t.imagesUrl}/v1/stats`, t.auth));
    const second = await conn.nextResponse(first.end, 10_000);
    expect(second.status).toBe(200);
    expect(conn.socket.destroyed).toBe(false);
    conn.close();
  }

  it('a JSON body over the limit (PATCH), then another request on the same connection', async () => {
    const body = Buffer.from(JSON.stringify({ metadata: { pad: 'x'.repeat(2 * 1024 * 1024) } }));
    const head = requestHead('PATCH', `${t.imagesUrl}/v1/${imageId}`, { ...t.auth, 'content-type': 'application/json', 'content-length': body.length });
    await twoRequestsOnOneConnection(head, body, 413);
  });

  it('an oversized form field, then another request on the same connection', async () => {
    const body = multipartFile(fixture('320x240.jpg'), 'a.jpg', { metadata: `{"a":"${'x'.repeat(100_000)}"}` });
    const head = requestHead('POST', `${t.imagesUrl}/v1`, { ...t.auth, 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': body.length });
    await twoRequestsOnOneConnection(head, body, 400);
  });

  it('a file over 10 MB, then another request on the same connection', async () => {
    const body = multipartFile(Buffer.alloc(11 * 1024 * 1024, 1), 'huge.jpg');
    const head = requestHead('POST', `${t.imagesUrl}/v1`, { ...t.auth, 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': body.length });
    await twoRequestsOnOneConnection(head, body, 413);
  });

  it('a body that ends inside the file part is a 400, and the server lives on (the part stream error is handled)', async () => {
    const whole = multipartFile(fixture('320x240.jpg'), 'cut.jpg');
    const body = whole.subarray(0, whole.length - 2000);
    const head = requestHead('POST', `${t.imagesUrl}/v1`, { ...t.auth, 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': body.length });
    await twoRequestsOnOneConnection(head, body, 400);
  });

  it('a direct-upload mint with a JSON body over its limit, then another request on the same connection', async () => {
    const body = Buffer.from(JSON.stringify({ metadata: { pad: 'x'.repeat(100_000) } }));
    const head = requestHead('POST', `${t.imagesUrl}/v2/direct_upload`, { ...t.auth, 'content-type': 'application/json', 'content-length': body.length });
    await twoRequestsOnOneConnection(head, body, 400);
  });
});

/** A valid PNG of exactly `size` bytes: a tiny image plus a private ancillary chunk as padding. */
function pngOfSize(size: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(typed));
    return Buffer.concat([head, typed, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(1, 0);
  ihdr.writeUInt32BE(1, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const image = [chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.from([0, 128])))];
  const end = chunk('IEND', Buffer.alloc(0));
  const fixed = signature.length + image.reduce((n, c) => n + c.length, 0) + end.length + 12;
  return Buffer.concat([signature, ...image, chunk('prVt', Buffer.alloc(size - fixed)), end]);
}

describe('the 10 MB limit', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => stopped(t));

  it('a file of exactly 10,485,760 bytes is accepted; one byte more is 413 5413', async () => {
    const exact = pngOfSize(10 * 1024 * 1024);
    expect(exact.length).toBe(10_485_760);
    await expectOk(await upload(t, { file: new File([exact], 'exact.png') }));
    const over = pngOfSize(10 * 1024 * 1024 + 1);
    await expectApiError(await upload(t, { file: new File([over], 'over.png') }), 413, 5413);
  });

  it('the same boundary holds on a direct-upload URL', async () => {
    const minted = await mintUploadUrl(t.imagesUrl, t.auth);
    await expectOk(await postFile(minted.uploadURL, new File([pngOfSize(10 * 1024 * 1024)], 'exact.png')));
  });
});
