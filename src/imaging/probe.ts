/**
 * Upload validation: the bytes decide, never the file name or declared type. The header is read first
 * (format allow-list, per-side, per-frame and animated-total limits) so a decompression bomb is refused
 * without decoding pixels; then the pixels are decoded once, at reduced size where the codec allows,
 * so truncated or corrupt data is refused too. SVGs are never rasterized: they are parsed, held to
 * complexity limits and sanitized on a worker thread. All of this work waits its turn in the same
 * cost-weighted pool as renders.
 */
import sharp, { type Metadata } from 'sharp';
import type { UploadLimits } from '../config.js';
import { PictorError } from '../errors.js';
import { decodeCost, svgCost } from './cost.js';
import { pastDeadline } from './render.js';
import { PoolFullError, type RenderPool } from './render-pool.js';
import { type SvgLimits, SvgRefusal } from './svg.js';
import type { SvgWorkers } from './svg-workers.js';
import { type HeicDecoder, HeicUnreadable, isHevcHeif } from './heic.js';

export interface ProbedImage {
  contentType: string;
  /** Width as displayed, i.e. after EXIF orientation. */
  width: number;
  /** Height of one frame as displayed, i.e. after EXIF orientation. */
  height: number;
  frames: number;
}

const CONTENT_TYPES: Record<string, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
};

/** Validation decodes to at most this size: enough to read every byte of the pixel data. */
const CHECK_SIZE = 256;

/** `cause` keeps libvips' own words for the log; the client gets `detail`. */
function unsupported(detail: string, cause?: unknown): PictorError {
  return new PictorError(5455, `Unsupported or unreadable image: ${detail}`, { cause });
}

function contentTypeOf(metadata: Metadata, bytes: Buffer): string | undefined {
  if (metadata.format === 'heif') {
    // sharp reports AVIF as heif with AV1 compression; HEVC-coded HEIC is decoded by libheif in WebAssembly.
    if (metadata.compression === 'av1') return 'image/avif';
    return metadata.compression === 'hevc' && isHevcHeif(bytes) ? 'image/heic' : undefined;
  }
  return CONTENT_TYPES[metadata.format ?? ''];
}

/**
 * Markup starts with `<` (after an optional byte-order mark and white space); every raster format we
 * accept starts with binary magic bytes. So text is never handed to an image decoder (librsvg would
 * parse a whole 10 MB document just to report its size).
 */
function markupKind(bytes: Buffer): 'svg' | 'other-markup' | undefined {
  const head = bytes.subarray(0, 4096).toString('utf8').replace(/^\uFEFF/, '');
  if (!head.trimStart().startsWith('<')) return undefined;
  return /<svg[\s>]/i.test(head) ? 'svg' : 'other-markup';
}

/** What upload validation needs besides the limits: the work pool and the SVG workers. */
export interface ProbeContext {
  limits: UploadLimits;
  svgLimits: SvgLimits;
  pool: RenderPool;
  svgWorkers: SvgWorkers;
  heic: HeicDecoder;
  timeoutSeconds: number;
}

function overloaded(): PictorError {
  return new PictorError(5503, 'Too many images are being processed; try again shortly', { retryAfter: 1 });
}

/** Runs image work through the pool; a full pool is the API's 5503. */
async function admitted<T>(context: ProbeContext, cost: number, task: () => Promise<T>): Promise<T> {
  try {
    return await context.pool.run(cost, task);
  } catch (error) {
    if (error instanceof PoolFullError) throw overloaded();
    throw error;
  }
}

async function probeSvg(bytes: Buffer, context: ProbeContext): Promise<ProbedImage> {
  try {
    const svg = await admitted(context, svgCost(bytes.length), () => context.svgWorkers.inspect(bytes, context.svgLimits));
    return { contentType: 'image/svg+xml', width: svg.width, height: svg.height, frames: 1 };
  } catch (error) {
    if (!(error instanceof SvgRefusal)) throw error;
    if (error.kind === 'limit') throw new PictorError(5400, error.message);
    throw unsupported(error.message);
  }
}

/**
 * HEIC: the header's size has passed the limits above; the whole primary image is then decoded (on a
 * worker, through the pool at the full decode's cost), which both checks the data and gives the size as
 * displayed (libheif applies the rotation). The decode is kept for the first render.
 */
async function probeHeic(bytes: Buffer, header: { width: number; height: number }, context: ProbeContext): Promise<ProbedImage> {
  const cost = header.width * header.height * 2;
  const decoded = await admitted(context, cost, async () => {
    try {
      return await context.heic.renderable(bytes);
    } catch (error) {
      if (error instanceof HeicUnreadable) throw unsupported('the HEIC image data cannot be decoded', error);
      throw error;
    }
  });
  return { contentType: 'image/heic', width: decoded.width, height: decoded.height, frames: 1 };
}

/** The input limit a header's size breaks, if any: per side, per frame, all frames of an animation. */
function brokenLimit(size: { width: number; height: number; frames: number }, limits: UploadLimits): 'side' | 'area' | 'animation' | undefined {
  const { width, height, frames } = size;
  if (width > limits.maxSidePixels || height > limits.maxSidePixels) return 'side';
  if (width * height > limits.maxFramePixels) return 'area';
  if (frames > 1 && width * height * frames > limits.maxAnimatedPixels) return 'animation';
  return undefined;
}

/** EXIF orientations 5-8 store the picture turned a quarter: the size a viewer sees. */
function displayed(size: { width: number; height: number }, metadata: Metadata): { width: number; height: number } {
  return (metadata.orientation ?? 1) >= 5 ? { width: size.height, height: size.width } : size;
}

/**
 * A remote transformation's source, from its header only (it is decoded when rendered, in the pool, with
 * the render's deadline): its format among those the renderer takes (9412 otherwise) and its size within
 * the input limits (9413). SVG is recognised from its text and never handed to libvips.
 */
export async function describeRemote(bytes: Buffer, limits: UploadLimits): Promise<ProbedImage> {
  const markup = markupKind(bytes);
  if (markup === 'svg') return { contentType: 'image/svg+xml', width: 1, height: 1, frames: 1 };
  if (markup === 'other-markup' || bytes.length === 0) throw new PictorError(9412);
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false, animated: true }).metadata();
  } catch (error) {
    throw new PictorError(9412, undefined, { cause: error });
  }
  const contentType = contentTypeOf(metadata, bytes);
  // HEIC is not a transformation input on Cloudflare either (9412).
  if (!contentType || contentType === 'image/svg+xml' || contentType === 'image/heic') throw new PictorError(9412);
  const width = metadata.width;
  const height = metadata.pageHeight ?? metadata.height;
  const frames = Math.max(1, metadata.pages ?? 1);
  if (!width || !height) throw new PictorError(9412);
  if (brokenLimit({ width, height, frames }, limits)) throw new PictorError(9413, `The source image (${width}x${height}) exceeds the input limits`);
  return { contentType, ...displayed({ width, height }, metadata), frames };
}

export async function probeImage(bytes: Buffer, context: ProbeContext): Promise<ProbedImage> {
  const limits = context.limits;
  if (bytes.length === 0) throw unsupported('the file is empty');
  const markup = markupKind(bytes);
  if (markup === 'svg') return probeSvg(bytes, context);
  if (markup === 'other-markup') throw unsupported('not an SVG document');
  let metadata: Metadata;
  try {
    // A HEIC's images are stills of any size (bursts, edits): read as pages, libvips would refuse them.
    metadata = await sharp(bytes, { limitInputPixels: false, animated: !isHevcHeif(bytes) }).metadata();
  } catch (error) {
    throw unsupported('the bytes are not a supported image', error);
  }
  const contentType = contentTypeOf(metadata, bytes);
  // SVG is recognised above from its text; whatever else libvips reads as SVG (compressed svgz) is not.
  if (!contentType || contentType === 'image/svg+xml') {
    throw unsupported(`format ${metadata.format ?? 'unknown'} is not accepted`);
  }

  const width = metadata.width;
  const frames = Math.max(1, metadata.pages ?? 1);
  const height = metadata.pageHeight ?? metadata.height;
  if (!width || !height) throw unsupported('the image has no dimensions');

  switch (brokenLimit({ width, height, frames }, limits)) {
    case 'side':
      throw new PictorError(5400, `Image dimensions ${width}x${height} exceed ${limits.maxSidePixels} pixels per side`);
    case 'area':
      throw new PictorError(5400, `Image area ${width}x${height} exceeds ${limits.maxFramePixels / 1e6} megapixels`);
    case 'animation':
      throw new PictorError(5443);
    case undefined:
  }

  if (contentType === 'image/heic') return probeHeic(bytes, { width, height }, context);

  const cost = decodeCost({ width, height, frames, contentType }, { width: CHECK_SIZE, height: CHECK_SIZE });
  await admitted(context, cost, async () => {
    try {
      // failOn 'error' rejects truncated and corrupt pixel data. The thumbnail lets JPEG and WebP
      // decode at reduced scale (shrink-on-load) while still reading every byte of the image.
      await sharp(bytes, {
        failOn: 'error',
        animated: frames > 1,
        limitInputPixels: limits.maxAnimatedPixels,
      })
        .timeout({ seconds: context.timeoutSeconds })
        .resize(CHECK_SIZE, CHECK_SIZE, { fit: 'inside' })
        .raw()
        .toBuffer();
    } catch (error) {
      if (pastDeadline(error)) {
        throw new PictorError(5503, `Checking the image took longer than ${context.timeoutSeconds} s`, { retryAfter: 1, cause: error });
      }
      throw unsupported('the image data is truncated or corrupt', error);
    }
  });
  return { contentType, ...displayed({ width, height }, metadata), frames };
}
