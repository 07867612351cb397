/**
 * Routes of `/client/v4/accounts/:account_id/images/...` for images. Each handler turns HTTP into plain
 * values, calls the Images service and wraps the result in Cloudflare's envelope.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { UploadLimits } from '../config.js';
import type { ImageEdit, ImageService, UploadInput } from '../domain/images.js';
import type { UploadGate } from '../domain/upload-gate.js';
import { bracketPath, buildBracketMetadata, parseMetadataJson } from '../domain/metadata.js';
import { parseMetaFilters } from '../domain/meta-filter.js';
import type { ImageFilter, Metadata, SortOrder } from '../domain/model.js';
import { badRequest } from '../errors.js';
import { success } from '../http/envelope.js';
import { AccountParams, ImageEditBody, routeSchemas } from '../http/schemas.js';
import { parseMultipart, type ParsedForm } from '../http/multipart.js';

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
  /** The original upload time, honoured only for `images:import` credentials (ISO 8601). */
  uploaded?: string;
  requireSignedUrls?: boolean;
  metadata?: Metadata;
}

/** Maps multipart text fields (metadata as a JSON string and/or bracket fields) to plain values. */
export function imageFormFields(fields: ParsedForm['fields'], limits: UploadLimits): ImageFormFields {
  const result: ImageFormFields = {};
  let jsonMetadata: Metadata | undefined;
  const bracketFields: Array<{ path: string[]; value: string }> = [];
  for (const [name, value] of fields) {
    if (name === 'url' || name === 'id' || name === 'creator' || name === 'expiry' || name === 'uploaded') result[name] = value;
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

/** An import's `uploaded` field: an ISO 8601 time, not in the future. */
function importedUploadTime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const time = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(time)) throw badRequest('uploaded must be an ISO 8601 time');
  if (time > Date.now() + 60_000) throw badRequest('uploaded must not be in the future');
  return time;
}

/**
 * Maps the multipart form of an upload to the service's input. `importing` (an `images:import`
 * credential) turns on the import extension; for any other credential `uploaded` is ignored, as
 * Cloudflare ignores fields it does not know.
 */
export function uploadInputFromForm(form: ParsedForm, limits: UploadLimits, importing = false): UploadInput {
  const { url, expiry: _ignored, uploaded, ...attributes } = imageFormFields(form.fields, limits);
  if (form.file && url !== undefined) throw badRequest('Send either a file or a url, not both');
  const source: UploadInput['source'] | undefined = form.file
    ? { kind: 'file', bytes: form.file.bytes, filename: form.file.filename }
    : url !== undefined
      ? { kind: 'url', url }
      : undefined;
  if (!source) throw badRequest('The upload must include a file or a url');
  if (!importing) return { source, ...attributes };
  const uploadedAt = importedUploadTime(uploaded);
  return { source, ...attributes, imported: uploadedAt === undefined ? {} : { uploadedAt } };
}

/** The image attributes a JSON body may carry (editing an image, minting a direct upload), as its schema shaped them. */
export interface ImageAttributesJson {
  metadata?: Metadata;
  requireSignedURLs?: boolean;
  creator?: string | null;
}

export function imageAttributesFromJson(body: ImageAttributesJson): ImageEdit {
  return {
    ...(body.metadata !== undefined && { metadata: body.metadata }),
    ...(body.requireSignedURLs !== undefined && { requireSignedUrls: body.requireSignedURLs }),
    ...(body.creator !== undefined && { creator: body.creator }),
  };
}

/** The JSON body of an image edit, already shaped by its schema; `null` or no body edits nothing. */
function editFromBody(body: ImageEditBody | undefined): ImageEdit {
  return body === undefined || body === null ? {} : imageAttributesFromJson(body);
}

/** The raw query string, for the v2 `meta.*` filters (their keys hold brackets and dots). */
function searchParams(request: FastifyRequest): URLSearchParams {
  const raw = request.raw.url ?? '';
  const queryStart = raw.indexOf('?');
  return new URLSearchParams(queryStart === -1 ? '' : raw.slice(queryStart + 1));
}

function creatorFilter(creator: string | undefined): ImageFilter {
  if (creator === undefined) return {};
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

/**
 * Where image routes are mounted: under the account (`/client/v4/accounts/:account_id/images`), or on
 * the batch host (`<batch prefix>/images`, the account set by the batch token; hidden from openapi.json,
 * and only the routes Cloudflare's batch API has).
 */
export interface RouteMount {
  base: string;
  batch: boolean;
}

export const ACCOUNT_MOUNT: RouteMount = { base: '/accounts/:account_id/images', batch: false };
export const BATCH_MOUNT: RouteMount = { base: '/images', batch: true };

/** The route's schema, hidden from the OpenAPI document on the batch host (the same routes, documented once). */
export function mountedSchema<T extends object>(schema: T, mount: RouteMount): T {
  return mount.batch ? { ...schema, hide: true } : schema;
}

/** `POST /images/v1`: registered in a scope without body parsers, as it streams the raw body itself. */
export function registerUploadRoute(scope: FastifyInstance, images: ImageService, limits: UploadLimits, gate: UploadGate, mount: RouteMount = ACCOUNT_MOUNT): void {
  const base = mount.base;
  scope.withTypeProvider<TypeBoxTypeProvider>().post(`${base}/v1`, { schema: mountedSchema(routeSchemas.upload, mount) }, async (request) => {
    // Over the bound of uploads in progress the answer (503) comes before the body is read.
    const leave = await gate.enter();
    try {
      const form = await parseMultipart(request.raw, limits.maxUploadBytes);
      const input = uploadInputFromForm(form, limits, request.credential?.permission === 'images:import');
      return success(await images.upload(request.params.account_id, input));
    } finally {
      leave();
    }
  });
}

export function registerImageRoutes(scope: FastifyInstance, images: ImageService, mount: RouteMount = ACCOUNT_MOUNT): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const base = mount.base;
  const schema = <T extends object>(route: T): T => mountedSchema(route, mount);

  if (!mount.batch) app.get(`${base}/v1`, { schema: routeSchemas.listV1 }, async (request) => {
    const { page = 1, per_page = V1_LIST_MAX, creator } = request.query;
    // Larger pages are clamped, as Cloudflare's list endpoints do.
    const perPage = Math.min(per_page, V1_LIST_MAX);
    const result = await images.listPage(request.params.account_id, creatorFilter(creator), page, perPage);
    return success(
      { images: result.images },
      { page, per_page: perPage, count: result.images.length, total_count: result.totalCount },
    );
  });

  app.get(`${base}/v2`, { schema: schema(routeSchemas.listV2) }, async (request) => {
    const { per_page = V2_LIST_DEFAULT, sort_order = 'desc', creator, continuation_token } = request.query;
    const order: SortOrder = sort_order === 'asc' ? 'asc' : 'desc';
    const filter: ImageFilter = { ...creatorFilter(creator), meta: parseMetaFilters(searchParams(request).entries()) };
    const perPage = Math.min(per_page, V2_LIST_MAX);
    const slice = await images.listSlice(request.params.account_id, filter, order, perPage, continuation_token || undefined);
    return success({ images: slice.images, continuation_token: slice.continuationToken });
  });

  if (!mount.batch) {
    app.get(`${base}/v1/stats`, { schema: routeSchemas.stats }, async (request) => {
      return success({ count: await images.stats(request.params.account_id) });
    });
  }

  // Ids are read from the raw path (imageTarget), so one handler serves `:image_id` and ids holding a
  // raw `/`, which only the hidden wildcard routes can match.
  const sendOriginal = async (accountId: string, imageId: string, reply: FastifyReply): Promise<FastifyReply> => {
    const original = await images.original(accountId, imageId);
    // The original is user content: never let a browser run it (SVG can carry script).
    return reply
      .type(original.contentType)
      .header('content-length', original.size)
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; sandbox")
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'private, no-store')
      .send(original.stream);
  };
  const getImage = async (request: FastifyRequest<{ Params: AccountParams }>, reply: FastifyReply) => {
    const { imageId, blob } = imageTarget(request.raw.url ?? '', 'GET');
    if (blob) return sendOriginal(request.params.account_id, imageId, reply);
    return success(await images.get(request.params.account_id, imageId));
  };
  const getBlob = async (request: FastifyRequest<{ Params: AccountParams }>, reply: FastifyReply) => {
    const { imageId } = imageTarget(request.raw.url ?? '', 'GET');
    return sendOriginal(request.params.account_id, imageId, reply);
  };
  const editImage = async (request: FastifyRequest<{ Params: AccountParams; Body: ImageEditBody | undefined }>) => {
    const { imageId } = imageTarget(request.raw.url ?? '', 'PATCH');
    return success(await images.edit(request.params.account_id, imageId, editFromBody(request.body)));
  };
  const deleteImage = async (request: FastifyRequest<{ Params: AccountParams }>) => {
    const { imageId } = imageTarget(request.raw.url ?? '', 'DELETE');
    await images.delete(request.params.account_id, imageId);
    return success({});
  };

  app.get(`${base}/v1/:image_id`, { schema: schema(routeSchemas.getImage) }, getImage);
  if (!mount.batch) app.get(`${base}/v1/:image_id/blob`, { schema: routeSchemas.getBlob }, getBlob);
  app.patch(`${base}/v1/:image_id`, { schema: schema(routeSchemas.editImage) }, editImage);
  app.delete(`${base}/v1/:image_id`, { schema: schema(routeSchemas.deleteImage) }, deleteImage);
  const alias = { params: AccountParams, hide: true };
  app.get(`${base}/v1/*`, { schema: alias }, getImage);
  app.patch(`${base}/v1/*`, { schema: { ...alias, body: ImageEditBody } }, editImage);
  app.delete(`${base}/v1/*`, { schema: alias }, deleteImage);
}
