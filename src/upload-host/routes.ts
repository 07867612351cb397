/**
 * The direct-upload host: `POST /upload/<account_hash>/<secret>` takes one multipart `file` part from
 * anyone holding the URL (no credentials), from any origin (CORS). Answers use the API's JSON envelope.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { errorHeaders, failure, success } from '../api/envelope.js';
import { parseMultipart } from '../api/multipart.js';
import type { UploadLimits } from '../config.js';
import type { DirectUploadService } from '../domain/direct-uploads.js';
import { PictorError, badRequest } from '../errors.js';

export interface UploadHostDependencies {
  directUploads: DirectUploadService;
  limits: UploadLimits;
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'content-type, content-length, retry-after',
};

function sendError(reply: FastifyReply, error: PictorError): FastifyReply {
  return reply.code(error.status).headers(CORS).headers(errorHeaders(error)).type('application/json').send(failure(error));
}

export async function uploadHostPlugin(app: FastifyInstance, deps: UploadHostDependencies): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
  app.setErrorHandler((error: FastifyError | PictorError, request, reply) => {
    if (error instanceof PictorError) return sendError(reply, error);
    const status = (error as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) return sendError(reply, badRequest(error.message));
    request.log.error({ err: error }, 'direct upload failed');
    return sendError(reply, new PictorError(5500));
  });

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

  app.post<{ Params: Params }>('/upload/:account_hash/:token', async (request, reply) => {
    const form = await parseMultipart(request.raw, deps.limits.maxUploadBytes);
    if (!form.file) throw badRequest('The upload must include a file part named "file"');
    const image = await deps.directUploads.complete(request.params.account_hash, request.params.token, form.file);
    return reply.headers(CORS).send(success(image));
  });
}
