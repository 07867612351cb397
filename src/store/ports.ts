/**
 * Storage ports. Services depend only on these interfaces; adapters (SQLite/PostgreSQL via Kysely,
 * local disk, later S3) implement them. Methods are named by intent; no SQL or paths leak above.
 */
import type { Readable } from 'node:stream';
import type {
  Account,
  AccountSettings,
  AlertPolicy,
  AlertSubscription,
  ClaimedDelivery,
  DeliveryOutcome,
  SentNotification,
  WebhookAttempt,
  WebhookDelivery,
  WebhookDestination,
  Credential,
  BatchToken,
  DirectUploadGrant,
  ImageFilter,
  ImageRecord,
  ListCursor,
  SigningKey,
  SortOrder,
  UploadedOriginal,
  Variant,
  VariantOptions,
} from '../domain/model.js';

export interface ImagePatch {
  meta?: ImageRecord['meta'];
  requireSignedUrls?: boolean;
  creator?: string | null;
}

export type DraftCompletion =
  /** `notified`: the webhook deliveries queued with it. */
  | { kind: 'completed'; image: ImageRecord; notified: number }
  /** The grant was already used (or a concurrent completion won). */
  | { kind: 'used' }
  /** The draft no longer exists. */
  | { kind: 'gone' };

export interface MetaStore {
  // Accounts and credentials
  createAccount(account: Account, defaults: { variant: Variant; signingKey: SigningKey }): Promise<void>;
  findAccount(accountId: string): Promise<Account | undefined>;
  findAccountByHash(accountHash: string): Promise<Account | undefined>;
  updateAccountSettings(accountId: string, patch: Partial<AccountSettings>): Promise<Account | undefined>;
  listAccounts(): Promise<Account[]>;
  createCredential(credential: Credential, secretHash: string): Promise<void>;
  /** The live (not revoked) credential whose secret hashes to `secretHash`, with its stored hash. */
  findCredentialBySecretHash(
    secretHash: string,
  ): Promise<{ credential: Credential; secretHash: string } | undefined>;
  listCredentials(accountId?: string): Promise<Credential[]>;
  /** Credentials with their secret hashes, for copying an install to other stores (`pictor migrate-storage`). */
  exportCredentials(accountId: string): Promise<Array<{ credential: Credential; secretHash: string }>>;
  /** Marks a credential revoked; false if no live credential has that id. */
  revokeCredential(credentialId: string, now: number): Promise<boolean>;

  // Images
  /**
   * Inserts a new image row if the account is below `quota` live images.
   * Throws PictorError 5409 on a duplicate id and 5453 when the quota is reached.
   */
  insertImage(image: ImageRecord, quota: number): Promise<void>;
  /** Inserts a draft image and its upload grant together (quota and duplicate rules as insertImage). */
  insertDraft(image: ImageRecord, grant: DirectUploadGrant, quota: number): Promise<void>;
  findDirectUpload(tokenHash: string): Promise<DirectUploadGrant | undefined>;
  insertBatchToken(token: BatchToken): Promise<void>;
  findBatchToken(tokenHash: string): Promise<BatchToken | undefined>;
  /**
   * Counts one request of a batch token in the second starting at `windowStart` and returns the count so
   * far, atomically on any number of nodes (the rate limit's rule lives in the domain).
   */
  countBatchRequest(tokenHash: string, windowStart: number): Promise<number>;
  /** Forgets batch tokens expired before `before` and request counts of windows before it. */
  removeExpiredBatchTokens(before: number): Promise<number>;
  /**
   * Takes the grant's upload lease until `until` if it is unused and nobody holds an unexpired lease
   * (`now`); true when taken. One upload to a URL at a time, on any number of nodes.
   */
  leaseDirectUpload(tokenHash: string, now: number, until: number): Promise<boolean>;
  /**
   * Gives back a lease taken with `until` (a refused file does not use the URL) and counts the failed
   * upload: returns how many the URL has had, or undefined when the lease was no longer held.
   */
  releaseDirectUpload(tokenHash: string, until: number): Promise<number | undefined>;
  /**
   * Uses the grant once and turns the draft into a live image, atomically. With `notify`, the
   * notifications of the completion go to the outbox in the same transaction (they exist exactly when
   * the image does).
   */
  completeDraft(
    grant: DirectUploadGrant,
    original: UploadedOriginal,
    quota: number,
    notify?: NotificationFanOut<ImageRecord>,
  ): Promise<DraftCompletion>;
  /** Deletes drafts whose unused grant expired by `now`; forgets grants that expired before `forgetBefore`. */
  removeExpiredDrafts(now: number, forgetBefore: number): Promise<number>;
  findImage(accountId: string, imageId: string): Promise<ImageRecord | undefined>;
  updateImage(accountId: string, imageId: string, patch: ImagePatch): Promise<ImageRecord | undefined>;
  /** Removes the row and returns it (so the caller can remove its bytes), or undefined. */
  deleteImage(accountId: string, imageId: string): Promise<ImageRecord | undefined>;
  countImages(accountId: string, filter?: ImageFilter): Promise<number>;
  /** Newest first, offset pagination (v1 list). */
  listImagesPage(accountId: string, filter: ImageFilter, offset: number, limit: number): Promise<ImageRecord[]>;
  /** Keyset pagination in (uploadedAt, id) order, strictly after `after` (v2 list). */
  listImagesAfter(
    accountId: string,
    filter: ImageFilter,
    order: SortOrder,
    after: ListCursor | undefined,
    limit: number,
  ): Promise<ImageRecord[]>;
  /** Every blob key referenced by a row (for orphan sweeps). */
  listBlobKeys(): Promise<Set<string>>;

  /**
   * Runs `work` in one transaction in which the account's writes are serialised: on PostgreSQL the
   * account row is locked (`SELECT … FOR UPDATE`); where writes are already serial it just runs. Rules
   * that count before they write (variant and key caps, "an account always has a key") live in the
   * domain and run inside it.
   */
  withAccountLocked<T>(accountId: string, work: (account: AccountWrites) => Promise<T>): Promise<T>;

  /**
   * Runs `work` while no other process holding the same store runs work under `name` (a PostgreSQL
   * advisory lock; in the embedded store the data-dir lock already makes this process the only one).
   * For start-up steps that must happen once however many nodes start together.
   */
  runExclusive<T>(name: string, work: () => Promise<T>): Promise<T>;
  /** Like runExclusive, but when another process holds `name` it returns `undefined` at once instead of waiting. */
  tryRunExclusive<T>(name: string, work: () => Promise<T>): Promise<T | undefined>;

  /** Webhook destinations, notification policies and the webhook outbox. */
  readonly notifications: NotificationStore;

  // Variants
  listVariants(accountId: string): Promise<Variant[]>;
  findVariant(accountId: string, name: string): Promise<Variant | undefined>;
  /** Replaces options and the signing bypass, bumping the variant's version. */
  updateVariant(
    accountId: string,
    name: string,
    change: { options: VariantOptions; neverRequireSignedUrls: boolean },
  ): Promise<Variant | undefined>;
  deleteVariant(accountId: string, name: string): Promise<boolean>;

  // Signing keys
  listSigningKeys(accountId: string): Promise<SigningKey[]>;

  /**
   * A number that changes whenever anything a delivery of this image depends on is written, by this
   * process or another (the image, the account's settings, variants, signing keys). Lets callers keep
   * derived data exactly as long as it is valid, without one upload invalidating everyone's.
   */
  generation(accountId: string, imageId: string): number;
  /**
   * Resolves once every write committed (by any process) before the call is reflected in `generation`.
   * Immediate where this process is the only writer; one trivial round trip on a shared database.
   */
  settled(): Promise<void>;

  /** A trivial round trip to the database (readiness): resolves while queries can run, else rejects. */
  ping(): Promise<void>;

  close(): Promise<void>;
}

/**
 * Builds the outbox rows of an event once the store knows, inside the writing transaction, which
 * destinations subscribe to `alertType` (enabled policies of the account) and what was written.
 */
export interface NotificationFanOut<T> {
  alertType: string;
  build(subscriptions: AlertSubscription[], written: T): WebhookDelivery[];
}

export interface NotificationStore {
  /** Inserts the destination unless the account already has `max`; false then. */
  insertWebhookDestination(destination: WebhookDestination, max: number): Promise<boolean>;
  /** Replaces name, url and secrets; undefined when the account has no such destination. */
  updateWebhookDestination(
    accountId: string,
    id: string,
    change: Pick<WebhookDestination, 'name' | 'url' | 'secret' | 'signingSecret'>,
  ): Promise<WebhookDestination | undefined>;
  findWebhookDestination(accountId: string, id: string): Promise<WebhookDestination | undefined>;
  listWebhookDestinations(accountId: string): Promise<WebhookDestination[]>;
  /** Removes the destination, its place in policies, its pending deliveries and attempts. */
  deleteWebhookDestination(accountId: string, id: string): Promise<boolean>;

  /** Inserts a policy and its webhooks (which must be the account's destinations) unless the account has `max`; false then. */
  insertAlertPolicy(policy: AlertPolicy, max: number): Promise<boolean>;
  /** Replaces a policy whole (the domain merges a partial update); false when there is none. */
  replaceAlertPolicy(policy: AlertPolicy): Promise<boolean>;
  findAlertPolicy(accountId: string, id: string): Promise<AlertPolicy | undefined>;
  listAlertPolicies(accountId: string): Promise<AlertPolicy[]>;
  deleteAlertPolicy(accountId: string, id: string): Promise<boolean>;

  /** Writes an event's deliveries to the outbox in a transaction of its own; returns how many. */
  enqueue(accountId: string, fanOut: NotificationFanOut<undefined>): Promise<number>;
  /**
   * Claims up to `limit` pending deliveries due by `now` that no live claim holds, until `until`, for
   * `owner`: on any number of nodes each is claimed by one at a time. A crashed node's claims lapse.
   */
  claimDueDeliveries(now: number, until: number, owner: string, limit: number): Promise<ClaimedDelivery[]>;
  /**
   * Drops every claim (for a process that knows it is the store's only sender, at start: the claims of
   * the process before it died need not lapse). Returns how many.
   */
  releaseClaims(): Promise<number>;
  /**
   * Records an attempt and its outcome (delivered, retry at, given up), and the destination's last
   * success or failure. Ignored when the claim was lost meanwhile (another node re-claimed it).
   */
  finishAttempt(delivery: ClaimedDelivery, attempt: WebhookAttempt, outcome: DeliveryOutcome): Promise<boolean>;
  /** The destination's most recent attempts, newest first. */
  listWebhookAttempts(accountId: string, destinationId: string, limit: number): Promise<WebhookAttempt[]>;
  /** Delivered notifications, newest first, sent in [since, before). */
  listSentNotifications(
    accountId: string,
    range: { since: number; before: number },
    offset: number,
    limit: number,
  ): Promise<{ items: SentNotification[]; total: number }>;
  /** Forgets finished deliveries and attempts older than `before`, and attempts beyond `keepPerDestination`. */
  prune(before: number, keepPerDestination: number): Promise<number>;
}

/** Writes to one account inside `withAccountLocked`. */
export interface AccountWrites {
  countVariants(): Promise<number>;
  /** Throws 5409 when the name exists. */
  insertVariant(variant: Variant, now: number): Promise<void>;
  countSigningKeys(): Promise<number>;
  /** Sets the value of an existing key; false when there is none of that name. */
  rotateSigningKey(name: string, value: string): Promise<boolean>;
  insertSigningKey(key: SigningKey): Promise<void>;
  deleteSigningKey(name: string): Promise<boolean>;
}

export interface StoredBlob {
  key: string;
  /** Unix milliseconds. */
  modifiedAt: number;
}

export interface BlobInfo {
  size: number;
}

export interface BlobStore {
  /** Durably stores `bytes` under `key`: after it resolves the bytes survive a crash; before, nothing is visible. */
  put(key: string, bytes: Buffer): Promise<void>;
  /** Streams the bytes, or undefined if there is no such blob. */
  get(key: string): Promise<{ stream: Readable; info: BlobInfo } | undefined>;
  delete(key: string): Promise<void>;
  /** Every blob stored, with when it was written (for orphan sweeps). */
  list(): AsyncIterable<StoredBlob>;
  /**
   * Cheaply checks that originals could be stored now (readiness); rejects otherwise. Leaves nothing
   * behind. `signal` ends a check the caller stopped waiting for.
   */
  probe(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Rendered variants, keyed by a hash of everything that determines their bytes. Losing entries is harmless. */
export interface RenderCacheStore {
  get(key: string): Promise<Buffer | undefined>;
  put(key: string, bytes: Buffer): Promise<void>;
  /** Deletes renders written before `writtenBefore` (stores bounded otherwise answer 0). */
  sweep(writtenBefore: number): Promise<number>;
  close(): Promise<void>;
}
