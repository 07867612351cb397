/**
 * Chooses and opens the storage adapters for a configuration: SQLite in the data dir (embedded, the
 * default) or PostgreSQL (`PICTOR_DATABASE_URL`) for metadata; local disk or an S3-compatible bucket
 * (`PICTOR_STORAGE_URL`) for originals and renders. Either works without the other.
 */
import path from 'node:path';
import { type Config, ConfigError, redactedUrl } from '../config.js';
import { FsBlobStore } from './blob/fs.js';
import { acquireDataDirLock } from './data-dir-lock.js';
import { openPostgresMetaStore } from './meta/postgres.js';
import { openSqliteMetaStore } from './meta/sqlite.js';
import { FsRenderCache } from './cache/fs-render-cache.js';
import { S3RenderCache } from './cache/s3-render-cache.js';
import { S3BlobStore } from './blob/s3.js';
import { checkBucket, createS3Client } from './s3/client.js';
import type { BlobStore, MetaStore, RenderCacheStore } from './ports.js';

export interface Stores {
  meta: MetaStore;
  blobs: BlobStore;
  renders: RenderCacheStore;
  close(): Promise<void>;
}

type StoreConfig = Pick<Config, 'dataDir' | 'database'>;

interface ObjectStores {
  blobs: BlobStore;
  renders: RenderCacheStore;
  close(): Promise<void>;
}

async function openObjectStores(config: Pick<Config, 'dataDir' | 'storage' | 'rendering'>): Promise<ObjectStores> {
  const storage = config.storage;
  if (!storage) {
    const blobs = await FsBlobStore.open(path.join(config.dataDir, 'originals'));
    const renders = await FsRenderCache.open(path.join(config.dataDir, 'cache'), config.rendering.cacheMaxBytes);
    return { blobs, renders, close: async () => undefined };
  }
  const client = createS3Client(storage);
  try {
    await checkBucket(client, storage.bucket);
  } catch (error) {
    client.destroy();
    const reason = (error as { name?: string; message?: string }).name ?? (error as Error).message;
    throw new ConfigError('PICTOR_STORAGE_URL', `(s3://${storage.bucket}/${storage.prefix}) could not be used: ${reason}`);
  }
  return {
    blobs: new S3BlobStore(client, storage.bucket, storage.prefix),
    renders: new S3RenderCache(client, storage.bucket, storage.prefix),
    close: async () => client.destroy(),
  };
}

export async function openMetaStore(config: StoreConfig): Promise<MetaStore> {
  if (!config.database) return openSqliteMetaStore(config.dataDir);
  try {
    return await openPostgresMetaStore(config.database);
  } catch (error) {
    const reason = (error as Error).message;
    throw new ConfigError('PICTOR_DATABASE_URL', `(${redactedUrl(config.database.url)}) could not be used: ${reason}`);
  }
}

/** True when this process is the only writer of its metadata (SQLite in the data dir). */
export function isEmbedded(config: StoreConfig): boolean {
  return config.database === undefined;
}

/** Opens the stores a server uses; in embedded mode it holds the data dir's lock until `close`. */
export async function openStores(config: StoreConfig & Pick<Config, 'rendering' | 'storage'>): Promise<Stores> {
  // Only the embedded database needs one server per data dir; on PostgreSQL any number of nodes share it.
  const release = isEmbedded(config) ? acquireDataDirLock(config.dataDir) : () => undefined;
  try {
    const meta = await openMetaStore(config);
    let objects: ObjectStores;
    try {
      objects = await openObjectStores(config);
    } catch (error) {
      await meta.close();
      throw error;
    }
    const { blobs, renders } = objects;
    return {
      meta,
      blobs,
      renders,
      async close() {
        await renders.close();
        await blobs.close();
        await objects.close();
        await meta.close();
        release();
      },
    };
  } catch (error) {
    release();
    throw error;
  }
}
