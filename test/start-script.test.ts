/**
 * `npm start` (scripts/start.sh): the allocator it picks is the one the server process really runs with,
 * read from the process's own memory map and environment (Linux /proc).
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { type ChildServer, spawnServer } from './helpers/child-server.js';
import { randomAccountId, tempDir } from './helpers/server.js';

const JEMALLOC_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];
const jemallocInstalled = JEMALLOC_DIRS.some((dir) => fs.existsSync(`${dir}/libjemalloc.so.2`));

function environmentOf(pid: number): Map<string, string> {
  const entries = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  return new Map(entries.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
}

function mapsJemalloc(pid: number): boolean {
  return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libjemalloc');
}

describe.runIf(process.platform === 'linux' && fs.existsSync('dist/cli/main.js'))('npm start (scripts/start.sh)', () => {
  let server: ChildServer | undefined;
  afterEach(async () => {
    await server?.stop('SIGTERM');
    server = undefined;
  });

  // Empty values stand for unset: the outer environment's allocator settings would change the choice.
  const start = (env: Record<string, string> = {}): Promise<ChildServer> =>
    spawnServer({
      dataDir: tempDir(),
      accountId: randomAccountId(),
      token: 'start-script-token',
      command: ['sh', 'scripts/start.sh'],
      env: { LD_PRELOAD: '', MALLOC_ARENA_MAX: '', ...env },
    });

  it('runs glibc limited to two arenas by default, and the server answers', async () => {
    server = await start();
    expect(mapsJemalloc(server.pid)).toBe(false);
    expect(environmentOf(server.pid).get('MALLOC_ARENA_MAX')).toBe('2');
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it.runIf(jemallocInstalled)('preloads jemalloc with PICTOR_MALLOC=jemalloc when it is installed', async () => {
    server = await start({ PICTOR_MALLOC: 'jemalloc' });
    expect(mapsJemalloc(server.pid)).toBe(true);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it.runIf(!jemallocInstalled)('falls back to glibc with two arenas when PICTOR_MALLOC=jemalloc finds no jemalloc', async () => {
    server = await start({ PICTOR_MALLOC: 'jemalloc' });
    expect(environmentOf(server.pid).get('MALLOC_ARENA_MAX')).toBe('2');
  });

  it('respects an allocator setting already given', async () => {
    server = await start({ MALLOC_ARENA_MAX: '4' });
    expect(mapsJemalloc(server.pid)).toBe(false);
    expect(environmentOf(server.pid).get('MALLOC_ARENA_MAX')).toBe('4');
  });
});
