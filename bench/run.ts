/**
 * `npm run bench`: measures Pictor in-process against minimal baselines measured in the same run, and
 * prints a table. Not a test: nothing here passes or fails.
 *
 *  (a) upload throughput and latency at concurrency 8 for ~100 KB and ~1 MB JPEGs, against a bare
 *      node:http + busboy + probeImage + temp-file/fsync/rename server (bench/baseline-upload.ts);
 *  (b) list and stats latency with 100,000 images in the store, against the same SELECTs run directly
 *      on better-sqlite3;
 *  (c) upload throughput into that 100,000-image store, against (a)'s empty-store figure;
 *  (d) delivery (bench/delivery.ts): cold renders vs the best raw sharp setting and vs ipx, cached hits
 *      (alone and under writes) vs node:http from memory, and a server process's peak RSS under a burst
 *      of 64 cold 13 MP renders.
 *
 * Knobs (environment): BENCH_UPLOAD_SECONDS (default 12: measured seconds per server and size, run as
 * two halves in A-B-B-A order so disk write-back left by one run does not bias the next), BENCH_CONCURRENCY
 * (8), BENCH_IMAGES (100000), BENCH_DELIVERY_SECONDS (8), BENCH_RENDER_CONCURRENCY (number of cores). `npm run bench -- delivery` runs only the delivery section. The load generator runs in the same process as the servers, for Pictor and
 * the baselines alike. `npm run bench -- soak` (BENCH_SOAK_SECONDS, default 300; BENCH_SOAK_SCALE, default 1)
 * runs only the soak: mixed traffic at fixed rates against a server process, with its memory over time.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import sharp from 'sharp';
import { Agent } from 'undici';
import { loadConfig } from '../src/config.js';
import { type RunningServer, startServer } from '../src/server.js';
import type { Database } from '../src/store/meta/schema.js';
import { seedImages } from './seed.js';
import { startBaselineUploadServer } from './baseline-upload.js';
import { benchDelivery } from './delivery.js';
import { benchHostileMix } from './hostile.js';
import { benchScaleOut } from './scale-out.js';
import { benchSoak } from './soak.js';
import { type HttpCall, type LoadResult, kb, ms, multipartBody, percentile, printTable, ratio, runLoad, timedCall } from './lib.js';

const SOURCE = path.resolve(import.meta.dirname, '../test/fixtures/images/photo-4000w.jpg');

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  return raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : fallback;
}

function envPositiveNumber(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

const UPLOAD_SECONDS = envInt('BENCH_UPLOAD_SECONDS', 12);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 8);
const IMAGES = envInt('BENCH_IMAGES', 100_000);
const DELIVERY_SECONDS = envInt('BENCH_DELIVERY_SECONDS', 8);
/** As many cold requests at once as the server renders at once by default (one per core). */
const RENDER_CONCURRENCY = envInt('BENCH_RENDER_CONCURRENCY', os.availableParallelism());
const HOSTILE_SECONDS = envInt('BENCH_HOSTILE_SECONDS', 10);
const SCALE_SECONDS = envInt('BENCH_SCALE_SECONDS', 6);
const SOAK_SECONDS = envInt('BENCH_SOAK_SECONDS', 300);
/** Multiplies every arrival rate of the soak (about 30 requests/s at 1). */
const SOAK_SCALE = envPositiveNumber('BENCH_SOAK_SCALE', 1);
/**
 * `npm run bench -- hostile` runs only the hostile mix; `-- scaleout` only the PostgreSQL + S3 comparison;
 * `-- soak` only the soak (bench/soak.ts), which is not part of the default run (it takes 5 minutes).
 */
const ONLY = process.argv[2];
const V2_WALK_PAGES = 50;
const V1_PAGES = 50;
const STATS_REQUESTS = 50;

const ACCOUNT_ID = randomBytes(16).toString('hex');
const TOKEN = `bench-${randomBytes(12).toString('hex')}`;
const AUTH = { authorization: `Bearer ${TOKEN}` };

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'pictor-bench-'));
const subdir = (name: string): string => fs.mkdtempSync(path.join(scratch, `${name}-`));

async function startPictor(dataDir: string, env: Record<string, string> = {}): Promise<{ server: RunningServer; imagesUrl: string }> {
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    PICTOR_LOG_LEVEL: 'warn',
    PICTOR_DATA_DIR: dataDir,
    PICTOR_BOOTSTRAP_ACCOUNT_ID: ACCOUNT_ID,
    PICTOR_BOOTSTRAP_TOKEN: TOKEN,
    ...env,
  });
  const server = await startServer(config);
  return { server, imagesUrl: `${server.url}/client/v4/accounts/${ACCOUNT_ID}/images` };
}

/** Flushes dirty pages of earlier runs so their write-back does not slow the next run's fsyncs. */
function settleDisk(): void {
  execFileSync('sync');
}

function mergeResults(results: LoadResult[]): LoadResult {
  return {
    ok: results.reduce((n, r) => n + r.ok, 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
    firstError: results.find((r) => r.firstError !== undefined)?.firstError,
    elapsedMs: results.reduce((n, r) => n + r.elapsedMs, 0),
    latenciesMs: results.flatMap((r) => r.latenciesMs),
  };
}

/** A JPEG of `width` pixels re-encoded at the quality whose size comes closest to `target` bytes. */
async function makeJpeg(width: number, target: number): Promise<{ bytes: Buffer; quality: number }> {
  const resized = await sharp(SOURCE).resize(width).toBuffer();
  let low = 10;
  let high = 100;
  let best: { bytes: Buffer; quality: number } | undefined;
  while (low <= high) {
    const quality = Math.floor((low + high) / 2);
    const bytes = await sharp(resized).jpeg({ quality }).toBuffer();
    if (!best || Math.abs(bytes.length - target) < Math.abs(best.bytes.length - target)) best = { bytes, quality };
    if (bytes.length < target) low = quality + 1;
    else high = quality - 1;
  }
  if (!best) throw new Error('no JPEG made');
  return best;
}

// ---------------------------------------------------------------------------------------------------
// (a) uploads

interface UploadRow {
  label: string;
  size: number;
  server: string;
  result: LoadResult;
}

interface UploadBody {
  label: string;
  size: number;
  body: Buffer;
  contentType: string;
}

async function makeUploadBodies(): Promise<UploadBody[]> {
  const made = [
    { label: '~100 KB', ...(await makeJpeg(1024, 100 * 1024)) },
    { label: '~1 MB', ...(await makeJpeg(4000, 1024 * 1024)) },
  ];
  const bodies: UploadBody[] = [];
  for (const jpeg of made) {
    const meta = await sharp(jpeg.bytes).metadata();
    console.log(`  made ${jpeg.label} JPEG: ${jpeg.bytes.length} bytes, ${meta.width}x${meta.height}, quality ${jpeg.quality}`);
    bodies.push({ label: jpeg.label, size: jpeg.bytes.length, ...multipartBody(jpeg.bytes, 'bench.jpg', 'image/jpeg') });
  }
  return bodies;
}

async function checkAccepted(call: HttpCall, who: string): Promise<void> {
  const agent = new Agent();
  try {
    const answer = await timedCall(agent, call);
    if (answer.status !== 200) throw new Error(`${who} refused the bench upload: ${answer.status} ${answer.text}`);
  } finally {
    await agent.close();
  }
}

async function benchUploads(bodies: UploadBody[]): Promise<UploadRow[]> {
  const rows: UploadRow[] = [];
  const half = { concurrency: CONCURRENCY, durationMs: (UPLOAD_SECONDS * 1000) / 2, warmupMs: 1000 };
  for (const upload of bodies) {
    const pictorDir = subdir('pictor-upload');
    const baselineDir = subdir('baseline-upload');
    const pictor = await startPictor(pictorDir);
    const baseline = await startBaselineUploadServer(baselineDir);
    try {
      const calls: Record<'Pictor' | 'baseline', HttpCall> = {
        Pictor: {
          method: 'POST',
          url: `${pictor.imagesUrl}/v1`,
          headers: { ...AUTH, 'content-type': upload.contentType },
          body: upload.body,
        },
        baseline: { method: 'POST', url: baseline.url, headers: { 'content-type': upload.contentType }, body: upload.body },
      };
      await checkAccepted(calls.Pictor, 'Pictor');
      await checkAccepted(calls.baseline, 'the baseline');
      const results: Record<'Pictor' | 'baseline', LoadResult[]> = { Pictor: [], baseline: [] };
      for (const who of ['Pictor', 'baseline', 'baseline', 'Pictor'] as const) {
        settleDisk();
        results[who].push(await runLoad(calls[who], half));
      }
      for (const who of ['Pictor', 'baseline'] as const) {
        rows.push({ label: upload.label, size: upload.size, server: who, result: mergeResults(results[who]) });
      }
    } finally {
      await pictor.server.close();
      await baseline.close();
      fs.rmSync(pictorDir, { recursive: true, force: true });
      fs.rmSync(baselineDir, { recursive: true, force: true });
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------
// (b) lists

/** Inserts `count` live images for the account straight into the SQLite file, in one transaction. */
async function seedSqlite(dataDir: string, count: number): Promise<number> {
  const started = performance.now();
  const database = new SqliteDatabase(path.join(dataDir, 'pictor.sqlite'));
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = OFF'); // seeding only; the server's own connection keeps FULL
  database.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  await seedImages(db, ACCOUNT_ID, count);
  database.pragma('wal_checkpoint(TRUNCATE)');
  await db.destroy();
  return performance.now() - started;
}

interface ImageRow {
  id: string;
  uploaded_at: number;
}

interface ListRow {
  request: string;
  n: number;
  pictor: number[];
  sql: number[];
  bytes: number;
}

interface ListBench {
  rows: ListRow[];
  seedMs: number;
  plans: string[];
  checks: string[];
  /** Uploads into the full store, after the list timings. */
  fullStoreUpload: LoadResult;
}

async function benchLists(upload: UploadBody): Promise<ListBench> {
  const dataDir = subdir('pictor-list');
  // A quota above the seeded count, so uploads into the full store are still accepted.
  const pictor = await startPictor(dataDir, { PICTOR_IMAGE_QUOTA: String(IMAGES * 2 + 100_000) });
  const agent = new Agent({ connections: 1 });
  const sqlite = new SqliteDatabase(path.join(dataDir, 'pictor.sqlite'), { readonly: true });
  const rows: ListRow[] = [];
  const checks: string[] = [];
  try {
    const seedMs = await seedSqlite(dataDir, IMAGES);
    const get = (query: string): Promise<{ status: number; text: string; ms: number }> =>
      timedCall(agent, { method: 'GET', url: `${pictor.imagesUrl}${query}`, headers: AUTH });
    const getOk = async (query: string): Promise<{ text: string; ms: number }> => {
      const answer = await get(query);
      if (answer.status !== 200) throw new Error(`GET ${query}: ${answer.status} ${answer.text.slice(0, 300)}`);
      return answer;
    };

    // The statements Pictor's store issues (kysely-store.ts), as better-sqlite3 prepared statements.
    const live = `select * from images where account_id = ? and draft = 0`;
    const v2First = sqlite.prepare<[string, number], ImageRow>(`${live} order by uploaded_at desc, id desc limit ?`);
    const v2After = sqlite.prepare<[string, number, string, number], ImageRow>(
      `${live} and (uploaded_at, id) < (?, ?) order by uploaded_at desc, id desc limit ?`,
    );
    const v1Page = sqlite.prepare<[string, number, number], ImageRow>(
      `${live} order by uploaded_at desc, id desc limit ? offset ?`,
    );
    // The live-image count is kept on the account row (no COUNT(*) per request).
    const count = sqlite.prepare<[string], { n: number }>(`select image_count as n from accounts where id = ?`);
    const timeSql = <T>(work: () => T): { value: T; ms: number } => {
      const started = performance.now();
      const value = work();
      return { value, ms: performance.now() - started };
    };

    const stats = JSON.parse((await getOk('/v1/stats')).text) as { result: { count: { current: number } } };
    checks.push(`stats.count.current = ${stats.result.count.current} (seeded ${IMAGES})`);

    // Warm both paths (page cache, statement caches, JIT) before measuring.
    for (let i = 0; i < 3; i++) {
      await getOk('/v2?per_page=1000');
      v2First.all(ACCOUNT_ID, 1001);
      await getOk('/v1?page=1&per_page=100');
    }

    // v2 first page, repeated.
    {
      const row: ListRow = { request: 'GET v2 per_page=1000, first page', n: 10, pictor: [], sql: [], bytes: 0 };
      for (let i = 0; i < row.n; i++) {
        const answer = await getOk('/v2?per_page=1000');
        row.pictor.push(answer.ms);
        row.bytes = answer.text.length;
        row.sql.push(timeSql(() => v2First.all(ACCOUNT_ID, 1001)).ms);
      }
      rows.push(row);
    }

    // v2 walk: 50 consecutive pages through continuation tokens; the SQL side walks the same keyset.
    {
      const row: ListRow = { request: `GET v2 per_page=1000, walk ${V2_WALK_PAGES} pages by token`, n: V2_WALK_PAGES, pictor: [], sql: [], bytes: 0 };
      let token: string | null = null;
      const pictorLastIds: string[] = [];
      let totalBytes = 0;
      for (let i = 0; i < V2_WALK_PAGES; i++) {
        const answer = await getOk(`/v2?per_page=1000${token ? `&continuation_token=${encodeURIComponent(token)}` : ''}`);
        row.pictor.push(answer.ms);
        totalBytes += answer.text.length;
        const body = JSON.parse(answer.text) as { result: { images: Array<{ id: string }>; continuation_token: string | null } };
        pictorLastIds.push(body.result.images[body.result.images.length - 1]?.id ?? '');
        token = body.result.continuation_token;
        if (!token) break;
      }
      row.bytes = totalBytes / row.pictor.length;
      let cursor: ImageRow | undefined;
      const sqlLastIds: string[] = [];
      for (let i = 0; i < row.pictor.length; i++) {
        const after = cursor;
        const timed = timeSql(() =>
          after
            ? v2After.all(ACCOUNT_ID, after.uploaded_at, after.id, 1001)
            : v2First.all(ACCOUNT_ID, 1001),
        );
        row.sql.push(timed.ms);
        cursor = timed.value[999];
        sqlLastIds.push(cursor?.id ?? '');
      }
      const same = pictorLastIds.every((id, i) => id === sqlLastIds[i]);
      checks.push(`v2 walk visited the same keyset positions as the direct SELECT: ${same ? 'yes' : 'NO'}`);
      row.n = row.pictor.length;
      rows.push(row);
      // Keyset pages should cost the same at any depth: show the first and the last ten apart.
      if (row.n >= 20) {
        const slice = (from: number, to: number): ListRow => ({
          request: `  of which pages ${from + 1}-${to}`,
          n: to - from,
          pictor: row.pictor.slice(from, to),
          sql: row.sql.slice(from, to),
          bytes: row.bytes,
        });
        rows.push(slice(0, 10), slice(row.n - 10, row.n));
      }
    }

    // v1: pages 1..50, then a few deep pages (offset pagination).
    {
      const row: ListRow = { request: `GET v1 per_page=100, page=1..${V1_PAGES}`, n: V1_PAGES, pictor: [], sql: [], bytes: 0 };
      for (let page = 1; page <= V1_PAGES; page++) {
        const answer = await getOk(`/v1?page=${page}&per_page=100`);
        row.pictor.push(answer.ms);
        row.bytes = answer.text.length;
        row.sql.push(timeSql(() => [v1Page.all(ACCOUNT_ID, 100, (page - 1) * 100), count.get(ACCOUNT_ID)]).ms);
      }
      rows.push(row);
      for (const page of [Math.floor(IMAGES / 200), Math.floor(IMAGES / 100)]) {
        const deep: ListRow = { request: `GET v1 per_page=100, page=${page} (x5)`, n: 5, pictor: [], sql: [], bytes: 0 };
        for (let i = 0; i < deep.n; i++) {
          const answer = await getOk(`/v1?page=${page}&per_page=100`);
          deep.pictor.push(answer.ms);
          deep.bytes = answer.text.length;
          deep.sql.push(timeSql(() => [v1Page.all(ACCOUNT_ID, 100, (page - 1) * 100), count.get(ACCOUNT_ID)]).ms);
        }
        rows.push(deep);
      }
    }

    // stats
    {
      const row: ListRow = { request: 'GET v1/stats', n: STATS_REQUESTS, pictor: [], sql: [], bytes: 0 };
      for (let i = 0; i < STATS_REQUESTS; i++) {
        const answer = await getOk('/v1/stats');
        row.pictor.push(answer.ms);
        row.bytes = answer.text.length;
        row.sql.push(timeSql(() => count.get(ACCOUNT_ID)).ms);
      }
      rows.push(row);
    }

    const plan = (statement: string): string =>
      (sqlite.prepare(`explain query plan ${statement}`).all(ACCOUNT_ID, 1, 'x', 1) as Array<{ detail: string }>)
        .map((r) => r.detail)
        .join('; ');
    // (c) Uploads into the store that already holds IMAGES rows: same body and load as (a), one run.
    const uploadCall: HttpCall = {
      method: 'POST',
      url: `${pictor.imagesUrl}/v1`,
      headers: { ...AUTH, 'content-type': upload.contentType },
      body: upload.body,
    };
    await checkAccepted(uploadCall, 'Pictor (full store)');
    settleDisk();
    const fullStoreUpload = await runLoad(uploadCall, {
      concurrency: CONCURRENCY,
      durationMs: (UPLOAD_SECONDS * 1000) / 2,
      warmupMs: 1000,
    });

    const plans = [
      `v2 after-cursor SELECT: ${plan(`${live} and (uploaded_at, id) < (?, ?) order by uploaded_at desc, id desc limit ?`)}`,
    ];
    return { rows, seedMs, plans, checks, fullStoreUpload };
  } finally {
    sqlite.close();
    await agent.close();
    await pictor.server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------

/** Median time of a 4 KB write + fsync on the scratch disk: the unit cost of every durable step. */
async function fsyncCost(): Promise<number> {
  const file = path.join(scratch, 'fsync-probe');
  const handle = await fs.promises.open(file, 'w');
  const samples: number[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      await handle.write(randomBytes(4096), 0, 4096, 0);
      await handle.sync();
      samples.push(performance.now() - started);
    }
  } finally {
    await handle.close();
    fs.rmSync(file, { force: true });
  }
  return percentile(samples, 50);
}

async function main(): Promise<void> {
  const started = performance.now();
  const cpus = os.cpus();
  console.log(
    `Pictor bench: node ${process.version}, ${cpus.length} CPU(s) (${cpus[0]?.model.trim() ?? '?'}), ` +
      `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, scratch ${scratch}`,
  );
  console.log(`fsync of a 4 KB write on the scratch disk: p50 ${ms(await fsyncCost())} ms`);
  if (ONLY === 'hostile') {
    await benchHostileMix(HOSTILE_SECONDS);
    return;
  }
  if (ONLY === 'delivery') {
    await benchDelivery({ seconds: DELIVERY_SECONDS, concurrency: RENDER_CONCURRENCY });
    return;
  }
  if (ONLY === 'soak') {
    await benchSoak(SOAK_SECONDS, SOAK_SCALE);
    return;
  }
  if (ONLY === 'scaleout') {
    await benchScaleOut(SCALE_SECONDS, IMAGES);
    return;
  }

  console.log(
    `\n(a) Uploads: concurrency ${CONCURRENCY}, ${UPLOAD_SECONDS} s measured per server and size ` +
      `(two ${UPLOAD_SECONDS / 2} s runs in Pictor, baseline, baseline, Pictor order, each after a 1 s warm-up)`,
  );
  const bodies = await makeUploadBodies();
  const uploads = await benchUploads(bodies);
  const uploadRows = uploads.map((u) => {
    const seconds = u.result.elapsedMs / 1000;
    const base = uploads.find((b) => b.label === u.label && b.server === 'baseline');
    const rate = u.result.ok / seconds;
    const baseRate = base ? base.result.ok / (base.result.elapsedMs / 1000) : Number.NaN;
    return [
      `${u.label} (${kb(u.size)})`,
      u.server,
      String(u.result.ok),
      rate.toFixed(1),
      ((rate * u.size) / 1024 / 1024).toFixed(1),
      ms(percentile(u.result.latenciesMs, 50)),
      ms(percentile(u.result.latenciesMs, 99)),
      String(u.result.errors),
      u.server === 'Pictor' ? ratio(rate / baseRate) : '',
    ];
  });
  console.log('');
  printTable(
    ['JPEG', 'server', 'uploads', 'images/s', 'MB/s', 'p50 ms', 'p99 ms', 'errors', 'vs baseline'],
    uploadRows,
  );
  for (const u of uploads) if (u.result.firstError) console.log(`  first error (${u.server}, ${u.label}): ${u.result.firstError}`);
  console.log(
    '  baseline = node:http + busboy + probeImage + temp file/fsync/rename (no auth, no SQLite, no dir fsync).\n' +
      '  "vs baseline" = Pictor images/s / baseline images/s.',
  );

  console.log(`\n(b) Lists with ${IMAGES.toLocaleString('en-US')} images in one account, sequential requests (concurrency 1)`);
  const small = bodies[0];
  if (!small) throw new Error('no upload body');
  const lists = await benchLists(small);
  console.log(`  seeded in ${(lists.seedMs / 1000).toFixed(1)} s (batched Kysely inserts, one transaction)`);
  for (const check of lists.checks) console.log(`  check: ${check}`);
  console.log('');
  printTable(
    ['request', 'n', 'Pictor p50 ms', 'p99 ms', 'SQL p50 ms', 'SQL p99 ms', 'p50 ratio', 'response'],
    lists.rows.map((r) => [
      r.request,
      String(r.n),
      ms(percentile(r.pictor, 50)),
      ms(percentile(r.pictor, 99)),
      ms(percentile(r.sql, 50)),
      ms(percentile(r.sql, 99)),
      ratio(percentile(r.pictor, 50) / percentile(r.sql, 50)),
      kb(r.bytes),
    ]),
  );
  console.log(
    '  SQL = the same SELECT(s) on better-sqlite3 directly (v1: page SELECT + the account\'s image count; stats: that count), no HTTP.\n' +
      '  p50 ratio = Pictor p50 / SQL p50. p99 of n samples is the nearest-rank value (max for n < 100).',
  );
  for (const plan of lists.plans) console.log(`  plan: ${plan}`);

  const full = lists.fullStoreUpload;
  const emptyStore = uploads.find((u) => u.server === 'Pictor' && u.label === small.label)?.result;
  const fullRate = full.ok / (full.elapsedMs / 1000);
  const emptyRate = emptyStore ? emptyStore.ok / (emptyStore.elapsedMs / 1000) : Number.NaN;
  console.log(`\n(c) ${small.label} uploads into the store holding ${IMAGES.toLocaleString('en-US')} images (concurrency ${CONCURRENCY}, ${UPLOAD_SECONDS / 2} s)`);
  console.log('');
  printTable(
    ['store', 'uploads', 'images/s', 'p50 ms', 'p99 ms', 'errors', 'vs empty store'],
    [
      [
        'empty (from a)',
        String(emptyStore?.ok ?? 0),
        emptyRate.toFixed(1),
        ms(percentile(emptyStore?.latenciesMs ?? [], 50)),
        ms(percentile(emptyStore?.latenciesMs ?? [], 99)),
        String(emptyStore?.errors ?? 0),
        '',
      ],
      [
        `${IMAGES.toLocaleString('en-US')} images`,
        String(full.ok),
        fullRate.toFixed(1),
        ms(percentile(full.latenciesMs, 50)),
        ms(percentile(full.latenciesMs, 99)),
        String(full.errors),
        ratio(fullRate / emptyRate),
      ],
    ],
  );
  if (full.firstError) console.log(`  first error: ${full.firstError}`);

  await benchDelivery({ seconds: DELIVERY_SECONDS, concurrency: RENDER_CONCURRENCY });
  await benchHostileMix(HOSTILE_SECONDS);

  console.log(`\nTotal bench time ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(scratch, { recursive: true, force: true }));
