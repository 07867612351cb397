/**
 * (f) Scale-out: the same measurements on the embedded layout (SQLite + disk) and on PostgreSQL + S3
 * (OpenStack Swift's s3api on loopback), one after the other in the same run, as ratios:
 * uploads, v2 lists over 100,000 images (with and without a metadata filter), cold renders and cached hits.
 * PostgreSQL and Swift come from PICTOR_TEST_DATABASE_URL / PICTOR_TEST_S3_ENDPOINT or are started here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import SqliteDatabase from 'better-sqlite3';
import { Agent, request } from 'undici';
import { loadConfig } from '../src/config.js';
import { type RunningServer, startServer } from '../src/server.js';
import type { Database } from '../src/store/meta/schema.js';
import { createTestDatabase } from '../test/helpers/postgres.js';
import { createTestBucket, s3Env } from '../test/helpers/s3.js';
import startPostgres from '../test/setup/postgres-global.js';
import startSwift from '../test/setup/s3-global.js';
import { ms, multipartBody, percentile, printTable, ratio, runLoad } from './lib.js';
import { seedImages } from './seed.js';

const FIXTURES = path.resolve(import.meta.dirname, '../test/fixtures/images');
const ACCOUNT_ID = '5ca1e0f75ca1e0f75ca1e0f75ca1e0f7';
const TOKEN = 'bench-scale-out-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

interface Layout {
  name: string;
  env: Record<string, string>;
  /** Opens the layout's metadata database for seeding. */
  database(): Kysely<Database>;
}

interface Figures {
  uploadsPerSecond: number;
  uploadP50: number;
  listP50: number;
  filteredListP50: number;
  coldPerSecond: number;
  cachedPerSecond: number;
}

async function start(layout: Layout): Promise<{ server: RunningServer; api: string }> {
  const server = await startServer(
    loadConfig({
      HOST: '127.0.0.1',
      PORT: '0',
      PICTOR_LOG_LEVEL: 'warn',
      PICTOR_BOOTSTRAP_ACCOUNT_ID: ACCOUNT_ID,
      PICTOR_BOOTSTRAP_TOKEN: TOKEN,
      // The seeded account holds more than the default quota of 100,000.
      PICTOR_IMAGE_QUOTA: '10000000',
      ...layout.env,
    }),
  );
  return { server, api: `${server.url}/client/v4/accounts/${ACCOUNT_ID}/images` };
}

/** p50 of `n` sequential GETs. */
async function sequential(url: string, n: number): Promise<number> {
  const agent = new Agent({ connections: 1 });
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const response = await request(url, { headers: AUTH, dispatcher: agent });
    await response.body.arrayBuffer();
    if (response.statusCode !== 200) throw new Error(`GET ${url}: ${response.statusCode}`);
    samples.push(performance.now() - started);
  }
  await agent.close();
  return percentile(samples, 50);
}

async function measure(layout: Layout, seconds: number, images: number): Promise<Figures> {
  const { server, api } = await start(layout);
  try {
    const small = multipartBody(fs.readFileSync(path.join(FIXTURES, '320x240.jpg')), '320x240.jpg', 'image/jpeg');
    const uploads = await runLoad(
      { method: 'POST', url: `${api}/v1`, headers: { ...AUTH, 'content-type': small.contentType }, body: small.body },
      { concurrency: 8, durationMs: seconds * 1000, warmupMs: 1000 },
    );

    const db = layout.database();
    await seedImages(db, ACCOUNT_ID, images);
    // A bulk load is followed by statistics (autovacuum would gather them within a minute).
    await sql`analyze`.execute(db);
    await db.destroy();
    const listP50 = await sequential(`${api}/v2?per_page=1000`, 10);
    const filteredListP50 = await sequential(`${api}/v2?per_page=1000&meta.album[eq]=album-7`, 10);

    await fetch(`${api}/v1/config`, { method: 'PATCH', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ flexible_variants: true }) });
    const photo = multipartBody(fs.readFileSync(path.join(FIXTURES, 'photo-4000w.jpg')), 'photo.jpg', 'image/jpeg');
    const uploaded = (await (await fetch(`${api}/v1`, { method: 'POST', headers: { ...AUTH, 'content-type': photo.contentType }, body: photo.body })).json()) as {
      result: { variants: string[] };
    };
    const publicUrl = uploaded.result.variants[0] as string;
    const base = publicUrl.slice(0, publicUrl.lastIndexOf('/'));
    const agent = new Agent({ connections: 2 });
    let width = 300;
    let cold = 0;
    const coldDeadline = performance.now() + seconds * 1000;
    const coldStarted = performance.now();
    await Promise.all(
      [0, 1].map(async () => {
        while (performance.now() < coldDeadline) {
          const response = await request(`${base}/w=${width++},f=webp`, { dispatcher: agent });
          await response.body.arrayBuffer();
          if (response.statusCode === 200) cold += 1;
        }
      }),
    );
    const coldPerSecond = cold / ((performance.now() - coldStarted) / 1000);
    await agent.close();
    const cached = await runLoad({ method: 'GET', url: publicUrl, headers: { accept: 'image/webp' } }, { concurrency: 16, durationMs: seconds * 1000, warmupMs: 500 });
    return {
      uploadsPerSecond: uploads.ok / (uploads.elapsedMs / 1000),
      uploadP50: percentile(uploads.latenciesMs, 50),
      listP50,
      filteredListP50,
      coldPerSecond,
      cachedPerSecond: cached.ok / (cached.elapsedMs / 1000),
    };
  } finally {
    await server.close();
  }
}

export async function benchScaleOut(seconds: number, images: number): Promise<void> {
  console.log(`\n(f) Scale-out: embedded (SQLite + disk) against PostgreSQL + S3 (Swift s3api), same machine, ${images.toLocaleString('en-US')} images listed`);
  const stopPostgres = startPostgres();
  const stopSwift = startSwift();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'pictor-bench-scale-'));
  try {
    const embeddedDir = path.join(scratch, 'embedded');
    const embedded: Layout = {
      name: 'embedded',
      env: { PICTOR_DATA_DIR: embeddedDir },
      database: () => new Kysely<Database>({ dialect: new SqliteDialect({ database: new SqliteDatabase(path.join(embeddedDir, 'pictor.sqlite'), { timeout: 10_000 }) }) }),
    };
    const database = await createTestDatabase();
    const shared: Layout = {
      name: 'PostgreSQL + S3',
      env: { PICTOR_DATA_DIR: path.join(scratch, 'node'), PICTOR_DATABASE_URL: database.url, ...s3Env(await createTestBucket()) },
      database: () => new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: database.url, max: 2 }) }) }),
    };
    const a = await measure(embedded, seconds, images);
    const b = await measure(shared, seconds, images);
    const row = (label: string, x: number, y: number, format: (v: number) => string, higherIsBetter: boolean): string[] => [
      label,
      format(x),
      format(y),
      ratio(higherIsBetter ? y / x : x / y),
    ];
    printTable(
      ['measure', 'embedded', 'PostgreSQL + S3', 'ratio (PG+S3 / embedded, >1 = faster)'],
      [
        row('uploads/s, 81 KB JPEG, concurrency 8', a.uploadsPerSecond, b.uploadsPerSecond, (v) => v.toFixed(1), true),
        row('upload p50 ms', a.uploadP50, b.uploadP50, ms, false),
        row('GET v2 per_page=1000, p50 ms', a.listP50, b.listP50, ms, false),
        row('GET v2 per_page=1000 meta.album[eq], p50 ms', a.filteredListP50, b.filteredListP50, ms, false),
        row('cold renders/s (photo-4000w, WebP, c=2)', a.coldPerSecond, b.coldPerSecond, (v) => v.toFixed(1), true),
        row('cached hits/s (one URL, c=16)', a.cachedPerSecond, b.cachedPerSecond, (v) => v.toFixed(0), true),
      ],
    );
  } finally {
    stopSwift?.();
    stopPostgres?.();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
