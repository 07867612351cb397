/**
 * Image delivery end to end: a real server over HTTP, real sharp to inspect what comes out. Covers fit
 * semantics (named and flexible variants), EXIF orientation, format negotiation, animation, colour and
 * alpha, SVG sanitisation, signed URLs, caching headers, invalidation and delivery errors.
 *
 * Expectations come from spec/cloudflare-images.md Part A ("Variants and delivery", "Signed URLs") and
 * Part B §7–§8.
 */
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectOk, type ImageResult } from './helpers/api.js';
import {
  ACCEPT,
  accountHashOf,
  createVariant,
  deleteKey,
  deliver,
  deliverImage,
  editVariant,
  expectDeliveryError,
  frameSize,
  hmacHex,
  jsonRequest,
  listKeys,
  meanAbsDiff,
  nowSeconds,
  patchConfig,
  pixelAt,
  putKey,
  signedPath,
  thumbprint,
  type Uploaded,
  uploadFixture,
} from './helpers/delivery.js';
import { cliOk, lastLine } from './helpers/cli.js';
import { fixture, randomAccountId, type TestServer, upload, useServer } from './helpers/server.js';

const SMALL = '320x240.jpg'; // 320x240
const LARGE = 'photo-4000w.jpg'; // 4000x3266


// ---------------------------------------------------------------------------------------------------
// Rendering: fit, orientation, formats, animation, colour, SVG
// ---------------------------------------------------------------------------------------------------

describe('rendering', () => {
  const h = useServer();
  const img: Record<string, Uploaded> = {};

  beforeAll(async () => {
    const t = h.t;
    await patchConfig(t, { flexible_variants: true });
    const names = [
      SMALL,
      LARGE,
      'animated-loop-3.gif',
      'animated-loop-3.webp',
      'rotating-squares.gif',
      'Channel_digital_image_CMYK_color.jpg',
      'with-alpha.png',
      'hostile-script.svg',
      'check.svg',
      ...[1, 2, 3, 4, 5, 6, 7, 8].map((n) => `Landscape_${n}.jpg`),
    ];
    const uploaded = await Promise.all(names.map((name) => uploadFixture(t, name)));
    names.forEach((name, i) => (img[name] = uploaded[i] as Uploaded));
    const variants: Array<[string, string, number, number]> = [
      ['fitsd', 'scale-down', 500, 500],
      ['fitcontain', 'contain', 500, 500],
      ['fitcover', 'cover', 200, 200],
      ['fitcoverbig', 'cover', 500, 500],
      ['fitcrop', 'crop', 500, 500],
      ['fitcropsmall', 'crop', 200, 200],
      ['fitpad', 'pad', 500, 500],
    ];
    for (const [id, fit, width, height] of variants) {
      await createVariant(t, { id, options: { fit, width, height, metadata: 'none' } });
    }
  });

  const path = (name: string, variant: string): string => `${(img[name] as Uploaded).path}/${variant}`;

  describe('fit semantics (pixel sizes of the delivered image)', () => {
    // [named variant, equivalent flexible options, size for 320x240, size for 4000x3266]
    const cases: Array<[string, string, string, [number, number], [number, number]]> = [
      ['scale-down never enlarges', 'fitsd', 'w=500,h=500,fit=scale-down', [320, 240], [500, 408]],
      ['contain fits inside and enlarges', 'fitcontain', 'w=500,h=500,fit=contain', [500, 375], [500, 408]],
      ['cover gives the exact box (shrinking)', 'fitcover', 'w=200,h=200,fit=cover', [200, 200], [200, 200]],
      ['cover gives the exact box (enlarging)', 'fitcoverbig', 'w=500,h=500,fit=cover', [500, 500], [500, 500]],
      ['crop never enlarges: smaller image unchanged', 'fitcrop', 'w=500,h=500,fit=crop', [320, 240], [500, 500]],
      ['crop gives the box when the image is larger', 'fitcropsmall', 'w=200,h=200,fit=crop', [200, 200], [200, 200]],
      ['pad gives the exact box', 'fitpad', 'w=500,h=500,fit=pad', [500, 500], [500, 500]],
    ];
    for (const [label, variant, flexible, small, large] of cases) {
      it(`${label} (named variant ${variant} and flexible ${flexible})`, async () => {
        const t = h.t;
        for (const segment of [variant, flexible]) {
          const [s, l] = await Promise.all([deliverImage(t, path(SMALL, segment)), deliverImage(t, path(LARGE, segment))]);
          expect({ segment, small: [s.meta.width, s.meta.height], large: [l.meta.width, l.meta.height] }).toEqual({
            segment,
            small,
            large,
          });
        }
      });
    }

    it('squeeze (flexible only) stretches to the exact box', async () => {
      const t = h.t;
      const [s, l] = await Promise.all([
        deliverImage(t, path(SMALL, 'w=500,h=100,fit=squeeze')),
        deliverImage(t, path(LARGE, 'w=500,h=100,fit=squeeze')),
      ]);
      expect([s.meta.width, s.meta.height]).toEqual([500, 100]);
      expect([l.meta.width, l.meta.height]).toEqual([500, 100]);
    });

    it('width only: scale-down keeps a smaller image, contain enlarges it', async () => {
      const t = h.t;
      const sd = await deliverImage(t, path(SMALL, 'w=1000'));
      expect([sd.meta.width, sd.meta.height]).toEqual([320, 240]);
      const contain = await deliverImage(t, path(SMALL, 'w=640,fit=contain'));
      expect([contain.meta.width, contain.meta.height]).toEqual([640, 480]);
      const down = await deliverImage(t, path(LARGE, 'w=400'));
      expect(down.meta.width).toBe(400);
      expect(Math.abs(down.meta.height - 327)).toBeLessThanOrEqual(1);
    });

    it('pad borders are the (white) background and the picture sits in the middle', async () => {
      const t = h.t;
      const padded = await deliverImage(t, `${path(SMALL, 'w=500,h=500,fit=pad')}`);
      // 320x240 → 500x375 inside the 500x500 box: bands of ~62 px above and below.
      for (const [x, y] of [
        [250, 3],
        [250, 496],
        [3, 20],
        [496, 480],
      ] as const) {
        const [r = 0, g = 0, b = 0] = await pixelAt(padded.body, x, y);
        expect(Math.min(r, g, b), `pixel ${x},${y}`).toBeGreaterThanOrEqual(245);
      }
      const red = await deliverImage(t, path(SMALL, 'w=500,h=500,fit=pad,background=red,f=png'));
      const [r = 0, g = 0, b = 0] = await pixelAt(red.body, 250, 3);
      expect([r, g, b]).toEqual([255, 0, 0]);
      // The picture itself is not all background.
      const centre = await sharp(padded.body).extract({ left: 0, top: 100, width: 500, height: 300 }).stats();
      expect(centre.channels[0]?.stdev ?? 0).toBeGreaterThan(10);
    });
  });

  describe('EXIF orientation: Landscape_1..8 all come out upright and alike', () => {
    it('public → 600x450 and w=300 → 300x225 for every orientation, pixels close to Landscape_1', async () => {
      const t = h.t;
      for (const segment of ['public', 'w=300']) {
        const expected = segment === 'public' ? [600, 450] : [300, 225];
        const outputs = await Promise.all(
          [1, 2, 3, 4, 5, 6, 7, 8].map((n) => deliverImage(t, path(`Landscape_${n}.jpg`, segment))),
        );
        const prints = await Promise.all(outputs.map((o) => thumbprint(o.body)));
        const reference = prints[0] as Buffer;
        outputs.forEach((o, i) => {
          const label = `Landscape_${i + 1} ${segment}`;
          expect([o.meta.width, o.meta.height], label).toEqual(expected);
          expect(o.meta.orientation ?? 1, label).toBe(1);
          expect(meanAbsDiff(prints[i] as Buffer, reference), label).toBeLessThan(10 / 255);
        });
      }
    });

    it('a mirrored rendition would not pass the similarity check (the check has teeth)', async () => {
      const t = h.t;
      const out = await deliverImage(t, path('Landscape_1.jpg', 'public'));
      const mirrored = await sharp(out.body).flop().toBuffer();
      expect(meanAbsDiff(await thumbprint(mirrored), await thumbprint(out.body))).toBeGreaterThan(10 / 255);
    });
  });

  describe('format negotiation', () => {
    it('Accept with image/avif → AVIF when the output is ≤ 1200 px per side, with Vary: Accept', async () => {
      const t = h.t;
      const out = await deliverImage(t, path(SMALL, 'public'), { accept: ACCEPT.avif });
      expect(out.res.headers.get('content-type')).toBe('image/avif');
      expect(out.meta.format).toBe('heif');
      expect([out.meta.width, out.meta.height]).toEqual([320, 240]);
      expect(out.res.headers.get('vary') ?? '').toMatch(/\baccept\b/i);
    });

    it('public of photo-4000w.jpg (941x768) with AVIF accepted → AVIF', async () => {
      const out = await deliverImage(h.t, path(LARGE, 'public'), { accept: ACCEPT.avif });
      expect(out.res.headers.get('content-type')).toBe('image/avif');
      expect(out.meta.format).toBe('heif');
      expect([out.meta.width, out.meta.height]).toEqual([941, 768]);
      expect(out.res.headers.get('vary') ?? '').toMatch(/\baccept\b/i);
    });

    it('an output over 1200 px (w=1500) → WebP even when AVIF is accepted', async () => {
      const out = await deliverImage(h.t, path(LARGE, 'w=1500'), { accept: ACCEPT.avif });
      expect(out.res.headers.get('content-type')).toBe('image/webp');
      expect(out.meta.format).toBe('webp');
      expect(out.meta.width).toBe(1500);
      expect(out.res.headers.get('vary') ?? '').toMatch(/\baccept\b/i);
    });

    it('the AVIF limit is per side: 1200 px wide → AVIF; 1201 wide or 1200 high (1470 wide) → WebP', async () => {
      const t = h.t;
      const cases: Array<[string, string, [number, number]]> = [
        ['w=1200', 'image/avif', [1200, 980]],
        ['w=1201', 'image/webp', [1201, 981]],
        ['h=1200', 'image/webp', [1470, 1200]],
      ];
      for (const [options, type, size] of cases) {
        const out = await deliverImage(t, path(LARGE, options), { accept: ACCEPT.avif });
        expect({ options, type: out.res.headers.get('content-type'), size: [out.meta.width, out.meta.height] }).toEqual({
          options,
          type,
          size,
        });
      }
    });

    it('WebP accepted (no AVIF) → WebP', async () => {
      const out = await deliverImage(h.t, path(SMALL, 'public'), { accept: ACCEPT.webp });
      expect(out.res.headers.get('content-type')).toBe('image/webp');
      expect(out.meta.format).toBe('webp');
      expect(out.res.headers.get('vary') ?? '').toMatch(/\baccept\b/i);
    });

    it('Accept without AVIF/WebP → the original format (JPEG, PNG, GIF)', async () => {
      const t = h.t;
      const cases: Array<[string, string, string]> = [
        [SMALL, 'image/jpeg', 'jpeg'],
        ['with-alpha.png', 'image/png', 'png'],
        ['animated-loop-3.gif', 'image/gif', 'gif'],
      ];
      for (const [name, type, format] of cases) {
        for (const accept of [ACCEPT.legacy, '*/*']) {
          const out = await deliverImage(t, path(name, 'public'), { accept });
          expect(out.res.headers.get('content-type'), `${name} ${accept}`).toBe(type);
          expect(out.meta.format, `${name} ${accept}`).toBe(format);
          expect(out.res.headers.get('vary') ?? '', `${name} ${accept}`).toMatch(/\baccept\b/i);
        }
      }
    });

    it('explicit f=… wins over Accept and the bytes are that format', async () => {
      const t = h.t;
      const cases: Array<[string, string, string, string]> = [
        ['f=webp', ACCEPT.legacy, 'image/webp', 'webp'],
        ['format=avif', ACCEPT.legacy, 'image/avif', 'heif'],
        ['f=jpeg', ACCEPT.avif, 'image/jpeg', 'jpeg'],
        ['f=png', ACCEPT.avif, 'image/png', 'png'],
        ['f=baseline-jpeg', ACCEPT.avif, 'image/jpeg', 'jpeg'],
      ];
      for (const [option, accept, type, format] of cases) {
        const out = await deliverImage(t, path(SMALL, `w=200,${option}`), { accept });
        expect(out.res.headers.get('content-type'), option).toBe(type);
        expect(out.meta.format, option).toBe(format);
        expect(out.meta.width, option).toBe(200);
      }
      const progressive = await deliverImage(t, path(SMALL, 'w=200,f=jpeg'));
      const baseline = await deliverImage(t, path(SMALL, 'w=200,f=baseline-jpeg'));
      expect(progressive.meta.isProgressive).toBe(true);
      expect(baseline.meta.isProgressive).toBe(false);
    });

    it('Accept with q=0 for AVIF is not acceptance', async () => {
      const out = await deliverImage(h.t, path(SMALL, 'public'), { accept: 'image/avif;q=0,image/webp,*/*' });
      expect(out.res.headers.get('content-type')).toBe('image/webp');
    });
  });

  describe('animation', () => {
    for (const name of ['animated-loop-3.gif', 'animated-loop-3.webp']) {
      it(`${name}: WebP accepted → animated WebP with every frame; anim=false → one frame`, async () => {
        const t = h.t;
        const input = await sharp(fixture(name), { animated: true }).metadata();
        expect(input.pages).toBe(10);
        for (const accept of [ACCEPT.webp, ACCEPT.avif]) {
          const out = await deliverImage(t, path(name, 'public'), { accept });
          expect(out.res.headers.get('content-type'), accept).toBe('image/webp');
          expect(out.meta.format).toBe('webp');
          expect(out.meta.pages, accept).toBe(input.pages);
          expect(frameSize(out.meta)).toEqual({ width: 370, height: 285 });
        }
        const timing = await deliverImage(t, path(name, 'public'), { accept: ACCEPT.webp });
        expect({ delay: timing.meta.delay, loop: timing.meta.loop }).toEqual({ delay: input.delay, loop: input.loop });
        const flexible = await deliverImage(t, path(name, 'w=185'), { accept: ACCEPT.webp });
        expect(flexible.meta.pages).toBe(input.pages);
        expect(frameSize(flexible.meta).width).toBe(185);

        const still = await deliverImage(t, path(name, 'w=185,anim=false'), { accept: ACCEPT.webp });
        expect(still.meta.pages ?? 1).toBe(1);
        expect(still.meta.width).toBe(185);
      });
    }

    it('animated GIF to a client without WebP stays an animated GIF', async () => {
      const out = await deliverImage(h.t, path('animated-loop-3.gif', 'public'), { accept: ACCEPT.legacy });
      expect(out.meta.format).toBe('gif');
      expect(out.meta.pages).toBe(10);
    });

    it('rotating-squares.gif stays animated, and as GIF keeps all 30 frames including repeats', async () => {
      const out = await deliverImage(h.t, path('rotating-squares.gif', 'public'), { accept: ACCEPT.webp });
      expect(out.meta.format).toBe('webp');
      expect(out.meta.pages ?? 1).toBeGreaterThan(1);
      const gif = await deliverImage(h.t, path('rotating-squares.gif', 'public'), { accept: ACCEPT.legacy });
      expect(gif.meta.format).toBe('gif');
      expect(gif.meta.pages).toBe(30);
    });
  });

  describe('colour and alpha', () => {
    it('CMYK JPEG comes out sRGB with 3 channels (JPEG, WebP and AVIF)', async () => {
      const t = h.t;
      for (const accept of [ACCEPT.legacy, ACCEPT.webp, ACCEPT.avif]) {
        const out = await deliverImage(t, path('Channel_digital_image_CMYK_color.jpg', 'public'), { accept });
        expect({ accept, space: out.meta.space, channels: out.meta.channels }).toEqual({ accept, space: 'srgb', channels: 3 });
        expect([out.meta.width, out.meta.height]).toEqual([500, 333]);
      }
    });

    it('CMYK pixels are converted through the profile (close to sharp\'s own sRGB conversion)', async () => {
      const out = await deliverImage(h.t, path('Channel_digital_image_CMYK_color.jpg', 'public'), { accept: ACCEPT.legacy });
      const reference = await sharp(fixture('Channel_digital_image_CMYK_color.jpg')).toColourspace('srgb').jpeg().toBuffer();
      expect(meanAbsDiff(await thumbprint(out.body), await thumbprint(reference))).toBeLessThan(5 / 255);
    });

    it('Display-P3 and ProPhoto PNGs are converted to sRGB pixels', async () => {
      const t = h.t;
      for (const name of ['p3.png', 'prophoto.png']) {
        const uploaded = await uploadFixture(t, name);
        const expected = await sharp(fixture(name)).toColourspace('srgb').removeAlpha().raw().toBuffer();
        const untagged = await sharp(fixture(name), { ignoreIcc: true }).toColourspace('srgb').removeAlpha().raw().toBuffer();
        for (const accept of [ACCEPT.legacy, ACCEPT.webp]) {
          const out = await deliverImage(t, `${uploaded.path}/public`, { accept });
          expect(out.meta.space, `${name} ${accept}`).toBe('srgb');
          // Either no profile (pixels are sRGB) or an sRGB profile: never the wide-gamut one.
          if (out.meta.icc) expect(out.meta.icc.length, `${name} ${accept}`).not.toBe((await sharp(fixture(name)).metadata()).icc?.length);
          const pixels = await sharp(out.body).removeAlpha().raw().toBuffer();
          expect(meanAbsDiff(pixels, expected), `${name} ${accept}`).toBeLessThan(3 / 255);
          // Reading the pixels without their profile would be visibly off somewhere.
          const worst = Math.max(...pixels.map((v, i) => Math.abs(v - (untagged[i] as number))));
          expect(worst, `${name} ${accept} (profile ignored?)`).toBeGreaterThan(8);
        }
      }
    });

    it('with-alpha.png keeps alpha in WebP, AVIF and PNG; JPEG has none', async () => {
      const t = h.t;
      const p = path('with-alpha.png', 'public');
      const webp = await deliverImage(t, p, { accept: ACCEPT.webp });
      expect([webp.meta.format, webp.meta.hasAlpha]).toEqual(['webp', true]);
      const avif = await deliverImage(t, p, { accept: ACCEPT.avif });
      expect([avif.meta.format, avif.meta.hasAlpha]).toEqual(['heif', true]);
      const png = await deliverImage(t, p, { accept: ACCEPT.legacy });
      expect([png.meta.format, png.meta.hasAlpha]).toEqual(['png', true]);
      const jpeg = await deliverImage(t, path('with-alpha.png', 'f=jpeg'), { accept: ACCEPT.avif });
      expect([jpeg.meta.format, jpeg.meta.hasAlpha, jpeg.meta.channels]).toEqual(['jpeg', false, 3]);
      // Transparency really is there (not an opaque alpha channel).
      const alpha = await sharp(png.body).ensureAlpha().extractChannel(3).stats();
      expect(alpha.channels[0]?.min).toBeLessThan(255);
    });
  });

  describe('SVG', () => {
    it('hostile-script.svg is served as sanitised SVG with a restrictive CSP', async () => {
      const res = await deliver(h.t, path('hostile-script.svg', 'public'), { accept: ACCEPT.avif });
      const body = await res.text();
      expect(res.status, body).toBe(200);
      expect(res.headers.get('content-type') ?? '').toMatch(/^image\/svg\+xml\b/);
      expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'");
      for (const forbidden of ['<script', 'onload', 'javascript:', 'foreignObject', 'iframe', 'http://127.0.0.1:9/tracker.png']) {
        expect(body.toLowerCase().includes(forbidden.toLowerCase()), `${forbidden} in ${body}`).toBe(false);
      }
      expect(body).toContain('<rect');
      expect(body).toContain('<svg');
      expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(body));
    });

    // Crafted documents (not fixtures): each hides one external reference that must not survive.
    const SVG_OPEN = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">';
    const smuggled: Array<[string, string]> = [
      ['<use> with an external href', '<use href="http://127.0.0.1:9/a.svg#x"/>'],
      ['<feImage> with an external href', '<filter id="f"><feImage href="http://127.0.0.1:9/b.png"/></filter>'],
      ['presentation attribute url()', '<rect width="10" height="10" fill="url(http://127.0.0.1:9/c#g)"/>'],
      ['entity-encoded javascript: link', '<a href="&#106;avascript:alert(1)"><rect width="10" height="10"/></a>'],
      ['<animate>/<set> rewriting href or handlers', '<a><animate attributeName="href" to="javascript:alert(1)"/><set attributeName="onclick" to="alert(1)"/></a>'],
      ['CSS escape \\75 rl( in <style>', '<style>rect { fill: \\75 rl(http://127.0.0.1:9/d) }</style>'],
      ['CSS escape \\75 rl( in a style attribute', '<rect width="10" height="10" style="fill: \\75 rl(http://127.0.0.1:9/e)"/>'],
      ['CSS escape @\\69mport', '<style>@\\69mport "http://127.0.0.1:9/f.css";</style>'],
      ['CSS image-set() with a string URL in <style>', '<style>svg { background-image: image-set("http://127.0.0.1:9/g.png" 1x) }</style>'],
      ['CSS -webkit-image-set() in a style attribute', '<rect width="10" height="10" style="cursor: -webkit-image-set(\'http://127.0.0.1:9/h.png\' 1x), auto"/>'],
    ];
    for (const [label, payload] of smuggled) {
      it(`sanitiser removes: ${label}`, async () => {
        const t = h.t;
        const text = `${SVG_OPEN}<rect width="5" height="5" fill="#2a7"/>${payload}</svg>`;
        const uploaded = await expectOk<ImageResult>(
          await upload(t, { file: new File([text], 'crafted.svg', { type: 'image/svg+xml' }) }),
        );
        const res = await deliver(t, new URL(uploaded.variants[0] as string).pathname);
        const body = await res.text();
        expect(res.status, body).toBe(200);
        expect(res.headers.get('content-type') ?? '').toMatch(/^image\/svg\+xml\b/);
        expect(body, 'the drawing survives').toContain('<rect');
        for (const forbidden of ['127.0.0.1:9', 'javascript:', 'alert(']) {
          expect(body.includes(forbidden), `${forbidden} survived in ${body}`).toBe(false);
        }
      });
    }

    it('check.svg is served as SVG (not rasterised) whatever the Accept header', async () => {
      for (const accept of [ACCEPT.avif, ACCEPT.webp, '*/*']) {
        const res = await deliver(h.t, path('check.svg', 'public'), { accept });
        const body = await res.text();
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type') ?? '').toMatch(/^image\/svg\+xml\b/);
        expect(body).toContain('<svg');
        expect(body).toContain('<path');
        const meta = await sharp(Buffer.from(body)).metadata();
        expect(meta.format).toBe('svg');
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// Signed URLs
// ---------------------------------------------------------------------------------------------------

describe('signed URLs', () => {
  const h = useServer();
  let priv: Uploaded;
  let key: string;

  beforeAll(async () => {
    const t = h.t;
    await patchConfig(t, { flexible_variants: true });
    await createVariant(t, { id: 'thumb', options: { fit: 'scale-down', width: 100, height: 100, metadata: 'none' } });
    await createVariant(t, {
      id: 'open',
      options: { fit: 'scale-down', width: 120, height: 120, metadata: 'none' },
      neverRequireSignedURLs: true,
    });
    priv = await uploadFixture(t, SMALL, { requireSignedURLs: 'true' });
    const keys = await listKeys(t);
    const def = keys.find((k) => k.name === 'default');
    if (!def) throw new Error(`no default key: ${JSON.stringify(keys)}`);
    key = def.value;
  });

  it('the upload has a generated id and requires signed URLs', () => {
    expect(priv.image.requireSignedURLs).toBe(true);
    expect(priv.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it('unsigned → 403 ERROR 9425 with Cf-Resized: err=9425', async () => {
    await expectDeliveryError(await deliver(h.t, `${priv.path}/public`), 403, 9425);
    await expectDeliveryError(await deliver(h.t, `/cdn-cgi/imagedelivery${priv.path}/public`), 403, 9425);
    await expectDeliveryError(await deliver(h.t, `${priv.path}/public?exp=${nowSeconds() + 600}`), 403, 9425);
  });

  it('signed with the default key and a future exp → 200, Cache-Control private with max-age ≤ 3600', async () => {
    const exp = nowSeconds() + 600;
    const out = await deliverImage(h.t, signedPath(`${priv.path}/public`, key, `exp=${exp}`));
    expect([out.meta.width, out.meta.height]).toEqual([320, 240]);
    const cc = out.res.headers.get('cache-control') ?? '';
    const match = /^private, max-age=(\d+)$/.exec(cc);
    expect(match, cc).not.toBeNull();
    const maxAge = Number(match?.[1]);
    expect(maxAge).toBeLessThanOrEqual(600);
    expect(maxAge).toBeGreaterThan(590);

    const far = await deliverImage(h.t, signedPath(`${priv.path}/thumb`, key, `exp=${nowSeconds() + 86_400}`));
    expect(far.res.headers.get('cache-control')).toBe('private, max-age=3600');
    expect([far.meta.width, far.meta.height]).toEqual([100, 75]);
  });

  it('the signature is lowercase hex HMAC-SHA256 over path + "?" + query (independent check)', async () => {
    const exp = nowSeconds() + 300;
    const stringToSign = `${priv.path}/public?exp=${exp}`;
    const sig = hmacHex(stringToSign, key);
    expect(sig).toMatch(/^[0-9a-f]{64}$/);
    const res = await deliver(h.t, `${priv.path}/public?exp=${exp}&sig=${sig}`);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    // Without exp (optional): path + "?" + "" is signed.
    const noExp = await deliver(h.t, `${priv.path}/public?sig=${hmacHex(`${priv.path}/public?`, key)}`);
    expect(noExp.status).toBe(200);
    expect(noExp.headers.get('cache-control') ?? '').toMatch(/^private, max-age=\d+$/);
    await noExp.arrayBuffer();
  });

  it('expired exp → 403 9425', async () => {
    await expectDeliveryError(await deliver(h.t, signedPath(`${priv.path}/public`, key, `exp=${nowSeconds() - 5}`)), 403, 9425);
  });

  it('wrong key → 403 9425; a changed exp after signing → 403', async () => {
    const exp = nowSeconds() + 600;
    await expectDeliveryError(await deliver(h.t, signedPath(`${priv.path}/public`, 'not-the-key', `exp=${exp}`)), 403, 9425);
    const good = signedPath(`${priv.path}/public`, key, `exp=${exp}`);
    await expectDeliveryError(await deliver(h.t, good.replace(`exp=${exp}`, `exp=${exp + 1000}`)), 403, 9425);
  });

  it('a signature for one variant does not open another (tampered path) → 403', async () => {
    const exp = nowSeconds() + 600;
    const signed = signedPath(`${priv.path}/public`, key, `exp=${exp}`);
    await expectDeliveryError(await deliver(h.t, signed.replace('/public?', '/thumb?')), 403, 9425);
  });

  it('the signature over the prefix-less path works on the /cdn-cgi/imagedelivery URL', async () => {
    const exp = nowSeconds() + 600;
    const out = await deliverImage(h.t, `/cdn-cgi/imagedelivery${signedPath(`${priv.path}/public`, key, `exp=${exp}`)}`);
    expect(out.meta.width).toBe(320);
  });

  it('a second key (PUT /keys/second) verifies too; once deleted it no longer does', async () => {
    const t = h.t;
    const keys = await putKey(t, 'second');
    const second = keys.find((k) => k.name === 'second');
    expect(second).toBeDefined();
    expect(keys.map((k) => k.name).sort()).toEqual(['default', 'second']);
    const url = signedPath(`${priv.path}/public`, second?.value ?? '', `exp=${nowSeconds() + 600}`);
    const ok = await deliver(t, url);
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
    // The default key still works alongside it.
    const byDefault = await deliver(t, signedPath(`${priv.path}/public`, key, `exp=${nowSeconds() + 600}`));
    expect(byDefault.status).toBe(200);
    await byDefault.arrayBuffer();

    await deleteKey(t, 'second');
    await expectDeliveryError(await deliver(t, url), 403, 9425);
  });

  it('rotating the default key (PUT on the same name) invalidates URLs signed with the old value', async () => {
    const t = h.t;
    const url = signedPath(`${priv.path}/public`, key, `exp=${nowSeconds() + 600}`);
    const before = await deliver(t, url);
    expect(before.status).toBe(200);
    await before.arrayBuffer();
    const keys = await putKey(t, 'default');
    const rotated = keys.find((k) => k.name === 'default')?.value ?? '';
    expect(rotated).not.toBe(key);
    await expectDeliveryError(await deliver(t, url), 403, 9425);
    key = rotated;
    const after = await deliver(t, signedPath(`${priv.path}/public`, key, `exp=${nowSeconds() + 600}`));
    expect(after.status).toBe(200);
    await after.arrayBuffer();
  });

  it('sig may come first in the query; a malformed or duplicated sig → 403', async () => {
    const t = h.t;
    const exp = nowSeconds() + 600;
    const sig = hmacHex(`${priv.path}/public?exp=${exp}`, key);
    const first = await deliver(t, `${priv.path}/public?sig=${sig}&exp=${exp}`);
    expect(first.status).toBe(200);
    await first.arrayBuffer();
    await expectDeliveryError(await deliver(t, `${priv.path}/public?exp=${exp}&sig=${sig.slice(0, 63)}`), 403, 9425);
    await expectDeliveryError(await deliver(t, `${priv.path}/public?exp=${exp}&sig=xyz`), 403, 9425);
    await expectDeliveryError(await deliver(t, `${priv.path}/public?exp=${exp}&sig=`), 403, 9425);
    await expectDeliveryError(await deliver(t, `${priv.path}/public?exp=abc&sig=${hmacHex(`${priv.path}/public?exp=abc`, key)}`), 403, 9425);
  });

  it('deleting the last key: a new default is generated; URLs signed with the old value stop working', async () => {
    const t = h.t;
    const old = signedPath(`${priv.path}/public`, key, `exp=${nowSeconds() + 600}`);
    const ok = await deliver(t, old);
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
    const keys = await deleteKey(t, 'default');
    expect(keys.map((k) => k.name)).toEqual(['default']);
    const fresh = keys[0]?.value ?? '';
    expect(fresh).not.toBe(key);
    await expectDeliveryError(await deliver(t, old), 403, 9425);
    key = fresh;
    const renewed = await deliver(t, signedPath(`${priv.path}/public`, key, `exp=${nowSeconds() + 600}`));
    expect(renewed.status).toBe(200);
    await renewed.arrayBuffer();
  });

  it('a variant with neverRequireSignedURLs=true serves the private image unsigned', async () => {
    const out = await deliverImage(h.t, `${priv.path}/open`);
    expect([out.meta.width, out.meta.height]).toEqual([120, 90]);
  });

  it('flexible options on a signed image → 403 9429 (even with a valid signature)', async () => {
    await expectDeliveryError(await deliver(h.t, `${priv.path}/w=100`), 403, 9429);
    const signed = signedPath(`${priv.path}/w=100`, key, `exp=${nowSeconds() + 600}`);
    await expectDeliveryError(await deliver(h.t, signed), 403, 9429);
  });
});

// ---------------------------------------------------------------------------------------------------
// Caching headers and invalidation
// ---------------------------------------------------------------------------------------------------

describe('caching', () => {
  const h = useServer();
  let small: Uploaded;

  beforeAll(async () => {
    small = await uploadFixture(h.t, SMALL);
  });

  it('strong ETag; If-None-Match → 304 with no body', async () => {
    const t = h.t;
    const first = await deliverImage(t, `${small.path}/public`, { accept: ACCEPT.webp });
    const etag = first.res.headers.get('etag') ?? '';
    expect(etag).toMatch(/^"[^"]+"$/);
    const again = await deliver(t, `${small.path}/public`, { accept: ACCEPT.webp, headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect((await again.arrayBuffer()).byteLength).toBe(0);
    expect(again.headers.get('etag')).toBe(etag);
    // A different representation (other Accept) has another ETag: the old one does not match.
    const jpeg = await deliver(t, `${small.path}/public`, { accept: ACCEPT.legacy, headers: { 'if-none-match': etag } });
    expect(jpeg.status).toBe(200);
    expect(jpeg.headers.get('etag')).not.toBe(etag);
    await jpeg.arrayBuffer();
  });

  it('a 304 (GET or HEAD) carries no Content-Length other than the representation\'s own', async () => {
    const t = h.t;
    const url = `${small.path}/public`;
    const full = await deliverImage(t, url);
    const etag = full.res.headers.get('etag') ?? '';
    for (const method of ['GET', 'HEAD'] as const) {
      const res = await deliver(t, url, { method, headers: { 'if-none-match': etag } });
      await res.arrayBuffer();
      expect(res.status).toBe(304);
      // RFC 9110 §8.6: Content-Length in a 304 must equal the length a 200 would have sent.
      const length = res.headers.get('content-length');
      expect(length === null || Number(length) === full.body.length, `${method} 304 has content-length: ${length}`).toBe(true);
    }
  });

  it('If-None-Match uses weak comparison (W/"…" matches), lists and * work, HEAD revalidates too', async () => {
    const t = h.t;
    const url = `${small.path}/public`;
    const first = await deliverImage(t, url);
    const etag = first.res.headers.get('etag') ?? '';
    for (const value of [`"nope", ${etag}`, '*', `W/${etag}`]) {
      for (const method of ['GET', 'HEAD'] as const) {
        const res = await deliver(t, url, { method, headers: { 'if-none-match': value } });
        await res.arrayBuffer();
        expect({ value, method, status: res.status }).toEqual({ value, method, status: 304 });
      }
    }
    const miss = await deliver(t, url, { headers: { 'if-none-match': '"nope"' } });
    expect(miss.status).toBe(200);
    await miss.arrayBuffer();
  });

  it('HEAD gives the same headers as GET (content-length included) and no body', async () => {
    const t = h.t;
    const get = await deliverImage(t, `${small.path}/public`, { accept: ACCEPT.avif });
    const head = await deliver(t, `${small.path}/public`, { accept: ACCEPT.avif, method: 'HEAD' });
    expect(head.status).toBe(200);
    expect((await head.arrayBuffer()).byteLength).toBe(0);
    for (const name of ['content-type', 'etag', 'cache-control', 'vary']) {
      expect(head.headers.get(name), name).toBe(get.res.headers.get(name));
    }
    expect(Number(head.headers.get('content-length'))).toBe(get.body.length);
    expect(Number(get.res.headers.get('content-length'))).toBe(get.body.length);
    // HEAD of an error is an error too.
    const missing = await deliver(t, `${small.path}/nosuchvariant`, { method: 'HEAD' });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('cf-resized')).toBe('err=9431');
  });

  it('Cache-Control: public, max-age=172800 by default', async () => {
    const out = await deliverImage(h.t, `${small.path}/public`);
    expect(out.res.headers.get('cache-control')).toBe('public, max-age=172800');
  });

  it('account browser_ttl and variant options.browser_ttl override it (variant wins)', async () => {
    const t = h.t;
    await createVariant(t, { id: 'ttl', options: { fit: 'scale-down', width: 100, height: 100, metadata: 'none', browser_ttl: 86_400 } });
    await createVariant(t, { id: 'plain', options: { fit: 'scale-down', width: 100, height: 100, metadata: 'none' } });
    expect((await deliverImage(t, `${small.path}/ttl`)).res.headers.get('cache-control')).toBe('public, max-age=86400');
    expect((await deliverImage(t, `${small.path}/plain`)).res.headers.get('cache-control')).toBe('public, max-age=172800');

    await patchConfig(t, { browser_ttl: 7200 });
    expect((await deliverImage(t, `${small.path}/public`)).res.headers.get('cache-control')).toBe('public, max-age=7200');
    expect((await deliverImage(t, `${small.path}/plain`)).res.headers.get('cache-control')).toBe('public, max-age=7200');
    expect((await deliverImage(t, `${small.path}/ttl`)).res.headers.get('cache-control')).toBe('public, max-age=86400');
    await patchConfig(t, { flexible_variants: true });
    expect((await deliverImage(t, `${small.path}/w=50`)).res.headers.get('cache-control')).toBe('public, max-age=7200');
    await patchConfig(t, { browser_ttl: 172_800, flexible_variants: false });
  });

  it('after PATCH of a variant width, the same URL returns the new size at once', async () => {
    const t = h.t;
    await createVariant(t, { id: 'resizable', options: { fit: 'scale-down', width: 200, height: 200, metadata: 'none' } });
    const url = `${small.path}/resizable`;
    const before = await deliverImage(t, url, { accept: ACCEPT.webp });
    expect([before.meta.width, before.meta.height]).toEqual([200, 150]);
    await deliverImage(t, url, { accept: ACCEPT.webp }); // served from cache now
    await editVariant(t, 'resizable', { options: { fit: 'scale-down', width: 100, height: 100, metadata: 'none' } });
    const after = await deliverImage(t, url, { accept: ACCEPT.webp });
    expect([after.meta.width, after.meta.height]).toEqual([100, 75]);
    expect(after.res.headers.get('etag')).not.toBe(before.res.headers.get('etag'));
    // The old ETag no longer gives 304.
    const revalidate = await deliver(t, url, {
      accept: ACCEPT.webp,
      headers: { 'if-none-match': before.res.headers.get('etag') ?? '' },
    });
    expect(revalidate.status).toBe(200);
    await revalidate.arrayBuffer();
  });

  it('after PATCH requireSignedURLs=true, the previously working unsigned URL is refused', async () => {
    const t = h.t;
    const image = await uploadFixture(t, SMALL);
    const url = `${image.path}/public`;
    const etag = (await deliverImage(t, url)).res.headers.get('etag') ?? '';
    await deliverImage(t, url);
    const patched = await expectOk<ImageResult>(await jsonRequest(t, 'PATCH', `/v1/${image.id}`, { requireSignedURLs: true }));
    expect(patched.requireSignedURLs).toBe(true);
    await expectDeliveryError(await deliver(t, url), 403, 9425);
    await expectDeliveryError(await deliver(t, url, { headers: { 'if-none-match': etag } }), 403, 9425);
    await expectDeliveryError(await deliver(t, `/cdn-cgi/imagedelivery${url}`), 403, 9425);
  });

  it('after PATCH requireSignedURLs=false the unsigned URL works again', async () => {
    const t = h.t;
    const image = await uploadFixture(t, SMALL, { requireSignedURLs: 'true' });
    const url = `${image.path}/public`;
    await expectDeliveryError(await deliver(t, url), 403, 9425);
    await expectOk(await jsonRequest(t, 'PATCH', `/v1/${image.id}`, { requireSignedURLs: false }));
    const out = await deliverImage(t, url);
    expect(out.res.headers.get('cache-control')).toMatch(/^public, /);
  });

  it('variant changes apply at once: DELETE → 9431, neverRequireSignedURLs toggled → access follows', async () => {
    const t = h.t;
    const image = await uploadFixture(t, SMALL, { requireSignedURLs: 'true' });
    await createVariant(t, { id: 'gone', options: { fit: 'scale-down', width: 50, height: 50, metadata: 'none' }, neverRequireSignedURLs: true });
    const url = `${image.path}/gone`;
    expect((await deliverImage(t, url)).meta.width).toBe(50);
    await editVariant(t, 'gone', { options: { fit: 'scale-down', width: 50, height: 50, metadata: 'none' }, neverRequireSignedURLs: false });
    await expectDeliveryError(await deliver(t, url), 403, 9425);
    await editVariant(t, 'gone', { options: { fit: 'scale-down', width: 50, height: 50, metadata: 'none' }, neverRequireSignedURLs: true });
    expect((await deliverImage(t, url)).meta.width).toBe(50);
    await expectOk(await jsonRequest(t, 'DELETE', '/v1/variants/gone'));
    await expectDeliveryError(await deliver(t, url), 404, 9431);
  });

  it('after DELETE of the image → 404 ERROR 9404', async () => {
    const t = h.t;
    const image = await uploadFixture(t, SMALL);
    const url = `${image.path}/public`;
    await deliverImage(t, url);
    await expectOk(await jsonRequest(t, 'DELETE', `/v1/${image.id}`));
    await expectDeliveryError(await deliver(t, url), 404, 9404);
    const head = await deliver(t, url, { method: 'HEAD' });
    expect(head.status).toBe(404);
    expect(head.headers.get('cf-resized')).toBe('err=9404');
  });

  it('re-uploading under the same custom id serves the new bytes', async () => {
    const t = h.t;
    const id = 'reupload/photo';
    const first = await uploadFixture(t, SMALL, { id });
    const url = `${first.path}/public`;
    expect(first.path.endsWith('/reupload/photo')).toBe(true);
    const before = await deliverImage(t, url);
    expect([before.meta.width, before.meta.height]).toEqual([320, 240]);
    await expectOk(await jsonRequest(t, 'DELETE', `/v1/${encodeURIComponent(id)}`));
    await expectDeliveryError(await deliver(t, url), 404, 9404);
    const second = await uploadFixture(t, 'Landscape_1.jpg', { id });
    expect(second.path).toBe(first.path);
    const after = await deliverImage(t, url);
    expect([after.meta.width, after.meta.height]).toEqual([600, 450]);
    expect(after.res.headers.get('etag')).not.toBe(before.res.headers.get('etag'));
  });
});

// ---------------------------------------------------------------------------------------------------
// Delivery errors
// ---------------------------------------------------------------------------------------------------

describe('delivery errors', () => {
  const h = useServer();
  let image: Uploaded;
  let hash: string;

  beforeAll(async () => {
    image = await uploadFixture(h.t, SMALL);
    hash = accountHashOf(image);
  });

  it('unknown account hash or image → 404 ERROR 9404', async () => {
    const t = h.t;
    const otherHash = hash.startsWith('A') ? `B${hash.slice(1)}` : `A${hash.slice(1)}`;
    await expectDeliveryError(await deliver(t, `/${otherHash}/${image.id}/public`), 404, 9404);
    await expectDeliveryError(await deliver(t, `/${hash}/00000000-0000-4000-8000-000000000000/public`), 404, 9404);
    await expectDeliveryError(await deliver(t, `/${hash}/no/such/image/public`), 404, 9404);
    await expectDeliveryError(await deliver(t, `/cdn-cgi/imagedelivery/${hash}/nosuch/public`), 404, 9404);
  });

  it('a draft (direct upload not yet used) is not delivered → 404 ERROR 9404', async () => {
    const t = h.t;
    const form = new FormData();
    form.append('requireSignedURLs', 'false');
    const draft = await expectOk<{ id: string }>(
      await fetch(`${t.imagesUrl}/v2/direct_upload`, { method: 'POST', body: form, headers: t.auth }),
    );
    await expectDeliveryError(await deliver(t, `/${hash}/${draft.id}/public`), 404, 9404);
  });

  it('another account: its hash does not reach this image, nor its key sign it → 9404 / 9425', async () => {
    const t = h.t;
    const env = { ...t.storeEnv, PICTOR_LOG_LEVEL: 'warn' };
    const otherId = randomAccountId();
    await cliOk(['account', 'create', '--id', otherId], env);
    const otherToken = lastLine((await cliOk(['token', 'create', '--account', otherId], env)).stdout);
    const otherAuth = { authorization: `Bearer ${otherToken}` };
    const other: TestServer = { ...t, accountId: otherId, token: otherToken, auth: otherAuth, imagesUrl: `${t.url}/client/v4/accounts/${otherId}/images` };
    const theirs = await uploadFixture(other, SMALL);
    const otherHash = accountHashOf(theirs);
    expect(otherHash).not.toBe(hash);
    expect((await deliverImage(t, `${theirs.path}/public`)).meta.width).toBe(320);
    await expectDeliveryError(await deliver(t, `/${otherHash}/${image.id}/public`), 404, 9404);
    await expectDeliveryError(await deliver(t, `/${hash}/${theirs.id}/public`), 404, 9404);

    const mine = await uploadFixture(t, SMALL, { requireSignedURLs: 'true' });
    const theirKey = (await expectOk<{ keys: Array<{ name: string; value: string }> }>(
      await fetch(`${other.imagesUrl}/v1/keys`, { headers: otherAuth }),
    )).keys[0]?.value ?? '';
    const url = signedPath(`${mine.path}/public`, theirKey, `exp=${nowSeconds() + 600}`);
    await expectDeliveryError(await deliver(t, url), 403, 9425);
  });

  it('unknown variant → 404 ERROR 9431', async () => {
    await expectDeliveryError(await deliver(h.t, `${image.path}/nosuchvariant`), 404, 9431);
    await expectDeliveryError(await deliver(h.t, `/cdn-cgi/imagedelivery${image.path}/nosuchvariant`), 404, 9431);
  });

  it('flexible variants disabled (the default) → 403 ERROR 9429', async () => {
    await expectDeliveryError(await deliver(h.t, `${image.path}/w=100`), 403, 9429);
    await expectDeliveryError(await deliver(h.t, `${image.path}/width=100,height=100,fit=cover`), 403, 9429);
  });

  it('bad flexible options → 400 ERROR 9401', async () => {
    const t = h.t;
    await patchConfig(t, { flexible_variants: true });
    const ok = await deliverImage(t, `${image.path}/w=100`);
    expect(ok.meta.width).toBe(100);
    for (const options of ['w=abc', 'fit=stretch', 'unknown=1', 'rotate=45', 'q=0', 'w=0', 'h=-5', 'w=100,w=200', 'w=100,,h=5']) {
      const res = await deliver(t, `${image.path}/${options}`);
      expect(res.status, options).toBe(400);
      await expectDeliveryError(res, 400, 9401);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// trim, flip and rotate together: Cloudflare's order, step by step
// ---------------------------------------------------------------------------------------------------------

describe('trim with flip and rotate', () => {
  const h = useServer();
  let base: string;
  beforeAll(async () => {
    await patchConfig(h.t, { flexible_variants: true });
    base = (await uploadFixture(h.t, '320x240.jpg')).path;
  });

  /** The same options applied one materialised step at a time, in Cloudflare's order: trim, flip, rotate, resize. */
  async function reference(options: { trim: number[]; flip?: string; rotate?: 90 | 180 | 270; size?: [number, number] }): Promise<Buffer> {
    const [top = 0, right = 0, bottom = 0, left = 0] = options.trim;
    let image = await sharp(fixture('320x240.jpg'))
      .extract({ left, top, width: 320 - left - right, height: 240 - top - bottom })
      .png()
      .toBuffer();
    if (options.flip?.includes('h')) image = await sharp(image).flop().png().toBuffer();
    if (options.flip?.includes('v')) image = await sharp(image).flip().png().toBuffer();
    if (options.rotate) image = await sharp(image).rotate(options.rotate).png().toBuffer();
    if (options.size) image = await sharp(image).resize(options.size[0], options.size[1], { fit: 'fill' }).png().toBuffer();
    return image;
  }

  const cases: Array<{ trim: number[]; flip?: string; rotate?: 90 | 180 | 270; size?: [number, number] }> = [
    { trim: [0, 0, 100, 0], rotate: 90, size: [100, 229] },
    { trim: [10, 30, 100, 5], rotate: 90, flip: 'h', size: [100, 90] },
    { trim: [10, 30, 100, 5], rotate: 270, flip: 'v' },
    { trim: [10, 30, 100, 5], rotate: 180, flip: 'hv', size: [60, 40] },
    { trim: [10, 30, 100, 5], flip: 'h', size: [100, 90] },
    { trim: [0, 0, 0, 0], rotate: 90, flip: 'h' },
  ];

  it.each(cases)('%j renders like the step-by-step reference (it used to fail or mirror the wrong way)', async (c) => {
    const options = [
      ...(c.size ? [`w=${c.size[0]}`, `h=${c.size[1]}`, 'fit=squeeze'] : []),
      `trim=${c.trim.join(';')}`,
      ...(c.flip ? [`flip=${c.flip}`] : []),
      ...(c.rotate ? [`rotate=${c.rotate}`] : []),
      'f=png',
    ].join(',');
    const { res, body, meta } = await deliverImage(h.t, `${base}/${options}`);
    expect(res.status).toBe(200);
    const expected = await reference(c);
    const expectedMeta = await sharp(expected).metadata();
    expect([meta.width, meta.height]).toEqual([expectedMeta.width, expectedMeta.height]);
    expect(meanAbsDiff(await thumbprint(body), await thumbprint(expected))).toBeLessThan(0.03);
  });
});
