/**
 * The S3 client for originals and renders (`PICTOR_STORAGE_URL=s3://bucket/prefix`), set up to work
 * with AWS S3, Cloudflare R2, MinIO, Ceph RGW and OpenStack Swift's s3api alike:
 * - checksums only when an operation requires them (Swift answers 501 to aws-chunked bodies);
 * - path-style addressing when an endpoint is given (self-hosted engines rarely have wildcard DNS);
 * - DeleteObjects carries Content-MD5 (Swift requires it; S3 and R2 accept it).
 */
import { createHash } from 'node:crypto';
import { DeleteObjectsCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { StorageSettings } from '../../config.js';

interface HttpRequestLike {
  headers: Record<string, string>;
  body?: unknown;
}

/** Replaces the CRC checksum headers of DeleteObjects with the Content-MD5 every engine accepts. */
function addDeleteObjectsMd5(client: S3Client): void {
  type Middleware = Parameters<S3Client['middlewareStack']['addRelativeTo']>[0];
  const middleware = (next: (args: { request: unknown }) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { request: unknown }): Promise<unknown> => {
        const request = args.request as HttpRequestLike;
        if (context.commandName === DeleteObjectsCommand.name && typeof request.body === 'string') {
          for (const name of Object.keys(request.headers)) {
            if (name.toLowerCase().startsWith('x-amz-checksum-') || name.toLowerCase() === 'x-amz-sdk-checksum-algorithm') {
              delete request.headers[name];
            }
          }
          request.headers['content-md5'] = createHash('md5').update(request.body).digest('base64');
        }
        return next(args);
      };
  // The SDK's middleware types are a union of every step's signature; this one is a build-step middleware.
  client.middlewareStack.addRelativeTo(middleware as unknown as Middleware, {
    // Before signing: the signature covers the headers.
    relation: 'before',
    toMiddleware: 'httpSigningMiddleware',
    name: 'pictorDeleteObjectsMd5',
  });
}

export function createS3Client(settings: StorageSettings): S3Client {
  const client = new S3Client({
    region: settings.region,
    ...(settings.endpoint !== undefined && { endpoint: settings.endpoint, forcePathStyle: true }),
    ...(settings.credentials !== undefined && { credentials: settings.credentials }),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
  });
  addDeleteObjectsMd5(client);
  return client;
}

/** Fails unless the bucket exists and the credentials may use it. */
export async function checkBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new HeadBucketCommand({ Bucket: bucket }));
}
