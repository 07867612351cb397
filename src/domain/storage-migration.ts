/**
 * `pictor migrate-storage`: copies an embedded install (SQLite + disk) into other stores (PostgreSQL
 * and/or S3) through the same ports the server uses. The source is only read. Every original's
 * sha256 is checked against its row when read and again after it is stored in the target, before the
 * row that makes it visible is written, so an interrupted copy leaves no image without its bytes.
 * Resumable: what the target already holds (accounts, credentials, variants, webhook destinations and
 * policies, images) is kept and skipped; signing keys are set to the source's values. Drafts (unfinished
 * direct uploads) and undelivered webhook events are not copied.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { PictorError } from '../errors.js';
import type { BlobStore, MetaStore } from '../store/ports.js';
import type { Account, ImageRecord } from './model.js';

export interface StoreSet {
  meta: MetaStore;
  blobs: BlobStore;
}

export interface MigrationProgress {
  accounts: number;
  imagesTotal: number;
  imagesCopied: number;
  imagesSkipped: number;
}

const PAGE = 500;
/** The largest count an `integer` column compares with: no limit in practice. */
const NO_QUOTA = 2_147_483_647;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function isAlreadyThere(error: unknown): boolean {
  return error instanceof PictorError && error.code === 5409;
}

export class StorageMigration {
  constructor(
    private readonly source: StoreSet,
    private readonly target: StoreSet,
    private readonly onProgress: (progress: MigrationProgress) => void = () => undefined,
  ) {}

  async run(): Promise<MigrationProgress> {
    const accounts = await this.source.meta.listAccounts();
    const progress: MigrationProgress = { accounts: accounts.length, imagesTotal: 0, imagesCopied: 0, imagesSkipped: 0 };
    for (const account of accounts) progress.imagesTotal += await this.source.meta.countImages(account.id);
    this.onProgress(progress);
    for (const account of accounts) {
      await this.copyAccount(account);
      await this.copyImages(account, progress);
    }
    return progress;
  }

  private async copyAccount(account: Account): Promise<void> {
    const [variants, keys] = await Promise.all([this.source.meta.listVariants(account.id), this.source.meta.listSigningKeys(account.id)]);
    const [firstVariant, ...otherVariants] = variants;
    const [firstKey] = keys;
    if (!firstVariant || !firstKey) throw new Error(`account ${account.id} has no variant or no signing key in the source`);
    if (!(await this.target.meta.findAccount(account.id))) {
      await this.target.meta.createAccount(account, { variant: firstVariant, signingKey: firstKey });
    }
    await this.target.meta.updateAccountSettings(account.id, { flexibleVariants: account.flexibleVariants, browserTtl: account.browserTtl });
    for (const { credential, secretHash } of await this.source.meta.exportCredentials(account.id)) {
      await this.target.meta.createCredential(credential, secretHash).catch((error: unknown) => {
        if (!isAlreadyThere(error)) throw error;
      });
    }
    // Checked first, not caught: on PostgreSQL a failed statement ends the transaction it runs in.
    const present = new Set((await this.target.meta.listVariants(account.id)).map((variant) => variant.name));
    await this.target.meta.withAccountLocked(account.id, async (writes) => {
      for (const variant of otherVariants) {
        if (!present.has(variant.name)) await writes.insertVariant(variant, account.createdAt);
      }
      for (const key of keys) {
        if (!(await writes.rotateSigningKey(key.name, key.value))) await writes.insertSigningKey(key);
      }
    });
    await this.copyNotifications(account);
  }

  /** Webhook destinations and policies (the outbox is not copied: stop the source's traffic first). */
  private async copyNotifications(account: Account): Promise<void> {
    const source = this.source.meta.notifications;
    const target = this.target.meta.notifications;
    for (const destination of await source.listWebhookDestinations(account.id)) {
      if (!(await target.findWebhookDestination(account.id, destination.id))) await target.insertWebhookDestination(destination, NO_QUOTA);
    }
    for (const policy of await source.listAlertPolicies(account.id)) {
      if (!(await target.findAlertPolicy(account.id, policy.id))) await target.insertAlertPolicy(policy, NO_QUOTA);
    }
  }

  private async copyImages(account: Account, progress: MigrationProgress): Promise<void> {
    let after: { uploadedAt: number; id: string } | undefined;
    for (;;) {
      const page = await this.source.meta.listImagesAfter(account.id, {}, 'asc', after, PAGE);
      for (const image of page) {
        if (await this.target.meta.findImage(account.id, image.id)) progress.imagesSkipped += 1;
        else {
          await this.copyImage(image);
          progress.imagesCopied += 1;
        }
        this.onProgress(progress);
      }
      const last = page[page.length - 1];
      if (!last || page.length < PAGE) return;
      after = { uploadedAt: last.uploadedAt, id: last.id };
    }
  }

  private async copyImage(image: ImageRecord): Promise<void> {
    if (!image.blobKey) return;
    const stored = await this.source.blobs.get(image.blobKey);
    if (!stored) throw new Error(`the original of image ${image.id} (${image.blobKey}) is missing from the source`);
    const bytes = await readAll(stored.stream);
    if (image.sha256 && sha256(bytes) !== image.sha256) {
      throw new Error(`the original of image ${image.id} does not match its sha256 in the source`);
    }
    await this.target.blobs.put(image.blobKey, bytes);
    const copied = await this.target.blobs.get(image.blobKey);
    if (!copied || sha256(await readAll(copied.stream)) !== sha256(bytes)) {
      throw new Error(`the copy of image ${image.id}'s original does not match the source`);
    }
    // No quota applies to a copy: the source already admitted it.
    await this.target.meta.insertImage(image, NO_QUOTA);
  }
}
