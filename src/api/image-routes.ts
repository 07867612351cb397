/**
 * Routes of `/client/v4/accounts/:account_id/images/...` for images. Each handler turns HTTP into plain
 * values, calls the Images service and wraps the result in Cloudflare's envelope.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { UploadLimits } from '../config.js';
import type { ImageEdit, ImageService, UploadInput } from '../domain/images.js';
import type { UploadGate } from '../domain/upload-gate.js';
import { bracketPath, buildBracketMetadata, isPlainObject, parseMetadataJson } from '../domain/metadata.js';
import { parseMetaFilters } from '../domain/meta-filter.js';
import type { ImageFilter, Metadata, SortOrder } from '../domain/model.js';
import { badRequest } from '../errors.js';
import { success } from './envelope.js';
import { parseMultipart, type ParsedForm } from './multipart.js';

type AccountParams = { account_id: string };

const V1_LIST_MAX = 100;
const V2_LIST_MAX = 10_000;
const V2_LIST_DEFAULT = 1_000;

function parseFormBoolean(name: string, value: string): boolean {
  const normalized = value.trim().toLowerCase();
  if (normalized === 'true' || normalized === '1') return true;
  if (normalized === 'false' || normalized === '0') return false;
  throw badRequest(`${name} must be true or false`);
}

/** The text fields an upload or a direct-upload request may carry. */
export interface ImageFormFields {
  url?: string;
  id?: string;
  creator?: string;
  expiry?: string;
  requireSignedUrls?: boolean;
  metadata?: Metadata;
}

/** Maps multipart text fields (metadata as a JSON string and/or bracket fields) to plain values. */
export function imageFormFields(fields: ParsedForm['fields'], limits: UploadLimits): ImageFormFields {
  const result: ImageFormFields = {};
  let jsonMetadata: Metadata | undefined;
  const bracketFields: Array<{ path: string[]; value: string }> = [];
  for (const [name, value] of fields) {
    if (name === 'url' || name === 'id' || name === 'creator' || name === 'expiry') result[name] = value;
    else if (name === 'requireSignedURLs') result.requireSignedUrls = parseFormBoolean(name, value);
    else if (name === 'metadata') jsonMetadata = parseMetadataJson(value, limits.maxMetadataBytes);
    else {
      const path = bracketPath(name);
      if (path) bracketFields.push({ path, value });
    }
  }
  const metadata =
    bracketFields.length > 0 ? { ...jsonMetadata, ...buildBracketMetadata(bracketFields) } : jsonMetadata;
  if (metadata !== undefined) result.metadata = metadata;
  return result;
}

/** Maps the multipart form of an upload to the service's input. */
export function uploadInputFromForm(form: ParsedForm, limits: UploadLimits): UploadInput {
  const { url, expiry: _ignored, ...attributes } = imageFormFields(form.fields, limits);
  if (form.file && url !== undefined) throw badRequest('Send either a file or a url, not both');
  const source: UploadInput['source'] | undefined = form.file
    ? { kind: 'file', bytes: form.file.bytes, filename: form.file.filename }
    : url !== undefined
      ? { kind: 'url', url }
      : undefined;
  if (!source) throw badRequest('The upload must include a file or a url');
  return { source, ...attributes };
}

/** The image attributes a JSON body may carry (editing an image, minting a direct upload). */
export function imageAttributesFromJson(body: Record<string, unknown>): ImageEdit {
  const attributes: ImageEdit = {};
  if (body.metadata !== undefined) {
    if (!isPlainObject(body.metadata)) throw badRequest('metadata must be a JSON object');
    attributes.metadata = body.metadata;
  }
  if (body.requireSignedURLs !== undefined) {
    if (typeof body.requireSignedURLs !== 'boolean') throw badRequest('requireSignedURLs must be a boolean');
    attributes.requireSignedUrls = body.requireSignedURLs;
  }
  if (body.creator !== undefined) {
    if (body.creator !== null && typeof body.creator !== 'string') throw badRequest('creator must be a string');
    attributes.creator = body.creator;
  }
  return attributes;
}

function parseEdit(body: unknown): ImageEdit {
  if (body === undefined || body === null) return {};
  if (!isPlainObject(body)) throw badRequest('The request body must be a JSON object');
  return imageAttributesFromJson(body);
}

function searchParams(request: FastifyRequest): URLSearchParams {
  const raw = request.raw.url ?? '';
  const queryStart = raw.indexOf('?');
  return new URLSearchParams(queryStart === -1 ? '' : raw.slice(queryStart + 1));
}

function positiveInteger(params: URLSearchParams, name: string, fallback: number, max: number): number {
  const raw = params.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw badRequest(`${name} must be a positive integer`);
  // Larger values are clamped, as Cloudflare's list endpoints do.
  return Math.min(Number(raw), max);
}

function creatorFilter(params: URLSearchParams): ImageFilter {
  const creator = params.get('creator');
  if (creator === null) return {};
  return { creator: creator === '' ? null : creator };
}

/**
 * The image id from the raw request path (after `/images/v1/`), decoding each segment, so `a%2Fb` and
 * a raw `a/b` both name the image `a/b`. A final raw `/blob` segment on GET selects the original.
 */
export function imageTarget(rawUrl: string, method: string): { imageId: string; blob: boolean } {
  const path = rawUrl.split('?')[0] ?? '';
  const marker = '/images/v1/';
  const rest = path.slice(path.indexOf(marker) + marker.length);
  const rawSegments = rest.split('/');
  const blob = method === 'GET' && rawSegments.length >= 2 && rawSegments[rawSegments.length - 1] === 'blob';
  const idSegments = blob ? rawSegments.slice(0, -1) : rawSegments;
  try {
    return { imageId: idSegments.map(decodeURIComponent).join('/'), blob };
  } catch {
    throw badRequest('The image id in the URL is not correctly percent-encoded');
  }
}

const base = '/accounts/:account_id/images';

/** `POST /images/v1`: registered in a scope without body parsers, as it streams the raw body itself. */
export function registerUploadRoute(scope: FastifyInstance, images: ImageService, limits: UploadLimits, gate: UploadGate): void {
  scope.post<{ Params: AccountParams }>(`${base}/v1`, async (request) => {
    // Over the bound of uploads in progress the answer (503) comes before the body is read.
    const leave = await gate.enter();
    try {
      const form = await parseMultipart(request.raw, limits.maxUploadBytes);
      const input = uploadInputFromForm(form, limits);
      return success(await images.upload(request.params.account_id, input));
    } finally {
      leave();
    }
  });
}

export function registerImageRoutes(app: FastifyInstance, images: ImageService): void {
  app.get<{ Params: AccountParams }>(`${base}/v1`, async (request) => {
    const params = searchParams(request);
    const page = positiveInteger(params, 'page', 1, Number.MAX_SAFE_INTEGER);
    const perPage = positiveInteger(params, 'per_page', V1_LIST_MAX, V1_LIST_MAX);
    const result = await images.listPage(request.params.account_id, creatorFilter(params), page, perPage);
    return success(
      { images: result.images },
      { page, per_page: perPage, count: result.images.length, total_count: result.totalCount },
    );
  });

  app.get<{ Params: AccountParams }>(`${base}/v2`, async (request) => {
    const params = searchParams(request);
    const perPage = positiveInteger(params, 'per_page', V2_LIST_DEFAULT, V2_LIST_MAX);
    const order = params.get('sort_order') ?? 'desc';
    if (order !== 'asc' && order !== 'desc') throw badRequest('sort_order must be asc or desc');
    const filter: ImageFilter = { ...creatorFilter(params), meta: parseMetaFilters(params.entries()) };
    const token = params.get('continuation_token') || undefined;
    const slice = await images.listSlice(request.params.account_id, filter, order as SortOrder, perPage, token);
    return success({ images: slice.images, continuation_token: slice.continuationToken });
  });

  app.get<{ Params: AccountParams }>(`${base}/v1/stats`, async (request) => {
    return success({ count: await images.stats(request.params.account_id) });
  });

  app.get<{ Params: AccountParams }>(`${base}/v1/*`, async (request, reply) => {
    const { imageId, blob } = imageTarget(request.raw.url ?? '', 'GET');
    if (!blob) return success(await images.get(request.params.account_id, imageId));
    const original = await images.original(request.params.account_id, imageId);
    // The original is user content: never let a browser run it (SVG can carry script).
    return reply
      .type(original.contentType)
      .header('content-length', original.size)
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; sandbox")
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'private, no-store')
      .send(original.stream);
  });

  app.patch<{ Params: AccountParams }>(`${base}/v1/*`, async (request) => {
    const { imageId } = imageTarget(request.raw.url ?? '', 'PATCH');
    return success(await images.edit(request.params.account_id, imageId, parseEdit(request.body)));
  });

  app.delete<{ Params: AccountParams }>(`${base}/v1/*`, async (request) => {
    const { imageId } = imageTarget(request.raw.url ?? '', 'DELETE');
    await images.delete(request.params.account_id, imageId);
    return success({});
  });
}
