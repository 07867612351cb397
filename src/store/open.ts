/** Chooses and opens the storage adapters for a configuration (embedded SQLite + local disk today). */
import path from 'node:path';
import type { Config } from '../config.js';
import { FsBlobStore } from './blob/fs.js';
import { acquireDataDirLock } from './data-dir-lock.js';
import { openSqliteMetaStore } from './meta/sqlite.js';
import { FsRenderCache } from './cache/fs-render-cache.js';
import type { BlobStore, MetaStore, RenderCacheStore } from './ports.js';

export interface Stores {
  meta: MetaStore;
  blobs: BlobStore;
  renders: RenderCacheStore;
  close(): Promise<void>;
}

export async function openMetaStore(config: Pick<Config, 'dataDir'>): Promise<MetaStore> {
  return openSqliteMetaStore(config.dataDir);
}

/** Opens the stores a server uses, holding the data dir's lock until `close`. */
export async function openStores(config: Pick<Config, 'dataDir' | 'rendering'>): Promise<Stores> {
  const release = acquireDataDirLock(config.dataDir);
  try {
    const meta = await openMetaStore(config);
    const blobs = await FsBlobStore.open(path.join(config.dataDir, 'originals'));
    const renders = await FsRenderCache.open(path.join(config.dataDir, 'cache'), config.rendering.cacheMaxBytes);
    return {
      meta,
      blobs,
      renders,
      async close() {
        await renders.close();
        await blobs.close();
        await meta.close();
        release();
      },
    };
  } catch (error) {
    release();
    throw error;
  }
}
