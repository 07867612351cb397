/** Plain data shapes shared by services and stores. No HTTP, no SQL. */

/**
 * `images:import` (a Pictor extension, for moving an account here) implies write, which implies read; it
 * also lets an upload keep a generated-shape id, an original upload time and requireSignedURLs with a
 * custom id, and a signing key be given its value (domain/images.ts, signing-keys.ts).
 */
export type Permission = 'images:read' | 'images:write' | 'images:import';

export interface AccountSettings {
  /** Whether delivery URLs may carry transformation options instead of a variant name. */
  flexibleVariants: boolean;
  /** Browser cache TTL of delivered images, seconds. */
  browserTtl: number;
}

export interface Account extends AccountSettings {
  id: string;
  hash: string;
  createdAt: number;
}

export interface Credential {
  id: string;
  accountId: string;
  kind: 'token' | 'key';
  /** Only for legacy X-Auth-Email + X-Auth-Key pairs. */
  email: string | null;
  name: string;
  permission: Permission;
  createdAt: number;
  revokedAt: number | null;
}

export type Metadata = Record<string, unknown>;

export interface ImageRecord {
  accountId: string;
  id: string;
  filename: string;
  creator: string | null;
  meta: Metadata;
  requireSignedUrls: boolean;
  /** Upload time, Unix milliseconds. */
  uploadedAt: number;
  draft: boolean;
  /** Key of the original in the blob store; null for drafts. */
  blobKey: string | null;
  contentType: string | null;
  size: number | null;
  sha256: string | null;
  /** Displayed size (after EXIF orientation); height is per frame. */
  width: number | null;
  height: number | null;
  frames: number | null;
  /** Bumped on every change; part of render-cache keys so edits make old renders unreachable. */
  version: number;
}

export interface VariantOptions {
  fit: 'scale-down' | 'contain' | 'cover' | 'crop' | 'pad';
  /** At least one of width and height is set. */
  width?: number;
  height?: number;
  metadata: 'keep' | 'copyright' | 'none';
  /** Overrides the account's browser TTL for this variant, seconds. */
  browser_ttl?: number;
}

export interface Variant {
  accountId: string;
  name: string;
  options: VariantOptions;
  neverRequireSignedUrls: boolean;
  version: number;
}

export interface SigningKey {
  accountId: string;
  name: string;
  value: string;
  createdAt: number;
}

/** The one-time permission behind a direct creator upload URL. */
/** A batch token (the batch host's credential): account-scoped, expiring, stored hashed. */
export interface BatchToken {
  tokenHash: string;
  accountId: string;
  /** The permission of the credential that minted it. */
  permission: Permission;
  createdAt: number;
  expiresAt: number;
}

export interface DirectUploadGrant {
  tokenHash: string;
  accountId: string;
  imageId: string;
  expiresAt: number;
  usedAt: number | null;
}

/** What a completed upload adds to a draft. */
export interface UploadedOriginal {
  filename: string;
  blobKey: string;
  contentType: string;
  size: number;
  sha256: string;
  width: number;
  height: number;
  frames: number;
  uploadedAt: number;
}

export type SortOrder = 'asc' | 'desc';

export type MetaFilterOperator =
  | 'eq'
  | 'eq:string'
  | 'eq:number'
  | 'eq:boolean'
  | 'gt'
  | 'gte'
  | 'lt'
  | 'lte'
  | 'in'
  | 'in:string'
  | 'in:number';

export interface MetaFilter {
  /** Path segments below `meta`, e.g. ["region", "name"]. */
  path: string[];
  operator: MetaFilterOperator;
  /** One value, or up to 10 for `in` operators. */
  values: string[];
}

/** Which images a list returns. `creator: null` means "images without a creator". */
export interface ImageFilter {
  creator?: string | null;
  meta?: MetaFilter[];
}

/** Position of the last image of a page in (uploadedAt, id) order. */
export interface ListCursor {
  uploadedAt: number;
  id: string;
}

// ---------- notifications (webhooks for direct uploads) ----------

/** A webhook destination (Cloudflare's alerting "webhooks" destination). */
export interface WebhookDestination {
  /** 32 hex digits, like Cloudflare's destination ids. */
  id: string;
  accountId: string;
  name: string;
  url: string;
  /** Sent as `cf-webhook-auth`, as the user gave it; null when none was given. */
  secret: string | null;
  /** Key of the HMAC signature header: the secret, or one generated when none was given. */
  signingSecret: string;
  createdAt: number;
  lastSuccess: number | null;
  lastFailure: number | null;
}

/** A notification policy: which alert type goes to which destinations. */
export interface AlertPolicy {
  /** A UUID, like Cloudflare's policy ids. */
  id: string;
  accountId: string;
  name: string;
  description: string;
  alertType: string;
  enabled: boolean;
  alertInterval: string | null;
  filters: Record<string, string[]>;
  webhookIds: string[];
  createdAt: number;
  modifiedAt: number;
}

/** A destination that receives an alert type, through one policy. */
export interface AlertSubscription {
  policyId: string;
  policyName: string;
  destinationId: string;
}

/** One event to post to one destination (a row of the outbox). */
export interface WebhookDelivery {
  id: string;
  accountId: string;
  destinationId: string;
  policyId: string;
  /** Shared by the deliveries of one event: receivers de-duplicate on it. */
  eventId: string;
  alertType: string;
  /** The JSON body, fixed when the event happened (retries send the same bytes). */
  body: string;
  attempts: number;
  createdAt: number;
  nextAttemptAt: number;
}

/** A delivery a node has claimed, with where and how to send it. */
export interface ClaimedDelivery extends WebhookDelivery {
  url: string;
  secret: string | null;
  signingSecret: string;
  leasedUntil: number;
  leaseOwner: string;
}

/** One POST made for a delivery. */
export interface WebhookAttempt {
  id: string;
  deliveryId: string;
  destinationId: string;
  eventId: string;
  attemptedAt: number;
  /** The receiver's HTTP status; null when no answer came (refused, timed out, network error). */
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

/** What becomes of a delivery after an attempt. */
export type DeliveryOutcome = { kind: 'delivered' } | { kind: 'retry'; at: number } | { kind: 'failed' };

/** A delivered notification, for Cloudflare's notification history. */
export interface SentNotification {
  id: string;
  policyId: string;
  /** Null when the policy was deleted since. */
  policyName: string | null;
  policyDescription: string | null;
  alertType: string;
  body: string;
  destinationUrl: string;
  sentAt: number;
}
