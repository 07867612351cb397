/**
 * The one HTTP error edge. Every error of every surface (account API, upload host, delivery), whether a
 * handler threw it, Fastify raised it (validation, bad JSON, body too large) or it came before routing
 * (a path that is not valid percent-encoding), goes through `replyWithError`: it is mapped to a
 * `PictorError`, logged with its cause when that helps an operator, and written by the surface's one
 * renderer (JSON envelope, or delivery's `ERROR <code>` text). Internal messages (sharp's, the
 * database's) stay in the log; clients get the code's message.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { errorHeaders, failure } from './envelope.js';
import { PictorError } from '../errors.js';
import { type Surface, surfaceOf } from './surfaces.js';

declare module 'fastify' {
  interface FastifyReply {
    /** The Pictor error code this reply carries, if it is an error (read by metrics and the request log). */
    errorCode: number | undefined;
  }
}


/** Answers of the upload host are read by browsers on other origins. */
export const UPLOAD_HOST_CORS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'content-type, content-length, retry-after',
};

/** Cloudflare's JSON envelope (account API and upload host). */
export function sendEnvelopeError(reply: FastifyReply, error: PictorError, extraHeaders: Record<string, string> = {}): FastifyReply {
  reply.errorCode = error.code;
  return reply.code(error.status).headers(extraHeaders).headers(errorHeaders(error)).type('application/json').send(failure(error));
}

/** imagedelivery.net's plain text `ERROR <code>: <message>` with `Cf-Resized: err=<code>`. */
export function sendDeliveryError(reply: FastifyReply, error: PictorError): FastifyReply {
  reply.errorCode = error.code;
  reply.code(error.status).header('cf-resized', `err=${error.code}`).header('cache-control', 'no-store');
  if (error.retryAfter !== undefined) reply.header('retry-after', String(error.retryAfter));
  return reply.type('text/plain; charset=utf-8').send(`ERROR ${error.code}: ${error.message}`);
}

/** Writes `error` in the format of the surface `rawUrl` belongs to. */
export function renderError(reply: FastifyReply, rawUrl: string, error: PictorError): FastifyReply {
  switch (surfaceOf(rawUrl)) {
    case 'api':
    case 'ops':
    case 'dashboard':
      return sendEnvelopeError(reply, error);
    case 'upload_host':
      return sendEnvelopeError(reply, error, UPLOAD_HOST_CORS);
    case 'delivery':
      return sendDeliveryError(reply, error);
  }
}

/** The surface's code for "your request is malformed" and for "we failed". */
function genericCodes(surface: Surface): { badRequest: 5400 | 9401; internal: 5500 | 9500 } {
  return surface === 'delivery' ? { badRequest: 9401, internal: 9500 } : { badRequest: 5400, internal: 5500 };
}

/** A schema failure as a sentence naming the field: `body.options.width must be integer`. */
function validationMessage(error: FastifyError): string {
  const first = error.validation?.[0];
  if (!first) return error.message;
  const context = error.validationContext ?? 'request';
  const missing = first.keyword === 'required' ? `.${String(first.params.missingProperty)}` : '';
  const field = `${context}${first.instancePath.replaceAll('/', '.')}${missing}`;
  return first.keyword === 'required' ? `${field} is required` : `${field} ${first.message ?? 'is invalid'}`;
}

/**
 * Fastify's own errors in Cloudflare's terms, per surface. Anything else (a bug, a store failure) is
 * `undefined`: the caller logs it and answers with the surface's internal-error code.
 */
export function knownError(error: unknown, surface: Surface): PictorError | undefined {
  if (error instanceof PictorError) return error;
  const fastifyError = error as Partial<FastifyError>;
  const codes = genericCodes(surface);
  if (fastifyError.validation) return new PictorError(codes.badRequest, validationMessage(fastifyError as FastifyError), { cause: error });
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PictorError(5413, 'The request body is larger than this endpoint accepts (JSON bodies: 1 MiB)', { cause: error });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new PictorError(codes.badRequest, 'The request body must be JSON', { cause: error });
    case 'FST_ERR_BAD_URL':
      return new PictorError(codes.badRequest, 'The URL is not correctly percent-encoded', { cause: error });
  }
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return new PictorError(codes.badRequest, fastifyError.message ?? 'Bad Request', { cause: error });
  }
  return undefined;
}

/** The error handler of the whole app: map, log, render. */
export function replyWithError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const rawUrl = request.raw.url ?? '/';
  const surface = surfaceOf(rawUrl);
  const known = knownError(error, surface);
  if (!known) {
    request.log.error({ err: error }, 'request failed');
    return renderError(reply, rawUrl, new PictorError(genericCodes(surface).internal, undefined, { cause: error }));
  }
  // What the client is not told (sharp's or the store's own words) is kept for the operator; refusals
  // only at debug level, so the request's own log line stays the one line per request.
  if (known.status >= 500) request.log.error({ err: known, cause: known.cause }, 'request failed');
  else if (known.cause !== undefined) request.log.debug({ code: known.code, cause: known.cause }, 'request refused');
  return renderError(reply, rawUrl, known);
}
