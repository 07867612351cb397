/**
 * The direct-upload host: `POST /upload/<account_hash>/<secret>` takes one multipart `file` part from
 * anyone holding the URL (no credentials), from any origin (CORS). Answers use the API's JSON envelope.
 */
import type { FastifyInstance } from 'fastify';
import { success } from '../http/envelope.js';
import { parseMultipart } from '../http/multipart.js';
import type { UploadLimits } from '../config.js';
import type { DirectUploadService } from '../domain/direct-uploads.js';
import type { UploadGate } from '../domain/upload-gate.js';
import { badRequest } from '../errors.js';
import { UPLOAD_HOST_CORS } from '../http/error-replies.js';
import { validatorCompiler } from '../http/validation.js';
import { routeSchemas } from '../http/schemas.js';

export interface UploadHostDependencies {
  directUploads: DirectUploadService;
  limits: UploadLimits;
  uploadGate: UploadGate;
}

const CORS = UPLOAD_HOST_CORS;

export async function uploadHostPlugin(app: FastifyInstance, deps: UploadHostDependencies): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
  app.setValidatorCompiler(validatorCompiler);

  type Params = { account_hash: string; token: string };

  app.options<{ Params: Params }>('/upload/:account_hash/:token', async (request, reply) => {
    const requested = request.headers['access-control-request-headers'];
    return reply
      .code(204)
      .headers(CORS)
      .header('access-control-allow-methods', 'POST, OPTIONS')
      .header('access-control-allow-headers', typeof requested === 'string' ? requested : 'content-type')
      .header('access-control-max-age', '86400')
      .send();
  });

  // Everything cheap comes before the body is read: the upload bound, then the URL's lease (unknown,
  // used, expired or busy URLs are answered at once). Only then is the body read and checked.
  app.post<{ Params: Params }>('/upload/:account_hash/:token', { schema: routeSchemas.uploadHost }, async (request, reply) => {
    const leave = await deps.uploadGate.enter();
    try {
      const attempt = await deps.directUploads.begin(request.params.account_hash, request.params.token);
      try {
        const form = await parseMultipart(request.raw, deps.limits.maxUploadBytes);
        if (!form.file) throw badRequest('The upload must include a file part named "file"');
        const image = await deps.directUploads.complete(attempt, form.file);
        return reply.headers(CORS).send(success(image));
      } catch (error) {
        await deps.directUploads.abandon(attempt, error).catch((releaseError: unknown) => {
          request.log.error({ err: releaseError }, 'could not release a direct-upload lease or report its failure');
        });
        throw error;
      }
    } finally {
      leave();
    }
  });
}
