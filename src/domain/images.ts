/**
 * The Images service: upload, read, edit, delete and list images of an account. Takes plain values
 * (buffers, strings, numbers) and returns plain records; it never sees HTTP.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { UploadLimits } from '../config.js';
import { PictorError, badRequest, imageNotFound } from '../errors.js';
import { type ProbeContext, probeImage } from '../imaging/probe.js';
import type { BlobStore, MetaStore } from '../store/ports.js';
import { generateImageId, isUuidShaped, validateCustomId } from './ids.js';
import { checkMetadata } from './metadata.js';
import type { ImageFilter, ImageRecord, ListCursor, Metadata, SortOrder, UploadedOriginal } from './model.js';
import type { PublicUrls } from './public-urls.js';
import type { UploadTelemetry } from './telemetry.js';
import type { UrlFetcher } from './url-fetch.js';

const MAX_CREATOR_CHARS = 1024;
const MAX_FILENAME_CHARS = 255;

export type UploadSource = { kind: 'file'; bytes: Buffer; filename: string } | { kind: 'url'; url: string };

export interface UploadInput {
  source: UploadSource;
  id?: string;
  metadata?: Metadata;
  requireSignedUrls?: boolean;
  creator?: string;
  /**
   * Only for credentials with `images:import` (the HTTP layer drops it otherwise): the id may have any
   * valid shape (a UUID, as Cloudflare generates) and go with requireSignedURLs, and the image keeps
   * this upload time (epoch ms).
   */
  imported?: { uploadedAt?: number };
}

export interface ImageEdit {
  metadata?: Metadata;
  requireSignedUrls?: boolean;
  creator?: string | null;
}

/** The image as the API shows it (Cloudflare's `Image` object). */
export interface ImageView {
  id: string;
  filename: string;
  uploaded: string;
  requireSignedURLs: boolean;
  variants: string[];
  meta: Metadata;
  creator: string | null;
  draft?: true;
}

export interface ImageListPage {
  images: ImageView[];
  totalCount: number;
}

export interface ImageListSlice {
  images: ImageView[];
  continuationToken: string | null;
}

export interface ImageServiceOptions {
  limits: UploadLimits;
  /** Upload validation: limits, the work pool and the SVG workers. */
  probe: ProbeContext;
  imageQuota: number;
  now?: () => number;
  /** Told of every upload whose image committed (metrics); refusals are not counted here. */
  telemetry?: UploadTelemetry;
  /** Told of every committed upload with its bytes, still in memory (delivery prepares masters from them). */
  onCommitted?: (image: ImageRecord, original: Buffer) => void;
}

function checkCreator(creator: string | null | undefined): void {
  if (typeof creator !== 'string') return;
  if (Array.from(creator).length > MAX_CREATOR_CHARS) {
    throw badRequest(`creator must be at most ${MAX_CREATOR_CHARS} characters`);
  }
  // A lone surrogate (JSON "\ud800") would be stored as U+FFFD: the creator read back would not be the one sent.
  if (/\p{Cs}/u.test(creator)) throw badRequest('creator must be well-formed Unicode (no lone surrogates)');
  if (creator.includes('\u0000')) throw badRequest('creator must not contain the character U+0000');
}

export function cleanFilename(name: string, fallback: string): string {
  // eslint-disable-next-line no-control-regex
  const base = name.replace(/[\u0000-\u001f\u007f]/g, '').split(/[\\/]/).pop()?.trim() ?? '';
  const chosen = base === '' ? fallback : base;
  return Array.from(chosen).slice(0, MAX_FILENAME_CHARS).join('');
}

/** Continuation tokens are opaque to clients: base64url JSON of the last position and the sort order. */
function encodeToken(cursor: ListCursor, order: SortOrder): string {
  return Buffer.from(JSON.stringify({ t: cursor.uploadedAt, i: cursor.id, o: order })).toString('base64url');
}

function decodeToken(token: string, order: SortOrder): ListCursor {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { t?: unknown; i?: unknown; o?: unknown };
    if (typeof parsed.t === 'number' && typeof parsed.i === 'string' && !parsed.i.includes('\u0000') && parsed.o === order) {
      return { uploadedAt: parsed.t, id: parsed.i };
    }
  } catch {
    // fall through
  }
  throw badRequest('Invalid continuation_token');
}

export class ImageService {
  private readonly now: () => number;

  constructor(
    private readonly meta: MetaStore,
    private readonly blobs: BlobStore,
    private readonly fetcher: UrlFetcher,
    private readonly urls: PublicUrls,
    private readonly options: ImageServiceOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Checks the attributes every new image (upload or direct-upload draft) shares and returns its id and
   * metadata; a custom id that already exists is refused here, before any bytes are read.
   */
  async checkNewImage(
    accountId: string,
    input: Omit<UploadInput, 'source'>,
  ): Promise<{ id: string; meta: Metadata; requireSignedUrls: boolean }> {
    const requireSignedUrls = input.requireSignedUrls ?? false;
    if (input.id !== undefined) {
      // An import keeps the source's ids, generated (UUID-shaped) ones included.
      validateCustomId(input.id, { allowUuid: input.imported !== undefined });
      if (requireSignedUrls && !input.imported) throw badRequest('Custom ids cannot be combined with requireSignedURLs=true');
    }
    const meta = checkMetadata(input.metadata ?? {}, this.options.limits.maxMetadataBytes);
    checkCreator(input.creator);
    const id = input.id ?? generateImageId();
    if (input.id !== undefined && (await this.meta.findImage(accountId, id))) throw new PictorError(5409);
    return { id, meta, requireSignedUrls };
  }

  async upload(accountId: string, input: UploadInput): Promise<ImageView> {
    const { id, meta, requireSignedUrls } = await this.checkNewImage(accountId, input);

    const { bytes, filename } =
      input.source.kind === 'file' ? input.source : await this.fetcher.fetch(input.source.url);
    const original = await this.storeOriginal(accountId, bytes, cleanFilename(filename, id.split('/').pop() ?? id));
    const image: ImageRecord = {
      accountId,
      id,
      creator: input.creator ?? null,
      meta,
      requireSignedUrls,
      draft: false,
      version: 1,
      ...original,
      ...(input.imported?.uploadedAt !== undefined && { uploadedAt: input.imported.uploadedAt }),
    };
    try {
      await this.meta.insertImage(image, this.options.imageQuota);
    } catch (error) {
      await this.discardOriginal(original);
      throw error;
    }
    this.committed('api', image, bytes);
    return this.describe(accountId, image);
  }

  /** After an upload's row committed, by either surface: metrics and the commit hook. */
  committed(surface: 'api' | 'upload_host', image: ImageRecord, bytes: Buffer): void {
    this.options.telemetry?.uploadAccepted(surface, bytes.length);
    this.options.onCommitted?.(image, bytes);
  }

  /**
   * Validates upload bytes and stores them durably. The caller commits the row that makes them
   * visible, and calls `discardOriginal` if that fails.
   */
  async storeOriginal(accountId: string, bytes: Buffer, filename: string): Promise<UploadedOriginal> {
    if (bytes.length > this.options.limits.maxUploadBytes) throw new PictorError(5413);
    const probed = await probeImage(bytes, this.options.probe);
    const blobKey = `${accountId}/${randomBytes(16).toString('hex')}`;
    await this.blobs.put(blobKey, bytes);
    return {
      filename,
      blobKey,
      contentType: probed.contentType,
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      width: probed.width,
      height: probed.height,
      frames: probed.frames,
      uploadedAt: this.now(),
    };
  }

  async discardOriginal(original: UploadedOriginal): Promise<void> {
    await this.blobs.delete(original.blobKey).catch(() => undefined);
  }

  async get(accountId: string, imageId: string): Promise<ImageView> {
    return this.describe(accountId, await this.find(accountId, imageId));
  }

  async edit(accountId: string, imageId: string, edit: ImageEdit): Promise<ImageView> {
    const current = await this.find(accountId, imageId);
    const meta = edit.metadata === undefined ? undefined : checkMetadata(edit.metadata, this.options.limits.maxMetadataBytes);
    checkCreator(edit.creator);
    if (edit.requireSignedUrls === true && !isUuidShaped(current.id)) {
      throw badRequest('Images with a custom id cannot require signed URLs');
    }
    const updated = await this.meta.updateImage(accountId, imageId, {
      ...(meta !== undefined && { meta }),
      ...(edit.requireSignedUrls !== undefined && { requireSignedUrls: edit.requireSignedUrls }),
      ...(edit.creator !== undefined && { creator: edit.creator }),
    });
    if (!updated) throw imageNotFound();
    return this.describe(accountId, updated);
  }

  /** Removes the row first (the image is gone for every reader at once), then its bytes. */
  async delete(accountId: string, imageId: string): Promise<void> {
    const removed = await this.meta.deleteImage(accountId, imageId);
    if (!removed) throw imageNotFound();
    if (removed.blobKey) await this.blobs.delete(removed.blobKey);
  }

  async original(accountId: string, imageId: string): Promise<{ stream: Readable; size: number; contentType: string }> {
    const image = await this.find(accountId, imageId);
    if (image.draft || !image.blobKey) throw imageNotFound();
    const blob = await this.blobs.get(image.blobKey);
    if (!blob) throw new PictorError(5500, 'The original of this image is missing from storage');
    return { stream: blob.stream, size: blob.info.size, contentType: image.contentType ?? 'application/octet-stream' };
  }

  async stats(accountId: string): Promise<{ allowed: number; current: number }> {
    return { allowed: this.options.imageQuota, current: await this.meta.countImages(accountId) };
  }

  /** v1 list: newest first, page numbers from 1. */
  async listPage(accountId: string, filter: ImageFilter, page: number, perPage: number): Promise<ImageListPage> {
    const [records, totalCount] = await Promise.all([
      this.meta.listImagesPage(accountId, filter, (page - 1) * perPage, perPage),
      this.meta.countImages(accountId, filter),
    ]);
    return { images: await this.viewAll(accountId, records), totalCount };
  }

  /** v2 list: keyset pagination with an opaque continuation token, stable under inserts and deletes. */
  async listSlice(
    accountId: string,
    filter: ImageFilter,
    order: SortOrder,
    perPage: number,
    continuationToken: string | undefined,
  ): Promise<ImageListSlice> {
    const after = continuationToken ? decodeToken(continuationToken, order) : undefined;
    const records = await this.meta.listImagesAfter(accountId, filter, order, after, perPage + 1);
    const hasMore = records.length > perPage;
    const pageRecords = hasMore ? records.slice(0, perPage) : records;
    const last = pageRecords[pageRecords.length - 1];
    return {
      images: await this.viewAll(accountId, pageRecords),
      continuationToken: hasMore && last ? encodeToken({ uploadedAt: last.uploadedAt, id: last.id }, order) : null,
    };
  }

  private async find(accountId: string, imageId: string): Promise<ImageRecord> {
    const image = await this.meta.findImage(accountId, imageId);
    if (!image) throw imageNotFound();
    return image;
  }

  /** The image as the API shows it. */
  async describe(accountId: string, image: ImageRecord): Promise<ImageView> {
    const [view] = await this.viewAll(accountId, [image]);
    return view as ImageView;
  }

  private async viewAll(accountId: string, images: ImageRecord[]): Promise<ImageView[]> {
    if (images.length === 0) return [];
    return images.map(await this.viewer(accountId));
  }

  /** Describes any image of the account without further reads (the account and its variants read once). */
  async viewer(accountId: string): Promise<(image: ImageRecord) => ImageView> {
    const [account, variants] = await Promise.all([this.meta.findAccount(accountId), this.meta.listVariants(accountId)]);
    if (!account) throw imageNotFound();
    const names = variants.map((v) => v.name);
    return (image) => ({
      id: image.id,
      filename: image.filename,
      uploaded: new Date(image.uploadedAt).toISOString(),
      requireSignedURLs: image.requireSignedUrls,
      variants: names.map((name) => this.urls.delivery(account.hash, image.id, name)),
      meta: image.meta,
      creator: image.creator,
      ...(image.draft && { draft: true as const }),
    });
  }
}
