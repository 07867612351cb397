/**
 * `quality=auto`: the smallest JPEG/WebP that meets a perceptual target, judged here with sharp and
 * ssim.js, independently of the server's code. The yardstick is what a user would otherwise get: sharp's
 * defaults (shrink-on-load resize, quality 80; ipx and most Node servers), scored against an exact resize
 * of the original. Auto must be at least that faithful, never larger than Pictor's own default rendition,
 * and clearly smaller than the yardstick on large photos.
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

  const largePhotos = ['photo-4000w.jpg', '2569067123_aca715a2ee_o.jpg'];

  it.each([
    ['jpeg', 'image/jpeg', ACCEPT.legacy],
    ['webp', 'image/webp', ACCEPT.webp],
  ] as const)('%s: large photos at least as faithful as sharp\'s defaults in at most 0.8x their bytes', async (format, contentType, accept) => {
    for (const name of largePhotos) {
      const uploaded = await uploadFixture(s.t, name);
      const auto = await deliverImage(s.t, `${uploaded.path}/w=800,q=auto,f=${format}`, { accept });
      const pictorDefault = await deliverImage(s.t, `${uploaded.path}/w=800,f=${format}`, { accept });
      expect(auto.res.headers.get('content-type')).toBe(contentType);
      expect([auto.meta.width, auto.meta.height]).toEqual([pictorDefault.meta.width, pictorDefault.meta.height]);

      const original = sharp(fixture(name), { autoOrient: true });
      const reference = await rgba(original.clone().resize({ width: 800, fastShrinkOnLoad: false }));
      const resized = original.clone().resize({ width: 800 });
      const yardstick = await (format === 'jpeg' ? resized.jpeg({ quality: 80 }) : resized.webp({ quality: 80 })).toBuffer();
      const score = async (bytes: Buffer): Promise<number> => ssim(reference, await rgba(bytes), { ssim: 'weber' }).mssim;
      expect(await score(auto.body), name).toBeGreaterThanOrEqual(await score(yardstick));
      expect(auto.body.length / yardstick.length, name).toBeLessThanOrEqual(0.8);
      expect(auto.body.length, name).toBeLessThanOrEqual(pictorDefault.body.length);
    }
  });

  it('a small detailed image the target is out of reach for gets no more bytes than without auto', async () => {
    for (const [format, accept] of [['jpeg', ACCEPT.legacy], ['webp', ACCEPT.webp]] as const) {
      const auto = await deliverImage(s.t, `${photo.path}/w=300,q=auto,f=${format}`, { accept });
      const pictorDefault = await deliverImage(s.t, `${photo.path}/w=300,f=${format}`, { accept });
      expect(auto.body.length, format).toBeLessThanOrEqual(pictorDefault.body.length);
      expect([auto.meta.width, auto.meta.format], format).toEqual([300, format]);
    }
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
