/**
 * Delivery: from `/<account_hash>/<image_id>/<variant or options>` to bytes. `resolve` does every check
 * (image exists, variant or flexible options, signature) and decides the rendition: plan, geometry,
 * format and the cache key that names its bytes. `serve` then serves them from the memory LRU, the
 * render cache or a fresh render (single-flight, through the bounded pool), saying which layer did.
 *
 * The cache key covers the image's blob and version, the variant's version, the plan and the format,
 * so edits (variant options, requireSignedURLs, re-upload under the same id) make old renders
 * unreachable at once, with no purge step. Access is checked on every request, before the cache.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { PictorError } from '../errors.js';
import { type CostSource, renderCost, svgCost } from '../imaging/cost.js';
import { computeGeometry, type Geometry } from '../imaging/geometry.js';
import { CONTENT_TYPES, type FormatChoice, accepts, chooseFormat } from '../imaging/negotiate.js';
import { type RenderPlan, parseFlexibleOptions, planFromVariant } from '../imaging/plan.js';
import { HeicDecoder, HeicUnreadable } from '../imaging/heic.js';
import { describeRemote, type ProbedImage } from '../imaging/probe.js';
import type { UploadLimits } from '../config.js';
import { hasMaster, MASTER_LONG_SIDE, makeMaster, masterCost, rendersFromMaster } from '../imaging/master.js';
import { type RenderSource, renderRaster } from '../imaging/render.js';
import { PoolFullError, type RenderPool } from '../imaging/render-pool.js';
import { SvgRefusal } from '../imaging/svg.js';
import type { SvgWorkers } from '../imaging/svg-workers.js';
import type { BlobStore, MetaStore, RenderCacheStore } from '../store/ports.js';
import type { Account, ImageRecord, Variant } from './model.js';
import { checkSignature } from './signed-urls.js';
import { type DeliveryLayer, type DeliveryTelemetry, SILENT_TELEMETRY, type SignedUrlDenial } from './telemetry.js';

/** Bump when the pipeline's output changes, so old renders are not served for new requests. */
const RENDERER_VERSION = 5;
/** Bumped when masters are made differently, so old ones are not used. */
const MASTER_VERSION = 1;
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
  /** A remote transformation's source bytes (the image is not in the stores). */
  readonly remoteOriginal?: Buffer;
}

/** A remote transformation to resolve (`/cdn-cgi/image/<options>/<source URL>`). */
export interface RemoteDeliveryRequest {
  source: { url: string; bytes: Buffer; sha256: string };
  /** The option list, as in a flexible variant. */
  options: string;
  accept: string;
}

/** How long browsers may keep a remote transformation. */
const REMOTE_MAX_AGE = 86_400;

export interface DeliveryOptions {
  memoryCacheBytes: number;
  /** Largest output (pixels) a flexible variant may ask for; named variants are the owner's choice. */
  maxFlexiblePixels: number;
  /** A render still running after this is abandoned (503). */
  renderTimeoutSeconds: number;
  /** Told about render-cache reads and writes that failed (each is only a miss or a lost copy). */
  onCacheError?: (error: unknown, operation: 'read' | 'write') => void;
  /** Told how long render stages took and why signed URLs were refused. */
  telemetry?: DeliveryTelemetry;
  /** Input limits a remote transformation's source is held to (those of uploads). */
  remoteLimits: UploadLimits;
}

/** A rendition's bytes and the layer that produced them. */
export interface ServedRendition {
  readonly bytes: Buffer;
  readonly layer: DeliveryLayer;
}

/** SVG limits at delivery: the document passed the configured ones at upload; lowering them later must not hide it. */
const NO_SVG_LIMITS = { maxElements: Infinity, maxDepth: Infinity, maxPathCoordinates: Infinity };

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

/** checkSignature's reasons, as the few kinds an operator tells apart. */
function denialKind(reason: string): SignedUrlDenial {
  if (reason === 'missing signature') return 'missing';
  if (reason === 'expired') return 'expired';
  if (reason.startsWith('malformed')) return 'malformed';
  return 'mismatch';
}

function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
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
  // Most originals arrive in one chunk: no copy (every copied megabyte is external memory the GC chases).
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/** The stored image as the pool's cost model and the master rules see it. */
function sourceOf(image: ImageRecord): CostSource {
  return { width: image.width ?? 1, height: image.height ?? 1, frames: image.frames ?? 1, contentType: image.contentType ?? '' };
}

/** The render-cache key of an image's master: dropped with the original's blob key. */
function masterKey(image: ImageRecord): string {
  return createHash('sha256')
    .update(canonicalJson({ r: MASTER_VERSION, m: MASTER_LONG_SIDE, a: image.accountId, b: image.blobKey }))
    .digest('hex');
}

const HEIC = 'image/heic';

/** The render-cache key of a HEIC's decoded picture: dropped with the original's blob key. */
function decodedHeicKey(image: ImageRecord): string {
  return createHash('sha256').update(canonicalJson({ d: 'heic', v: 1, a: image.accountId, b: image.blobKey })).digest('hex');
}

/** What a request that joined another's render or cache read was served. */
function coalesced(served: ServedRendition): ServedRendition {
  return { bytes: served.bytes, layer: 'coalesced' };
}

/** How many resolved public deliveries are remembered (see `resolve`). */
const RESOLVED_ENTRIES = 10_000;

export class DeliveryService {
  /** Entries are stored already labelled `memory`, so a hit allocates nothing. */
  private readonly memory: LRUCache<string, ServedRendition>;
  private readonly inFlight = new Map<string, Promise<ServedRendition>>();
  private readonly mastersInFlight = new Map<string, Promise<Buffer>>();
  private readonly telemetry: DeliveryTelemetry;
  /** Render-cache writes and masters still under way (they run after the answer was sent). */
  private readonly backgroundWork = new Set<Promise<void>>();
  /** Public (unsigned) resolutions, valid while the store's generation for their image is unchanged. */
  private readonly resolved = new LRUCache<string, { generation: number; delivery: Delivery }>({ max: RESOLVED_ENTRIES });
  /** What a remote source is (format, size), by its sha256: read from its header once, not per request. */
  private readonly remoteSources = new LRUCache<string, ProbedImage>({ max: RESOLVED_ENTRIES });
  /** Account hash → account id, as learnt from resolutions. */
  private readonly accountIds = new LRUCache<string, string>({ max: RESOLVED_ENTRIES });

  constructor(
    private readonly meta: MetaStore,
    private readonly blobs: BlobStore,
    private readonly renders: RenderCacheStore,
    private readonly pool: RenderPool,
    private readonly svgWorkers: SvgWorkers,
    private readonly heic: HeicDecoder,
    private readonly options: DeliveryOptions,
  ) {
    this.memory = new LRUCache<string, ServedRendition>({
      maxSize: Math.max(1, options.memoryCacheBytes),
      sizeCalculation: (served) => Math.max(1, served.bytes.length),
    });
    this.telemetry = options.telemetry ?? SILENT_TELEMETRY;
  }

  /**
   * Resolves a request. Answers for public images are remembered until something they depend on is
   * written (`MetaStore.generation` of that account and image, which also sees other nodes' writes), so
   * the hot path of a popular image skips the database and an upload elsewhere does not empty the memo.
   * Signed answers depend on the query and the clock: never kept.
   */
  async resolve(request: DeliveryRequest): Promise<Delivery> {
    const memoKey = [
      request.accountHash,
      request.imageId,
      request.variant,
      accepts(request.accept, 'image/avif') ? 'avif' : '',
      accepts(request.accept, 'image/webp') ? 'webp' : '',
    ].join('\n');
    // The generation is read before the store, so a write during the lookups makes this answer stale
    // at once. The account's id is needed for it: learnt on the first request, never remembered before.
    const accountId = this.accountIds.get(request.accountHash);
    // Another node's write that finished before this request must be seen (no stale "at once").
    if (accountId !== undefined) await this.meta.settled();
    const generation = accountId === undefined ? undefined : this.meta.generation(accountId, request.imageId);
    const remembered = this.resolved.get(memoKey);
    if (remembered !== undefined && remembered.generation === generation) return remembered.delivery;
    const { delivery, signed } = await this.resolveFromStore(request);
    // An account's hash never changes, so this mapping never goes stale.
    this.accountIds.set(request.accountHash, delivery.image.accountId);
    if (!signed && generation !== undefined) this.resolved.set(memoKey, { generation, delivery });
    return delivery;
  }

  private async resolveFromStore(request: DeliveryRequest): Promise<{ delivery: Delivery; signed: boolean }> {
    const account = await this.meta.findAccountByHash(request.accountHash);
    if (!account) throw notFound();
    const image = await this.meta.findImage(account.id, request.imageId);
    if (!image || image.draft || !image.blobKey) throw notFound();

    const variant = await this.meta.findVariant(account.id, safeDecode(request.variant));
    let plan: RenderPlan;
    const flexible = !variant && request.variant.includes('=');
    if (variant) {
      plan = planFromVariant(variant.options);
    } else if (flexible) {
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
      if (!check.valid) {
        this.telemetry.signedUrlDenied(denialKind(check.reason));
        throw new PictorError(9425, `Image access denied: ${check.reason}`);
      }
      exp = check.exp;
    }

    const geometry = computeGeometry(image.width ?? 1, image.height ?? 1, plan);
    if (flexible) this.checkFlexibleSize(geometry);
    const choice = chooseFormat(
      plan,
      { contentType: image.contentType ?? '', frames: image.frames ?? 1 },
      geometry,
      request.accept,
    );
    const cacheKey = createHash('sha256')
      .update(
        canonicalJson(
          choice.format === 'svg'
            ? // Every delivery of an SVG is the same sanitized document, whatever the options: sanitized once.
              { r: RENDERER_VERSION, b: image.blobKey, f: 'svg' }
            : {
                r: RENDERER_VERSION,
                a: account.id,
                i: image.id,
                b: image.blobKey,
                iv: image.version,
                vv: variant?.version ?? 0,
                p: plan,
                f: choice.format,
                bl: choice.baseline,
              },
        ),
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

  /**
   * Resolves a remote transformation: the same option parser, size cap, negotiation and cache keys as a
   * flexible variant, for a source fetched by RemoteOrigins. Renditions are keyed by the source's
   * sha256, so a changed source never serves an old rendition.
   */
  async resolveRemote(request: RemoteDeliveryRequest): Promise<Delivery> {
    const plan = parseFlexibleOptions(request.options);
    const described = this.remoteSources.get(request.source.sha256) ?? (await describeRemote(request.source.bytes, this.options.remoteLimits));
    this.remoteSources.set(request.source.sha256, described);
    const image: ImageRecord = {
      accountId: 'remote',
      id: request.source.url,
      filename: request.source.url,
      creator: null,
      meta: {},
      requireSignedUrls: false,
      uploadedAt: 0,
      draft: false,
      // Names the source's bytes (never read from the blob store): masters are keyed by it.
      blobKey: `remote/${request.source.sha256}`,
      contentType: described.contentType,
      size: request.source.bytes.length,
      sha256: request.source.sha256,
      width: described.width,
      height: described.height,
      frames: described.frames,
      version: 1,
    };
    const geometry = computeGeometry(described.width, described.height, plan);
    this.checkFlexibleSize(geometry);
    const choice = chooseFormat(plan, { contentType: described.contentType, frames: described.frames }, geometry, request.accept);
    const cacheKey = createHash('sha256')
      .update(canonicalJson(choice.format === 'svg' ? { r: RENDERER_VERSION, remote: request.source.sha256, f: 'svg' } : { r: RENDERER_VERSION, remote: request.source.sha256, p: plan, f: choice.format, bl: choice.baseline }))
      .digest('hex');
    return {
      cacheKey,
      etag: `"${cacheKey.slice(0, 40)}"`,
      contentType: CONTENT_TYPES[choice.format],
      cacheControl: `public, max-age=${REMOTE_MAX_AGE}`,
      varyAccept: choice.negotiated,
      image,
      plan,
      geometry,
      choice,
      remoteOriginal: request.source.bytes,
    };
  }

  /** Flexible options come from anyone with a URL: their output size is capped (9413, as Cloudflare's "image too large"). */
  private checkFlexibleSize(geometry: Geometry): void {
    const largest = Math.max(geometry.width * geometry.height, geometry.resize ? geometry.resize.width * geometry.resize.height : 0);
    if (largest > this.options.maxFlexiblePixels) {
      throw new PictorError(
        9413,
        `The requested output (${geometry.width}x${geometry.height}) exceeds ${this.options.maxFlexiblePixels} pixels`,
      );
    }
  }

  private cacheControl(account: Account, variant: Variant | undefined, signed: boolean, exp: number | undefined, now: number): string {
    if (signed) {
      const remaining = exp === undefined ? SIGNED_MAX_AGE : Math.max(0, exp - Math.floor(now / 1000));
      return `private, max-age=${Math.min(remaining, SIGNED_MAX_AGE)}`;
    }
    return `public, max-age=${variant?.options.browser_ttl ?? account.browserTtl}`;
  }

  /** The rendition's bytes: memory, then disk cache, then one shared render per key. */
  async serve(delivery: Delivery): Promise<ServedRendition> {
    const key = delivery.cacheKey;
    const cached = this.memory.get(key);
    if (cached) return cached;
    const pending = this.inFlight.get(key);
    if (pending) return pending.then(coalesced);
    const started = this.produce(delivery).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, started);
    return started;
  }

  private async produce(delivery: Delivery): Promise<ServedRendition> {
    const stored = await this.fromRenderCache(delivery.cacheKey);
    if (stored) {
      this.memory.set(delivery.cacheKey, { bytes: stored, layer: 'memory' });
      return { bytes: stored, layer: 'render_cache' };
    }
    const bytes = await this.admitted(delivery);
    this.memory.set(delivery.cacheKey, { bytes, layer: 'memory' });
    this.cacheInBackground(delivery.cacheKey, bytes);
    return { bytes, layer: 'render' };
  }

  /** A render-cache read; a failed one is only a miss (and is reported). */
  private fromRenderCache(key: string): Promise<Buffer | undefined> {
    return this.renders.get(key).catch((error: unknown) => {
      this.options.onCacheError?.(error, 'read');
      return undefined;
    });
  }

  /**
   * Off the response path: the answer never waits for the render cache (a PUT to S3 can take a while).
   * A failed write only means the next node renders again.
   */
  private cacheInBackground(key: string, bytes: Buffer): void {
    const write = this.renders.put(key, bytes).catch((error: unknown) => this.options.onCacheError?.(error, 'write'));
    this.backgroundWork.add(write);
    void write.finally(() => this.backgroundWork.delete(write));
  }

  /**
   * The image's pre-reduced master (imaging/master.ts): from memory, the render cache (shared by every
   * node, and dropped with the original's blob key), or made once from the original.
   */
  private async masterOf(image: ImageRecord, original?: Buffer): Promise<Buffer> {
    const key = masterKey(image);
    const remembered = this.memory.get(key);
    if (remembered) return remembered.bytes;
    const pending = this.mastersInFlight.get(key);
    if (pending) return pending;
    const making = this.loadOrMakeMaster(key, image, original).finally(() => this.mastersInFlight.delete(key));
    this.mastersInFlight.set(key, making);
    return making;
  }

  /** `original`: the source's bytes when they are not in the stores (a remote transformation's). */
  private async loadOrMakeMaster(key: string, image: ImageRecord, original?: Buffer): Promise<Buffer> {
    const stored = await this.fromRenderCache(key);
    if (stored) {
      this.memory.set(key, { bytes: stored, layer: 'memory' });
      return stored;
    }
    return this.keepMaster(key, makeMaster(original ?? (await this.renderableSource(image)), this.options.renderTimeoutSeconds));
  }

  /**
   * The bytes the raster pipeline reads for an image: the original, or for HEIC (which libvips cannot
   * decode here) its decoded PNG, kept in the render cache so it is decoded once per image.
   */
  private async renderableSource(image: ImageRecord): Promise<Buffer> {
    if (image.contentType !== HEIC) return this.readOriginal(image);
    const key = decodedHeicKey(image);
    const cached = await this.fromRenderCache(key);
    if (cached) return cached;
    return this.decodedHeic(key, await this.readOriginal(image));
  }

  private async decodedHeic(key: string, original: Buffer): Promise<Buffer> {
    try {
      const { png } = await this.heic.renderable(original);
      this.cacheInBackground(key, png);
      return png;
    } catch (error) {
      if (error instanceof HeicUnreadable) throw new PictorError(9520, error.message, { cause: error });
      throw error;
    }
  }

  /** A master just made: remembered in memory and written to the render cache (shared by every node). */
  private async keepMaster(key: string, making: Promise<Buffer>): Promise<Buffer> {
    const master = await making;
    this.memory.set(key, { bytes: master, layer: 'memory' });
    this.cacheInBackground(key, master);
    return master;
  }

  /**
   * Told of a newly committed upload while its bytes are still in memory: when the image will have a
   * master, makes it now in the background (through the pool, at its cost), so the first small rendition
   * neither waits for it nor reads the original back from storage. When the pool has no room the
   * master is made by the first rendition that needs it, as before.
   */
  prepareMaster(image: ImageRecord, original: Buffer): void {
    const source = sourceOf(image);
    if (!hasMaster(source)) return;
    const key = masterKey(image);
    const preparing = this.pool
      .run(masterCost(source), async () => {
        if (this.memory.has(key) || this.mastersInFlight.has(key)) return;
        const renderable = image.contentType === HEIC ? this.decodedHeic(decodedHeicKey(image), original) : Promise.resolve(original);
        const making = this.keepMaster(key, renderable.then((bytes) => makeMaster(bytes, this.options.renderTimeoutSeconds))).finally(() =>
          this.mastersInFlight.delete(key),
        );
        this.mastersInFlight.set(key, making);
        await making;
      })
      .catch(() => undefined);
    this.backgroundWork.add(preparing);
    void preparing.finally(() => this.backgroundWork.delete(preparing));
  }

  /** Resolves once every render-cache write and master started so far has ended: before the stores close. */
  async flush(): Promise<void> {
    // A master finishing starts its own cache write: wait until nothing is left.
    while (this.backgroundWork.size > 0) await Promise.all([...this.backgroundWork]);
  }

  /** Runs the render through the pool, weighed by what it decodes and produces. */
  private async admitted(delivery: Delivery): Promise<Buffer> {
    const { image, plan, geometry, choice } = delivery;
    const source = sourceOf(image);
    const cost = choice.format === 'svg' ? svgCost(image.size ?? 0) : renderCost(source, geometry, source.frames > 1 && plan.anim);
    const enqueued = performance.now();
    try {
      return await this.pool.run(cost, () => {
        this.telemetry.renderStage('queue_wait', secondsSince(enqueued));
        return this.render(delivery);
      });
    } catch (error) {
      if (error instanceof PoolFullError) throw new PictorError(9523, undefined, { retryAfter: 1 });
      throw error;
    }
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
    const source = sourceOf(image);
    const remote = delivery.remoteOriginal;
    if (choice.format !== 'svg' && rendersFromMaster(source, plan, geometry)) {
      return this.rasterize({ bytes: await this.masterOf(image, remote), frames: 1 }, delivery);
    }
    if (choice.format === 'svg') {
      const original = remote ?? (await this.readOriginal(image));
      const sanitizing = performance.now();
      try {
        return (await this.svgWorkers.inspect(original, NO_SVG_LIMITS)).sanitized;
      } catch (error) {
        if (error instanceof SvgRefusal) throw new PictorError(9520, error.message);
        throw error;
      } finally {
        this.telemetry.renderStage('svg_sanitize', secondsSince(sanitizing));
      }
    }
    return this.rasterize({ bytes: remote ?? (await this.renderableSource(image)), frames: source.frames }, delivery);
  }

  private async rasterize(source: RenderSource, { plan, geometry, choice }: Delivery): Promise<Buffer> {
    const rendering = performance.now();
    try {
      return (await renderRaster(source, plan, geometry, choice, this.options.renderTimeoutSeconds)).bytes;
    } finally {
      // Failed renders count too: a render stopped at its deadline is exactly the time an operator looks for.
      this.telemetry.renderStage('transform_encode', secondsSince(rendering));
    }
  }

  private async readOriginal(image: ImageRecord): Promise<Buffer> {
    const reading = performance.now();
    try {
      const blob = await this.blobs.get(image.blobKey as string);
      if (!blob) throw new PictorError(9500, 'The original of this image is missing from storage');
      return await readAll(blob.stream);
    } finally {
      this.telemetry.renderStage('storage_read', secondsSince(reading));
    }
  }
}
