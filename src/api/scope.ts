/** What every scope serving the account API's routes (and the batch host's) sets up the same way. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { UploadLimits } from '../config.js';
import type { DirectUploadService } from '../domain/direct-uploads.js';
import type { ImageService } from '../domain/images.js';
import type { UploadGate } from '../domain/upload-gate.js';
import { PictorError } from '../errors.js';
import { acceptLenientJson } from '../http/bodies.js';
import { serializerCompiler, validatorCompiler } from '../http/validation.js';
import { registerDirectUploadRoutes } from './direct-upload-routes.js';
import { ACCOUNT_MOUNT, registerImageRoutes, registerUploadRoute, type RouteMount } from './image-routes.js';

/** Schema compilers (http/validation.ts) and the lenient JSON parser. */
export function prepareApiScope(app: FastifyInstance): void {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.removeContentTypeParser('application/json');
  acceptLenientJson(app);
}

export interface ImageRouteServices {
  images: ImageService;
  directUploads: DirectUploadService;
  limits: UploadLimits;
  uploadGate: UploadGate;
}

/**
 * The image routes at `mount`. Uploads and direct-upload mints stream the raw body themselves, so they
 * live in a scope without body parsers; the others take small JSON bodies.
 */
export async function registerImageSurface(app: FastifyInstance, services: ImageRouteServices, mount: RouteMount = ACCOUNT_MOUNT): Promise<void> {
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
    registerUploadRoute(raw, services.images, services.limits, services.uploadGate, mount);
    registerDirectUploadRoutes(raw, services.directUploads, services.limits, mount);
  });
  registerImageRoutes(app, services.images, mount);
}

/** A path under the API with no route: 404 code 7003 (after authentication, which the scope's hook did). */
export async function noRoute(request: FastifyRequest): Promise<never> {
  throw new PictorError(7003, `No route for ${request.method} ${request.url.split('?')[0]}`);
}
