/**
 * Request ids: every answer carries `x-request-id`, and the request log line holds the same id. A sane
 * incoming id (from a proxy or the client) is kept, so one id follows a request across hops; anything
 * else (too long, spaces, several headers joined) is replaced, so a client cannot forge log lines or
 * blow up their size.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export const REQUEST_ID_HEADER = 'x-request-id';

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The incoming id if sane, else a fresh one. Also Fastify's `genReqId`, which then reads the id stamped below. */
export function requestIdOf(raw: IncomingMessage): string {
  const incoming = raw.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * Stamps the id on the request and its response before Fastify sees them. Done at the server rather
 * than in a hook because Fastify writes some answers without running any hook (an undecodable URL,
 * 503 while stopping); a header set on the raw response is kept by every later `writeHead`.
 */
export function stampRequestIds(server: Server): void {
  server.prependListener('request', (request: IncomingMessage, response: ServerResponse) => {
    const id = requestIdOf(request);
    request.headers[REQUEST_ID_HEADER] = id;
    response.setHeader(REQUEST_ID_HEADER, id);
  });
}
