/** What every scope serving the account API's routes (and the batch host's) sets up the same way. */
import type { FastifyInstance } from 'fastify';
import { acceptLenientJson } from '../http/bodies.js';
import { serializerCompiler, validatorCompiler } from '../http/validation.js';

/** Schema compilers (http/validation.ts) and the lenient JSON parser. */
export function prepareApiScope(app: FastifyInstance): void {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.removeContentTypeParser('application/json');
  acceptLenientJson(app);
}
