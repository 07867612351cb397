/**
 * Remote transformations, `/cdn-cgi/image/<options>/<source URL>` (Cloudflare's "transform remote images"):
 * a loopback origin serves the sources and counts what it is asked. Checked: renditions, negotiation,
 * revalidation by ETag (304 keeps the bytes), freshness from Cache-Control, one origin fetch for concurrent
 * requests, the allow-list (also for redirects), the address rules, `onerror=redirect`, loops, non-images.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp, { type Sharp } from 'sharp';
import { ssim } from 'ssim.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCEPT, deliver, deliverImage, expectDeliveryError } from './helpers/delivery.js';
import { fixture, startTestServer, type TestServer } from './helpers/server.js';

interface Origin {
  url: string;
  /** Requests seen, by path, with the status answered. */
  log: Array<{ path: string; status: number; conditional: boolean }>;
  close(): Promise<void>;
}

/** Serves fixtures: `/<name>?cc=<cache-control>&delay=<ms>`, `/missing.jpg` (404), `/text` (not an image), `/redirect?to=<url>`. */
async function startOrigin(): Promise<Origin> {
  const log: Origin['log'] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://origin');
    const conditional = req.headers['if-none-match'] !== undefined;
    const answer = (status: number, headers: Record<string, string> = {}, body?: Buffer | string): void => {
      log.push({ path: url.pathname, status, conditional });
      res.writeHead(status, headers).end(body);
    };
    const delay = Number(url.searchParams.get('delay') ?? 0);
    setTimeout(() => {
      if (url.pathname === '/redirect') return answer(302, { location: url.searchParams.get('to') ?? '/' });
      if (url.pathname === '/text') return answer(200, { 'content-type': 'text/plain' }, 'hello');
      if (url.pathname === '/missing.jpg') return answer(404);
      const name = url.pathname.slice(1);
      let bytes: Buffer;
      try {
        bytes = fixture(name);
      } catch {
        return answer(404);
      }
      const etag = `"${name}-v1"`;
      if (req.headers['if-none-match'] === etag) return answer(304, { etag });
      return answer(200, { etag, 'content-type': 'image/jpeg', 'cache-control': url.searchParams.get('cc') ?? 'no-cache' }, bytes);
    }, delay);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('remote transformations', () => {
  let origin: Origin;
  let other: Origin;
  let t: TestServer;

  beforeAll(async () => {
    [origin, other] = await Promise.all([startOrigin(), startOrigin()]);
    t = await startTestServer({ PICTOR_REMOTE_ORIGINS: origin.url, PICTOR_ALLOW_PRIVATE_URLS: 'true' });
  });
  afterAll(async () => {
    await t?.stop();
    await Promise.all([origin?.close(), other?.close()]);
  });

  const fetches = (path: string): Array<{ status: number; conditional: boolean }> =>
    origin.log.filter((entry) => entry.path === path).map(({ status, conditional }) => ({ status, conditional }));

  it('renders a remote source with the flexible-variant options and negotiates the format', async () => {
    const jpeg = await deliverImage(t, `/cdn-cgi/image/w=200/${origin.url}/Landscape_1.jpg`, { accept: ACCEPT.legacy });
    expect([jpeg.res.headers.get('content-type'), jpeg.meta.width, jpeg.meta.height]).toEqual(['image/jpeg', 200, 150]);
    const webp = await deliverImage(t, `/cdn-cgi/image/width=120,fit=cover,height=120/${origin.url}/Landscape_1.jpg`, { accept: ACCEPT.webp });
    expect([webp.res.headers.get('content-type'), webp.meta.width, webp.meta.height]).toEqual(['image/webp', 120, 120]);
    expect(webp.res.headers.get('vary')).toBe('Accept');
    // A path is relative to the first allowed origin; a collapsed `http:/` is read as `http://`.
    expect((await deliverImage(t, '/cdn-cgi/image/w=50/Landscape_1.jpg', { accept: ACCEPT.legacy })).meta.width).toBe(50);
    expect((await deliverImage(t, `/cdn-cgi/image/w=60/${origin.url.replace('//', '/')}/Landscape_1.jpg`, { accept: ACCEPT.legacy })).meta.width).toBe(60);
  });

  it('a large source is rendered from its 2048 px master like a hosted image: exact size, at least as faithful', async () => {
    const rgba = async (image: Sharp): Promise<{ data: Uint8ClampedArray; width: number; height: number }> => {
      const { data, info } = await image.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
    };
    const first = await deliverImage(t, `/cdn-cgi/image/w=800,f=jpeg,q=90/${origin.url}/photo-4000w.jpg`, { accept: ACCEPT.legacy });
    expect([first.meta.width, first.meta.height]).toEqual([800, 653]);
    const second = await deliverImage(t, `/cdn-cgi/image/w=640,f=jpeg/${origin.url}/photo-4000w.jpg`, { accept: ACCEPT.legacy });
    expect([second.meta.width, second.meta.height]).toEqual([640, 523]);
    const reference = await rgba(sharp(fixture('photo-4000w.jpg')).resize(800, 653, { fit: 'fill', fastShrinkOnLoad: false }));
    const direct = await sharp(fixture('photo-4000w.jpg')).resize(800, 653, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
    const viaMaster = ssim(reference, await rgba(sharp(first.body)), { ssim: 'weber' }).mssim;
    expect(viaMaster).toBeGreaterThanOrEqual(ssim(reference, await rgba(sharp(direct)), { ssim: 'weber' }).mssim - 0.0005);
    expect(fetches('/photo-4000w.jpg')).toHaveLength(2);
  });

  it('revalidates a kept source with its ETag (a 304 keeps the bytes) and keeps a fresh one without asking', async () => {
    await deliverImage(t, `/cdn-cgi/image/w=101/${origin.url}/Landscape_2.jpg`, { accept: ACCEPT.legacy });
    await deliverImage(t, `/cdn-cgi/image/w=102/${origin.url}/Landscape_2.jpg`, { accept: ACCEPT.legacy });
    expect(fetches('/Landscape_2.jpg')).toEqual([
      { status: 200, conditional: false },
      { status: 304, conditional: true },
    ]);
    await deliverImage(t, `/cdn-cgi/image/w=103/${origin.url}/Landscape_3.jpg?cc=max-age%3D600`, { accept: ACCEPT.legacy });
    await deliverImage(t, `/cdn-cgi/image/w=104/${origin.url}/Landscape_3.jpg?cc=max-age%3D600`, { accept: ACCEPT.legacy });
    expect(fetches('/Landscape_3.jpg')).toHaveLength(1);
    // no-store: nothing is kept, so nothing can be revalidated either.
    await deliverImage(t, `/cdn-cgi/image/w=105/${origin.url}/Landscape_7.jpg?cc=no-store`, { accept: ACCEPT.legacy });
    await deliverImage(t, `/cdn-cgi/image/w=106/${origin.url}/Landscape_7.jpg?cc=no-store`, { accept: ACCEPT.legacy });
    expect(fetches('/Landscape_7.jpg')).toEqual([
      { status: 200, conditional: false },
      { status: 200, conditional: false },
    ]);
  });

  it('fetches a source once for eight concurrent requests', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => deliver(t, `/cdn-cgi/image/w=${300 + i}/${origin.url}/Landscape_4.jpg?delay=300`, { accept: ACCEPT.legacy })),
    );
    expect(answers.map((res) => res.status)).toEqual(Array(8).fill(200));
    expect(fetches('/Landscape_4.jpg')).toHaveLength(1);
  });

  it('refuses origins off the allow-list, redirects to them, non-images, loops; onerror=redirect sends the client to the source', async () => {
    await expectDeliveryError(await deliver(t, `/cdn-cgi/image/w=100/${other.url}/Landscape_1.jpg`), 403, 9401);
    await expectDeliveryError(await deliver(t, `/cdn-cgi/image/w=100/${origin.url}/redirect?to=${encodeURIComponent(`${other.url}/Landscape_1.jpg`)}`), 403, 9401);
    expect(other.log).toEqual([]);
    await expectDeliveryError(await deliver(t, `/cdn-cgi/image/w=100/${origin.url}/missing.jpg`), 404, 9404);
    await expectDeliveryError(await deliver(t, `/cdn-cgi/image/w=100/${origin.url}/text`), 415, 9412);
    await expectDeliveryError(await deliver(t, `/cdn-cgi/image/w=100/${origin.url}/Landscape_1.jpg`, { headers: { via: '1.1 cf (image-resizing)' } }), 508, 9403);
    await expectDeliveryError(await deliver(t, `/cdn-cgi/image/nonsense=1/${origin.url}/Landscape_1.jpg`), 400, 9401);
    await expectDeliveryError(await deliver(t, `/cdn-cgi/image/w=%E0%A4/${origin.url}/Landscape_1.jpg`), 400, 9401);

    const redirected = await fetch(`${t.url}/cdn-cgi/image/w=100,onerror=redirect/${origin.url}/missing.jpg`, { redirect: 'manual' });
    expect(redirected.status).toBe(302);
    expect(redirected.headers.get('location')).toBe(`${origin.url}/missing.jpg`);
  });
});

describe('remote transformations: switched off, and the address rules', () => {
  it('are off unless PICTOR_REMOTE_ORIGINS is set, and a loopback origin is refused unless private addresses are allowed', async () => {
    const origin = await startOrigin();
    const off = await startTestServer();
    const strict = await startTestServer({ PICTOR_REMOTE_ORIGINS: origin.url });
    try {
      await expectDeliveryError(await deliver(off, `/cdn-cgi/image/w=100/${origin.url}/Landscape_1.jpg`), 403, 9401);
      await expectDeliveryError(await deliver(strict, `/cdn-cgi/image/w=100/${origin.url}/Landscape_1.jpg`), 403, 9401);
      expect(origin.log).toEqual([]);
    } finally {
      await Promise.all([off.stop(), strict.stop(), origin.close()]);
    }
  });
});
