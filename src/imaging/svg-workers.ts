/**
 * SVG inspection off the main thread. Parsing and sanitizing a 10 MB document is about a second of
 * pure JavaScript: on the event loop it would stall every other request, so it runs on a small piscina
 * pool of worker threads with a heap ceiling (a document that exhausts it is refused, the server lives).
 */
import type { Piscina } from 'piscina';
import { type InspectedSvg, type SvgLimits, SvgRefusal } from './svg.js';
import type { SvgTask, SvgTaskResult } from './svg-worker.js';
import { workerPool } from './worker-entry.js';

/** Heap of one worker: far above what a 10 MB document within the limits needs. */
const WORKER_HEAP_MB = 512;

export class SvgWorkers {
  private readonly pool: Piscina<SvgTask, SvgTaskResult>;

  constructor(threads: number) {
    this.pool = workerPool<SvgTask, SvgTaskResult>('svg-worker', import.meta.url, threads, WORKER_HEAP_MB);
  }

  /** Throws `SvgRefusal`. */
  async inspect(bytes: Buffer, limits: SvgLimits): Promise<InspectedSvg> {
    let result: SvgTaskResult;
    try {
      result = await this.pool.run({ bytes, limits });
    } catch {
      // The worker died (heap ceiling): the document asked for more than any drawing needs.
      throw new SvgRefusal('limit', 'The SVG is too complex to process');
    }
    if (!result.ok) throw new SvgRefusal(result.kind, result.message);
    const sanitized = Buffer.from(result.sanitized.buffer, result.sanitized.byteOffset, result.sanitized.byteLength);
    return { sanitized, width: result.width, height: result.height };
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
