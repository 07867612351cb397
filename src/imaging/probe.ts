/**
 * Upload validation: the bytes decide, never the file name or declared type. The header is read first
 * (format allow-list, per-side, per-frame and animated-total limits) so a decompression bomb is refused
 * without decoding pixels; then the pixels are decoded once, at reduced size where the codec allows,
 * so truncated or corrupt data is refused too.
 */
import sharp, { type Metadata } from 'sharp';
import type { UploadLimits } from '../config.js';
import { PictorError } from '../errors.js';

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

function unsupported(detail: string): PictorError {
  return new PictorError(5455, `Unsupported or unreadable image: ${detail}`);
}

function contentTypeOf(metadata: Metadata): string | undefined {
  if (metadata.format === 'heif') {
    // sharp reports AVIF as heif with AV1 compression; HEVC-coded HEIC cannot be decoded by this build.
    return metadata.compression === 'av1' ? 'image/avif' : undefined;
  }
  return CONTENT_TYPES[metadata.format ?? ''];
}

/** Cheap checks that keep us from handing arbitrary text to an image decoder. */
function looksLikeSvg(bytes: Buffer): boolean {
  const head = bytes.subarray(0, 4096).toString('utf8');
  return /<svg[\s>]/i.test(head);
}

export async function probeImage(bytes: Buffer, limits: UploadLimits): Promise<ProbedImage> {
  if (bytes.length === 0) throw unsupported('the file is empty');
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false, animated: true }).metadata();
  } catch {
    throw unsupported('the bytes are not a supported image');
  }
  const contentType = contentTypeOf(metadata);
  if (!contentType) throw unsupported(`format ${metadata.format ?? 'unknown'} is not accepted`);
  if (contentType === 'image/svg+xml' && !looksLikeSvg(bytes)) throw unsupported('not an SVG document');

  const width = metadata.width;
  const frames = Math.max(1, metadata.pages ?? 1);
  const height = metadata.pageHeight ?? metadata.height;
  if (!width || !height) throw unsupported('the image has no dimensions');

  // SVG is vector: it is stored and delivered as (sanitized) SVG, never rasterized at its nominal size.
  if (contentType !== 'image/svg+xml') {
    if (width > limits.maxSidePixels || height > limits.maxSidePixels) {
      throw new PictorError(5400, `Image dimensions ${width}x${height} exceed ${limits.maxSidePixels} pixels per side`);
    }
    if (width * height > limits.maxFramePixels) {
      throw new PictorError(5400, `Image area ${width}x${height} exceeds ${limits.maxFramePixels / 1e6} megapixels`);
    }
    if (frames > 1 && width * height * frames > limits.maxAnimatedPixels) {
      throw new PictorError(5443);
    }
  }

  try {
    // failOn 'error' rejects truncated and corrupt pixel data. The thumbnail lets JPEG and WebP
    // decode at reduced scale (shrink-on-load) while still reading every byte of the image.
    await sharp(bytes, {
      failOn: 'error',
      animated: frames > 1,
      limitInputPixels: limits.maxAnimatedPixels,
    })
      .resize(256, 256, { fit: 'inside' })
      .raw()
      .toBuffer();
  } catch {
    throw unsupported('the image data is truncated or corrupt');
  }
  // EXIF orientations 5-8 store the picture rotated by 90 degrees: report what a viewer sees.
  const swapped = (metadata.orientation ?? 1) >= 5;
  return { contentType, width: swapped ? height : width, height: swapped ? width : height, frames };
}
