import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';

/**
 * A worker's file next to the module that starts it: `.js` in the built server, `.ts` when running from
 * source (tests, `tsx`), where the worker needs the same TypeScript loader as the main thread.
 */
export function workerEntry(name: string, moduleUrl: string): { filename: string; execArgv: string[] } {
  const source = moduleUrl.endsWith('.ts');
  const filename = fileURLToPath(new URL(`./${name}${source ? '.ts' : '.js'}`, moduleUrl));
  return { filename, execArgv: source ? ['--import', 'tsx'] : [] };
}

/**
 * A pool of up to `threads` workers running `name` (next to `moduleUrl`). Workers start on demand and an
 * idle one goes after 5 s: its heap is what the last large job left behind.
 */
export function workerPool<Task, Result>(name: string, moduleUrl: string, threads: number, heapMb?: number): Piscina<Task, Result> {
  const entry = workerEntry(name, moduleUrl);
  return new Piscina<Task, Result>({
    filename: entry.filename,
    execArgv: entry.execArgv,
    minThreads: 0,
    maxThreads: Math.max(1, threads),
    idleTimeout: 5_000,
    ...(heapMb !== undefined && { resourceLimits: { maxOldGenerationSizeMb: heapMb } }),
  });
}
