/**
 * Originals in an S3-compatible bucket under `<prefix>originals/<key>`. A PUT that answered is durable
 * (that is the S3 contract), so, as on disk, the metadata row is committed only after `put` resolves and a
 * crash in between leaves an orphan for the sweep, never a row without its bytes. Content-MD5 makes the
 * engine refuse a body damaged in transit.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DeleteObjectCommand, HeadBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { BlobInfo, BlobStore, StoredBlob } from '../ports.js';
import { getObject, listObjects } from '../s3/objects.js';

export class S3BlobStore implements BlobStore {
  private readonly root: string;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    prefix: string,
  ) {
    this.root = `${prefix}originals/`;
  }

  async put(key: string, bytes: Buffer): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.root + key,
        Body: bytes,
        ContentLength: bytes.length,
        ContentMD5: createHash('md5').update(bytes).digest('base64'),
      }),
    );
  }

  async get(key: string): Promise<{ stream: Readable; info: BlobInfo } | undefined> {
    const object = await getObject(this.client, this.bucket, this.root + key);
    return object && { stream: object.body, info: { size: object.size } };
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.root + key }));
  }

  list(): AsyncIterable<StoredBlob> {
    return listObjects(this.client, this.bucket, this.root);
  }

  /** HeadBucket: the bucket answers and these credentials may use it (no object is written). */
  async probe(signal: AbortSignal): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: signal });
  }

  async close(): Promise<void> {}
}
