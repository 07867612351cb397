/**
 * The account API under `/client/v4`: authentication on every route, Cloudflare's JSON envelope for
 * every answer (including errors and unknown routes), and the image routes.
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import type { UploadLimits } from '../config.js';
import type { AccountService } from '../domain/accounts.js';
import type { DirectUploadService } from '../domain/direct-uploads.js';
import type { ImageService } from '../domain/images.js';
import type { UploadGate } from '../domain/upload-gate.js';
import { PictorError, badRequest } from '../errors.js';
import { sendEnvelopeError } from '../http/error-replies.js';
import { authorize, neededPermission, presentedCredential } from './auth.js';
import { type AccountRouteServices, registerAccountRoutes } from './account-routes.js';
import { registerDirectUploadRoutes } from './direct-upload-routes.js';
import { registerImageRoutes, registerUploadRoute } from './image-routes.js';

export interface ApiDependencies extends AccountRouteServices {
  accounts: AccountService;
  images: ImageService;
  directUploads: DirectUploadService;
  limits: UploadLimits;
  uploadGate: UploadGate;
}

/** Fastify's own errors (bad JSON, wrong media type, body too large) in Cloudflare's terms. */
function toPictorError(error: FastifyError | PictorError | Error): PictorError | undefined {
  if (error instanceof PictorError) return error;
  const statusCode = (error as FastifyError).statusCode;
  if (statusCode === 413) return new PictorError(5413);
  if (statusCode === 415) return badRequest('The request body must be JSON');
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) return badRequest(error.message);
  return undefined;
}

export async function apiPlugin(app: FastifyInstance, deps: ApiDependencies): Promise<void> {
  // Lenient JSON: an empty body (some clients send one with DELETE) is no body; bad JSON is 5400.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(badRequest('The request body is not valid JSON'), undefined);
    }
  });

  app.addHook('onRequest', async (request) => {
    const presented = presentedCredential(request.headers);
    const credential = await deps.accounts.authenticate(presented);
    const accountId = (request.params as { account_id?: string } | undefined)?.account_id;
    if (accountId === undefined) {
      // Unknown route: only a known credential learns that it does not exist.
      if (!credential) throw new PictorError(10000);
      return;
    }
    authorize(credential, accountId, neededPermission(request.method));
  });

  app.setErrorHandler((error: FastifyError | PictorError, request, reply) => {
    const known = toPictorError(error);
    if (known) return sendEnvelopeError(reply, known);
    request.log.error({ err: error }, 'unhandled error');
    return sendEnvelopeError(reply, new PictorError(5500));
  });

  // Every other path under /client/v4 (the onRequest hook has authenticated the caller by now).
  const noRoute = async (request: FastifyRequest): Promise<never> => {
    throw new PictorError(7003, `No route for ${request.method} ${request.url.split('?')[0]}`);
  };
  app.all('/*', noRoute);
  app.setNotFoundHandler(async (request) => {
    // Authentication still comes first, so unknown routes reveal nothing to anonymous callers.
    const credential = await deps.accounts.authenticate(presentedCredential(request.headers));
    if (!credential) throw new PictorError(10000);
    return noRoute(request);
  });

  // Uploads stream the raw body themselves, so no body parser runs in this scope.
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
    registerUploadRoute(raw, deps.images, deps.limits, deps.uploadGate);
    registerDirectUploadRoutes(raw, deps.directUploads, deps.limits);
  });
  registerImageRoutes(app, deps.images);
  registerAccountRoutes(app, deps);
}
