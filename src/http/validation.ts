/**
 * How route schemas validate. JSON bodies are checked strictly: no type coercion (a string is never
 * turned into the boolean or number a preset needs), no defaults or removed properties, so a handler sees
 * exactly what was sent. Params and query strings arrive as text, so they are coerced to the schema's
 * numbers and given its defaults. Multipart bodies are streamed by their handlers (the upload limit is
 * enforced while reading): their schemas document the form and are not applied here.
 */
import { Ajv, type Options } from 'ajv';
import addFormatsPlugin from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

// ajv-formats is CommonJS: its default import is the plugin function under ESM interop.
const addFormats = addFormatsPlugin as unknown as (ajv: Ajv) => Ajv;

function ajvWith(options: Options): Ajv {
  return addFormats(new Ajv({ strict: false, allErrors: false, ...options }));
}

const exactJson = ajvWith({ coerceTypes: false, useDefaults: false, removeAdditional: false });
const textParts = ajvWith({ coerceTypes: true, useDefaults: true, removeAdditional: false });

const alwaysValid = (): true => true;

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart, contentType }) => {
  if (httpPart === 'body') {
    if (contentType?.startsWith('multipart/')) return alwaysValid;
    return exactJson.compile(schema as object);
  }
  return textParts.compile(schema as object);
};

/** Replies are written as they are (JSON.stringify): response schemas document, they never filter. */
export const serializerCompiler = () => (data: unknown): string => JSON.stringify(data);
