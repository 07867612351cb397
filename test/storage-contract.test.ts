/**
 * One contract for every object-store adapter: the local disk always, S3 when an engine is given
 * (`PICTOR_TEST_S3_ENDPOINT`; scripts/swift-s3.sh starts one). Originals and renders behave the same
 * whatever holds them; the orphan sweep leaves young blobs alone whatever the store.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { sweepOrphanBlobs } from '../src/domain/maintenance.js';
import { FsBlobStore } from '../src/store/blob/fs.js';
import { S3BlobStore } from '../src/store/blob/s3.js';
import { FsRenderCache } from '../src/store/cache/fs-render-cache.js';
import { S3RenderCache } from '../src/store/cache/s3-render-cache.js';
import { openSqliteMetaStore } from '../src/store/meta/sqlite.js';
import type { BlobStore, MetaStore, RenderCacheStore } from '../src/store/ports.js';
import { createS3Client } from '../src/store/s3/client.js';
import { createTestBucket, s3Env } from './helpers/s3.js';
import { tempDir } from './helpers/server.js';

interface Adapters {
  blobs: BlobStore;
  renders: RenderCacheStore;
  /** Whether renders expire by age (a shared bucket) rather than by size. */
  rendersExpire: boolean;
  close(): Promise<void>;
}

const kinds: Array<{ name: string; open: () => Promise<Adapters> }> = [
  {
    name: 'local disk',
    open: async () => {
      const dir = tempDir();
      return {
        blobs: await FsBlobStore.open(path.join(dir, 'originals')),
        renders: await FsRenderCache.open(path.join(dir, 'cache'), 1024 ** 2),
        rendersExpire: false,
        close: async () => fs.rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
];
if (process.env.PICTOR_TEST_S3_ENDPOINT) {
  kinds.push({
    name: 'S3',
    open: async () => {
      const storage = loadConfig(s3Env(await createTestBucket())).storage;
      if (!storage) throw new Error('no storage settings');
      const client = createS3Client(storage);
      return {
        blobs: new S3BlobStore(client, storage.bucket, storage.prefix),
        renders: new S3RenderCache(client, storage.bucket, storage.prefix),
        rendersExpire: true,
        close: async () => client.destroy(),
      };
    },
  });
}

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function keysOf(blobs: BlobStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const blob of blobs.list()) keys.push(blob.key);
  return keys.sort();
}

describe.each(kinds)('object stores on $name', ({ open }) => {
  let a: Adapters;
  beforeAll(async () => {
    a = await open();
  });
  afterAll(() => a.close());

  it('stores, streams back, lists with a recent date and deletes originals', async () => {
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    const started = Date.now();
    await a.blobs.put('acct/one', bytes);
    const got = await a.blobs.get('acct/one');
    expect(got?.info.size).toBe(bytes.length);
    expect(got ? (await readAll(got.stream)).equals(bytes) : false).toBe(true);
    const listed = [];
    for await (const blob of a.blobs.list()) listed.push(blob);
    const one = listed.find((b) => b.key === 'acct/one');
    expect(one).toBeDefined();
    // Object stores keep times to the second.
    expect(one?.modifiedAt ?? 0).toBeGreaterThanOrEqual(Math.floor(started / 1000) * 1000 - 1000);
    await a.blobs.delete('acct/one');
    expect(await a.blobs.get('acct/one')).toBeUndefined();
    await a.blobs.delete('acct/one');
  });

  it('the readiness probe passes on a usable store and leaves nothing behind', async () => {
    const before = await keysOf(a.blobs);
    await a.blobs.probe(AbortSignal.timeout(5000));
    expect(await keysOf(a.blobs)).toEqual(before);
  });

  it('a missing original is undefined, not an error', async () => {
    expect(await a.blobs.get('acct/none')).toBeUndefined();
  });

  it('renders: a miss, then a hit with the same bytes', async () => {
    const key = 'ab'.repeat(32);
    expect(await a.renders.get(key)).toBeUndefined();
    await a.renders.put(key, Buffer.from('rendered'));
    expect((await a.renders.get(key))?.toString()).toBe('rendered');
  });

  it('renders older than the cut-off are swept where renders expire by age', async () => {
    const key = 'cd'.repeat(32);
    await a.renders.put(key, Buffer.from('old'));
    const removed = await a.renders.sweep(Date.now() + 2000);
    if (a.rendersExpire) {
      expect(removed).toBeGreaterThanOrEqual(1);
      expect(await a.renders.get(key)).toBeUndefined();
    } else {
      expect(removed).toBe(0);
    }
  });

  it('the orphan sweep removes old unreferenced blobs and keeps young ones (an upload in flight)', async () => {
    const dir = tempDir();
    const meta: MetaStore = await openSqliteMetaStore(dir);
    try {
      await a.blobs.put('acct/orphan', Buffer.from('x'));
      await a.blobs.put('acct/young', Buffer.from('y'));
      const before = await keysOf(a.blobs);
      expect(before).toEqual(expect.arrayContaining(['acct/orphan', 'acct/young']));
      // Nothing is older than an hour ago: nothing goes.
      expect(await sweepOrphanBlobs(meta, a.blobs, Date.now() - 3_600_000)).toBe(0);
      expect(await sweepOrphanBlobs(meta, a.blobs, Date.now() + 2000)).toBeGreaterThanOrEqual(2);
      expect(await keysOf(a.blobs)).not.toContain('acct/orphan');
    } finally {
      await meta.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('disk render cache', () => {
  it('writes again after its shard folder was removed behind its back (folders are made once per process)', async () => {
    const dir = tempDir();
    try {
      const cache = await FsRenderCache.open(path.join(dir, 'cache'), 1024 ** 2);
      const first = `ab${'0'.repeat(62)}`;
      const second = `ab${'1'.repeat(62)}`;
      await cache.put(first, Buffer.from('one'));
      fs.rmSync(path.join(dir, 'cache', 'ab'), { recursive: true, force: true });
      await cache.put(second, Buffer.from('two'));
      expect((await cache.get(second))?.toString()).toBe('two');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
