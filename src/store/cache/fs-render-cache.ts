/**
 * Rendered images on local disk, bounded in bytes with least-recently-used eviction. Files are written
 * to a temp name and renamed, so a reader never sees a partial render. The recency index lives in
 * memory and is rebuilt from file modification times at start.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import type { RenderCacheStore } from '../ports.js';

const KEY_PATTERN = /^[0-9a-f]{64}$/;

export class FsRenderCache implements RenderCacheStore {
  private readonly index: LRUCache<string, number>;
  private readonly shardsMade = new Set<string>();

  private constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
  ) {
    this.index = new LRUCache<string, number>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (size) => Math.max(1, size),
      dispose: (_size, key, reason) => {
        if (reason === 'evict' || reason === 'delete') fs.rm(this.pathOf(key), { force: true }, () => undefined);
      },
    });
  }

  static async open(dir: string, maxBytes: number): Promise<FsRenderCache> {
    const cache = new FsRenderCache(dir, maxBytes);
    await fsp.mkdir(path.join(dir, 'tmp'), { recursive: true });
    await fsp.rm(path.join(dir, 'tmp'), { recursive: true, force: true });
    await fsp.mkdir(path.join(dir, 'tmp'), { recursive: true });
    const entries: Array<{ key: string; size: number; mtime: number }> = [];
    for (const shard of await fsp.readdir(dir)) {
      if (shard === 'tmp') continue;
      const shardDir = path.join(dir, shard);
      const names = await fsp.readdir(shardDir).catch(() => [] as string[]);
      for (const name of names) {
        if (!KEY_PATTERN.test(name)) continue;
        const stat = await fsp.stat(path.join(shardDir, name)).catch(() => undefined);
        if (stat?.isFile()) entries.push({ key: name, size: stat.size, mtime: stat.mtimeMs });
      }
    }
    entries.sort((a, b) => a.mtime - b.mtime);
    for (const entry of entries) cache.index.set(entry.key, entry.size);
    return cache;
  }

  /** Shard folders are made once per process, not on every write (a mkdir is a thread-pool round trip). */
  private async makeShard(shard: string): Promise<void> {
    await fsp.mkdir(shard, { recursive: true });
    this.shardsMade.add(shard);
  }

  private pathOf(key: string): string {
    if (!KEY_PATTERN.test(key)) throw new Error(`Invalid render cache key: ${key}`);
    return path.join(this.dir, key.slice(0, 2), key);
  }

  async get(key: string): Promise<Buffer | undefined> {
    if (this.index.get(key) === undefined) return undefined;
    try {
      return await fsp.readFile(this.pathOf(key));
    } catch {
      this.index.delete(key);
      return undefined;
    }
  }

  async put(key: string, bytes: Buffer): Promise<void> {
    if (bytes.length > this.maxBytes) return;
    const finalPath = this.pathOf(key);
    const tmpPath = path.join(this.dir, 'tmp', randomBytes(12).toString('hex'));
    const shard = path.dirname(finalPath);
    if (!this.shardsMade.has(shard)) await this.makeShard(shard);
    await fsp.writeFile(tmpPath, bytes);
    try {
      await fsp.rename(tmpPath, finalPath);
    } catch (error) {
      // The shard was removed behind our back (someone cleared the cache): make it again, once.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await this.makeShard(shard);
      await fsp.rename(tmpPath, finalPath);
    }
    this.index.set(key, bytes.length);
  }

  /** Bounded by size (least recently used first), not by age. */
  async sweep(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {}
}
