/**
 * `quality=auto`: the smallest JPEG/WebP that is at least as faithful (SSIM against the unencoded
 * rendition) as the standard encoding at quality 80. Judged here with sharp and ssim.js, independently
 * of the server's code: the reference is the same resize done by sharp without encoding.
 */
import sharp, { type Sharp } from 'sharp';
import { ssim } from 'ssim.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { ACCEPT, deliverImage, patchConfig, type Uploaded, uploadFixture } from './helpers/delivery.js';
import { fixture, useServer } from './helpers/server.js';

async function rgba(input: Buffer | Sharp): Promise<{ data: Uint8ClampedArray; width: number; height: number }> {
  const image = Buffer.isBuffer(input) ? sharp(input) : input;
  const { data, info } = await image.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

describe('quality=auto', () => {
  const s = useServer();
  let photo: Uploaded;

  beforeAll(async () => {
    await patchConfig(s.t, { flexible_variants: true });
    photo = await uploadFixture(s.t, 'Landscape_1.jpg');
  });

  const photos = ['Landscape_1.jpg', 'photo-4000w.jpg', '2569067123_aca715a2ee_o.jpg'];

  it.each([
    ['jpeg', 'image/jpeg', ACCEPT.legacy],
    ['webp', 'image/webp', ACCEPT.webp],
  ] as const)('%s: never larger than quality 80 and at least as faithful; WebP smaller over a set of photos', async (format, contentType, accept) => {
    let autoTotal = 0;
    let standardTotal = 0;
    for (const name of photos) {
      const uploaded = name === 'Landscape_1.jpg' ? photo : await uploadFixture(s.t, name);
      const auto = await deliverImage(s.t, `${uploaded.path}/w=600,q=auto,f=${format}`, { accept });
      const standard = await deliverImage(s.t, `${uploaded.path}/w=600,q=80,f=${format}`, { accept });
      expect(auto.res.headers.get('content-type')).toBe(contentType);
      expect([auto.meta.width, auto.meta.height]).toEqual([standard.meta.width, standard.meta.height]);

      const reference = await rgba(sharp(fixture(name), { autoOrient: true }).resize({ width: 600, fastShrinkOnLoad: false }));
      const autoScore = ssim(reference, await rgba(auto.body), { ssim: 'weber' }).mssim;
      const standardScore = ssim(reference, await rgba(standard.body), { ssim: 'weber' }).mssim;
      expect(auto.body.length, name).toBeLessThanOrEqual(standard.body.length);
      // Same bar, judged against an independent reference: equal within measurement noise, or better.
      expect(autoScore, name).toBeGreaterThanOrEqual(standardScore - 0.0005);
      autoTotal += auto.body.length;
      standardTotal += standard.body.length;
    }
    expect(autoTotal).toBeLessThanOrEqual(standardTotal);
    if (format === 'webp') expect(autoTotal).toBeLessThan(standardTotal);
  });

  it('is cached like any render: the second answer is the same bytes', async () => {
    const first = await deliverImage(s.t, `${photo.path}/w=320,q=auto`, { accept: ACCEPT.webp });
    const second = await deliverImage(s.t, `${photo.path}/w=320,q=auto`, { accept: ACCEPT.webp });
    expect(second.body.equals(first.body)).toBe(true);
    expect(first.res.headers.get('etag')).toBe(second.res.headers.get('etag'));
  });

  it('keeps metadata when asked, and PNG, AVIF and animations fall back to their defaults', async () => {
    const kept = await deliverImage(s.t, `${photo.path}/w=300,q=auto,f=jpeg,metadata=keep`, { accept: ACCEPT.legacy });
    expect(kept.meta.exif).toBeDefined();
    const avif = await deliverImage(s.t, `${photo.path}/w=300,q=auto`, { accept: ACCEPT.avif });
    expect(avif.res.headers.get('content-type')).toBe('image/avif');
    const animated = await uploadFixture(s.t, 'animated-loop-3.gif');
    const webp = await deliverImage(s.t, `${animated.path}/w=100,q=auto`, { accept: ACCEPT.webp });
    expect(webp.meta.pages).toBeGreaterThan(1);
  });
});
