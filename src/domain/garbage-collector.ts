/**
 * Garbage collection shared by all nodes and done by one at a time (a try-lock: a node that finds
 * another at it skips the round): originals left by interrupted uploads, only those older than the grace
 * period so an upload in flight on any node keeps its bytes, and renders past their age (stores bounded
 * by size answer 0). Servers run it hourly; `pictor gc` on demand.
 */
import type { BlobStore, MetaStore, RenderCacheStore } from '../store/ports.js';
import { sweepOrphanBlobs } from './maintenance.js';

export interface GarbageCollectorOptions {
  /** Originals younger than this are never swept. */
  orphanGraceMs: number;
  /** Renders older than this are swept (S3); undefined = never by age. */
  renderTtlMs: number | undefined;
  now: () => number;
}

export interface CollectedGarbage {
  orphans: number;
  renders: number;
}

export class GarbageCollector {
  constructor(
    private readonly meta: MetaStore,
    private readonly blobs: BlobStore,
    private readonly renders: RenderCacheStore,
    private readonly options: GarbageCollectorOptions,
  ) {}

  /** Orphan originals and expired renders; undefined when another node is collecting right now. */
  collect(): Promise<CollectedGarbage | undefined> {
    return this.meta.tryRunExclusive('gc', async () => {
      const now = this.options.now();
      const orphans = await sweepOrphanBlobs(this.meta, this.blobs, now - this.options.orphanGraceMs);
      const ttl = this.options.renderTtlMs;
      const renders = ttl === undefined ? 0 : await this.renders.sweep(now - ttl);
      return { orphans, renders };
    });
  }
}
