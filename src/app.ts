/** Builds the Fastify application from already-constructed services. Nothing here opens stores. */
import Fastify, { type FastifyInstance, type FastifyRequest, LogController } from 'fastify';
import { registerOpenApi } from './api/openapi.js';
import { type ApiDependencies, apiPlugin } from './api/plugin.js';
import type { TransportSettings } from './config.js';
import { type BatchDependencies, batchPlugin } from './api/batch-plugin.js';
import { type DashboardDependencies, dashboardPlugin } from './dashboard/routes.js';
import { setBatchPrefix } from './http/surfaces.js';
import { type DeliveryDependencies, deliveryPlugin } from './delivery/routes.js';
import { replyWithError } from './http/error-replies.js';
import { redactUrl } from './http/redact-url.js';
import { requestIdOf, stampRequestIds } from './http/request-ids.js';
import { installTransportGuards, transportServerOptions } from './http/transport.js';
import { type OpsDependencies, opsPlugin } from './observability/ops-routes.js';
import { observeResponses } from './observability/request-observer.js';
import { uploadHostPlugin } from './upload-host/routes.js';

/** Signed-URL signatures, direct-upload secrets and metadata filter values never reach the log. */
export { redactUrl };

/** Levels at which the one-line-per-request log is written. */
const REQUEST_LOG_LEVELS = new Set(['info', 'debug', 'trace']);

declare module 'fastify' {
  interface FastifyInstance {
    /** Requests being handled right now (see http/transport.ts). */
    requestsInFlight(): number;
    /** Every route registered, in registration order (what openapi.json is checked against). */
    registeredRoutes(): RegisteredRoute[];
  }
}

export interface RegisteredRoute {
  method: string;
  url: string;
  /** Left out of openapi.json: aliases, the catch-all, and routes outside the account API. */
  documented: boolean;
}

/** Where log lines (one JSON object each) are written; stdout by default. */
export interface LogDestination {
  write(line: string): void;
}

export interface AppOptions {
  logLevel: string;
  transport: TransportSettings;
  /** Metrics, readiness checks and the metrics token (observability/ops-routes.ts). */
  observability: OpsDependencies;
  logDestination?: LogDestination;
  /** Where the batch host's routes are mounted (PICTOR_BATCH_URL's path). */
  batchPrefix: string;
}

export async function buildApp(
  deps: ApiDependencies & DeliveryDependencies & DashboardDependencies & BatchDependencies,
  options: AppOptions,
): Promise<FastifyInstance> {
  const observe = observeResponses(options.observability.metrics, { logRequests: REQUEST_LOG_LEVELS.has(options.logLevel) });
  const app = Fastify({
    logger: {
      level: options.logLevel,
      ...(options.logDestination !== undefined && { stream: options.logDestination }),
      // Never log credentials: they travel in these headers, in `sig` and in upload URLs.
      redact: ['req.headers.authorization', 'req.headers["x-auth-key"]'],
      serializers: {
        req: (request: FastifyRequest) => ({
          method: request.method,
          url: redactUrl(request.url),
          host: request.host,
          remoteAddress: request.ip,
        }),
      },
    },
    // Fastify's own two lines per request are replaced by one of ours (observability/request-observer.ts).
    logController: new LogController({ disableRequestLogging: true }),
    // The id stamped by `stampRequestIds` (the incoming x-request-id when sane); logged as `reqId`.
    genReqId: requestIdOf,
    // Custom image ids may be up to 1024 characters, percent-encoded three times longer.
    routerOptions: { maxParamLength: 8192 },
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    // A path that is not valid percent-encoding is refused before routing: still in each surface's format.
    frameworkErrors: (error, request, reply) => {
      // Answered before routing, where no hook runs: observed when sent, like any other answer.
      reply.raw.once('finish', () => observe(request, reply));
      replyWithError(error, request, reply);
    },
    ...transportServerOptions(options.transport),
  });
  stampRequestIds(app.server);
  const inFlight = installTransportGuards(app, options.transport);
  app.decorate('requestsInFlight', inFlight);
  options.observability.metrics.observeRequestsInFlight(inFlight);
  app.decorateReply('errorCode', undefined);
  app.decorateReply('deliveryOutcome', undefined);
  app.addHook('onResponse', (request, reply, done) => {
    observe(request, reply);
    done();
  });
  const routes: RegisteredRoute[] = [];
  app.addHook('onRoute', (route) => {
    const schema = route.schema as { hide?: boolean; tags?: string[] } | undefined;
    const documented = schema?.hide !== true && (schema?.tags?.length ?? 0) > 0;
    for (const method of [route.method].flat()) routes.push({ method, url: route.url, documented });
  });
  app.decorate('registeredRoutes', () => [...routes]);
  // One error edge for every surface: each error is mapped, logged and written in its surface's format.
  app.setErrorHandler(replyWithError);
  await registerOpenApi(app);
  await app.register(async (scope) => opsPlugin(scope, options.observability));
  await app.register(async (scope) => apiPlugin(scope, deps), { prefix: '/client/v4' });
  setBatchPrefix(options.batchPrefix);
  await app.register(async (scope) => batchPlugin(scope, deps), { prefix: options.batchPrefix });
  await app.register(async (scope) => uploadHostPlugin(scope, deps));
  await app.register(async (scope) => dashboardPlugin(scope, deps));
  await app.register(async (scope) => deliveryPlugin(scope, deps));
  return app;
}
