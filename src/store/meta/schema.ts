/** Table shapes as Kysely sees them. Booleans are stored as 0/1 integers and times as Unix milliseconds,
 * so the same queries run unchanged on SQLite and PostgreSQL. */
import type { Generated } from 'kysely';

export interface AccountsTable {
  id: string;
  hash: string;
  created_at: number;
  flexible_variants: number;
  browser_ttl: number;
  /** Live (non-draft) images: kept in step by every insert/complete/delete, so quota checks need no COUNT(*). */
  image_count: Generated<number>;
}

export interface CredentialsTable {
  id: string;
  account_id: string;
  kind: string;
  email: string | null;
  name: string;
  permission: string;
  secret_hash: string;
  created_at: number;
  revoked_at: number | null;
}

export interface ImagesTable {
  account_id: string;
  id: string;
  filename: string;
  creator: string | null;
  /** JSON text of the user metadata object. */
  meta: string;
  require_signed: number;
  uploaded_at: number;
  draft: number;
  blob_key: string | null;
  content_type: string | null;
  size: number | null;
  sha256: string | null;
  width: number | null;
  height: number | null;
  frames: number | null;
  version: Generated<number>;
}

export interface VariantsTable {
  account_id: string;
  name: string;
  /** JSON text of the variant options. */
  options: string;
  never_require_signed: number;
  version: number;
  created_at: number;
}

export interface SigningKeysTable {
  account_id: string;
  name: string;
  value: string;
  created_at: number;
}

export interface DirectUploadsTable {
  /** SHA-256 of the secret in the upload URL. */
  token_hash: string;
  account_id: string;
  image_id: string;
  expires_at: number;
  used_at: number | null;
  created_at: number;
  /** An upload to this URL is in progress until then (see leaseDirectUpload). */
  leased_until: number | null;
  /** Uploads to this URL refused or broken off so far (bounds the failure events one URL can cause). */
  failures: Generated<number>;
}

/** Batch tokens (`GET …/images/v1/batch_token`): stored hashed, expiring. */
export interface BatchTokensTable {
  token_hash: string;
  account_id: string;
  permission: string;
  created_at: number;
  expires_at: number;
}

/** Requests per batch token per second, shared by every node (the per-token rate limit). */
export interface BatchTokenRequestsTable {
  token_hash: string;
  /** Unix second the window starts at. */
  window_start: number;
  count: number;
}

/** Webhook destinations (Cloudflare's alerting destinations). */
export interface WebhookDestinationsTable {
  id: string;
  account_id: string;
  name: string;
  url: string;
  /** Sent as `cf-webhook-auth`, as given by the user; null when none was. */
  secret: string | null;
  /** Key of the HMAC signature header: the secret, or one generated when none was given. */
  signing_secret: string;
  created_at: number;
  last_success: number | null;
  last_failure: number | null;
}

/** Notification policies: an alert type sent to destinations. */
export interface AlertPoliciesTable {
  id: string;
  account_id: string;
  name: string;
  description: string;
  alert_type: string;
  enabled: number;
  alert_interval: string | null;
  /** JSON object of string arrays, kept as given. */
  filters: string;
  created_at: number;
  modified_at: number;
}

export interface AlertPolicyWebhooksTable {
  policy_id: string;
  destination_id: string;
}

/** The webhook outbox: one row per event and (policy, destination). */
export interface WebhookDeliveriesTable {
  id: string;
  account_id: string;
  destination_id: string;
  policy_id: string;
  event_id: string;
  alert_type: string;
  body: string;
  /** pending | delivered | failed (given up). */
  state: string;
  attempts: number;
  created_at: number;
  next_attempt_at: number;
  /** A node is sending it until then (a crashed node's claim lapses). */
  leased_until: number | null;
  lease_owner: string | null;
  finished_at: number | null;
}

/** Each POST made for a delivery, kept for the last attempts per destination. */
export interface WebhookAttemptsTable {
  id: string;
  delivery_id: string;
  destination_id: string;
  event_id: string;
  attempted_at: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

export interface Database {
  accounts: AccountsTable;
  credentials: CredentialsTable;
  images: ImagesTable;
  variants: VariantsTable;
  signing_keys: SigningKeysTable;
  direct_uploads: DirectUploadsTable;
  batch_tokens: BatchTokensTable;
  batch_token_requests: BatchTokenRequestsTable;
  webhook_destinations: WebhookDestinationsTable;
  alert_policies: AlertPoliciesTable;
  alert_policy_webhooks: AlertPolicyWebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
}
