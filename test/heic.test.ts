/**
 * HEIC uploads (HEVC-coded HEIF, what iPhones store): accepted through the API (the official SDK) and
 * the upload host, kept byte for byte, and delivered like any image after decoding by libheif in
 * WebAssembly: the container's rotation applied, the primary image shown, the ICC profile converted,
 * transparency kept. The fixtures and how they were made are in test/fixtures/README.md.
 */
import { createHash } from 'node:crypto';
import Cloudflare from 'cloudflare';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { ACCEPT, deliver, deliverImage, meanAbsDiff, patchConfig, pixelAt, thumbprint, type Uploaded, uploadFixture } from './helpers/delivery.js';
import { fixture, useServer } from './helpers/server.js';

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

describe('HEIC uploads', () => {
  const s = useServer();
  let photo: Uploaded;

  beforeAll(async () => {
    await patchConfig(s.t, { flexible_variants: true });
    photo = await uploadFixture(s.t, 'heic/photo.heic');
  });

  it('uploads through the SDK, keeps the original bytes and answers image/heic for the blob', async () => {
    const cf = new Cloudflare({ apiToken: s.t.token, apiKey: null, apiEmail: null, userServiceKey: null, baseURL: `${s.t.url}/client/v4`, maxRetries: 0 });
    const image = await cf.images.v1.create({ account_id: s.t.accountId, file: await Cloudflare.toFile(fixture('heic/photo.heic'), 'IMG_0001.HEIC') });
    expect(image.filename).toBe('IMG_0001.HEIC');
    const blob = await fetch(`${s.t.imagesUrl}/v1/${image.id}/blob`, { headers: s.t.auth });
    expect(blob.headers.get('content-type')).toBe('image/heic');
    expect(sha256(Buffer.from(await blob.arrayBuffer()))).toBe(sha256(fixture('heic/photo.heic')));
  });

  it('delivers JPEG to a client that takes neither AVIF nor WebP, and WebP/AVIF by negotiation, looking like the source photo', async () => {
    const jpeg = await deliverImage(s.t, `${photo.path}/public`, { accept: ACCEPT.legacy });
    expect(jpeg.res.headers.get('content-type')).toBe('image/jpeg');
    expect([jpeg.meta.width, jpeg.meta.height]).toEqual([600, 450]);
    expect(meanAbsDiff(await thumbprint(jpeg.body), await thumbprint(fixture('Landscape_1.jpg')))).toBeLessThan(0.03);
    const webp = await deliverImage(s.t, `${photo.path}/w=300`, { accept: ACCEPT.webp });
    expect([webp.res.headers.get('content-type'), webp.meta.width, webp.meta.height]).toEqual(['image/webp', 300, 225]);
    const avif = await deliverImage(s.t, `${photo.path}/w=200`, { accept: ACCEPT.avif });
    expect(avif.res.headers.get('content-type')).toBe('image/avif');
    const info = await deliver(s.t, `${photo.path}/w=100,f=json`, { accept: ACCEPT.legacy });
    expect(await info.json()).toMatchObject({ width: 100, height: 75, original: { width: 600, height: 450, format: 'image/heic' } });
  });

  it('applies the container rotation (irot): a picture stored a quarter turn off is delivered upright', async () => {
    const rotated = await uploadFixture(s.t, 'heic/rotated.heic');
    const delivered = await deliverImage(s.t, `${rotated.path}/public`, { accept: ACCEPT.legacy });
    expect([delivered.meta.width, delivered.meta.height]).toEqual([600, 450]);
    expect(meanAbsDiff(await thumbprint(delivered.body), await thumbprint(fixture('Landscape_1.jpg')))).toBeLessThan(0.03);
  });

  it('shows the primary image of a multi-image file, not the first one', async () => {
    const multi = await uploadFixture(s.t, 'heic/multi-primary-second.heic');
    const delivered = await deliverImage(s.t, `${multi.path}/public`, { accept: ACCEPT.legacy });
    expect([delivered.meta.width, delivered.meta.height]).toEqual([600, 450]);
    expect(meanAbsDiff(await thumbprint(delivered.body), await thumbprint(fixture('Landscape_2.jpg')))).toBeLessThan(0.03);
  });

  it('converts the ICC profile (Display P3) to sRGB as for the same picture in PNG, and keeps transparency', async () => {
    const p3 = await uploadFixture(s.t, 'heic/p3.heic');
    const fromHeic = await deliverImage(s.t, `${p3.path}/f=png`, { accept: ACCEPT.legacy });
    const fromPng = await deliverImage(s.t, `${(await uploadFixture(s.t, 'p3.png')).path}/f=png`, { accept: ACCEPT.legacy });
    const [heicPixel, pngPixel] = [await pixelAt(fromHeic.body, 4, 4), await pixelAt(fromPng.body, 4, 4)];
    // The same sRGB red within HEVC's loss, and not the untouched P3 value (240, 0, 0).
    for (let channel = 0; channel < 3; channel++) expect(Math.abs((heicPixel[channel] ?? 0) - (pngPixel[channel] ?? 0)), `channel ${channel}`).toBeLessThan(24);
    expect(pngPixel[0]).toBe(255);

    const alpha = await uploadFixture(s.t, 'heic/alpha.heic');
    const png = await deliverImage(s.t, `${alpha.path}/f=png`, { accept: ACCEPT.legacy });
    const source = await sharp(fixture('with-alpha.png')).stats();
    expect(png.meta.hasAlpha).toBe(true);
    expect(Math.abs(((await sharp(png.body).stats()).channels[3]?.mean ?? 0) - (source.channels[3]?.mean ?? 0))).toBeLessThan(8);
  });

  it('uploads through a direct-upload URL too', async () => {
    const mint = await fetch(`${s.t.imagesUrl}/v2/direct_upload`, { method: 'POST', headers: s.t.auth, body: new FormData() });
    const { result } = (await mint.json()) as { result: { id: string; uploadURL: string } };
    const form = new FormData();
    form.append('file', new File([fixture('heic/rotated.heic')], 'IMG_0002.HEIC'));
    expect((await fetch(result.uploadURL, { method: 'POST', body: form })).status).toBe(200);
    const delivered = await deliverImage(s.t, `${photo.path.replace(photo.id, result.id)}/w=120`, { accept: ACCEPT.legacy });
    expect([delivered.meta.format, delivered.meta.width, delivered.meta.height]).toEqual(['jpeg', 120, 90]);
  });

  it('refuses HEIC data that cannot be decoded (5455) and stores nothing', async () => {
    const truncated = fixture('heic/photo.heic').subarray(0, 20_000);
    const form = new FormData();
    form.append('file', new File([truncated], 'broken.heic'));
    const res = await fetch(`${s.t.imagesUrl}/v1`, { method: 'POST', body: form, headers: s.t.auth });
    const body = (await res.json()) as { errors: Array<{ code: number }> };
    expect([res.status, body.errors[0]?.code]).toEqual([415, 5455]);
    const stats = (await (await fetch(`${s.t.imagesUrl}/v1/stats`, { headers: s.t.auth })).json()) as { result: { count: { current: number } } };
    expect(stats.result.count.current).toBe(8);
  });
});
