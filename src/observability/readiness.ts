/**
 * Readiness: can this node serve right now? Each part (metadata store, blob store, render pool) has a
 * cheap check bounded by a timeout. `/ready` is unauthenticated, so a flood of it must not become a
 * flood of database queries and file writes: a check in progress is shared, and a result is reused for
 * a short while.
 */

export type ReadinessPart = 'metadata' | 'blob' | 'render_pool';

/** Resolves when the part is usable; rejects (or outlives the timeout) otherwise. */
export type ReadinessCheck = (signal: AbortSignal) => Promise<void> | void;

export type ReadinessChecks = Record<ReadinessPart, ReadinessCheck>;

export interface ReadinessOptions {
  /** A check without an answer by then counts as failed (and is told to stop). */
  timeoutMs: number;
  /** A result this recent is answered again without checking. */
  reuseMs: number;
  /** Told when a part starts failing (with why) or recovers (`failure` undefined); for the log. */
  onChange?: (part: ReadinessPart, failure: unknown) => void;
}

interface PartState {
  ok: boolean;
  checkedAt: number;
  running: Promise<boolean> | undefined;
}

class CheckTimedOut extends Error {
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'CheckTimedOut';
  }
}

export class Readiness {
  private readonly parts: ReadinessPart[];
  private readonly states = new Map<ReadinessPart, PartState>();

  constructor(
    private readonly checks: ReadinessChecks,
    private readonly options: ReadinessOptions,
  ) {
    this.parts = Object.keys(checks) as ReadinessPart[];
  }

  /** The parts that are not usable now (empty: ready). */
  async failing(): Promise<ReadinessPart[]> {
    const usable = await Promise.all(this.parts.map((part) => this.check(part)));
    return this.parts.filter((_, index) => !usable[index]);
  }

  private check(part: ReadinessPart): Promise<boolean> {
    const state = this.states.get(part);
    if (state?.running) return state.running;
    if (state && performance.now() - state.checkedAt < this.options.reuseMs) return Promise.resolve(state.ok);
    const running = this.run(part).then((failure) => {
      const ok = failure === undefined;
      const wasOk = state?.ok ?? true;
      this.states.set(part, { ok, checkedAt: performance.now(), running: undefined });
      if (ok !== wasOk) this.options.onChange?.(part, failure);
      return ok;
    });
    this.states.set(part, { ok: state?.ok ?? true, checkedAt: state?.checkedAt ?? 0, running });
    return running;
  }

  /** Undefined when the part answered in time, else why not. */
  private async run(part: ReadinessPart): Promise<unknown> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new CheckTimedOut(this.options.timeoutMs));
      }, this.options.timeoutMs);
    });
    try {
      // The check may throw synchronously; inside `then` that becomes a rejection like any other.
      await Promise.race([Promise.resolve().then(() => this.checks[part](controller.signal)), timedOut]);
      return undefined;
    } catch (error) {
      return error ?? new Error('check failed');
    } finally {
      clearTimeout(timer);
    }
  }
}
