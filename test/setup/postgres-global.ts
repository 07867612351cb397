/**
 * Global setup of the `postgres` test project: uses PICTOR_TEST_DATABASE_URL when given, otherwise starts
 * a throwaway PostgreSQL with scripts/pg-start.sh for the run and stops it (removing its files) after.
 */
import { execFileSync, execSync } from 'node:child_process';
import path from 'node:path';

export default function setup(): (() => void) | undefined {
  if (process.env.PICTOR_TEST_DATABASE_URL) return undefined;
  const script = path.resolve(import.meta.dirname, '../../scripts/pg-start.sh');
  const output = execFileSync('bash', [script], { encoding: 'utf8' });
  const url = /PICTOR_TEST_DATABASE_URL=(\S+)/.exec(output)?.[1];
  const stop = /PG_STOP="(.*)"$/m.exec(output)?.[1]?.replace(/\\"/g, '"');
  if (!url || !stop) throw new Error(`scripts/pg-start.sh printed no URL:\n${output}`);
  process.env.PICTOR_TEST_DATABASE_URL = url;
  return () => {
    execSync(stop, { stdio: 'ignore', shell: '/bin/bash' });
  };
}
