/**
 * What every answered request leaves behind: its metrics (surface, status, duration, delivery outcome,
 * upload refusals) and one JSON log line. Runs once per response, after it was sent, so it costs the
 * client nothing; on the hot path (a cached delivery) that is a few string tests and counter additions.
 *
 * The log line holds the request id (`reqId`, from the logger's bindings), surface, method, the URL with
 * its secrets redacted, status, duration and, for deliveries, where the bytes came from. Never headers
 * (tokens travel there) and never bodies (metadata values do).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { redactUrl } from '../http/redact-url.js';
import { type Surface, surfaceOf } from '../http/surfaces.js';
import type { PictorMetrics } from './metrics.js';

/** `POST …/images/v1` is the account API's upload (creating direct-upload URLs is not an upload). */
const API_UPLOAD_PATH = /^\/client\/v4\/accounts\/[^/?]+\/images\/v1\/?(?:\?|$)/;

function isUpload(method: string, url: string, surface: Surface): surface is 'api' | 'upload_host' {
  if (method !== 'POST') return false;
  return surface === 'upload_host' || (surface === 'api' && API_UPLOAD_PATH.test(url));
}

/** Milliseconds to the microsecond: enough for a cached delivery, short in the log. */
function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export type ResponseObserver = (request: FastifyRequest, reply: FastifyReply) => void;

export function observeResponses(metrics: PictorMetrics, options: { logRequests: boolean }): ResponseObserver {
  return (request, reply) => {
    const url = request.url;
    const surface = surfaceOf(url);
    const status = reply.statusCode;
    // Answers written before routing (an undecodable URL) have no start time: they took no time to speak of.
    const elapsedMs = Number.isFinite(reply.elapsedTime) ? reply.elapsedTime : 0;
    const outcome = reply.deliveryOutcome;
    const errorCode = reply.errorCode;
    metrics.requestCompleted(surface, status, elapsedMs / 1000);
    if (outcome !== undefined) metrics.deliveryCompleted(outcome);
    if (errorCode !== undefined && isUpload(request.method, url, surface)) metrics.uploadRefused(surface, errorCode);
    if (!options.logRequests) return;
    request.log.info(
      {
        surface,
        method: request.method,
        url: redactUrl(url),
        status,
        durationMs: roundMs(elapsedMs),
        ...(outcome !== undefined && { cache: outcome }),
        ...(errorCode !== undefined && { code: errorCode }),
      },
      'request',
    );
  };
}
