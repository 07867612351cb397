/**
 * The metadata store, written once with Kysely. Each dialect (sqlite.ts, later postgres.ts) supplies a
 * connected `Kysely<Database>` and a few quirks; every query below runs unchanged on each.
 */
import { type Expression, type Kysely, type Selectable, type SqlBool, type Transaction, sql } from 'kysely';
import { PictorError, alreadyExists } from '../../errors.js';
import type {
  Account,
  AccountSettings,
  BatchToken,
  Credential,
  DirectUploadGrant,
  ImageFilter,
  ImageRecord,
  ListCursor,
  MetaFilter,
  Permission,
  SigningKey,
  SortOrder,
  UploadedOriginal,
  Variant,
  VariantOptions,
} from '../../domain/model.js';
import type { AccountWrites, DraftCompletion, ImagePatch, MetaStore, NotificationFanOut, NotificationStore } from '../ports.js';
import { KyselyNotificationStore, enqueueNotifications } from './notification-store.js';
import { Generations } from './generations.js';
import type { Database, ImagesTable } from './schema.js';

export interface DialectQuirks {
  isUniqueViolation(error: unknown): boolean;
  /** Serialises the account's writes until the transaction ends (a no-op where writes are serial). */
  lockAccount(trx: Transaction<Database>, accountId: string): Promise<void>;
  /** Stops what the dialect runs beside the queries (a change feed). */
  close?(): Promise<void>;
  /** See MetaStore.settled; absent where this process is the only writer. */
  settled?(): Promise<void>;
  /** Runs `work` holding a lock named `name` across every process of the database (`wait`: or give up at once). */
  runExclusive<T>(db: Kysely<Database>, name: string, wait: boolean, work: () => Promise<T>): Promise<T | undefined>;
  /** A boolean SQL expression: the `images.meta` column matches the filter. */
  metaMatches(filter: MetaFilter): Expression<SqlBool>;
  /** Whether claims of shared work lock the rows they take and skip locked ones (concurrent writers). */
  skipLocked?: boolean;
}

type ImageRow = Selectable<ImagesTable>;

/**
 * Nothing stored ever holds U+0000 (ids, names and hashes refuse control characters), and PostgreSQL
 * cannot even compare text holding it (an error, not "no match"): such a key is absent without asking.
 */
function unstorable(...keys: string[]): boolean {
  return keys.some((key) => key.includes('\u0000'));
}

function toImage(row: ImageRow): ImageRecord {
  return {
    accountId: row.account_id,
    id: row.id,
    filename: row.filename,
    creator: row.creator,
    meta: JSON.parse(row.meta) as ImageRecord['meta'],
    requireSignedUrls: Number(row.require_signed) === 1,
    uploadedAt: Number(row.uploaded_at),
    draft: Number(row.draft) === 1,
    blobKey: row.blob_key,
    contentType: row.content_type,
    size: row.size === null ? null : Number(row.size),
    sha256: row.sha256,
    width: row.width,
    height: row.height,
    frames: row.frames,
    version: Number(row.version),
  };
}

function toAccount(row: Selectable<Database['accounts']>): Account {
  return {
    id: row.id,
    hash: row.hash,
    createdAt: Number(row.created_at),
    flexibleVariants: Number(row.flexible_variants) === 1,
    browserTtl: Number(row.browser_ttl),
  };
}

function toCredential(row: Selectable<Database['credentials']>): Credential {
  return {
    id: row.id,
    accountId: row.account_id,
    kind: row.kind === 'key' ? 'key' : 'token',
    email: row.email,
    name: row.name,
    permission: row.permission as Permission,
    createdAt: Number(row.created_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  };
}

function toVariant(row: Selectable<Database['variants']>): Variant {
  return {
    accountId: row.account_id,
    name: row.name,
    options: JSON.parse(row.options) as VariantOptions,
    neverRequireSignedUrls: Number(row.never_require_signed) === 1,
    version: Number(row.version),
  };
}

export class KyselyMetaStore implements MetaStore {
  readonly notifications: NotificationStore;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly quirks: DialectQuirks,
    /** Shared with the dialect's change feed, which bumps what other processes wrote. */
    readonly generations: Generations = new Generations({ sharedByProcesses: false }),
  ) {
    this.notifications = new KyselyNotificationStore(db, quirks);
  }

  async createAccount(account: Account, defaults: { variant: Variant; signingKey: SigningKey }): Promise<void> {
    await this.uniquely(() => this.createAccountRows(account, defaults));
  }

  /** Runs a write whose unique violation means "already exists" (5409). */
  private async uniquely<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (this.quirks.isUniqueViolation(error)) throw alreadyExists();
      throw error;
    }
  }

  private async createAccountRows(account: Account, defaults: { variant: Variant; signingKey: SigningKey }): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('accounts')
        .values({
          id: account.id,
          hash: account.hash,
          created_at: account.createdAt,
          flexible_variants: account.flexibleVariants ? 1 : 0,
          browser_ttl: account.browserTtl,
        })
        .execute();
      await trx
        .insertInto('variants')
        .values({
          account_id: account.id,
          name: defaults.variant.name,
          options: JSON.stringify(defaults.variant.options),
          never_require_signed: defaults.variant.neverRequireSignedUrls ? 1 : 0,
          version: defaults.variant.version,
          created_at: account.createdAt,
        })
        .execute();
      await trx
        .insertInto('signing_keys')
        .values({
          account_id: account.id,
          name: defaults.signingKey.name,
          value: defaults.signingKey.value,
          created_at: defaults.signingKey.createdAt,
        })
        .execute();
    });
  }

  async findAccount(accountId: string): Promise<Account | undefined> {
    const row = await this.db.selectFrom('accounts').selectAll().where('id', '=', accountId).executeTakeFirst();
    return row && toAccount(row);
  }

  async findAccountByHash(accountHash: string): Promise<Account | undefined> {
    if (unstorable(accountHash)) return undefined;
    const row = await this.db.selectFrom('accounts').selectAll().where('hash', '=', accountHash).executeTakeFirst();
    return row && toAccount(row);
  }

  async updateAccountSettings(accountId: string, patch: Partial<AccountSettings>): Promise<Account | undefined> {
    return this.changing({ accountId }, async () => {
      if (patch.flexibleVariants !== undefined || patch.browserTtl !== undefined) {
        await this.db
          .updateTable('accounts')
          .set({
            ...(patch.flexibleVariants !== undefined && { flexible_variants: patch.flexibleVariants ? 1 : 0 }),
            ...(patch.browserTtl !== undefined && { browser_ttl: patch.browserTtl }),
          })
          .where('id', '=', accountId)
          .execute();
      }
      return this.findAccount(accountId);
    });
  }

  async listAccounts(): Promise<Account[]> {
    const rows = await this.db.selectFrom('accounts').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map(toAccount);
  }

  async createCredential(credential: Credential, secretHash: string): Promise<void> {
    await this.uniquely(() => this.insertCredential(credential, secretHash));
  }

  private async insertCredential(credential: Credential, secretHash: string): Promise<void> {
    await this.db
      .insertInto('credentials')
      .values({
        id: credential.id,
        account_id: credential.accountId,
        kind: credential.kind,
        email: credential.email,
        name: credential.name,
        permission: credential.permission,
        secret_hash: secretHash,
        created_at: credential.createdAt,
        revoked_at: credential.revokedAt,
      })
      .execute();
  }

  async findCredentialBySecretHash(
    secretHash: string,
  ): Promise<{ credential: Credential; secretHash: string } | undefined> {
    const row = await this.db
      .selectFrom('credentials')
      .selectAll()
      .where('secret_hash', '=', secretHash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return row && { credential: toCredential(row), secretHash: row.secret_hash };
  }

  async exportCredentials(accountId: string): Promise<Array<{ credential: Credential; secretHash: string }>> {
    const rows = await this.db.selectFrom('credentials').selectAll().where('account_id', '=', accountId).orderBy('created_at').orderBy('id').execute();
    return rows.map((row) => ({ credential: toCredential(row), secretHash: row.secret_hash }));
  }

  async listCredentials(accountId?: string): Promise<Credential[]> {
    let query = this.db.selectFrom('credentials').selectAll().orderBy('created_at').orderBy('id');
    if (accountId !== undefined) query = query.where('account_id', '=', accountId);
    return (await query.execute()).map(toCredential);
  }

  async revokeCredential(credentialId: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('credentials')
      .set({ revoked_at: now })
      .where('id', '=', credentialId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async insertImage(image: ImageRecord, quota: number): Promise<void> {
    return this.changing({ accountId: image.accountId, imageId: image.id }, async () => {
      await this.insertWithQuota(image, quota, async () => undefined);
    });
  }

  async insertDraft(image: ImageRecord, grant: DirectUploadGrant, quota: number): Promise<void> {
    return this.changing({ accountId: image.accountId, imageId: image.id }, async () => {
      await this.insertWithQuota(image, quota, async (trx) => {
        await trx
          .insertInto('direct_uploads')
          .values({
            token_hash: grant.tokenHash,
            account_id: grant.accountId,
            image_id: grant.imageId,
            expires_at: grant.expiresAt,
            used_at: null,
            created_at: image.uploadedAt,
            leased_until: null,
          })
          .execute();
      });
    });
  }

  /**
   * Inserts an image row (and whatever else the caller adds) in one transaction; a live image first
   * claims a slot of the account's quota, so concurrent uploads cannot both take the last one.
   */
  private async insertWithQuota(
    image: ImageRecord,
    quota: number,
    alsoInTransaction: (trx: Transaction<Database>) => Promise<void>,
  ): Promise<void> {
    try {
      await this.db.transaction().execute(async (trx) => {
        if (image.draft) await this.checkQuota(trx, image.accountId, quota);
        else await this.claimQuotaSlot(trx, image.accountId, quota);
        await trx
          .insertInto('images')
          .values({
            account_id: image.accountId,
            id: image.id,
            filename: image.filename,
            creator: image.creator,
            meta: JSON.stringify(image.meta),
            require_signed: image.requireSignedUrls ? 1 : 0,
            uploaded_at: image.uploadedAt,
            draft: image.draft ? 1 : 0,
            blob_key: image.blobKey,
            content_type: image.contentType,
            size: image.size,
            sha256: image.sha256,
            width: image.width,
            height: image.height,
            frames: image.frames,
            version: image.version,
          })
          .execute();
        await alsoInTransaction(trx);
      });
    } catch (error) {
      if (this.quirks.isUniqueViolation(error)) throw alreadyExists();
      throw error;
    }
  }

  async findImage(accountId: string, imageId: string): Promise<ImageRecord | undefined> {
    if (unstorable(accountId, imageId)) return undefined;
    const row = await this.db
      .selectFrom('images')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('id', '=', imageId)
      .executeTakeFirst();
    return row && toImage(row);
  }

  async updateImage(accountId: string, imageId: string, patch: ImagePatch): Promise<ImageRecord | undefined> {
    if (unstorable(accountId, imageId)) return undefined;
    return this.changing({ accountId, imageId }, async () => {
      return this.db.transaction().execute(async (trx) => {
        const result = await trx
          .updateTable('images')
          .set((eb) => ({
            ...(patch.meta !== undefined && { meta: JSON.stringify(patch.meta) }),
            ...(patch.requireSignedUrls !== undefined && { require_signed: patch.requireSignedUrls ? 1 : 0 }),
            ...(patch.creator !== undefined && { creator: patch.creator }),
            version: eb('version', '+', 1),
          }))
          .where('account_id', '=', accountId)
          .where('id', '=', imageId)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) === 0) return undefined;
        const row = await trx
          .selectFrom('images')
          .selectAll()
          .where('account_id', '=', accountId)
          .where('id', '=', imageId)
          .executeTakeFirstOrThrow();
        return toImage(row);
      });
    });
  }

  async deleteImage(accountId: string, imageId: string): Promise<ImageRecord | undefined> {
    if (unstorable(accountId, imageId)) return undefined;
    return this.changing({ accountId, imageId }, async () => {
      return this.db.transaction().execute(async (trx) => {
        // Only the delete that removed the row gives its quota slot back: of two concurrent deletes
        // of one image, the second finds nothing to return.
        const row = await trx
          .deleteFrom('images')
          .where('account_id', '=', accountId)
          .where('id', '=', imageId)
          .returningAll()
          .executeTakeFirst();
        if (!row) return undefined;
        if (Number(row.draft) === 0) {
          await trx
            .updateTable('accounts')
            .set((eb) => ({ image_count: eb('image_count', '-', 1) }))
            .where('id', '=', accountId)
            .execute();
        }
        // A draft's upload URL dies with it.
        await trx.deleteFrom('direct_uploads').where('account_id', '=', accountId).where('image_id', '=', imageId).execute();
        return toImage(row);
      });
    });
  }

  async insertBatchToken(token: BatchToken): Promise<void> {
    await this.db
      .insertInto('batch_tokens')
      .values({ token_hash: token.tokenHash, account_id: token.accountId, permission: token.permission, created_at: token.createdAt, expires_at: token.expiresAt })
      .execute();
  }

  async findBatchToken(tokenHash: string): Promise<BatchToken | undefined> {
    const row = await this.db.selectFrom('batch_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return (
      row && {
        tokenHash: row.token_hash,
        accountId: row.account_id,
        permission: row.permission as Permission,
        createdAt: Number(row.created_at),
        expiresAt: Number(row.expires_at),
      }
    );
  }

  async countBatchRequest(tokenHash: string, windowStart: number): Promise<number> {
    const row = await this.db
      .insertInto('batch_token_requests')
      .values({ token_hash: tokenHash, window_start: windowStart, count: 1 })
      .onConflict((conflict) => conflict.columns(['token_hash', 'window_start']).doUpdateSet({ count: sql<number>`batch_token_requests.count + 1` }))
      .returning('count')
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  async removeExpiredBatchTokens(before: number): Promise<number> {
    await this.db.deleteFrom('batch_token_requests').where('window_start', '<', Math.floor(before / 1000)).execute();
    const removed = await this.db.deleteFrom('batch_tokens').where('expires_at', '<', before).executeTakeFirst();
    return Number(removed.numDeletedRows);
  }

  async findDirectUpload(tokenHash: string): Promise<DirectUploadGrant | undefined> {
    const row = await this.db.selectFrom('direct_uploads').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
    return (
      row && {
        tokenHash: row.token_hash,
        accountId: row.account_id,
        imageId: row.image_id,
        expiresAt: Number(row.expires_at),
        usedAt: row.used_at === null ? null : Number(row.used_at),
      }
    );
  }

  // Leases do not change what anyone can see, so they are not counted as writes (generation()).
  async leaseDirectUpload(tokenHash: string, now: number, until: number): Promise<boolean> {
    const result = await this.db
      .updateTable('direct_uploads')
      .set({ leased_until: until })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where((eb) => eb.or([eb('leased_until', 'is', null), eb('leased_until', '<=', now)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async releaseDirectUpload(tokenHash: string, until: number): Promise<number | undefined> {
    const released = await this.db
      .updateTable('direct_uploads')
      .set((eb) => ({ leased_until: null, failures: eb('failures', '+', 1) }))
      .where('token_hash', '=', tokenHash)
      .where('leased_until', '=', until)
      .returning('failures')
      .executeTakeFirst();
    return released === undefined ? undefined : Number(released.failures);
  }

  async completeDraft(
    grant: DirectUploadGrant,
    original: UploadedOriginal,
    quota: number,
    notify?: NotificationFanOut<ImageRecord>,
  ): Promise<DraftCompletion> {
    return this.changing({ accountId: grant.accountId, imageId: grant.imageId }, async () => {
      return this.db.transaction().execute(async (trx): Promise<DraftCompletion> => {
        // Claiming the grant first makes concurrent completions race on one row: exactly one wins.
        const claimed = await trx
          .updateTable('direct_uploads')
          .set({ used_at: original.uploadedAt })
          .where('token_hash', '=', grant.tokenHash)
          .where('used_at', 'is', null)
          .executeTakeFirst();
        if (Number(claimed.numUpdatedRows) === 0) return { kind: 'used' };
        const updated = await trx
          .updateTable('images')
          .set((eb) => ({
            draft: 0,
            filename: original.filename,
            blob_key: original.blobKey,
            content_type: original.contentType,
            size: original.size,
            sha256: original.sha256,
            width: original.width,
            height: original.height,
            frames: original.frames,
            uploaded_at: original.uploadedAt,
            version: eb('version', '+', 1),
          }))
          .where('account_id', '=', grant.accountId)
          .where('id', '=', grant.imageId)
          .where('draft', '=', 1)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) return { kind: 'gone' };
        // The draft becomes a live image: it takes a quota slot now (5453 rolls everything back).
        await this.claimQuotaSlot(trx, grant.accountId, quota);
        const row = await trx
          .selectFrom('images')
          .selectAll()
          .where('account_id', '=', grant.accountId)
          .where('id', '=', grant.imageId)
          .executeTakeFirstOrThrow();
        const image = toImage(row);
        const notified = notify ? await enqueueNotifications(trx, grant.accountId, notify, image) : 0;
        return { kind: 'completed', image, notified };
      });
    });
  }

  // Drafts are never delivered: removing them changes nothing a reader derived.
  async removeExpiredDrafts(now: number, forgetBefore: number): Promise<number> {
    return (async () => {
      return this.db.transaction().execute(async (trx) => {
        const expired = await trx
          .selectFrom('direct_uploads')
          .select(['account_id', 'image_id'])
          .where('expires_at', '<=', now)
          .where('used_at', 'is', null)
          .execute();
        let removed = 0;
        for (const grant of expired) {
          const result = await trx
            .deleteFrom('images')
            .where('account_id', '=', grant.account_id)
            .where('id', '=', grant.image_id)
            .where('draft', '=', 1)
            .executeTakeFirst();
          removed += Number(result.numDeletedRows);
        }
        // Grants are kept a while after expiry so late uploads get 410 rather than 404.
        await trx.deleteFrom('direct_uploads').where('expires_at', '<=', forgetBefore).execute();
        return removed;
      });
    })();
  }

  /** Takes one of the account's live-image slots, or throws 5453 when they are all taken. */
  private async claimQuotaSlot(trx: Transaction<Database>, accountId: string, quota: number): Promise<void> {
    const claimed = await trx
      .updateTable('accounts')
      .set((eb) => ({ image_count: eb('image_count', '+', 1) }))
      .where('id', '=', accountId)
      .where('image_count', '<', quota)
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) === 0) throw new PictorError(5453);
  }

  private async checkQuota(trx: Transaction<Database>, accountId: string, quota: number): Promise<void> {
    const row = await trx.selectFrom('accounts').select('image_count').where('id', '=', accountId).executeTakeFirst();
    if (!row || Number(row.image_count) >= quota) throw new PictorError(5453);
  }

  async countImages(accountId: string, filter: ImageFilter = {}): Promise<number> {
    if (filter.creator === undefined && (filter.meta ?? []).length === 0) {
      const row = await this.db.selectFrom('accounts').select('image_count').where('id', '=', accountId).executeTakeFirst();
      return Number(row?.image_count ?? 0);
    }
    return this.countIn(this.db, accountId, filter);
  }

  private async countIn(db: Kysely<Database> | Transaction<Database>, accountId: string, filter: ImageFilter) {
    const row = await this.filtered(db, accountId, filter)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Live (non-draft) images of an account that match the filter. */
  private filtered(db: Kysely<Database> | Transaction<Database>, accountId: string, filter: ImageFilter) {
    let query = db.selectFrom('images').where('account_id', '=', accountId).where('draft', '=', 0);
    if (filter.creator !== undefined) {
      const creator = filter.creator;
      if (creator !== null && unstorable(creator)) return query.where(sql<SqlBool>`false`);
      query = creator === null ? query.where('creator', 'is', null) : query.where('creator', '=', creator);
    }
    for (const metaFilter of filter.meta ?? []) query = query.where(this.quirks.metaMatches(metaFilter));
    return query;
  }

  async listImagesPage(accountId: string, filter: ImageFilter, offset: number, limit: number): Promise<ImageRecord[]> {
    const rows = await this.filtered(this.db, accountId, filter)
      .selectAll()
      .orderBy('uploaded_at', 'desc')
      .orderBy('id', 'desc')
      .offset(offset)
      .limit(limit)
      .execute();
    return rows.map(toImage);
  }

  async listImagesAfter(
    accountId: string,
    filter: ImageFilter,
    order: SortOrder,
    after: ListCursor | undefined,
    limit: number,
  ): Promise<ImageRecord[]> {
    let query = this.filtered(this.db, accountId, filter).selectAll();
    if (after) {
      // A row-value comparison lets both SQLite and PostgreSQL seek straight into the
      // (account_id, draft, uploaded_at, id) index instead of scanning from the start.
      const op = order === 'asc' ? '>' : '<';
      query = query.where((eb) => eb(eb.refTuple('uploaded_at', 'id'), op, eb.tuple(after.uploadedAt, after.id)));
    }
    const rows = await query.orderBy('uploaded_at', order).orderBy('id', order).limit(limit).execute();
    return rows.map(toImage);
  }

  async listBlobKeys(): Promise<Set<string>> {
    const rows = await this.db.selectFrom('images').select('blob_key').where('blob_key', 'is not', null).execute();
    return new Set(rows.map((row) => row.blob_key as string));
  }

  async listVariants(accountId: string): Promise<Variant[]> {
    const rows = await this.db
      .selectFrom('variants')
      .selectAll()
      .where('account_id', '=', accountId)
      .orderBy('created_at')
      .orderBy('name')
      .execute();
    return rows.map(toVariant);
  }

  async findVariant(accountId: string, name: string): Promise<Variant | undefined> {
    if (unstorable(accountId, name)) return undefined;
    const row = await this.db
      .selectFrom('variants')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toVariant(row);
  }

  async updateVariant(
    accountId: string,
    name: string,
    change: { options: VariantOptions; neverRequireSignedUrls: boolean },
  ): Promise<Variant | undefined> {
    if (unstorable(accountId, name)) return undefined;
    return this.changing({ accountId }, async () => {
      const result = await this.db
        .updateTable('variants')
        .set((eb) => ({
          options: JSON.stringify(change.options),
          never_require_signed: change.neverRequireSignedUrls ? 1 : 0,
          version: eb('version', '+', 1),
        }))
        .where('account_id', '=', accountId)
        .where('name', '=', name)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 0 ? undefined : this.findVariant(accountId, name);
    });
  }

  async deleteVariant(accountId: string, name: string): Promise<boolean> {
    if (unstorable(accountId, name)) return false;
    return this.changing({ accountId }, async () => {
      const result = await this.db
        .deleteFrom('variants')
        .where('account_id', '=', accountId)
        .where('name', '=', name)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }

  async runExclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    return (await this.quirks.runExclusive(this.db, name, true, work)) as T;
  }

  tryRunExclusive<T>(name: string, work: () => Promise<T>): Promise<T | undefined> {
    return this.quirks.runExclusive(this.db, name, false, work);
  }

  async withAccountLocked<T>(accountId: string, work: (account: AccountWrites) => Promise<T>): Promise<T> {
    return this.changing({ accountId }, async () =>
      this.db.transaction().execute(async (trx) => {
        await this.quirks.lockAccount(trx, accountId);
        return work(new KyselyAccountWrites(trx, accountId, this.quirks));
      }),
    );
  }

  async listSigningKeys(accountId: string): Promise<SigningKey[]> {
    const rows = await this.db
      .selectFrom('signing_keys')
      .selectAll()
      .where('account_id', '=', accountId)
      .orderBy('created_at')
      .orderBy('name')
      .execute();
    return rows.map((row) => ({
      accountId: row.account_id,
      name: row.name,
      value: row.value,
      createdAt: Number(row.created_at),
    }));
  }

  async settled(): Promise<void> {
    await this.quirks.settled?.();
  }

  generation(accountId: string, imageId: string): number {
    return this.generations.of(accountId, imageId);
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  /** Runs a write and bumps what it may have changed, even when it fails halfway (a conservative invalidation). */
  private async changing<T>(scope: { accountId: string; imageId?: string }, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } finally {
      if (scope.imageId === undefined) this.generations.bumpAccount(scope.accountId);
      else this.generations.bumpImage(scope.accountId, scope.imageId);
    }
  }

  async close(): Promise<void> {
    await this.quirks.close?.();
    await this.db.destroy();
  }
}


/** The writes `withAccountLocked` offers, inside its transaction. */
class KyselyAccountWrites implements AccountWrites {
  constructor(
    private readonly trx: Transaction<Database>,
    private readonly accountId: string,
    private readonly quirks: DialectQuirks,
  ) {}

  private async count(table: 'variants' | 'signing_keys'): Promise<number> {
    const { n } = await this.trx
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('account_id', '=', this.accountId)
      .executeTakeFirstOrThrow();
    return Number(n);
  }

  countVariants(): Promise<number> {
    return this.count('variants');
  }

  async insertVariant(variant: Variant, now: number): Promise<void> {
    try {
      await this.trx
        .insertInto('variants')
        .values({
          account_id: this.accountId,
          name: variant.name,
          options: JSON.stringify(variant.options),
          never_require_signed: variant.neverRequireSignedUrls ? 1 : 0,
          version: variant.version,
          created_at: now,
        })
        .execute();
    } catch (error) {
      if (this.quirks.isUniqueViolation(error)) throw alreadyExists();
      throw error;
    }
  }

  countSigningKeys(): Promise<number> {
    return this.count('signing_keys');
  }

  async rotateSigningKey(name: string, value: string): Promise<boolean> {
    const updated = await this.trx
      .updateTable('signing_keys')
      .set({ value })
      .where('account_id', '=', this.accountId)
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(updated.numUpdatedRows) > 0;
  }

  async insertSigningKey(key: SigningKey): Promise<void> {
    await this.trx
      .insertInto('signing_keys')
      .values({ account_id: this.accountId, name: key.name, value: key.value, created_at: key.createdAt })
      .execute();
  }

  async deleteSigningKey(name: string): Promise<boolean> {
    if (unstorable(name)) return false;
    const deleted = await this.trx
      .deleteFrom('signing_keys')
      .where('account_id', '=', this.accountId)
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(deleted.numDeletedRows) > 0;
  }
}
