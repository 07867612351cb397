/** The few object operations both S3 adapters share: whole-object reads, listing with dates, batch deletes. */
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';

/** Absent objects are `undefined`; any other failure throws. */
export async function getObject(client: S3Client, bucket: string, key: string): Promise<{ body: Readable; size: number } | undefined> {
  try {
    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return { body: response.Body as Readable, size: Number(response.ContentLength ?? 0) };
  } catch (error) {
    if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey') return undefined;
    throw error;
  }
}

export async function* listObjects(
  client: S3Client,
  bucket: string,
  prefix: string,
): AsyncIterable<{ key: string; modifiedAt: number }> {
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) {
      if (object.Key !== undefined) yield { key: object.Key.slice(prefix.length), modifiedAt: object.LastModified?.getTime() ?? 0 };
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/** Deletes keys 1000 at a time (the S3 maximum per request). */
export async function deleteObjects(client: S3Client, bucket: string, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    await client.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
    );
  }
}
