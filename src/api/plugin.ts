/**
 * The account API under `/client/v4`: authentication on every route, route schemas (validation, typed
 * handlers, OpenAPI), and Cloudflare's JSON envelope for every answer. Errors are written by the app's
 * one error edge (http/error-replies.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { AccountService } from '../domain/accounts.js';
import type { BatchTokenService } from '../domain/batch-tokens.js';
import type { AlertingService } from '../domain/notifications/alerting.js';
import { PictorError } from '../errors.js';
import { type AccountRouteServices, registerAccountRoutes } from './account-routes.js';
import { registerAlertingRoutes } from './alerting-routes.js';
import { authorize, neededPermission, presentedCredential } from './auth.js';
import { registerBatchTokenRoute } from './batch-plugin.js';
import { registerIdentityRoutes } from './identity-routes.js';
import { type ImageRouteServices, noRoute, prepareApiScope, registerImageSurface } from './scope.js';

export interface ApiDependencies extends AccountRouteServices, ImageRouteServices {
  accounts: AccountService;
  batchTokens: BatchTokenService;
  alerting: AlertingService;
  now: () => number;
}

export async function apiPlugin(app: FastifyInstance, deps: ApiDependencies): Promise<void> {
  prepareApiScope(app);

  app.decorateRequest('credential', undefined);
  app.addHook('onRequest', async (request) => {
    const presented = presentedCredential(request.headers);
    const credential = await deps.accounts.authenticate(presented);
    request.credential = credential;
    const accountId = (request.params as { account_id?: string } | undefined)?.account_id;
    if (accountId === undefined) {
      if (request.routeOptions.config.answersUnknownCredentials) return;
      // Credential routes and unknown routes: only a known credential gets further.
      if (!credential) throw new PictorError(10000);
      return;
    }
    authorize(credential, accountId, neededPermission(request.method));
  });

  // Every other path under /client/v4 (the onRequest hook has authenticated the caller by now).
  app.all('/*', { schema: { hide: true } }, noRoute);
  app.setNotFoundHandler(async (request) => {
    // Authentication still comes first, so unknown routes reveal nothing to anonymous callers.
    const credential = await deps.accounts.authenticate(presentedCredential(request.headers));
    if (!credential) throw new PictorError(10000);
    return noRoute(request);
  });

  await registerImageSurface(app, deps);
  registerAccountRoutes(app, deps);
  registerIdentityRoutes(app, deps.accounts);
  registerBatchTokenRoute(app, deps.batchTokens);
  registerAlertingRoutes(app, deps.alerting, deps.now);
}
