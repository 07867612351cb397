/**
 * Direct creator uploads: an app's backend mints a one-time URL (`POST /images/v2/direct_upload`); an
 * end user's browser then POSTs the file to it without credentials. Until then the image exists as a
 * draft (shown by GET with `draft: true`, ignored by lists, stats and delivery).
 *
 * The URL carries 256 bits of secret (only its hash is stored). It works once: the grant is claimed in
 * the same transaction that turns the draft into an image, so of two simultaneous uploads exactly one
 * wins. A refused file (too large, not an image…) does not use the URL. Expired drafts are swept.
 *
 * The URL is handed to untrusted browsers, so it must not be a lever for work: before the body is read,
 * the grant is looked up (unknown, used or expired URLs are answered at once) and leased in the
 * database, so one URL reads and validates at most one body at a time on all nodes; concurrent
 * attempts get 409 at once. The lease is given back if the file is refused, and lapses by itself if
 * the node dies.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PictorError, badRequest } from '../errors.js';
import type { MetaStore } from '../store/ports.js';
import { type ImageService, type ImageView, cleanFilename } from './images.js';
import type { DirectUploadGrant, ImageRecord, Metadata } from './model.js';
import type { PublicUrls } from './public-urls.js';
import { uploadFailed, uploadSucceeded } from './notifications/upload-events.js';

const MINUTE = 60_000;
export const EXPIRY_DEFAULT = 30 * MINUTE;
export const EXPIRY_MIN = 2 * MINUTE;
export const EXPIRY_MAX = 6 * 60 * MINUTE;
/** Clock skew forgiven at both ends of the expiry range. */
const EXPIRY_SLACK = 30_000;
/** Failed uploads to one URL reported to webhooks; later ones are not (the URL's holder could fail them at will). */
export const FAILURE_EVENTS_PER_URL = 5;
/** Expired grants are remembered this long so late uploads get 410 instead of 404. */
const GRANT_MEMORY = 24 * 60 * MINUTE;

/** An upload to a URL in progress: the grant, leased until `leasedUntil`. */
export interface UploadAttempt {
  grant: DirectUploadGrant;
  leasedUntil: number;
}

export interface DirectUploadInput {
  id?: string;
  creator?: string;
  /** RFC 3339 date-time. */
  expiry?: string;
  metadata?: Metadata;
  requireSignedUrls?: boolean;
}

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function uploadUrlNotFound(): PictorError {
  return new PictorError(5404, 'Upload URL not found');
}

export class DirectUploadService {
  constructor(
    private readonly meta: MetaStore,
    private readonly images: ImageService,
    private readonly urls: PublicUrls,
    private readonly options: {
      imageQuota: number;
      now: () => number;
      leaseMs: number;
      /** Called when events went to the webhook outbox, so they are sent at once rather than at the next poll. */
      onNotified?: () => void;
    },
  ) {}

  private expiryOf(text: string | undefined, now: number): number {
    if (text === undefined || text === '') return now + EXPIRY_DEFAULT;
    const rfc3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
    const at = Date.parse(text);
    if (!rfc3339.test(text) || Number.isNaN(at)) throw badRequest('expiry must be an RFC 3339 date-time');
    if (at < now + EXPIRY_MIN - EXPIRY_SLACK || at > now + EXPIRY_MAX + EXPIRY_SLACK) {
      throw badRequest('expiry must be between 2 minutes and 6 hours from now');
    }
    return at;
  }

  async create(accountId: string, input: DirectUploadInput): Promise<{ id: string; uploadURL: string }> {
    const now = this.options.now();
    const expiresAt = this.expiryOf(input.expiry, now);
    const { id, meta, requireSignedUrls } = await this.images.checkNewImage(accountId, input);
    const account = await this.meta.findAccount(accountId);
    if (!account) throw new PictorError(5403);
    const token = randomBytes(32).toString('base64url');
    const draft: ImageRecord = {
      accountId,
      id,
      filename: '',
      creator: input.creator ?? null,
      meta,
      requireSignedUrls,
      uploadedAt: now,
      draft: true,
      blobKey: null,
      contentType: null,
      size: null,
      sha256: null,
      width: null,
      height: null,
      frames: null,
      version: 1,
    };
    await this.meta.insertDraft(
      draft,
      { tokenHash: hashToken(token), accountId, imageId: id, expiresAt, usedAt: null },
      this.options.imageQuota,
    );
    return { id, uploadURL: this.urls.upload(account.hash, token) };
  }

  /**
   * First step of the unauthenticated upload, before its body is read: checks the URL and leases it.
   * Every outcome but success is cheap and immediate (404, 409, 410).
   */
  async begin(accountHash: string, token: string): Promise<UploadAttempt> {
    const grant = await this.meta.findDirectUpload(hashToken(token));
    const account = grant && (await this.meta.findAccount(grant.accountId));
    if (!grant || !account || account.hash !== accountHash) throw uploadUrlNotFound();
    if (grant.usedAt !== null) throw new PictorError(5409, 'This upload URL has already been used');
    const now = this.options.now();
    if (grant.expiresAt <= now) {
      await this.sweep();
      throw new PictorError(5404, 'This upload URL has expired', { status: 410 });
    }
    const leasedUntil = now + this.options.leaseMs;
    if (!(await this.meta.leaseDirectUpload(grant.tokenHash, now, leasedUntil))) {
      throw new PictorError(5409, 'An upload to this URL is already in progress or done');
    }
    return { grant, leasedUntil };
  }

  /**
   * Gives the URL back after a refused or abandoned upload, so it can be used again, and reports the
   * failure to the account's webhooks (not when another upload to the URL won: that one succeeded).
   */
  async abandon(attempt: UploadAttempt, reason: unknown): Promise<void> {
    const failures = await this.meta.releaseDirectUpload(attempt.grant.tokenHash, attempt.leasedUntil);
    if (reason instanceof PictorError && reason.code === 5409) return;
    // Whoever holds the URL can fail uploads to it at will: they must not be able to flood the receiver.
    if (failures === undefined || failures > FAILURE_EVENTS_PER_URL) return;
    const error =
      reason instanceof PictorError && reason.status < 500
        ? { code: reason.code, message: reason.message }
        : { code: 5500, message: 'The upload could not be completed' };
    const { accountId, imageId } = attempt.grant;
    const queued = await this.meta.notifications.enqueue(accountId, uploadFailed(accountId, imageId, this.options.now(), error));
    if (queued > 0) this.options.onNotified?.();
  }

  /** Second step: validates and stores the file and turns the draft into an image. */
  async complete(attempt: UploadAttempt, file: { bytes: Buffer; filename: string }): Promise<ImageView> {
    const grant = attempt.grant;
    const original = await this.images.storeOriginal(
      grant.accountId,
      file.bytes,
      cleanFilename(file.filename, grant.imageId.split('/').pop() ?? grant.imageId),
    );
    const view = await this.images.viewer(grant.accountId);
    const notify = uploadSucceeded(grant.accountId, original.uploadedAt, view);
    let completion;
    try {
      completion = await this.meta.completeDraft(grant, original, this.options.imageQuota, notify);
    } catch (error) {
      await this.images.discardOriginal(original);
      throw error;
    }
    if (completion.kind !== 'completed') {
      await this.images.discardOriginal(original);
      if (completion.kind === 'used') throw new PictorError(5409, 'This upload URL has already been used');
      throw uploadUrlNotFound();
    }
    this.images.committed('upload_host', completion.image, file.bytes);
    if (completion.notified > 0) this.options.onNotified?.();
    return view(completion.image);
  }

  /** Removes drafts whose URL expired unused. Returns how many. */
  sweep(): Promise<number> {
    const now = this.options.now();
    return this.meta.removeExpiredDrafts(now, now - GRANT_MEMORY);
  }
}
