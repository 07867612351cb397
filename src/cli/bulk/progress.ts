/**
 * Progress of a bulk command on stderr: on a terminal, one line redrawn in place (files, bytes, rate,
 * ETA); elsewhere (CI logs, pipes) a plain line per finished item, so nothing is lost in a log file.
 */

export interface ProgressTotals {
  files: number;
  bytes: number;
}

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  return `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`;
}

export class Progress {
  private files = 0;
  private bytes = 0;
  private readonly started = Date.now();
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(
    private readonly totals: ProgressTotals,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = out.isTTY === true;
  }

  /** One item finished (whatever its outcome); `line` is what a log gets for it. */
  done(bytes: number, line: string): void {
    this.files += 1;
    this.bytes += bytes;
    if (!this.tty) {
      this.out.write(`${line}\n`);
      return;
    }
    const now = Date.now();
    if (now - this.lastDraw < 100 && this.files < this.totals.files) return;
    this.lastDraw = now;
    this.out.write(`\r\u001b[K${this.bar()}`);
  }

  /** Ends the redrawn line, before the summary is printed. */
  finish(): void {
    if (this.tty) this.out.write(`\r\u001b[K${this.bar()}\n`);
  }

  private bar(): string {
    const width = 24;
    const share = this.totals.files === 0 ? 1 : this.files / this.totals.files;
    const filled = Math.round(share * width);
    const seconds = (Date.now() - this.started) / 1000;
    const rate = seconds > 0 ? this.bytes / seconds : 0;
    const eta = rate > 0 ? (this.totals.bytes - this.bytes) / rate : Number.POSITIVE_INFINITY;
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.files}/${this.totals.files} files  ${megabytes(this.bytes)}/${megabytes(this.totals.bytes)}  ${megabytes(rate)}/s  ETA ${duration(eta)}`;
  }
}

/** Runs `work` over `items` with at most `concurrency` at once, in order of start. */
export async function eachConcurrently<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}
