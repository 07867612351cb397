/**
 * Cold renders against the best raw sharp setting of this machine, measured in one run:
 *  1. a short search over the raw settings a server could choose: allocator (glibc as is,
 *     MALLOC_ARENA_MAX=2, jemalloc through LD_PRELOAD when installed) × libvips threads per pipeline
 *     (1, 2), each at the same number of concurrent pipelines as the server renders at once;
 *  2. alternating rounds, server then baseline then baseline then server, so drift of the machine (other
 *     load, thermal, page cache) falls on both sides; each side's figure is the mean of its rounds, and
 *     the spread between its rounds is printed with it.
 * Both sides render photo-4000w.jpg to a width never asked before, as JPEG at Pictor's defaults.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { spawnServer } from '../test/helpers/child-server.js';
import { ms, printTable, ratio } from './lib.js';

const run = promisify(execFile);
const PROJECT_ROOT = path.resolve(import.meta.dirname, '..');
const SOURCE = path.join(PROJECT_ROOT, 'test/fixtures/images/photo-4000w.jpg');
const ACCOUNT_ID = 'c01dc01dc01dc01dc01dc01dc01dc01d';
const TOKEN = 'bench-cold-render-token';

/** Where scripts/start.sh looks for jemalloc (Debian/Ubuntu package libjemalloc2), in its order. */
export const JEMALLOC_PATHS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'].map(
  (dir) => `${dir}/libjemalloc.so.2`,
);

export type Allocator = 'glibc' | 'arena2' | 'jemalloc';

export function jemallocPath(): string | undefined {
  return JEMALLOC_PATHS.find((candidate) => fs.existsSync(candidate));
}

/** The allocator environment `npm start` gives the server by default (scripts/start.sh). */
export const NPM_START_ENV: Record<string, string> = { MALLOC_ARENA_MAX: '2' };

function allocatorEnv(allocator: Allocator): Record<string, string> {
  switch (allocator) {
    case 'glibc':
      return {};
    case 'arena2':
      return { MALLOC_ARENA_MAX: '2' };
    case 'jemalloc':
      return { LD_PRELOAD: jemallocPath() ?? '' };
  }
}

/** The environment minus allocator settings inherited from `npm run`, so each round sets its own. */
function cleanEnv(): NodeJS.ProcessEnv {
  const { MALLOC_ARENA_MAX: _arena, LD_PRELOAD: _preload, ...rest } = process.env;
  return rest;
}

interface Round {
  perSecond: number;
  p50: number;
  p99: number;
}

interface RawSetting {
  allocator: Allocator;
  threads: number;
}

/**
 * A range of output widths: the server never gets one twice (no cache can answer). Each baseline round
 * renders the widths its paired server round did (from the same first width, one after another), since
 * larger widths cost more to encode.
 */
interface Workload {
  label: string;
  firstWidth: number;
  span: number;
  /** Next width not yet asked of the server. */
  next: number;
}

async function rawRound(setting: RawSetting, workload: Workload, concurrency: number, seconds: number, firstWidth = workload.next): Promise<Round> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/raw-render.ts'], {
    cwd: PROJECT_ROOT,
    env: {
      ...cleanEnv(),
      ...allocatorEnv(setting.allocator),
      RAW_SOURCE: SOURCE,
      RAW_THREADS: String(setting.threads),
      RAW_CONCURRENCY: String(concurrency),
      RAW_SECONDS: String(seconds),
      RAW_FIRST_WIDTH: String(firstWidth),
      RAW_WIDTH_SPAN: String(workload.firstWidth + workload.span - firstWidth),
    },
  });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Round;
}

async function serverRound(imageBase: string, workload: Workload, agent: Agent, concurrency: number, seconds: number): Promise<Round> {
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let errors = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        if (workload.next >= workload.firstWidth + workload.span) throw new Error(`${workload.label}: widths used up; shorten the rounds`);
        const width = workload.next++;
        const t0 = performance.now();
        const response = await request(`${imageBase}/w=${width}`, { dispatcher: agent, headers: { accept: 'image/jpeg' } });
        await response.body.arrayBuffer();
        if (response.statusCode === 200) latencies.push(performance.now() - t0);
        else errors += 1;
      }
    }),
  );
  if (errors > 0) console.log(`  (server round: ${errors} non-200 answers)`);
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  return { perSecond: latencies.length / elapsed, p50: at(50), p99: at(99) };
}

function describe(setting: RawSetting): string {
  return `${setting.allocator}, ${setting.threads} vips thread${setting.threads > 1 ? 's' : ''}/pipeline`;
}

function mean(rounds: Round[]): number {
  return rounds.reduce((sum, r) => sum + r.perSecond, 0) / rounds.length;
}

function spread(rounds: Round[]): string {
  return rounds.map((r) => r.perSecond.toFixed(1)).join(' / ');
}

export interface ColdRenderOptions {
  /** Seconds per alternating round (the search uses shorter ones). */
  seconds: number;
  /** Concurrent requests to the server, and concurrent pipelines of the baseline. */
  concurrency: number;
  /** Environment the server runs with (what `npm start` gives it). */
  serverEnv: Record<string, string>;
  serverSettingLabel: string;
}

/** The best raw setting for a workload, from short rounds of every setting. */
async function searchRaw(workload: Workload, concurrency: number, seconds: number): Promise<Array<{ setting: RawSetting; round: Round }>> {
  const allocators: Allocator[] = jemallocPath() ? ['glibc', 'arena2', 'jemalloc'] : ['glibc', 'arena2'];
  const searched: Array<{ setting: RawSetting; round: Round }> = [];
  for (const allocator of allocators) {
    for (const threads of [1, 2]) {
      const setting = { allocator, threads };
      searched.push({ setting, round: await rawRound(setting, workload, concurrency, seconds) });
    }
  }
  return searched;
}

/** Starts a server process with the photo uploaded and flexible variants on; returns its URL prefix for options. */
async function serverWithPhoto(env: Record<string, string>): Promise<{ imageBase: string; stop(): Promise<void> }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pictor-bench-cold-'));
  const child = await spawnServer({ dataDir, accountId: ACCOUNT_ID, token: TOKEN, env });
  const api = `${child.url}/client/v4/accounts/${ACCOUNT_ID}/images`;
  const auth = { authorization: `Bearer ${TOKEN}` };
  await fetch(`${api}/v1/config`, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ flexible_variants: true }) });
  const form = new FormData();
  form.append('file', new File([fs.readFileSync(SOURCE)], 'photo-4000w.jpg'));
  const uploaded = (await (await fetch(`${api}/v1`, { method: 'POST', body: form, headers: auth })).json()) as { result: { variants: string[] } };
  const publicUrl = uploaded.result.variants[0] as string;
  return {
    imageBase: publicUrl.slice(0, publicUrl.lastIndexOf('/')),
    async stop() {
      await child.stop('SIGTERM');
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Whether writing the render cache delays answers: the same cold renders (large widths, from the
 * original) on a server with the disk render cache and on one without it, rounds A-B-B-A.
 */
export async function benchCacheWriteLatency(options: ColdRenderOptions): Promise<void> {
  const withCache = await serverWithPhoto(options.serverEnv);
  const withoutCache = await serverWithPhoto({ ...options.serverEnv, PICTOR_CACHE_MAX_BYTES: '0' });
  const agent = new Agent({ connections: options.concurrency * 2, keepAliveTimeout: 30_000 });
  try {
    const widths = (): Workload => ({ label: 'widths 1400-2699', firstWidth: 1400, span: 1300, next: 1400 });
    const on = widths();
    const off = widths();
    await serverRound(withCache.imageBase, on, agent, options.concurrency, 1);
    await serverRound(withoutCache.imageBase, off, agent, options.concurrency, 1);
    const half = options.seconds / 2;
    const onRounds = [await serverRound(withCache.imageBase, on, agent, options.concurrency, half)];
    const offRounds = [await serverRound(withoutCache.imageBase, off, agent, options.concurrency, half)];
    offRounds.push(await serverRound(withoutCache.imageBase, off, agent, options.concurrency, half));
    onRounds.push(await serverRound(withCache.imageBase, on, agent, options.concurrency, half));
    const p = (rounds: Round[], key: 'p50' | 'p99'): string => rounds.map((r) => ms(r[key])).join(' / ');
    console.log('\nDoes the render-cache write delay the answer? Cold renders (widths 1400-2699), rounds A-B-B-A');
    printTable(
      ['server', 'renders/s (rounds)', 'p50 ms (rounds)', 'p99 ms (rounds)'],
      [
        ['render cache on (written after the answer)', `${mean(onRounds).toFixed(1)} (${spread(onRounds)})`, p(onRounds, 'p50'), p(onRounds, 'p99')],
        ['render cache off', `${mean(offRounds).toFixed(1)} (${spread(offRounds)})`, p(offRounds, 'p50'), p(offRounds, 'p99')],
      ],
    );
  } finally {
    await agent.close();
    await withCache.stop();
    await withoutCache.stop();
  }
}

export async function benchColdRenders(options: ColdRenderOptions): Promise<void> {
  const { concurrency } = options;
  const workloads: Workload[] = [
    // What pages ask for: small renditions, made from the 2048 px master once it exists.
    { label: 'widths 400-1023 (from the master)', firstWidth: 400, span: 624, next: 400 },
    // Large renditions, made from the original: the same work as the baseline.
    { label: 'widths 1400-2699 (from the original)', firstWidth: 1400, span: 1300, next: 1400 },
  ];
  const server = await serverWithPhoto(options.serverEnv);
  const imageBase = server.imageBase;
  const agent = new Agent({ connections: concurrency * 2, keepAliveTimeout: 30_000 });
  try {
    console.log(`\nCold renders: photo-4000w.jpg (4000x3266) to a width never asked before, JPEG q85, ${concurrency} at once`);
    console.log(`  server: ${options.serverSettingLabel}`);
    const rows: string[][] = [];
    const half = options.seconds / 2;
    for (const workload of workloads) {
      const searched = await searchRaw(workload, concurrency, Math.max(2, Math.round(options.seconds / 3)));
      const best = searched.reduce((a, b) => (b.round.perSecond > a.round.perSecond ? b : a));
      console.log(`  raw sharp settings, ${workload.label} (renders/s, short rounds):`);
      for (const { setting, round } of searched) {
        console.log(`    ${describe(setting).padEnd(40)} ${round.perSecond.toFixed(1)}${setting === best.setting ? '  <- best' : ''}`);
      }
      await serverRound(imageBase, workload, agent, concurrency, 1); // warm-up: code loaded, pools started
      const firstServerRoundStart = workload.next;
      const serverRounds = [await serverRound(imageBase, workload, agent, concurrency, half)];
      const rawRounds = [await rawRound(best.setting, workload, concurrency, half, firstServerRoundStart)];
      rawRounds.push(await rawRound(best.setting, workload, concurrency, half));
      serverRounds.push(await serverRound(imageBase, workload, agent, concurrency, half));
      const last = (rounds: Round[]): Round => rounds[rounds.length - 1] as Round;
      rows.push([
        workload.label,
        `${mean(serverRounds).toFixed(1)} (${spread(serverRounds)})`,
        `${mean(rawRounds).toFixed(1)} (${spread(rawRounds)}), ${describe(best.setting)}`,
        ratio(mean(serverRounds) / mean(rawRounds)),
        '>= 0.90x',
        `${ms(last(serverRounds).p50)} / ${ms(last(serverRounds).p99)}`,
        `${ms(last(rawRounds).p50)} / ${ms(last(rawRounds).p99)}`,
      ]);
    }
    printTable(['cold renders/s, rounds A-B-B-A', 'Pictor (rounds)', 'best raw sharp (rounds), setting', 'ratio', 'target', 'Pictor p50 / p99 ms', 'raw p50 / p99 ms'], rows);
  } finally {
    await agent.close();
    await server.stop();
  }
}
