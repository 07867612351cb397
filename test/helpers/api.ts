/**
 * Small helpers for reading Cloudflare's JSON envelope and asserting API errors over plain fetch.
 * General purpose: no knowledge of a particular test file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { TestServer } from './server.js';

export interface ApiErrorItem {
  code: number;
  message: string;
  error_chain?: Array<{ code: number; message: string }>;
}

export interface Envelope<T = unknown> {
  success: boolean;
  errors: ApiErrorItem[];
  messages: unknown[];
  result: T | null;
  result_info?: unknown;
}

export interface ImageResult {
  id: string;
  filename: string;
  uploaded: string;
  requireSignedURLs: boolean;
  variants: string[];
  meta: Record<string, unknown>;
  creator: string | null;
  draft?: boolean;
}

export interface StatsResult {
  count: { allowed: number; current: number };
}

export interface V2ListResult {
  images: ImageResult[];
  continuation_token: string | null;
}

/** Parses the body as an envelope after checking the content type the SDK needs. */
export async function readEnvelope<T = unknown>(res: Response): Promise<Envelope<T>> {
  const text = await res.text();
  expect(res.headers.get('content-type') ?? '', `content-type of ${res.status} ${text}`).toMatch(
    /^application\/json\b/,
  );
  return JSON.parse(text) as Envelope<T>;
}

/**
 * Asserts an error answer: HTTP status, errors[0].code, optionally error_chain[0].code, and the exact
 * envelope shape {success:false, errors:[…], messages:[], result:null} with application/json.
 */
export async function expectApiError(
  res: Response,
  status: number,
  code: number,
  chainCode?: number,
): Promise<Envelope<null>> {
  const text = await res.text();
  const context = `${res.status} ${res.headers.get('content-type') ?? ''} ${text.slice(0, 500)}`;
  expect(res.headers.get('content-type') ?? '', context).toMatch(/^application\/json\b/);
  let body: Envelope<null>;
  try {
    body = JSON.parse(text) as Envelope<null>;
  } catch {
    throw new Error(`Not JSON: ${context}`);
  }
  expect({ status: res.status, code: body.errors[0]?.code }, context).toEqual({ status, code });
  expect(body.success, context).toBe(false);
  expect(body.messages, context).toEqual([]);
  expect(body.result, context).toBeNull();
  expect(Array.isArray(body.errors) && body.errors.length >= 1, context).toBe(true);
  expect(typeof body.errors[0]?.message, context).toBe('string');
  expect(Object.keys(body).sort(), context).toEqual(['errors', 'messages', 'result', 'success']);
  if (chainCode !== undefined) expect(body.errors[0]?.error_chain?.[0]?.code, context).toBe(chainCode);
  return body;
}

/** Parses a successful answer and returns its result. */
export async function expectOk<T>(res: Response): Promise<T> {
  const body = await readEnvelope<T>(res);
  expect({ status: res.status, success: body.success, errors: body.errors }).toEqual({
    status: 200,
    success: true,
    errors: [],
  });
  return body.result as T;
}

export async function getStats(t: TestServer, headers: Record<string, string> = t.auth): Promise<StatsResult['count']> {
  const res = await fetch(`${t.imagesUrl}/v1/stats`, { headers });
  return (await expectOk<StatsResult>(res)).count;
}

/** Every image id the v2 list shows (walking continuation tokens). */
export async function listAllIds(t: TestServer, headers: Record<string, string> = t.auth): Promise<string[]> {
  const ids: string[] = [];
  let token: string | null = null;
  do {
    const query: string = token === null ? '' : `&continuation_token=${encodeURIComponent(token)}`;
    const res = await fetch(`${t.imagesUrl}/v2?per_page=10000${query}`, { headers });
    const result: V2ListResult = await expectOk<V2ListResult>(res);
    ids.push(...result.images.map((image) => image.id));
    token = result.continuation_token;
  } while (token !== null);
  return ids;
}

/** Paths of all regular files under `dir`, relative to it (empty when it does not exist). */
export function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

/** `GET .../images/v1/<id>/blob` with the id percent-encoded as one segment. */
export function blobUrl(t: TestServer, id: string): string {
  return `${t.imagesUrl}/v1/${encodeURIComponent(id)}/blob`;
}
