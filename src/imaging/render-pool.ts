/**
 * Admission control for rendering: at most `concurrency` renders run at once and at most `maxQueue`
 * wait. Past that the caller is refused at once (503 + Retry-After) instead of piling up memory.
 */
import { PictorError } from '../errors.js';

export class RenderPool {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly maxQueue: number,
  ) {}

  get stats(): { running: number; queued: number } {
    return { running: this.running, queued: this.waiting.length };
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxQueue) {
        throw new PictorError(9523, undefined, { retryAfter: 1 });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running += 1;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter; otherwise it is released.
      if (next) next();
      else this.running -= 1;
    }
  }
}
