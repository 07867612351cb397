/**
 * Housekeeping over the storage ports. An upload stores its bytes before its row commits, so a crash
 * in between leaves a blob no row points at: invisible, but wasted space. The sweep removes those.
 * Only blobs written before `writtenBefore` are candidates: an upload in flight (on this node or
 * another) has a fresh blob and no row yet, and must not lose it. The embedded server sweeps everything
 * at start-up, when nothing can be in flight.
 */
import type { BlobStore, MetaStore } from '../store/ports.js';

export async function sweepOrphanBlobs(meta: MetaStore, blobs: BlobStore, writtenBefore = Infinity): Promise<number> {
  // Listed first, rows read after: a blob whose row commits meanwhile is then seen as referenced.
  const candidates: string[] = [];
  for await (const blob of blobs.list()) if (blob.modifiedAt < writtenBefore) candidates.push(blob.key);
  const referenced = await meta.listBlobKeys();
  let removed = 0;
  for (const key of candidates) {
    if (referenced.has(key)) continue;
    await blobs.delete(key);
    removed += 1;
  }
  return removed;
}
