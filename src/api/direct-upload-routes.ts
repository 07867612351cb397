/**
 * `POST /images/v2/direct_upload` (and the legacy `/images/v1/direct_upload`): mint a one-time upload
 * URL. The body may be multipart (as the SDK sends it, possibly with no parts at all), JSON, or empty.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { UploadLimits } from '../config.js';
import type { DirectUploadInput, DirectUploadService } from '../domain/direct-uploads.js';
import { isPlainObject } from '../domain/metadata.js';
import { badRequest } from '../errors.js';
import { success } from './envelope.js';
import { imageAttributesFromJson, imageFormFields } from './image-routes.js';
import { isMultipart, parseMultipart } from './multipart.js';

const MAX_JSON_BYTES = 64 * 1024;

/**
 * Reads a small body. Past `maxBytes` it stops reading without destroying the request, so the answer
 * still reaches the client (the transport guard drains or closes what is left).
 */
function readText(request: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = (): void => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.pause();
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > maxBytes) {
        stop();
        reject(badRequest(`The request body must not exceed ${maxBytes} bytes`));
      } else {
        chunks.push(chunk);
      }
    };
    const onEnd = (): void => {
      stop();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (): void => {
      stop();
      reject(badRequest('The request body could not be read'));
    };
    request.on('data', onData);
    request.once('end', onEnd);
    request.once('error', onError);
  });
}

function optionalString(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw badRequest(`${name} must be a string`);
  return value;
}

function inputFromJson(body: unknown): DirectUploadInput {
  if (!isPlainObject(body)) throw badRequest('The request body must be a JSON object');
  const { creator, ...attributes } = imageAttributesFromJson(body);
  const input: DirectUploadInput = attributes;
  const id = optionalString(body, 'id');
  const expiry = optionalString(body, 'expiry');
  if (id !== undefined) input.id = id;
  if (typeof creator === 'string') input.creator = creator;
  if (expiry !== undefined) input.expiry = expiry;
  return input;
}

async function directUploadInput(request: IncomingMessage, limits: UploadLimits): Promise<DirectUploadInput> {
  if (isMultipart(request.headers['content-type'])) {
    const form = await parseMultipart(request, limits.maxUploadBytes);
    const { url: _url, ...input } = imageFormFields(form.fields, limits);
    return input;
  }
  const text = await readText(request, MAX_JSON_BYTES);
  if (text.trim() === '') return {};
  try {
    return inputFromJson(JSON.parse(text));
  } catch (error) {
    if (error instanceof SyntaxError) throw badRequest('The request body is not valid JSON');
    throw error;
  }
}

/** Registered in the scope without body parsers (see plugin.ts). */
export function registerDirectUploadRoutes(scope: FastifyInstance, service: DirectUploadService, limits: UploadLimits): void {
  for (const version of ['v1', 'v2']) {
    scope.post<{ Params: { account_id: string } }>(
      `/accounts/:account_id/images/${version}/direct_upload`,
      async (request) => success(await service.create(request.params.account_id, await directUploadInput(request.raw, limits))),
    );
  }
}
