/**
 * A client of the Cloudflare Images account API, as the official SDK calls it, for the bulk commands.
 * It works against any Pictor and against Cloudflare itself. Transient failures (network errors, 429 and
 * 5xx answers) are retried with backoff, honouring Retry-After; everything else is an `ApiError` with
 * Cloudflare's code and message.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Connection } from './connection.js';

export interface RemoteImage {
  id: string;
  filename: string;
  uploaded: string;
  requireSignedURLs: boolean;
  variants: string[];
  meta?: Record<string, unknown>;
  creator?: string | null;
}

export interface RemoteVariant {
  id: string;
  options: { fit?: string; width?: number; height?: number; metadata?: string; browser_ttl?: number };
  neverRequireSignedURLs?: boolean;
}

export interface RemoteKey {
  name: string;
  value: string;
}

export interface RemoteConfig {
  flexible_variants?: boolean;
  browser_ttl?: number;
}

export interface UploadFields {
  bytes: Buffer;
  filename: string;
  id?: string;
  metadata?: Record<string, unknown>;
  creator?: string | null;
  requireSignedURLs?: boolean;
  /** Kept only by a Pictor with an `images:import` token. */
  uploaded?: string;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: number | undefined,
  ) {
    super(message);
  }

  /** "message (code N)" */
  describe(): string {
    return this.code === undefined ? `${this.message} (HTTP ${this.status})` : `${this.message} (code ${this.code})`;
  }
}

export function describeError(error: unknown): string {
  if (error instanceof ApiError) return error.describe();
  return error instanceof Error ? error.message : String(error);
}

const RETRIES = 4;
const TRANSIENT = new Set([408, 429, 500, 502, 503, 504]);

interface Envelope<T> {
  success?: boolean;
  errors?: Array<{ code?: number; message?: string }>;
  result: T;
}

export class ImagesClient {
  constructor(readonly connection: Connection) {}

  private url(path: string): string {
    return `${this.connection.apiBase}/accounts/${encodeURIComponent(this.connection.accountId)}/images${path}`;
  }

  /** One request with retries; `read` turns a successful response into the result. */
  private async send<T>(method: string, path: string, body: string | FormData | undefined, headers: Record<string, string>, read: (response: Response) => Promise<T>): Promise<T> {
    let attempt = 0;
    for (;;) {
      attempt += 1;
      let response: Response;
      try {
        response = await fetch(this.url(path), { method, body, headers: { authorization: `Bearer ${this.connection.token}`, ...headers } });
      } catch (error) {
        if (attempt >= RETRIES) throw new ApiError(`cannot reach ${this.connection.apiBase}: ${describeError(error)}`, 0, undefined);
        await sleep(250 * 2 ** attempt);
        continue;
      }
      if (response.ok) return read(response);
      if (TRANSIENT.has(response.status) && attempt < RETRIES) {
        await response.body?.cancel();
        const retryAfter = Number(response.headers.get('retry-after'));
        await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 30) * 1000 : 250 * 2 ** attempt);
        continue;
      }
      throw await errorOf(response);
    }
  }

  private json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const init: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
    return this.send(method, path, body === undefined ? undefined : JSON.stringify(body), init, async (response) => ((await response.json()) as Envelope<T>).result);
  }

  /** Checks the connection with a read every token of the account may do. */
  async stats(): Promise<{ current: number; allowed: number }> {
    return (await this.json<{ count: { current: number; allowed: number } }>('GET', '/v1/stats')).count;
  }

  /** Every image, oldest first, through v2 continuation tokens. */
  async *images(): AsyncGenerator<RemoteImage> {
    let token: string | null = null;
    do {
      const query = new URLSearchParams({ per_page: '1000', sort_order: 'asc' });
      if (token) query.set('continuation_token', token);
      const page: { images: RemoteImage[]; continuation_token?: string | null } = await this.json('GET', `/v2?${query.toString()}`);
      yield* page.images;
      token = page.continuation_token ?? null;
    } while (token);
  }

  async image(id: string): Promise<RemoteImage | undefined> {
    try {
      return await this.json<RemoteImage>('GET', `/v1/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  async original(id: string): Promise<Buffer> {
    return this.send('GET', `/v1/${encodeURIComponent(id)}/blob`, undefined, {}, async (response) => Buffer.from(await response.arrayBuffer()));
  }

  async upload(fields: UploadFields): Promise<RemoteImage> {
    const form = new FormData();
    form.append('file', new Blob([fields.bytes]), fields.filename);
    if (fields.id !== undefined) form.append('id', fields.id);
    if (fields.metadata !== undefined) form.append('metadata', JSON.stringify(fields.metadata));
    if (fields.creator !== undefined && fields.creator !== null) form.append('creator', fields.creator);
    if (fields.requireSignedURLs !== undefined) form.append('requireSignedURLs', String(fields.requireSignedURLs));
    if (fields.uploaded !== undefined) form.append('uploaded', fields.uploaded);
    return this.send('POST', '/v1', form, {}, async (response) => ((await response.json()) as Envelope<RemoteImage>).result);
  }

  edit(id: string, edit: { metadata?: Record<string, unknown>; creator?: string | null; requireSignedURLs?: boolean }): Promise<RemoteImage> {
    return this.json('PATCH', `/v1/${encodeURIComponent(id)}`, edit);
  }

  async delete(id: string): Promise<void> {
    await this.json('DELETE', `/v1/${encodeURIComponent(id)}`);
  }

  async variants(): Promise<RemoteVariant[]> {
    const result = await this.json<{ variants: Record<string, RemoteVariant> }>('GET', '/v1/variants');
    return Object.values(result.variants);
  }

  async createVariant(variant: RemoteVariant): Promise<void> {
    await this.json('POST', '/v1/variants', variant);
  }

  async editVariant(variant: RemoteVariant): Promise<void> {
    await this.json('PATCH', `/v1/variants/${encodeURIComponent(variant.id)}`, {
      options: variant.options,
      neverRequireSignedURLs: variant.neverRequireSignedURLs ?? false,
    });
  }

  async keys(): Promise<RemoteKey[]> {
    return (await this.json<{ keys: RemoteKey[] }>('GET', '/v1/keys')).keys;
  }

  /** Creates or rotates a key; with `value` (an `images:import` token on Pictor) the key gets that value. */
  async putKey(name: string, value?: string): Promise<RemoteKey[]> {
    return (await this.json<{ keys: RemoteKey[] }>('PUT', `/v1/keys/${encodeURIComponent(name)}`, value === undefined ? undefined : { value })).keys;
  }

  config(): Promise<RemoteConfig> {
    return this.json('GET', '/v1/config');
  }

  editConfig(config: RemoteConfig): Promise<RemoteConfig> {
    return this.json('PATCH', '/v1/config', config);
  }
}

async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as Envelope<unknown>;
    const first = body.errors?.[0];
    if (first?.message) return new ApiError(first.message, response.status, first.code);
  } catch {
    // not JSON: fall through
  }
  return new ApiError(text.trim().slice(0, 200) || response.statusText, response.status, undefined);
}
