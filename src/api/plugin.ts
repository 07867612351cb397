/**
 * The account API under `/client/v4`: authentication on every route, route schemas (validation, typed
 * handlers, OpenAPI), and Cloudflare's JSON envelope for every answer. Errors are written by the app's
 * one error edge (http/error-replies.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { UploadLimits } from '../config.js';
import type { AccountService } from '../domain/accounts.js';
import type { DirectUploadService } from '../domain/direct-uploads.js';
import type { ImageService } from '../domain/images.js';
import type { UploadGate } from '../domain/upload-gate.js';
import { PictorError } from '../errors.js';
import { prepareApiScope } from './scope.js';
import { authorize, neededPermission, presentedCredential } from './auth.js';
import { type AccountRouteServices, registerAccountRoutes } from './account-routes.js';
import { registerDirectUploadRoutes } from './direct-upload-routes.js';
import { registerIdentityRoutes } from './identity-routes.js';
import { registerBatchTokenRoute } from './batch-plugin.js';
import type { BatchTokenService } from '../domain/batch-tokens.js';
import { registerImageRoutes, registerUploadRoute } from './image-routes.js';

export interface ApiDependencies extends AccountRouteServices {
  accounts: AccountService;
  batchTokens: BatchTokenService;
  images: ImageService;
  directUploads: DirectUploadService;
  limits: UploadLimits;
  uploadGate: UploadGate;
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
  const noRoute = async (request: FastifyRequest): Promise<never> => {
    throw new PictorError(7003, `No route for ${request.method} ${request.url.split('?')[0]}`);
  };
  app.all('/*', { schema: { hide: true } }, noRoute);
  app.setNotFoundHandler(async (request) => {
    // Authentication still comes first, so unknown routes reveal nothing to anonymous callers.
    const credential = await deps.accounts.authenticate(presentedCredential(request.headers));
    if (!credential) throw new PictorError(10000);
    return noRoute(request);
  });

  // Uploads stream the raw body themselves, so only small JSON bodies are parsed in this scope.
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
    registerUploadRoute(raw, deps.images, deps.limits, deps.uploadGate);
    registerDirectUploadRoutes(raw, deps.directUploads, deps.limits);
  });
  registerImageRoutes(app, deps.images);
  registerAccountRoutes(app, deps);
  registerIdentityRoutes(app, deps.accounts);
  registerBatchTokenRoute(app, deps.batchTokens);
}
