/**
 * The dashboard's only way into Pictor: the public account API under /client/v4, exactly as the SDK
 * calls it, with the signed-in credential. Every failure becomes an ApiError carrying Cloudflare's
 * code and message, which the views show as they are.
 */

export type Credentials = { kind: 'token'; token: string } | { kind: 'key'; email: string; key: string };

export interface ImageRecord {
  id: string;
  filename: string;
  uploaded: string;
  requireSignedURLs: boolean;
  variants: string[];
  meta: Record<string, unknown>;
  creator: string | null;
  draft?: true;
}

export type Fit = 'scale-down' | 'contain' | 'cover' | 'crop' | 'pad';
export type MetadataMode = 'keep' | 'copyright' | 'none';

export interface VariantOptions {
  fit: Fit;
  width?: number;
  height?: number;
  metadata: MetadataMode;
}

export interface Variant {
  id: string;
  options: VariantOptions;
  neverRequireSignedURLs: boolean;
}

export interface SigningKey {
  name: string;
  value: string;
}

export interface AccountSummary {
  id: string;
  name: string;
}

export interface AccountConfig {
  flexible_variants: boolean;
  browser_ttl: number;
}

interface Envelope<T> {
  success: boolean;
  errors?: Array<{ code: number; message: string }>;
  result: T;
  result_info?: { page: number; per_page: number; total_pages?: number; total_count: number };
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: number | undefined,
    readonly status: number,
  ) {
    super(message);
  }

  /** "message (code N)", as shown to the user. */
  describe(): string {
    return this.code === undefined ? this.message : `${this.message} (code ${this.code})`;
  }
}

/** What a failed request says, for any thrown value. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.describe();
  return error instanceof Error ? error.message : String(error);
}

const API_BASE = '/client/v4';

function authHeaders(credentials: Credentials): Record<string, string> {
  return credentials.kind === 'token'
    ? { authorization: `Bearer ${credentials.token}` }
    : { 'x-auth-email': credentials.email, 'x-auth-key': credentials.key };
}

/** Reads Cloudflare's envelope from a response; throws ApiError unless it is a success. */
export async function readEnvelope<T>(response: Response): Promise<Envelope<T>> {
  let body: Envelope<T> | undefined;
  try {
    body = (await response.json()) as Envelope<T>;
  } catch {
    throw new ApiError(`The server answered ${response.status} without a JSON body`, undefined, response.status);
  }
  if (!response.ok || !body.success) {
    const first = body.errors?.[0];
    throw new ApiError(first?.message ?? `Request failed with status ${response.status}`, first?.code, response.status);
  }
  return body;
}

export class Api {
  constructor(readonly credentials: Credentials) {}

  /** One request to `/client/v4<path>` with the credential; the envelope, or an ApiError. */
  async request<T>(path: string, init: RequestInit = {}): Promise<Envelope<T>> {
    let response: Response;
    try {
      response = await fetch(`${API_BASE}${path}`, {
        ...init,
        headers: { ...authHeaders(this.credentials), ...(init.headers as Record<string, string> | undefined) },
      });
    } catch (error) {
      throw new ApiError(`The server could not be reached (${errorText(error)})`, undefined, 0);
    }
    return readEnvelope<T>(response);
  }

  async verifyToken(): Promise<void> {
    await this.request('/user/tokens/verify');
  }

  async accounts(): Promise<AccountSummary[]> {
    return (await this.request<AccountSummary[]>('/accounts?per_page=50')).result;
  }
}

/** The account API of one account. */
export class AccountApi {
  constructor(
    readonly api: Api,
    readonly accountId: string,
  ) {}

  private path(rest: string): string {
    return `/accounts/${encodeURIComponent(this.accountId)}/images${rest}`;
  }

  private call<T>(rest: string, init: RequestInit = {}): Promise<Envelope<T>> {
    return this.api.request<T>(this.path(rest), init);
  }

  private json<T>(method: string, rest: string, body: unknown): Promise<Envelope<T>> {
    return this.call<T>(rest, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  async list(options: { sortOrder: 'asc' | 'desc'; creator: string; metaKey: string; metaValue: string; continuationToken?: string | null; perPage?: number }): Promise<{ images: ImageRecord[]; continuationToken: string | null }> {
    const query = new URLSearchParams({ per_page: String(options.perPage ?? 50), sort_order: options.sortOrder });
    if (options.creator !== '') query.set('creator', options.creator);
    if (options.metaKey !== '') query.set(`meta.${options.metaKey}[eq]`, options.metaValue);
    if (options.continuationToken) query.set('continuation_token', options.continuationToken);
    const { result } = await this.call<{ images: ImageRecord[]; continuation_token: string | null }>(`/v2?${query.toString()}`);
    return { images: result.images, continuationToken: result.continuation_token };
  }

  async stats(): Promise<{ allowed: number; current: number }> {
    return (await this.call<{ count: { allowed: number; current: number } }>('/v1/stats')).result.count;
  }

  async image(id: string): Promise<ImageRecord> {
    return (await this.call<ImageRecord>(`/v1/${encodeURIComponent(id)}`)).result;
  }

  async editImage(id: string, edit: { metadata?: Record<string, unknown>; requireSignedURLs?: boolean }): Promise<ImageRecord> {
    return (await this.json<ImageRecord>('PATCH', `/v1/${encodeURIComponent(id)}`, edit)).result;
  }

  async deleteImage(id: string): Promise<void> {
    await this.call(`/v1/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  /** The original's bytes (for its size, type and dimensions). */
  async original(id: string): Promise<Blob> {
    const response = await fetch(`${API_BASE}${this.path(`/v1/${encodeURIComponent(id)}/blob`)}`, { headers: authHeaders(this.api.credentials) });
    if (!response.ok) await readEnvelope(response);
    return response.blob();
  }

  /** Mints a one-time direct upload URL (Cloudflare's v2 direct creator upload). */
  async directUpload(): Promise<{ id: string; uploadURL: string }> {
    return (await this.call<{ id: string; uploadURL: string }>('/v2/direct_upload', { method: 'POST', body: new FormData() })).result;
  }

  async variants(): Promise<Variant[]> {
    const { result } = await this.call<{ variants: Record<string, Variant> }>('/v1/variants');
    return Object.values(result.variants);
  }

  async createVariant(variant: Variant): Promise<Variant> {
    return (await this.json<{ variant: Variant }>('POST', '/v1/variants', variant)).result.variant;
  }

  async editVariant(id: string, edit: { options: VariantOptions; neverRequireSignedURLs: boolean }): Promise<Variant> {
    return (await this.json<{ variant: Variant }>('PATCH', `/v1/variants/${encodeURIComponent(id)}`, edit)).result.variant;
  }

  async deleteVariant(id: string): Promise<void> {
    await this.call(`/v1/variants/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  async keys(): Promise<SigningKey[]> {
    return (await this.call<{ keys: SigningKey[] }>('/v1/keys')).result.keys;
  }

  async addKey(name: string): Promise<SigningKey[]> {
    return (await this.call<{ keys: SigningKey[] }>(`/v1/keys/${encodeURIComponent(name)}`, { method: 'PUT' })).result.keys;
  }

  async deleteKey(name: string): Promise<SigningKey[]> {
    return (await this.call<{ keys: SigningKey[] }>(`/v1/keys/${encodeURIComponent(name)}`, { method: 'DELETE' })).result.keys;
  }

  async config(): Promise<AccountConfig> {
    return (await this.call<AccountConfig>('/v1/config')).result;
  }

  async editConfig(edit: Partial<AccountConfig>): Promise<AccountConfig> {
    return (await this.json<AccountConfig>('PATCH', '/v1/config', edit)).result;
  }
}

export interface WebhookDestination {
  id: string;
  name: string;
  url: string;
  created_at: string;
  last_success?: string;
  last_failure?: string;
}

export interface AlertPolicy {
  id: string;
  name: string;
  alert_type: string;
  enabled: boolean;
  mechanisms: { webhooks: Array<{ id: string }> };
}

export interface WebhookAttempt {
  id: string;
  attempted_at: string;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

/** Cloudflare's alert type for Images notifications (direct upload success and failure). */
export const IMAGE_ALERT_TYPE = 'image_notification';

/** The account's notifications (Cloudflare's alerting v3): webhook destinations and their policies. */
export class AlertingApi {
  constructor(
    readonly api: Api,
    readonly accountId: string,
  ) {}

  private call<T>(rest: string, init: RequestInit = {}): Promise<Envelope<T>> {
    return this.api.request<T>(`/accounts/${encodeURIComponent(this.accountId)}/alerting/v3${rest}`, init);
  }

  private json<T>(method: string, rest: string, body: unknown): Promise<Envelope<T>> {
    return this.call<T>(rest, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  async webhooks(): Promise<WebhookDestination[]> {
    return (await this.call<WebhookDestination[]>('/destinations/webhooks')).result;
  }

  /** The server POSTs a test message first and saves the destination only if it is answered 2xx. */
  async createWebhook(input: { name: string; url: string; secret?: string }): Promise<{ id: string; signing_secret?: string }> {
    return (await this.json<{ id: string; signing_secret?: string }>('POST', '/destinations/webhooks', input)).result;
  }

  async deleteWebhook(id: string): Promise<void> {
    await this.call(`/destinations/webhooks/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  async attempts(id: string): Promise<WebhookAttempt[]> {
    return (await this.call<WebhookAttempt[]>(`/destinations/webhooks/${encodeURIComponent(id)}/attempts?limit=10`)).result;
  }

  async policies(): Promise<AlertPolicy[]> {
    return (await this.call<AlertPolicy[]>('/policies')).result;
  }

  async createPolicy(name: string, webhookId: string): Promise<void> {
    await this.json('POST', '/policies', { name, alert_type: IMAGE_ALERT_TYPE, enabled: true, mechanisms: { webhooks: [{ id: webhookId }] } });
  }

  async deletePolicy(id: string): Promise<void> {
    await this.call(`/policies/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }
}
