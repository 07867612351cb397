/**
 * Housekeeping over the storage ports. An upload stores its bytes before its row commits, so a crash
 * in between leaves a blob no row points at: invisible, but wasted space. The sweep removes those.
 * It must only run while no upload is in flight (at start-up of the embedded single-node server).
 */
import type { BlobStore, MetaStore } from '../store/ports.js';

export async function sweepOrphanBlobs(meta: MetaStore, blobs: BlobStore): Promise<number> {
  const referenced = await meta.listBlobKeys();
  let removed = 0;
  for await (const key of blobs.list()) {
    if (referenced.has(key)) continue;
    await blobs.delete(key);
    removed += 1;
  }
  return removed;
}
