/**
 * Helpers for driving image delivery over HTTP: upload-and-locate, delivery URLs, signed URLs (Part A
 * algorithm, written independently of src/), account config and variant calls, and inspection of the
 * delivered bytes with sharp. General purpose: no knowledge of a particular test file.
 */
import { createHmac } from 'node:crypto';
import sharp, { type Metadata } from 'sharp';
import { expect } from 'vitest';
import { expectOk, type ImageResult } from './api.js';
import { fileBlob, type TestServer, upload } from './server.js';

/** Accept headers as browsers send them. */
export const ACCEPT = {
  avif: 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8',
  webp: 'image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8',
  /** No AVIF, no WebP. */
  legacy: 'image/png,image/jpeg,image/gif,image/*;q=0.9,*/*;q=0.8',
} as const;

export interface Uploaded {
  id: string;
  image: ImageResult;
  /** `/<account_hash>/<image_id>` as used in delivery paths (id segments percent-encoded). */
  path: string;
}

/** Uploads a fixture (plus extra fields) and returns the image with its delivery path prefix. */
export async function uploadFixture(t: TestServer, name: string, fields: Record<string, string> = {}): Promise<Uploaded> {
  const image = await expectOk<ImageResult>(await upload(t, { file: fileBlob(name), ...fields }));
  const first = image.variants[0];
  if (first === undefined) throw new Error(`upload of ${name} returned no variant URLs`);
  const url = new URL(first);
  const path = url.pathname.slice(0, url.pathname.lastIndexOf('/'));
  return { id: image.id, image, path };
}

/** The account hash, from a delivery URL the API returned. */
export function accountHashOf(uploaded: Uploaded): string {
  return uploaded.path.split('/')[1] as string;
}

export interface DeliverOptions {
  accept?: string;
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
}

/** Requests `<server><path>` (path starting with `/`) with an optional Accept header. */
export function deliver(t: TestServer, path: string, options: DeliverOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.accept !== undefined) headers.accept = options.accept;
  return fetch(`${t.url}${path}`, { method: options.method ?? 'GET', headers });
}

export interface Delivered {
  res: Response;
  body: Buffer;
  meta: Metadata;
}

/** Delivers and expects 200 with decodable image bytes; returns them with sharp's metadata. */
export async function deliverImage(t: TestServer, path: string, options: DeliverOptions = {}): Promise<Delivered> {
  const res = await deliver(t, path, options);
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) {
    throw new Error(`GET ${path} → ${res.status} ${res.headers.get('cf-resized') ?? ''} ${body.toString('utf8').slice(0, 300)}`);
  }
  const meta = await sharp(body, { animated: true }).metadata();
  return { res, body, meta };
}

/** Output size of one frame (sharp reports the stacked height for animations). */
export function frameSize(meta: Metadata): { width: number; height: number } {
  return { width: meta.width, height: meta.pageHeight ?? meta.height };
}

/** Asserts a delivery error: status, `ERROR <code>` text body and `Cf-Resized: err=<code>`. */
export async function expectDeliveryError(res: Response, status: number, code: number): Promise<string> {
  const text = await res.text();
  const context = `${res.status} cf-resized=${res.headers.get('cf-resized') ?? ''} ${text.slice(0, 300)}`;
  expect(res.status, context).toBe(status);
  expect(text.startsWith(`ERROR ${code}`), context).toBe(true);
  expect(res.headers.get('cf-resized'), context).toBe(`err=${code}`);
  expect(res.headers.get('content-type') ?? '', context).toMatch(/^text\/plain\b/);
  return text;
}

/** Part A: lowercase hex HMAC-SHA256 of the string to sign, keyed with the key string's UTF-8 bytes. */
export function hmacHex(stringToSign: string, key: string): string {
  return createHmac('sha256', Buffer.from(key, 'utf8')).update(stringToSign, 'utf8').digest('hex');
}

/**
 * Signs `path` (starting at `/<account_hash>`) with `query` (no `sig`, in order) and returns
 * `path?query&sig=…` ready to append to a server URL (or a `/cdn-cgi/imagedelivery` prefix).
 */
export function signedPath(path: string, key: string, query: string): string {
  const sig = hmacHex(`${path}?${query}`, key);
  return query === '' ? `${path}?sig=${sig}` : `${path}?${query}&sig=${sig}`;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export interface SigningKey {
  name: string;
  value: string;
}

export async function listKeys(t: TestServer): Promise<SigningKey[]> {
  return (await expectOk<{ keys: SigningKey[] }>(await fetch(`${t.imagesUrl}/v1/keys`, { headers: t.auth }))).keys;
}

export async function putKey(t: TestServer, name: string): Promise<SigningKey[]> {
  const res = await fetch(`${t.imagesUrl}/v1/keys/${name}`, { method: 'PUT', headers: t.auth });
  return (await expectOk<{ keys: SigningKey[] }>(res)).keys;
}

export async function deleteKey(t: TestServer, name: string): Promise<SigningKey[]> {
  const res = await fetch(`${t.imagesUrl}/v1/keys/${name}`, { method: 'DELETE', headers: t.auth });
  return (await expectOk<{ keys: SigningKey[] }>(res)).keys;
}

export interface AccountConfig {
  flexible_variants: boolean;
  browser_ttl: number;
}

export async function patchConfig(t: TestServer, body: Partial<AccountConfig>): Promise<AccountConfig> {
  const res = await fetch(`${t.imagesUrl}/v1/config`, {
    method: 'PATCH',
    headers: { ...t.auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return expectOk<AccountConfig>(res);
}

export interface VariantOptionsBody {
  fit?: string;
  width?: number;
  height?: number;
  metadata?: string;
  browser_ttl?: number;
}

export interface VariantBody {
  id: string;
  options: VariantOptionsBody;
  neverRequireSignedURLs?: boolean;
}

export interface VariantResult {
  id: string;
  options: VariantOptionsBody;
  neverRequireSignedURLs: boolean;
}

export function jsonRequest(t: TestServer, method: string, path: string, body?: unknown, headers: Record<string, string> = t.auth): Promise<Response> {
  return fetch(`${t.imagesUrl}${path}`, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
}

export async function createVariant(t: TestServer, body: VariantBody): Promise<VariantResult> {
  return (await expectOk<{ variant: VariantResult }>(await jsonRequest(t, 'POST', '/v1/variants', body))).variant;
}

export async function editVariant(t: TestServer, name: string, body: Omit<VariantBody, 'id'>): Promise<VariantResult> {
  return (await expectOk<{ variant: VariantResult }>(await jsonRequest(t, 'PATCH', `/v1/variants/${name}`, body))).variant;
}

/** Downsampled greyscale pixels (for comparing how two renditions look). */
export async function thumbprint(bytes: Buffer, width = 16, height = 12): Promise<Buffer> {
  return sharp(bytes).resize(width, height, { fit: 'fill' }).greyscale().raw().toBuffer();
}

/** Mean absolute difference of two equally sized byte arrays, as a fraction of 255. */
export function meanAbsDiff(a: Buffer, b: Buffer): number {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs((a[i] as number) - (b[i] as number));
  return sum / a.length / 255;
}

/** RGBA of one pixel of an image. */
export async function pixelAt(bytes: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(bytes).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const offset = (y * info.width + x) * info.channels;
  return Array.from(data.subarray(offset, offset + info.channels));
}
