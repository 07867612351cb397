/**
 * Delivery: from `/<account_hash>/<image_id>/<variant or options>` to bytes. `resolve` does every check
 * (image exists, variant or flexible options, signature) and decides the rendition: plan, geometry,
 * format and the cache key that names its bytes. `bytes` then serves them from the memory LRU, the
 * render cache or a fresh render (single-flight, through the bounded pool).
 *
 * The cache key covers the image's blob and version, the variant's version, the plan and the format,
 * so edits (variant options, requireSignedURLs, re-upload under the same id) make old renders
 * unreachable at once, with no purge step. Access is checked on every request, before the cache.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { PictorError } from '../errors.js';
import { computeGeometry, type Geometry } from '../imaging/geometry.js';
import { CONTENT_TYPES, type FormatChoice, accepts, chooseFormat } from '../imaging/negotiate.js';
import { type RenderPlan, parseFlexibleOptions, planFromVariant } from '../imaging/plan.js';
import { renderRaster } from '../imaging/render.js';
import type { RenderPool } from '../imaging/render-pool.js';
import { sanitizeSvg } from '../imaging/svg.js';
import type { BlobStore, MetaStore, RenderCacheStore } from '../store/ports.js';
import type { Account, ImageRecord, Variant } from './model.js';
import { checkSignature } from './signed-urls.js';

/** Bump when the pipeline's output changes, so old renders are not served for new requests. */
const RENDERER_VERSION = 2;
/** Longest browser cache time of a signed image's response. */
const SIGNED_MAX_AGE = 3600;

export interface DeliveryRequest {
  accountHash: string;
  imageId: string;
  /** The last path segment: a variant name or a flexible option list (still percent-encoded). */
  variant: string;
  /** The request path from `/<account_hash>` on, as received (what signatures cover). */
  signedPath: string;
  /** The query string as received, without `?`. */
  rawQuery: string;
  accept: string;
  now: number;
}

export interface Delivery {
  cacheKey: string;
  etag: string;
  contentType: string;
  cacheControl: string;
  /** The format was chosen from the Accept header. */
  varyAccept: boolean;
  readonly image: ImageRecord;
  readonly plan: RenderPlan;
  readonly geometry: Geometry;
  readonly choice: FormatChoice;
}

export interface DeliveryOptions {
  memoryCacheBytes: number;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function notFound(): PictorError {
  return new PictorError(9404);
}

/** JSON with sorted keys: equal plans give equal keys whatever the option order in the URL. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** How many resolved public deliveries are remembered (see `resolve`). */
const RESOLVED_ENTRIES = 10_000;

export class DeliveryService {
  private readonly memory: LRUCache<string, Buffer>;
  private readonly inFlight = new Map<string, Promise<Buffer>>();
  /** Public (unsigned) resolutions, valid while the store's generation is unchanged. */
  private readonly resolved = new LRUCache<string, { generation: number; delivery: Delivery }>({ max: RESOLVED_ENTRIES });

  constructor(
    private readonly meta: MetaStore,
    private readonly blobs: BlobStore,
    private readonly renders: RenderCacheStore,
    private readonly pool: RenderPool,
    options: DeliveryOptions,
  ) {
    this.memory = new LRUCache<string, Buffer>({
      maxSize: Math.max(1, options.memoryCacheBytes),
      sizeCalculation: (bytes) => Math.max(1, bytes.length),
    });
  }

  /**
   * Resolves a request. Answers for public images are remembered until the metadata store's next
   * write, so the hot path of a popular image skips the database; any edit, delete, variant or key
   * change makes them stale at once. Signed answers depend on the query and the clock: never kept.
   */
  async resolve(request: DeliveryRequest): Promise<Delivery> {
    const memoKey = [
      request.accountHash,
      request.imageId,
      request.variant,
      accepts(request.accept, 'image/avif') ? 'avif' : '',
      accepts(request.accept, 'image/webp') ? 'webp' : '',
    ].join('\n');
    const generation = this.meta.generation();
    const remembered = this.resolved.get(memoKey);
    if (remembered?.generation === generation) return remembered.delivery;
    const { delivery, signed } = await this.resolveFromStore(request);
    if (!signed) this.resolved.set(memoKey, { generation, delivery });
    return delivery;
  }

  private async resolveFromStore(request: DeliveryRequest): Promise<{ delivery: Delivery; signed: boolean }> {
    const account = await this.meta.findAccountByHash(request.accountHash);
    if (!account) throw notFound();
    const image = await this.meta.findImage(account.id, request.imageId);
    if (!image || image.draft || !image.blobKey) throw notFound();

    const variant = await this.meta.findVariant(account.id, safeDecode(request.variant));
    let plan: RenderPlan;
    if (variant) {
      plan = planFromVariant(variant.options);
    } else if (request.variant.includes('=')) {
      if (!account.flexibleVariants) throw new PictorError(9429, 'Flexible variants are not enabled for this account');
      if (image.requireSignedUrls) throw new PictorError(9429, 'Flexible variants cannot be used with images that require signed URLs');
      plan = parseFlexibleOptions(request.variant);
    } else {
      throw new PictorError(9431, `Variant "${request.variant}" not found`);
    }

    const signed = image.requireSignedUrls && !variant?.neverRequireSignedUrls;
    let exp: number | undefined;
    if (signed) {
      const keys = await this.meta.listSigningKeys(account.id);
      const check = checkSignature({
        path: request.signedPath,
        rawQuery: request.rawQuery,
        keys: keys.map((k) => k.value),
        nowSeconds: Math.floor(request.now / 1000),
      });
      if (!check.valid) throw new PictorError(9425, `Image access denied: ${check.reason}`);
      exp = check.exp;
    }

    const geometry = computeGeometry(image.width ?? 1, image.height ?? 1, plan);
    const choice = chooseFormat(
      plan,
      { contentType: image.contentType ?? '', frames: image.frames ?? 1 },
      geometry,
      request.accept,
    );
    const cacheKey = createHash('sha256')
      .update(
        canonicalJson({
          r: RENDERER_VERSION,
          a: account.id,
          i: image.id,
          b: image.blobKey,
          iv: image.version,
          vv: variant?.version ?? 0,
          p: plan,
          f: choice.format,
          bl: choice.baseline,
        }),
      )
      .digest('hex');
    const delivery: Delivery = {
      cacheKey,
      etag: `"${cacheKey.slice(0, 40)}"`,
      contentType: CONTENT_TYPES[choice.format],
      cacheControl: this.cacheControl(account, variant, signed, exp, request.now),
      varyAccept: choice.negotiated,
      image,
      plan,
      geometry,
      choice,
    };
    return { delivery, signed };
  }

  private cacheControl(account: Account, variant: Variant | undefined, signed: boolean, exp: number | undefined, now: number): string {
    if (signed) {
      const remaining = exp === undefined ? SIGNED_MAX_AGE : Math.max(0, exp - Math.floor(now / 1000));
      return `private, max-age=${Math.min(remaining, SIGNED_MAX_AGE)}`;
    }
    return `public, max-age=${variant?.options.browser_ttl ?? account.browserTtl}`;
  }

  /** The rendition's bytes: memory, then disk cache, then one shared render per key. */
  async bytes(delivery: Delivery): Promise<Buffer> {
    const key = delivery.cacheKey;
    const cached = this.memory.get(key);
    if (cached) return cached;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.produce(delivery).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async produce(delivery: Delivery): Promise<Buffer> {
    const stored = await this.renders.get(delivery.cacheKey);
    if (stored) {
      this.memory.set(delivery.cacheKey, stored);
      return stored;
    }
    const bytes = await this.pool.run(() => this.render(delivery));
    this.memory.set(delivery.cacheKey, bytes);
    await this.renders.put(delivery.cacheKey, bytes);
    return bytes;
  }

  private async render(delivery: Delivery): Promise<Buffer> {
    const { image, plan, geometry, choice } = delivery;
    if (choice.format === 'json') {
      const info = {
        width: geometry.width,
        height: geometry.height,
        original: { file_size: image.size, width: image.width, height: image.height, format: image.contentType },
      };
      return Buffer.from(JSON.stringify(info));
    }
    const blob = await this.blobs.get(image.blobKey as string);
    if (!blob) throw new PictorError(9500, 'The original of this image is missing from storage');
    const original = await readAll(blob.stream);
    if (choice.format === 'svg') return sanitizeSvg(original);
    const rendered = await renderRaster(
      { bytes: original, contentType: image.contentType ?? '', frames: image.frames ?? 1 },
      plan,
      geometry,
      choice,
    );
    return rendered.bytes;
  }
}
