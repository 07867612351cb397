/** Measurement helpers for bench/run.ts: a bounded-concurrency load loop, percentiles, a table printer. */
import { Agent, request } from 'undici';

export interface LoadResult {
  ok: number;
  errors: number;
  /** First unexpected answer, for the report. */
  firstError: string | undefined;
  elapsedMs: number;
  latenciesMs: number[];
}

export interface HttpCall {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: Buffer;
}

/** Multipart/form-data body with a single `file` part, built once and sent as-is by every request. */
export function multipartBody(bytes: Buffer, filename: string, type: string): { body: Buffer; contentType: string } {
  const boundary = `----pictorbench${Date.now().toString(16)}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { body: Buffer.concat([head, bytes, tail]), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** One HTTP exchange, timed until the whole response body has arrived. */
export async function timedCall(
  dispatcher: Agent,
  call: HttpCall,
): Promise<{ status: number; text: string; ms: number }> {
  const started = performance.now();
  const response = await request(call.url, {
    method: call.method,
    headers: call.headers,
    dispatcher,
    ...(call.body !== undefined && { body: call.body }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, text, ms: performance.now() - started };
}

/**
 * Sends `call` from `concurrency` workers back to back for `durationMs` (after `warmupMs` whose
 * results are discarded). Only 200 answers count as done.
 */
export async function runLoad(
  call: HttpCall,
  options: { concurrency: number; durationMs: number; warmupMs: number },
): Promise<LoadResult> {
  const dispatcher = new Agent({ connections: options.concurrency, keepAliveTimeout: 30_000 });
  try {
    const phase = async (durationMs: number): Promise<LoadResult> => {
      const result: LoadResult = { ok: 0, errors: 0, firstError: undefined, elapsedMs: 0, latenciesMs: [] };
      const started = performance.now();
      const deadline = started + durationMs;
      const worker = async (): Promise<void> => {
        while (performance.now() < deadline) {
          try {
            const answer = await timedCall(dispatcher, call);
            if (answer.status === 200) {
              result.ok += 1;
              result.latenciesMs.push(answer.ms);
            } else {
              result.errors += 1;
              result.firstError ??= `${answer.status} ${answer.text.slice(0, 200)}`;
            }
          } catch (error) {
            result.errors += 1;
            result.firstError ??= error instanceof Error ? error.message : String(error);
          }
        }
      };
      await Promise.all(Array.from({ length: options.concurrency }, worker));
      result.elapsedMs = performance.now() - started;
      return result;
    };
    if (options.warmupMs > 0) await phase(options.warmupMs);
    return await phase(options.durationMs);
  } finally {
    await dispatcher.close();
  }
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export function ms(value: number): string {
  if (Number.isNaN(value)) return '-';
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : '-';
}

export function kb(bytes: number): string {
  if (bytes < 1024) return `${bytes.toFixed(0)} B`;
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MB` : `${(bytes / 1024).toFixed(0)} KB`;
}

/** Prints rows as a left/right aligned text table (numbers right-aligned). */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.every((r) => /^[-\d.,×%]+$|^-$/.test((r[i] ?? '').split(' ')[0] ?? '')));
  const line = (cells: string[]): string =>
    '  ' +
    cells
      .map((cell, i) => (numeric[i] && i > 0 ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  console.log('  ' + widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}
