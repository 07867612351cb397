/**
 * The batch host (Cloudflare's Images batch API): the image routes Cloudflare lists for it — upload,
 * details, edit, delete, v2 list, v2 direct upload — with the same bodies and answers as the account
 * routes, but without `/accounts/{id}` in the path: the batch token in `Authorization: Bearer` names the
 * account and carries the permission of the credential that minted it. Each request counts against the
 * token's rate (domain/batch-tokens.ts); errors are written in Cloudflare's envelope.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { BatchTokenService } from '../domain/batch-tokens.js';
import { PictorError } from '../errors.js';
import { success } from '../http/envelope.js';
import { routeSchemas } from '../http/schemas.js';
import { authorize, neededPermission, presentedCredential } from './auth.js';
import { BATCH_MOUNT } from './image-routes.js';
import { type ImageRouteServices, noRoute, prepareApiScope, registerImageSurface } from './scope.js';

export interface BatchDependencies extends ImageRouteServices {
  batchTokens: BatchTokenService;
}

/** `GET /accounts/{id}/images/v1/batch_token`, registered with the account routes. */
export function registerBatchTokenRoute(scope: FastifyInstance, batchTokens: BatchTokenService): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().get('/accounts/:account_id/images/v1/batch_token', { schema: routeSchemas.batchToken }, async (request) => {
    if (!request.credential) throw new PictorError(10000);
    return success(await batchTokens.issue(request.credential));
  });
}

export async function batchPlugin(app: FastifyInstance, deps: BatchDependencies): Promise<void> {
  prepareApiScope(app);
  app.decorateRequest('credential', undefined);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const presented = presentedCredential(request.headers);
    // Only batch tokens open the batch host: an API token or key is not one.
    if (presented.kind !== 'token') throw new PictorError(10000);
    const batch = await deps.batchTokens.admit(presented.token);
    // The routes are the account routes': they read the account from the params, as set here.
    if (request.params && typeof request.params === 'object') (request.params as Record<string, string>).account_id = batch.accountId;
    request.credential = {
      id: 'batch',
      accountId: batch.accountId,
      kind: 'token',
      email: null,
      name: 'batch token',
      permission: batch.permission,
      createdAt: batch.createdAt,
      revokedAt: null,
    };
    authorize(request.credential, batch.accountId, neededPermission(request.method));
  });
  // Everything under the prefix is the batch host's (delivery's `/<hash>/<id>/<variant>` would match
  // three segments otherwise); the hook above has authenticated the caller by now.
  app.all('/', { schema: { hide: true } }, noRoute);
  app.all('/*', { schema: { hide: true } }, noRoute);
  await registerImageSurface(app, deps, BATCH_MOUNT);
}
