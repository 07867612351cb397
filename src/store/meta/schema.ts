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

export interface Database {
  accounts: AccountsTable;
  credentials: CredentialsTable;
  images: ImagesTable;
  variants: VariantsTable;
  signing_keys: SigningKeysTable;
  direct_uploads: DirectUploadsTable;
  batch_tokens: BatchTokensTable;
  batch_token_requests: BatchTokenRequestsTable;
}
