/**
 * Admission control for image work (renders, upload validation, SVG sanitising), weighed by cost.
 *
 * Counting every job as one let four 100-megapixel renders hold both cores for half a minute while a
 * 77 px thumbnail waited behind them. Here each job states its cost (pixels it will decode and
 * produce). Jobs at or above `heavyCost` may hold at most `heavySlots` of the `slots`, so at least one
 * slot is always free for light work; light jobs leave the queue first. Waiting is bounded in length
 * and in time: past either, the caller is refused at once (`PoolFullError`) and answers 503 with
 * Retry-After instead of piling up memory.
 */

const REFUSALS = {
  queue: 'The work queue is full',
  wait: 'Waited too long for a free slot',
  closed: 'The server is stopping',
} as const;

export class PoolFullError extends Error {
  constructor(readonly reason: keyof typeof REFUSALS) {
    super(REFUSALS[reason]);
    this.name = 'PoolFullError';
  }
}

export interface RenderPoolOptions {
  /** Jobs running at once (CPU-bound: about the number of cores). */
  slots: number;
  /** Of those, how many may be heavy at once (fewer than `slots` keeps a lane for light work). */
  heavySlots: number;
  /** Cost (pixels) from which a job counts as heavy. */
  heavyCost: number;
  /** Jobs waiting for a slot, light and heavy together. */
  maxQueue: number;
  /** Heavy jobs waiting for a heavy slot. */
  maxHeavyQueue: number;
  /** Longest wait for a slot before the job is refused. */
  maxWaitMs: number;
}

interface Waiter {
  start(): void;
  refuse(error: PoolFullError): void;
}

export class RenderPool {
  private running = 0;
  private runningHeavy = 0;
  private readonly light: Waiter[] = [];
  private readonly heavy: Waiter[] = [];
  private closed = false;

  constructor(private readonly options: RenderPoolOptions) {}

  /** Running at most `slots` jobs, of which at most `heavySlots` heavy ones (for utilisation gauges). */
  get capacity(): { slots: number; heavySlots: number } {
    return { slots: this.options.slots, heavySlots: this.options.heavySlots };
  }

  /**
   * Whether a light job would be taken now, to run or to wait (readiness): not closed, and a slot or
   * a place in the queue is free. A node answering "no" sends its clients 503s.
   */
  get accepting(): boolean {
    if (this.closed) return false;
    return this.running < this.options.slots || this.light.length + this.heavy.length < this.options.maxQueue;
  }

  /** Refuses new jobs and those still waiting; running ones finish. */
  close(): void {
    this.closed = true;
    for (const waiter of this.light.splice(0).concat(this.heavy.splice(0))) waiter.refuse(new PoolFullError('closed'));
  }

  get stats(): { running: number; runningHeavy: number; queued: number; queuedHeavy: number } {
    return {
      running: this.running,
      runningHeavy: this.runningHeavy,
      queued: this.light.length + this.heavy.length,
      queuedHeavy: this.heavy.length,
    };
  }

  isHeavy(cost: number): boolean {
    return cost >= this.options.heavyCost;
  }

  async run<T>(cost: number, task: () => Promise<T>): Promise<T> {
    if (this.closed) throw new PoolFullError('closed');
    const heavy = this.isHeavy(cost);
    if (this.canStart(heavy)) this.acquire(heavy);
    else await this.wait(heavy);
    try {
      return await task();
    } finally {
      this.release(heavy);
    }
  }

  private canStart(heavy: boolean): boolean {
    if (this.running >= this.options.slots) return false;
    return !heavy || this.runningHeavy < this.options.heavySlots;
  }

  private acquire(heavy: boolean): void {
    this.running += 1;
    if (heavy) this.runningHeavy += 1;
  }

  private release(heavy: boolean): void {
    this.running -= 1;
    if (heavy) this.runningHeavy -= 1;
    this.dispatch();
  }

  /** Hands free slots to waiters: light ones first, then heavy ones while a heavy slot is free. */
  private dispatch(): void {
    for (;;) {
      if (this.light.length > 0 && this.canStart(false)) {
        this.acquire(false);
        this.light.shift()?.start();
      } else if (this.heavy.length > 0 && this.canStart(true)) {
        this.acquire(true);
        this.heavy.shift()?.start();
      } else {
        return;
      }
    }
  }

  private wait(heavy: boolean): Promise<void> {
    const queued = this.light.length + this.heavy.length;
    if (queued >= this.options.maxQueue || (heavy && this.heavy.length >= this.options.maxHeavyQueue)) {
      return Promise.reject(new PoolFullError('queue'));
    }
    const queue = heavy ? this.heavy : this.light;
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        // The slot was acquired for this waiter by `dispatch`.
        start: () => {
          clearTimeout(timer);
          resolve();
        },
        refuse: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        const index = queue.indexOf(waiter);
        if (index !== -1) queue.splice(index, 1);
        waiter.refuse(new PoolFullError('wait'));
      }, this.options.maxWaitMs);
      timer.unref();
      queue.push(waiter);
    });
  }
}
