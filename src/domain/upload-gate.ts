/**
 * A bound on uploads in progress on this server. Each holds up to 10 MB in memory while it is read and
 * checked. Past the bound an upload waits, its body unread, for a short while (a burst from a bulk
 * client gets through); past the wait, or when too many already wait, it is refused (503, Retry-After)
 * before its body is read.
 */
import { PictorError } from '../errors.js';

export interface UploadGateOptions {
  maxInProgress: number;
  maxWaiting: number;
  maxWaitMs: number;
}

function busy(): PictorError {
  return new PictorError(5503, 'Too many uploads in progress; try again shortly', { retryAfter: 1 });
}

export class UploadGate {
  private inProgress = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly options: UploadGateOptions) {}

  get count(): number {
    return this.inProgress;
  }

  /** Takes a place (waiting if need be) or throws 5503; call the returned function once when done. */
  async enter(): Promise<() => void> {
    if (this.inProgress < this.options.maxInProgress) this.inProgress += 1;
    else await this.wait();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      // The place passes straight to the next waiter; otherwise it is freed.
      if (next) next();
      else this.inProgress -= 1;
    };
  }

  private wait(): Promise<void> {
    if (this.waiting.length >= this.options.maxWaiting) return Promise.reject(busy());
    return new Promise<void>((resolve, reject) => {
      const admit = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const index = this.waiting.indexOf(admit);
        if (index !== -1) this.waiting.splice(index, 1);
        reject(busy());
      }, this.options.maxWaitMs);
      timer.unref();
      this.waiting.push(admit);
    });
  }
}
