/**
 * `POST /images/v2/direct_upload` (and the legacy `/images/v1/direct_upload`): mint a one-time upload
 * URL. The body may be multipart (as the SDK sends it, possibly with no parts at all), JSON, or empty.
 */
import type { IncomingMessage } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { UploadLimits } from '../config.js';
import type { DirectUploadInput, DirectUploadService } from '../domain/direct-uploads.js';
import { badRequest } from '../errors.js';
import { parseLenientJson, readSmallBody } from '../http/bodies.js';
import { success } from '../http/envelope.js';
import { ACCOUNT_MOUNT, imageAttributesFromJson, imageFormFields, mountedSchema, type RouteMount } from './image-routes.js';
import { isMultipart, parseMultipart } from '../http/multipart.js';
import { type AccountParams, type DirectUploadJson, routeSchemas } from '../http/schemas.js';

const MAX_JSON_BYTES = 64 * 1024;

function inputFromJson(body: DirectUploadJson): DirectUploadInput {
  const { creator, ...attributes } = imageAttributesFromJson(body);
  return {
    ...attributes,
    ...(typeof body.id === 'string' && { id: body.id }),
    ...(typeof creator === 'string' && { creator }),
    ...(typeof body.expiry === 'string' && { expiry: body.expiry }),
  };
}

function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

async function directUploadInput(request: FastifyRequest<{ Body: DirectUploadJson | null | undefined }>, limits: UploadLimits): Promise<DirectUploadInput> {
  if (isMultipart(request.headers['content-type'])) {
    const form = await parseMultipart(request.raw, limits.maxUploadBytes);
    const { url: _url, uploaded: _uploaded, ...input } = imageFormFields(form.fields, limits);
    return input;
  }
  if (request.body !== undefined && request.body !== null) return inputFromJson(request.body);
  if (isJson(request.headers['content-type']) || !hasBody(request.raw)) return {};
  throw badRequest('The request body must be multipart/form-data or JSON');
}

function isJson(contentType: string | undefined): boolean {
  return /^application\/json\s*(;|$)/i.test(contentType ?? '');
}

/**
 * Registered in the scope without body parsers (see plugin.ts): multipart is streamed by the handler;
 * JSON, small by nature, is read here up to 64 KiB (past that the answer is 400 at once, and what is left
 * of the body is drained by the transport guard) and then checked against the route's schema.
 */
export function registerDirectUploadRoutes(scope: FastifyInstance, service: DirectUploadService, limits: UploadLimits, mount: RouteMount = ACCOUNT_MOUNT): void {
  scope.addContentTypeParser('application/json', async (_request: FastifyRequest, payload: IncomingMessage) =>
    parseLenientJson(await readSmallBody(payload, MAX_JSON_BYTES)),
  );
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  // The batch API has only the v2 route.
  for (const version of mount.batch ? (['v2'] as const) : (['v1', 'v2'] as const)) {
    app.post<{ Params: AccountParams; Body: DirectUploadJson | null | undefined }>(`${mount.base}/${version}/direct_upload`, { schema: mountedSchema(routeSchemas.directUpload(version), mount) }, async (request) =>
      success(await service.create(request.params.account_id, await directUploadInput(request, limits))),
    );
  }
}
