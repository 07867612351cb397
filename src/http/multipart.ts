/**
 * Streams a multipart/form-data upload with busboy. The file part is collected in memory up to the
 * upload limit; the moment it exceeds the limit parsing stops with 5413. What is left of the body is
 * not read here: after the answer, the transport guard (http/transport.ts) drains it within bounds.
 */
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { PictorError, badRequest } from '../errors.js';

export interface UploadedFile {
  bytes: Buffer;
  filename: string;
}

export interface ParsedForm {
  /** Every text field in arrival order (order is not meaningful: the SDK does not guarantee it). */
  fields: Array<[string, string]>;
  file: UploadedFile | undefined;
}

export function isMultipart(contentType: string | undefined): boolean {
  return /^multipart\/form-data\s*(;|$)/i.test(contentType ?? '');
}

export function parseMultipart(request: IncomingMessage, maxFileBytes: number): Promise<ParsedForm> {
  if (!isMultipart(request.headers['content-type'])) return Promise.reject(new PictorError(5415));
  return new Promise<ParsedForm>((resolve, reject) => {
    const fields: Array<[string, string]> = [];
    let file: UploadedFile | undefined;
    let settled = false;

    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: request.headers,
        // Browsers and the SDK send file and field names as raw UTF-8, not latin1.
        defParamCharset: 'utf8',
        // busboy stops a file when it reaches fileSize: one byte more lets a file of exactly the limit through.
        limits: { fileSize: maxFileBytes + 1, files: 5, fields: 200, fieldSize: 64 * 1024, parts: 250 },
      });
    } catch {
      reject(badRequest('Malformed multipart/form-data body'));
      return;
    }

    const fail = (error: PictorError): void => {
      if (settled) return;
      settled = true;
      request.unpipe(parser);
      parser.removeAllListeners();
      parser.on('error', () => undefined);
      reject(error);
    };

    parser.on('file', (name, stream, info) => {
      // A body that ends inside a file part errors the part's stream as well as the parser: the parser's
      // error is the one reported, and the part's must not go unheard (an unhandled 'error' kills the process).
      stream.on('error', () => undefined);
      if (name !== 'file') {
        stream.resume();
        return;
      }
      if (file !== undefined) {
        stream.resume();
        fail(badRequest('Only one file may be uploaded per request'));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      const current: UploadedFile = { bytes: Buffer.alloc(0), filename: info.filename ?? '' };
      file = current;
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxFileBytes) fail(new PictorError(5413));
        else chunks.push(chunk);
      });
      stream.on('end', () => {
        current.bytes = Buffer.concat(chunks, size);
      });
    });
    parser.on('field', (name, value, info) => {
      if (info.valueTruncated) fail(badRequest(`Form field "${name}" is too large`));
      else fields.push([name, value]);
    });
    parser.on('partsLimit', () => fail(badRequest('Too many parts in the form')));
    parser.on('filesLimit', () => fail(badRequest('Too many files in the form')));
    parser.on('fieldsLimit', () => fail(badRequest('Too many fields in the form')));
    parser.on('error', () => fail(badRequest('Malformed multipart/form-data body')));
    parser.on('close', () => {
      if (settled) return;
      settled = true;
      resolve({ fields, file });
    });
    request.on('aborted', () => fail(badRequest('The upload was aborted by the client')));
    // A connection closed by the transport guard (too slow) may end the request without 'aborted'.
    request.on('close', () => {
      if (!request.complete) fail(badRequest('The connection closed before the upload was complete'));
    });
    request.pipe(parser);
  });
}
