/**
 * Pre-reduced masters: small renditions of a large source are made from a 2048 px copy made at upload
 * and kept in the render cache, not from the original, and look the same. Which source a render read is visible in
 * `/metrics` (the storage_read stage counts reads of originals).
 */
import sharp, { type Sharp } from 'sharp';
import { ssim } from 'ssim.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { ACCEPT, deliverImage, patchConfig, type Uploaded, uploadFixture } from './helpers/delivery.js';
import { moved, scrape } from './helpers/metrics.js';
import { fixture, useServer } from './helpers/server.js';

const READS = 'pictor_render_stage_duration_seconds_count';

async function rgba(image: Sharp): Promise<{ data: Uint8ClampedArray; width: number; height: number }> {
  const { data, info } = await image.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

describe('pre-reduced masters', () => {
  const s = useServer();
  let large: Uploaded;
  let small: Uploaded;

  beforeAll(async () => {
    await patchConfig(s.t, { flexible_variants: true });
    large = await uploadFixture(s.t, 'photo-4000w.jpg');
    small = await uploadFixture(s.t, '2569067123_aca715a2ee_o.jpg');
  });

  /** Renders `path` and tells how many originals were read for it. */
  async function originalsReadFor(path: string): Promise<{ reads: number; body: Buffer; width: number; height: number }> {
    const before = await scrape(s.t);
    const { body, meta } = await deliverImage(s.t, path, { accept: ACCEPT.legacy });
    const after = await scrape(s.t);
    return { reads: moved(before, after, READS, { stage: 'storage_read' }), body, width: meta.width, height: meta.height };
  }

  it('the master is made at upload: no small rendition reads the original, the first included', async () => {
    expect((await originalsReadFor(`${large.path}/w=640`)).reads).toBe(0);
    for (const width of [320, 500, 1000]) expect((await originalsReadFor(`${large.path}/w=${width}`)).reads, `w=${width}`).toBe(0);
    expect((await originalsReadFor(`${large.path}/w=300,h=300,fit=cover,gravity=auto`)).reads).toBe(0);
  });

  it('an image uploaded through a direct-upload URL gets its master at upload too', async () => {
    const mint = await fetch(`${s.t.imagesUrl}/v2/direct_upload`, { method: 'POST', headers: s.t.auth, body: new FormData() });
    const { result } = (await mint.json()) as { result: { id: string; uploadURL: string } };
    const form = new FormData();
    form.append('file', new File([fixture('photo-4000w.jpg')], 'photo-4000w.jpg'));
    expect((await fetch(result.uploadURL, { method: 'POST', body: form })).status).toBe(200);
    const path = large.path.replace(large.id, result.id);
    expect((await originalsReadFor(`${path}/w=480`)).reads).toBe(0);
  });

  it('a rendition from the master has the exact size and is at least as faithful as one straight from the original', async () => {
    const rendered = await originalsReadFor(`${large.path}/w=800,f=jpeg,q=90`);
    expect(rendered.reads).toBe(0);
    expect([rendered.width, rendered.height]).toEqual([800, 653]);
    const reference = await rgba(sharp(fixture('photo-4000w.jpg'), { autoOrient: true }).resize(800, 653, { fit: 'fill', fastShrinkOnLoad: false }));
    const fromMaster = ssim(reference, await rgba(sharp(rendered.body)), { ssim: 'weber' }).mssim;
    // The same request rendered straight from the original, as sharp does it (with shrink-on-load).
    const direct = await sharp(fixture('photo-4000w.jpg'), { autoOrient: true }).resize(800, 653, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
    const fromOriginal = ssim(reference, await rgba(sharp(direct)), { ssim: 'weber' }).mssim;
    expect(fromMaster).toBeGreaterThanOrEqual(fromOriginal - 0.0005);
  });

  it('large renditions, trims, kept metadata and sources that are not much larger read the original', async () => {
    expect((await originalsReadFor(`${large.path}/w=1500`)).reads).toBe(1);
    expect((await originalsReadFor(`${large.path}/w=400,trim=10;10;10;10`)).reads).toBe(1);
    expect((await originalsReadFor(`${large.path}/w=410,metadata=keep`)).reads).toBe(1);
    expect((await originalsReadFor(`${small.path}/w=300`)).reads).toBe(1);
    expect((await originalsReadFor(`${small.path}/w=310`)).reads).toBe(1);
  });
});
