/**
 * Renders in an S3-compatible bucket under `<prefix>renders/<key>`, shared by every node (each keeps
 * its memory LRU in front). Keys name their content, so two nodes writing one key is harmless. A read
 * that fails is a miss for the caller: the render is made again. A shared bucket cannot be bounded by one node's LRU,
 * so renders expire by age (`sweep`, run by one node at a time).
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { RenderCacheStore } from '../ports.js';
import { deleteObjects, getObject, listObjects } from '../s3/objects.js';

export class S3RenderCache implements RenderCacheStore {
  private readonly root: string;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    prefix: string,
  ) {
    this.root = `${prefix}renders/`;
  }

  /** Absent renders are `undefined`; a failing read throws (the caller counts it as a miss and logs it). */
  async get(key: string): Promise<Buffer | undefined> {
    const object = await getObject(this.client, this.bucket, this.root + key);
    if (!object) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of object.body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async put(key: string, bytes: Buffer): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.root + key, Body: bytes, ContentLength: bytes.length }));
  }

  /** Deletes renders written before `writtenBefore`; returns how many. */
  async sweep(writtenBefore: number): Promise<number> {
    const expired: string[] = [];
    for await (const object of listObjects(this.client, this.bucket, this.root)) {
      if (object.modifiedAt < writtenBefore) expired.push(this.root + object.key);
    }
    await deleteObjects(this.client, this.bucket, expired);
    return expired.length;
  }

  async close(): Promise<void> {}
}
