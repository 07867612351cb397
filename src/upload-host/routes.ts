/**
 * The direct-upload host: `POST /upload/<account_hash>/<secret>` takes one multipart `file` part from
 * anyone holding the URL (no credentials), from any origin (CORS). Answers use the API's JSON envelope.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { success } from '../api/envelope.js';
import { parseMultipart } from '../api/multipart.js';
import type { UploadLimits } from '../config.js';
import type { DirectUploadService } from '../domain/direct-uploads.js';
import type { UploadGate } from '../domain/upload-gate.js';
import { PictorError, badRequest } from '../errors.js';
import { UPLOAD_HOST_CORS, sendEnvelopeError } from '../http/error-replies.js';

export interface UploadHostDependencies {
  directUploads: DirectUploadService;
  limits: UploadLimits;
  uploadGate: UploadGate;
}

const CORS = UPLOAD_HOST_CORS;

function sendError(reply: FastifyReply, error: PictorError): FastifyReply {
  return sendEnvelopeError(reply, error, CORS);
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

  // Everything cheap comes before the body is read: the upload bound, then the URL's lease (unknown,
  // used, expired or busy URLs are answered at once). Only then is the body read and checked.
  app.post<{ Params: Params }>('/upload/:account_hash/:token', async (request, reply) => {
    const leave = await deps.uploadGate.enter();
    try {
      const attempt = await deps.directUploads.begin(request.params.account_hash, request.params.token);
      let completed = false;
      try {
        const form = await parseMultipart(request.raw, deps.limits.maxUploadBytes);
        if (!form.file) throw badRequest('The upload must include a file part named "file"');
        const image = await deps.directUploads.complete(attempt, form.file);
        completed = true;
        return reply.headers(CORS).send(success(image));
      } finally {
        if (!completed) {
          await deps.directUploads.abandon(attempt).catch((error: unknown) => {
            request.log.error({ err: error }, 'could not release a direct-upload lease');
          });
        }
      }
    } finally {
      leave();
    }
  });
}
