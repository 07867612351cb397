/** Small request bodies read by the HTTP layer: lenient JSON, and raw text up to a bound. */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../errors.js';

/**
 * JSON as clients send it: an empty body (some send one with DELETE or with a body-less POST) is no
 * body; JSON that does not parse is 5400.
 */
export function parseLenientJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw badRequest('The request body is not valid JSON');
  }
}

/** Parses `application/json` bodies of a scope with `parseLenientJson` (up to Fastify's body limit). */
export function acceptLenientJson(scope: FastifyInstance): void {
  scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseLenientJson(String(body)));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}

/**
 * Reads a small body. Past `maxBytes` it stops reading without destroying the request, so the answer
 * still reaches the client (the transport guard drains or closes what is left).
 */
export function readSmallBody(request: IncomingMessage, maxBytes: number): Promise<string> {
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
