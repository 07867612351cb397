/**
 * Runs one rendition with sharp/libvips, applying the precomputed geometry in a fixed order:
 * orient (EXIF, always) → trim → flip → rotate → scale → crop → pad → colour adjustments → encode.
 * Colour profiles (CMYK, Display P3, ProPhoto…) are converted to sRGB; transparency is kept where the
 * output format carries it and flattened onto the background for JPEG.
 */
import exifReader from 'exif-reader';
import { encodeAtAutoQuality } from './auto-quality.js';
import sharp, { type Sharp } from 'sharp';
import { PictorError } from '../errors.js';
import type { Geometry } from './geometry.js';
import { CONTENT_TYPES, type FormatChoice } from './negotiate.js';
import type { RenderPlan } from './plan.js';

export interface RenderSource {
  bytes: Buffer;
  frames: number;
}

export interface Rendered {
  bytes: Buffer;
  contentType: string;
}

const DEFAULT_QUALITY = 85;
/** AVIF encoding speed: effort 2 of 9 keeps a 1200 px encode well under a second on one core. */
const AVIF_EFFORT = 2;
/** Progressive JPEG, except for tiny or huge outputs (as Cloudflare does). */
const PROGRESSIVE_MIN = 50;
const PROGRESSIVE_MAX = 3000;

/** Tone curve for contrast and gamma on 8-bit colour channels (brightness/saturation use modulate). */
function toneCurve(plan: RenderPlan): Uint8Array | undefined {
  if (plan.contrast === undefined && plan.gamma === undefined) return undefined;
  const contrast = plan.contrast ?? 1;
  const gamma = plan.gamma ?? 1;
  const lut = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let v = (i - 128) * contrast + 128;
    v = 255 * Math.pow(Math.min(255, Math.max(0, v)) / 255, 1 / gamma);
    lut[i] = Math.round(Math.min(255, Math.max(0, v)));
  }
  return lut;
}

async function copyrightOf(bytes: Buffer): Promise<string | undefined> {
  const { exif } = await sharp(bytes).metadata();
  if (!exif) return undefined;
  try {
    const copyright = exifReader(exif).Image?.Copyright;
    return typeof copyright === 'string' && copyright !== '' ? copyright : undefined;
  } catch {
    return undefined;
  }
}

function applyGeometry(image: Sharp, geometry: Geometry, plan: RenderPlan): Sharp {
  // Cloudflare trims, then flips, then rotates. sharp always flips before it rotates (the same order); with a
  // rotation it also does both before any extract, so a trim is then extracted at the region's flipped and
  // rotated place. Without a rotation sharp extracts first, as Cloudflare does.
  if (geometry.trim && !geometry.orientedTrim) image.extract(geometry.trim);
  if (plan.flip === 'h' || plan.flip === 'hv') image.flop();
  if (plan.flip === 'v' || plan.flip === 'hv') image.flip();
  if (plan.rotate) image.rotate(plan.rotate);
  if (geometry.orientedTrim) image.extract(geometry.orientedTrim);

  // quality=auto spends its encoder search on a rendition as close to the original as sharp makes it:
  // without the fast shrink-on-load, whose moiré and rounding would eat into the perceptual target.
  const fastShrinkOnLoad = !plan.autoQuality;
  const crop = geometry.crop;
  if (crop && 'attention' in crop) {
    image.resize(crop.width, crop.height, { fit: 'cover', position: sharp.strategy.attention, fastShrinkOnLoad });
  } else {
    if (geometry.resize) image.resize(geometry.resize.width, geometry.resize.height, { fit: 'fill', fastShrinkOnLoad });
    if (crop) image.extract(crop);
  }
  if (geometry.pad) image.extend({ ...geometry.pad, background: plan.background ?? '#ffffff' });
  return image;
}

function applyAdjustments(image: Sharp, plan: RenderPlan, flatten: boolean): Sharp {
  if (flatten || plan.background !== undefined) image.flatten({ background: plan.background ?? '#ffffff' });
  if (plan.brightness !== undefined || plan.saturation !== undefined) {
    image.modulate({
      ...(plan.brightness !== undefined && { brightness: plan.brightness }),
      ...(plan.saturation !== undefined && { saturation: plan.saturation }),
    });
  }
  if (plan.blur !== undefined) image.blur(Math.max(0.3, plan.blur / 2));
  if (plan.sharpen !== undefined) image.sharpen({ sigma: Math.max(0.01, plan.sharpen / 2) });
  return image;
}

async function applyToneCurve(image: Sharp, lut: Uint8Array, pageHeight: number | undefined): Promise<Sharp> {
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  const colourChannels = info.channels >= 3 ? 3 : 1;
  for (let i = 0; i < data.length; i += info.channels) {
    for (let c = 0; c < colourChannels; c++) data[i + c] = lut[data[i + c] as number] as number;
  }
  return sharp(data, {
    raw: { width: info.width, height: info.height, channels: info.channels, ...(pageHeight && { pageHeight }) },
  });
}

async function encode(
  image: Sharp,
  choice: FormatChoice,
  plan: RenderPlan,
  size: { width: number; height: number },
  animation: { delay?: number[]; loop?: number },
): Promise<Buffer> {
  const quality = plan.quality ?? DEFAULT_QUALITY;
  const small = size.width < PROGRESSIVE_MIN || size.height < PROGRESSIVE_MIN;
  const large = size.width > PROGRESSIVE_MAX || size.height > PROGRESSIVE_MAX;
  const progressive = choice.format === 'jpeg' && !choice.baseline && !small && !large;
  const animatedOutput = animation.delay !== undefined;
  const jpeg = (pipeline: Sharp, q: number): Sharp => pipeline.jpeg({ quality: q, progressive });
  const webp = (pipeline: Sharp, q: number): Sharp => pipeline.webp({ quality: q, lossless: q === 100, effort: 4, ...animation });
  if (plan.autoQuality && (choice.format === 'jpeg' || choice.format === 'webp') && !animatedOutput) {
    const fallback = choice.format === 'jpeg' ? jpeg : webp;
    return encodeAtAutoQuality(image, choice.format, { progressive, defaultQuality: DEFAULT_QUALITY, fallback, writesMetadata: plan.metadata !== 'none' });
  }
  switch (choice.format) {
    case 'jpeg':
      return jpeg(image, quality).toBuffer();
    case 'webp':
      return webp(image, quality).toBuffer();
    case 'avif':
      return image.avif({ quality, effort: AVIF_EFFORT }).toBuffer();
    case 'png':
      // An explicit quality asks for a palette PNG, as on Cloudflare.
      return image.png({ ...(plan.quality !== undefined && { palette: true, quality }) }).toBuffer();
    case 'gif':
      // Keep every frame: a GIF rendition has the source's frame count (libwebp always merges repeats).
      return image.gif({ ...animation, keepDuplicateFrames: true }).toBuffer();
    case 'svg':
    case 'json':
      throw new Error(`${choice.format} is not rendered by the raster pipeline`);
  }
}

/** sharp's error when a pipeline ran past `.timeout()`. */
export function pastDeadline(error: unknown): boolean {
  return /timeout/i.test((error as Error).message);
}

export async function renderRaster(
  source: RenderSource,
  plan: RenderPlan,
  geometry: Geometry,
  choice: FormatChoice,
  timeoutSeconds: number,
): Promise<Rendered> {
  const animated = source.frames > 1 && plan.anim && (choice.format === 'gif' || choice.format === 'webp');
  let image = sharp(source.bytes, { animated, autoOrient: true, failOn: 'none', limitInputPixels: 100_000_000 }).timeout({
    seconds: timeoutSeconds,
  });
  const animation: { delay?: number[]; loop?: number } = {};
  if (animated) {
    const meta = await image.metadata();
    if (meta.delay) animation.delay = meta.delay;
    if (meta.loop !== undefined) animation.loop = meta.loop;
  }

  applyGeometry(image, geometry, plan);
  applyAdjustments(image, plan, choice.format === 'jpeg');
  const lut = toneCurve(plan);
  if (lut) image = await applyToneCurve(image, lut, animated ? geometry.height : undefined);

  if (plan.metadata === 'keep') image.keepExif().keepXmp();
  if (plan.metadata === 'copyright') {
    const copyright = await copyrightOf(source.bytes);
    if (copyright) image.withExif({ IFD0: { Copyright: copyright } });
  }

  const started = Date.now();
  try {
    const bytes = await encode(image, choice, plan, geometry, animation);
    return { bytes, contentType: CONTENT_TYPES[choice.format] };
  } catch (error) {
    // libvips stops a pipeline at its deadline: that is a busy server, not a bad image. A pipeline cut
    // off mid-write may report the write's failure rather than the timeout, so the clock decides too.
    if (pastDeadline(error) || Date.now() - started >= timeoutSeconds * 1000) {
      throw new PictorError(9523, `Rendering took longer than ${timeoutSeconds} s`, { retryAfter: 1, cause: error });
    }
    throw new PictorError(9520, 'The image could not be rendered', { cause: error });
  }
}
