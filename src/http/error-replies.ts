/**
 * How an error is written, one function per wire format, shared by every surface and by the framework
 * errors raised before any route runs (a path that is not valid percent-encoding).
 */
import type { FastifyReply } from 'fastify';
import { errorHeaders, failure } from '../api/envelope.js';
import { PictorError } from '../errors.js';

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

/** Which surface a raw URL belongs to, for errors raised before routing. */
export function surfaceOf(rawUrl: string): 'api' | 'upload-host' | 'delivery' {
  if (rawUrl === '/client/v4' || rawUrl.startsWith('/client/v4/')) return 'api';
  if (rawUrl.startsWith('/upload/')) return 'upload-host';
  return 'delivery';
}

/** Fastify's own refusals before routing (FST_ERR_BAD_URL: undecodable percent-escapes) in each surface's format. */
export function sendFrameworkError(reply: FastifyReply, rawUrl: string): FastifyReply {
  const message = 'The URL is not correctly percent-encoded';
  switch (surfaceOf(rawUrl)) {
    case 'api':
      return sendEnvelopeError(reply, new PictorError(5400, message));
    case 'upload-host':
      return sendEnvelopeError(reply, new PictorError(5400, message), UPLOAD_HOST_CORS);
    case 'delivery':
      return sendDeliveryError(reply, new PictorError(9401, message));
  }
}
