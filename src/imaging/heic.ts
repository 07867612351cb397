/**
 * HEIC (HEVC-coded HEIF, what iPhones store) made renderable. This libvips build decodes only AV1 HEIF
 * (AVIF), so HEIC is decoded by libheif compiled to WebAssembly on a worker thread, and turned into a PNG
 * labelled with the image's ICC profile: the renderer then treats it like any other source (orientation
 * is already applied by libheif; the profile is converted to sRGB like a CMYK or P3 JPEG's).
 *
 * Decoding a 12 MP photo costs a few seconds of one core, so the result is kept: the last few in memory
 * (the upload check's decode serves the first render and the master), and delivery keeps it in the
 * render cache. The original bytes are stored untouched.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Piscina } from 'piscina';
import sharp from 'sharp';
import type { DecodedHeic } from './heic-worker.js';
import { isHevcHeif, primaryIccProfile } from './heif-boxes.js';
import { withIccProfile } from './png-icc.js';
import { workerPool } from './worker-entry.js';

export { isHevcHeif };

export interface RenderableHeic {
  /** The primary image as displayed, as a PNG carrying the image's ICC profile. */
  png: Buffer;
  width: number;
  height: number;
}

export class HeicUnreadable extends Error {}

function fullyOpaque(rgba: Buffer): boolean {
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 255) return false;
  return true;
}

/** Recent decodes kept in memory, by size (a 12 MP photo is ~20 MB of PNG). */
const RECENT_BYTES = 96 * 1024 * 1024;

export class HeicDecoder {
  private readonly pool: Piscina<Uint8Array, DecodedHeic>;
  private readonly recent = new LRUCache<string, RenderableHeic>({ maxSize: RECENT_BYTES, sizeCalculation: (entry) => Math.max(1, entry.png.length) });
  private readonly inFlight = new Map<string, Promise<RenderableHeic>>();

  constructor(threads: number) {
    this.pool = workerPool<Uint8Array, DecodedHeic>('heic-worker', import.meta.url, threads);
  }

  /** The renderable form of `bytes` (an HEVC HEIC). Throws `HeicUnreadable` when it cannot be decoded. */
  async renderable(bytes: Buffer): Promise<RenderableHeic> {
    const key = createHash('sha256').update(bytes).digest('hex');
    const known = this.recent.get(key);
    if (known) return known;
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const work = this.decode(bytes).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, work);
    const decoded = await work;
    this.recent.set(key, decoded);
    return decoded;
  }

  private async decode(bytes: Buffer): Promise<RenderableHeic> {
    let decoded: DecodedHeic;
    try {
      decoded = await this.pool.run(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (error) {
      throw new HeicUnreadable(`the HEIC image could not be decoded (${(error as Error).message})`);
    }
    const pixels = Buffer.from(decoded.rgba.buffer, decoded.rgba.byteOffset, decoded.rgba.byteLength);
    // The decoder always gives RGBA; a photo's alpha is all opaque and would only cost bytes downstream.
    const image = sharp(pixels, { raw: { width: decoded.width, height: decoded.height, channels: 4 } });
    if (fullyOpaque(pixels)) image.removeAlpha();
    // Fast, lossless: the PNG is an intermediate, read back by the renderer.
    const png = await image.png({ compressionLevel: 1, adaptiveFiltering: false }).toBuffer();
    const icc = primaryIccProfile(bytes);
    return { png: icc ? withIccProfile(png, icc) : png, width: decoded.width, height: decoded.height };
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
