/** Builds the Fastify application from already-constructed services. Nothing here opens stores. */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { registerOpenApi } from './api/openapi.js';
import { type ApiDependencies, apiPlugin } from './api/plugin.js';
import type { TransportSettings } from './config.js';
import { type DeliveryDependencies, deliveryPlugin } from './delivery/routes.js';
import { replyWithError } from './http/error-replies.js';
import { installTransportGuards, transportServerOptions } from './http/transport.js';
import { uploadHostPlugin } from './upload-host/routes.js';

/** Signed-URL signatures and direct-upload secrets are credentials too. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]sig=)[^&]*/g, '$1[redacted]').replace(/^(\/upload\/[^/]+\/)[^/?]+/, '$1[redacted]');
}

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

export interface AppOptions {
  logLevel: string;
  transport: TransportSettings;
}

export async function buildApp(
  deps: ApiDependencies & DeliveryDependencies,
  options: AppOptions,
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: options.logLevel,
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
    // Custom image ids may be up to 1024 characters, percent-encoded three times longer.
    routerOptions: { maxParamLength: 8192 },
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    // A path that is not valid percent-encoding is refused before routing: still in each surface's format.
    frameworkErrors: (error, request, reply) => {
      replyWithError(error, request, reply);
    },
    ...transportServerOptions(options.transport),
  });
  const inFlight = installTransportGuards(app, options.transport);
  app.decorate('requestsInFlight', inFlight);
  app.decorateReply('errorCode', undefined);
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
  await app.register(async (scope) => apiPlugin(scope, deps), { prefix: '/client/v4' });
  await app.register(async (scope) => uploadHostPlugin(scope, deps));
  await app.register(async (scope) => deliveryPlugin(scope, deps));
  return app;
}
