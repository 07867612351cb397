import { fileURLToPath } from 'node:url';

/**
 * A worker's file next to the module that starts it: `.js` in the built server, `.ts` when running from
 * source (tests, `tsx`), where the worker needs the same TypeScript loader as the main thread.
 */
export function workerEntry(name: string, moduleUrl: string): { filename: string; execArgv: string[] } {
  const source = moduleUrl.endsWith('.ts');
  const filename = fileURLToPath(new URL(`./${name}${source ? '.ts' : '.js'}`, moduleUrl));
  return { filename, execArgv: source ? ['--import', 'tsx'] : [] };
}
