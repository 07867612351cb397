/**
 * Pre-reduced masters: for a source much larger than what is usually asked of it, a copy scaled to
 * 2048 px on its long side (oriented, sRGB, high quality) that small renditions are made from instead of
 * the original. Decoding a 13 MP JPEG costs most of a render even with shrink-on-load; the master cuts
 * a 800 px render of photo-4000w.jpg from ~104 ms to ~36 ms of one core (measured with sharp, one
 * libvips thread), and a 320 px one from ~84 ms to ~14 ms.
 *
 * A rendition is made from the master only when it is at most 65% of the master on both axes, so the
 * master's own (light) compression is shrunk again by the downscale and cannot show (measured against
 * an exact resize of photo-4000w.jpg: SSIM 0.9987 from the master against 0.9971 straight from the
 * original at 800 px, 0.9989 against 0.9990 at 1200 and 1300 px); and never
 * for what needs the original's exact pixels or metadata: trims (source coordinates), animations,
 * kept EXIF, SVG.
 */
import sharp from 'sharp';
import type { CostSource } from './cost.js';
import type { Geometry } from './geometry.js';
import type { RenderPlan } from './plan.js';

export const MASTER_LONG_SIDE = 2048;
/** Masters are made only for sources at least this much larger than the master (by long side). */
const SOURCE_TO_MASTER = 1.5;
/** A rendition from the master is at most this fraction of it on each axis. */
const MAX_SHARE_OF_MASTER = 0.65;

/** The master's size for a source of this displayed size (aspect kept, long side 2048). */
export function masterSize(source: { width: number; height: number }): { width: number; height: number } {
  const scale = MASTER_LONG_SIDE / Math.max(source.width, source.height);
  return { width: Math.max(1, Math.round(source.width * scale)), height: Math.max(1, Math.round(source.height * scale)) };
}

/** The size the source is scaled to before any crop or pad, or undefined when it is not scaled. */
function scaledSize(source: CostSource, geometry: Geometry): { width: number; height: number } | undefined {
  if (geometry.resize) return geometry.resize;
  const crop = geometry.crop;
  if (crop && 'attention' in crop) {
    const scale = Math.max(crop.width / source.width, crop.height / source.height);
    return { width: source.width * scale, height: source.height * scale };
  }
  return undefined;
}

/** Whether the image has a master at all: a still raster image much larger than the master. */
export function hasMaster(source: CostSource): boolean {
  if (source.frames > 1 || source.contentType === 'image/svg+xml') return false;
  return Math.max(source.width, source.height) >= MASTER_LONG_SIDE * SOURCE_TO_MASTER;
}

/** What making the master costs the render pool: the full decode (no shrink-on-load) and the master. */
export function masterCost(source: CostSource): number {
  const master = masterSize(source);
  return source.width * source.height + master.width * master.height;
}

/** Whether this rendition may be made from the master instead of the original. */
export function rendersFromMaster(source: CostSource, plan: RenderPlan, geometry: Geometry): boolean {
  if (!hasMaster(source)) return false;
  // Trims are in the original's pixels; quarter turns swap the axes the size test below compares.
  if (geometry.trim || plan.metadata !== 'none' || plan.rotate === 90 || plan.rotate === 270) return false;
  const scaled = scaledSize(source, geometry);
  if (!scaled) return false;
  const master = masterSize(source);
  return scaled.width <= master.width * MAX_SHARE_OF_MASTER && scaled.height <= master.height * MAX_SHARE_OF_MASTER;
}

/**
 * Makes the master from the original's bytes: oriented, long side 2048, JPEG at quality 92 without
 * chroma subsampling, or WebP at quality 95 with exact alpha when the source has transparency.
 */
export async function makeMaster(original: Buffer, timeoutSeconds: number): Promise<Buffer> {
  const image = sharp(original, { autoOrient: true, failOn: 'none', limitInputPixels: 100_000_000 })
    .timeout({ seconds: timeoutSeconds })
    .resize(MASTER_LONG_SIDE, MASTER_LONG_SIDE, { fit: 'inside' });
  const { hasAlpha } = await image.metadata();
  return hasAlpha
    ? image.webp({ quality: 95, alphaQuality: 100, effort: 2 }).toBuffer()
    : image.jpeg({ quality: 92, chromaSubsampling: '4:4:4' }).toBuffer();
}
