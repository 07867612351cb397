/**
 * `quality=auto` (a Pictor extension): per image, the smallest encoding that meets a perceptual target.
 *
 * The rendition is materialised once as pixels (the reference). Each format has a target SSIM against
 * that reference: the fidelity that the common default (sharp's quality 80, and so ipx's and most Node
 * servers') reaches end to end on photographs, measured against an exact resize of the original (README,
 * Performance). A tuned encoder is searched by quality, bisecting between 40 and the default quality, for
 * the smallest output that still reaches the target. Images the target is out of reach for (small,
 * detailed renditions, where JPEG at its default quality scores far below it) get the default encoding,
 * so an auto rendition is never larger than the one without `quality=auto`.
 *
 * Why a fixed target and not "as faithful as this image's quality-80 encoding": Pictor's renditions
 * start closer to the original (masters are resized from a full decode, not a shrink-on-load one), so
 * matching the default's end-to-end fidelity leaves room the encoder can spend on fewer bytes.
 *
 * It costs about seven encodes and SSIM comparisons per encoder tried, paid once: the result is cached
 * like any render. AVIF, PNG, GIF and animations are encoded at their defaults.
 */
import sharp, { type Sharp } from 'sharp';
import { ssim } from 'ssim.js';

export type AutoFormat = 'jpeg' | 'webp';

/**
 * Target SSIM (ssim.js, Weber variant, mean over the image) per format. Measured on the test photos at
 * 800 px: sharp's quality-80 output after its shrink-on-load resize scores 0.9960-0.9964 (JPEG) and
 * 0.9934 (WebP) against an exact resize of the original.
 */
export const AUTO_QUALITY_TARGET: Record<AutoFormat, number> = { jpeg: 0.9965, webp: 0.9935 };
const LOWEST_QUALITY = 40;

interface Pixels {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/** RGBA view for ssim.js (it reads 4 bytes per pixel). */
async function rgba(image: Sharp): Promise<{ data: Uint8ClampedArray; width: number; height: number }> {
  const { data, info } = await image.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

function fromPixels(pixels: Pixels): Sharp {
  return sharp(pixels.data, { raw: { width: pixels.width, height: pixels.height, channels: pixels.channels } });
}

/** One way to encode at a given quality. */
type Encoder = (image: Sharp, quality: number) => Sharp;

/**
 * The tuned encoders searched, per format. Measured on the test photos at 800 px against an exact
 * resize: mozjpeg with quantisation table 4 reaches a given SSIM in 0.88-0.92 of libjpeg's bytes (plain
 * mozjpeg, table 3, in more bytes than libjpeg by SSIM, so it is not tried); WebP at effort 6 in 0.94,
 * and with the `photo` preset 0.92 on photographs (the `default` preset is kept for graphics).
 */
function tunedEncoders(format: AutoFormat, progressive: boolean): Encoder[] {
  if (format === 'jpeg') return [(image, quality) => image.jpeg({ quality, mozjpeg: true, quantisationTable: 4, progressive })];
  return [
    (image, quality) => image.webp({ quality, effort: 6, preset: 'photo' }),
    (image, quality) => image.webp({ quality, effort: 6 }),
  ];
}

/**
 * Encodes the pipeline's output at the smallest size whose SSIM reaches the format's target, or with
 * `fallback` (the encoding used without `quality=auto`) when that is smaller or no quality up to
 * `defaultQuality` reaches it. `image` is the fully built pipeline (resize, adjustments, metadata), not
 * yet encoded; it runs once to give the pixels every candidate is encoded from. Only when the pipeline
 * writes metadata (kept EXIF/XMP, a copyright) does the winner run through it again, to carry it.
 */
export async function encodeAtAutoQuality(
  image: Sharp,
  format: AutoFormat,
  options: { progressive: boolean; defaultQuality: number; fallback: Encoder; writesMetadata: boolean },
): Promise<Buffer> {
  const { data, info } = await image.clone().raw().toBuffer({ resolveWithObject: true });
  const pixels: Pixels = { data, width: info.width, height: info.height, channels: info.channels };
  const reference = await rgba(fromPixels(pixels));
  const similarity = async (bytes: Buffer): Promise<number> => ssim(reference, await rgba(sharp(bytes)), { ssim: 'weber' }).mssim;
  const target = AUTO_QUALITY_TARGET[format];

  let best: { encoder: Encoder; quality: number; bytes: Buffer } | undefined;
  // Per encoder, bisect for the lowest quality reaching the target (SSIM rises with quality, near enough).
  for (const encoder of tunedEncoders(format, options.progressive)) {
    let low = LOWEST_QUALITY;
    let high = options.defaultQuality;
    while (low <= high) {
      const quality = Math.floor((low + high) / 2);
      const bytes = await encoder(fromPixels(pixels), quality).toBuffer();
      if ((await similarity(bytes)) >= target) {
        if (best === undefined || bytes.length < best.bytes.length) best = { encoder, quality, bytes };
        high = quality - 1;
      } else {
        low = quality + 1;
      }
    }
  }
  const fallbackBytes = await options.fallback(fromPixels(pixels), options.defaultQuality).toBuffer();
  // A tuned encoding at a high quality can outweigh the default one; the default then wins.
  const winner = best && best.bytes.length <= fallbackBytes.length ? best : { encoder: options.fallback, quality: options.defaultQuality, bytes: fallbackBytes };
  return options.writesMetadata ? winner.encoder(image, winner.quality).toBuffer() : winner.bytes;
}
