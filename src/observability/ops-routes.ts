/**
 * Operations routes, outside `/client/v4` and single-segment so no delivery path (`/<hash>/<id>/<variant>`,
 * three segments at least) can be one of them:
 * - `GET /health`: the process answers (liveness);
 * - `GET /ready`: the metadata store, the blob store and the render pool are usable (readiness), else
 *   503 naming the failing parts, and nothing of the configuration;
 * - `GET /metrics`: Prometheus text, behind a bearer token when `PICTOR_METRICS_TOKEN` is set.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { PictorMetrics } from './metrics.js';
import { Readiness, type ReadinessChecks } from './readiness.js';


/** A check slower than this counts as failed: a probe must answer before the prober gives up. */
const READINESS_TIMEOUT_MS = 2000;
/** At most one check of each part per this period, however often /ready is asked. */
const READINESS_REUSE_MS = 1000;

export interface OpsDependencies {
  metrics: PictorMetrics;
  readinessChecks: ReadinessChecks;
  /** When set, /metrics requires `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Compares digests, so neither the token's content nor its length shows in the time taken. */
function bearerMatches(authorization: string | undefined, expectedDigest: Buffer): boolean {
  const match = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
  return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), expectedDigest);
}

function sendJson(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').type('application/json').send(JSON.stringify(body));
}

export async function opsPlugin(app: FastifyInstance, deps: OpsDependencies): Promise<void> {
  const readiness = new Readiness(deps.readinessChecks, {
    timeoutMs: READINESS_TIMEOUT_MS,
    reuseMs: READINESS_REUSE_MS,
    onChange: (part, failure) => {
      if (failure === undefined) app.log.info({ part }, 'readiness: usable again');
      else app.log.warn({ part, err: failure }, 'readiness: not usable');
    },
  });
  const tokenDigest = deps.metricsToken === undefined ? undefined : digest(deps.metricsToken);

  app.get('/health', async (_request, reply) => sendJson(reply, 200, { status: 'ok' }));

  app.get('/ready', async (_request, reply) => {
    const failing = await readiness.failing();
    if (failing.length === 0) return sendJson(reply, 200, { status: 'ready' });
    return sendJson(reply, 503, { status: 'unavailable', failing });
  });

  app.get('/metrics', async (request, reply) => {
    if (tokenDigest !== undefined && !bearerMatches(request.headers.authorization, tokenDigest)) {
      reply.header('www-authenticate', 'Bearer realm="pictor-metrics"');
      return sendJson(reply, 401, { status: 'unauthorized' });
    }
    const text = await deps.metrics.exposition();
    return reply.code(200).header('cache-control', 'no-store').type(deps.metrics.contentType).send(text);
  });
}
