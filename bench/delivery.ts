/**
 * Delivery figures for `npm run bench`, each measured against a baseline in the same run:
 *  (a) cold renders against the best raw sharp setting of the machine (bench/cold-renders.ts), and
 *      against ipx at each side's defaults (bench/ipx.ts), each side in its own process;
 *  (b) cached hits/s for one URL, alone and while uploads (10/s) and edits (1/s) of other images of the
 *      same account run, against a minimal node:http server returning the same bytes from memory;
 *  (c) peak RSS of a server process while 64 cold requests for the 13 MP photo arrive at once, with the
 *      count of 200s and 503s (the render queue refuses what it cannot hold instead of growing).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { spawnServer } from '../test/helpers/child-server.js';
import { taggedImage } from '../test/helpers/tagged-image.js';
import { NPM_START_ENV, benchCacheWriteLatency, benchColdRenders } from './cold-renders.js';
import { benchAgainstIpx } from './ipx.js';
import { benchRemote } from './remote.js';
import { kb, ms, percentile, printTable, ratio, runLoad } from './lib.js';

const SOURCE = path.resolve(import.meta.dirname, '../test/fixtures/images/photo-4000w.jpg');
const ACCOUNT_ID = 'be0cbe0cbe0cbe0cbe0cbe0cbe0cbe0c';
const TOKEN = 'bench-delivery-token';
const ACCEPT = 'image/webp,*/*';

export interface DeliveryBenchOptions {
  seconds: number;
  concurrency: number;
}

async function minimalServer(bytes: Buffer, contentType: string): Promise<{ url: string; close(): void }> {
  const server = http.createServer((_request, response) => {
    response.writeHead(200, { 'content-type': contentType, 'content-length': bytes.length });
    response.end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/image`, close: () => server.close() };
}

/** Enables flexible variants and uploads the photo; returns its `public` URL and the URL without the variant. */
async function uploadPhoto(serverUrl: string, original: Buffer): Promise<{ publicUrl: string; imageBase: string }> {
  const api = `${serverUrl}/client/v4/accounts/${ACCOUNT_ID}/images`;
  const auth = { authorization: `Bearer ${TOKEN}` };
  await fetch(`${api}/v1/config`, {
    method: 'PATCH',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ flexible_variants: true }),
  });
  const form = new FormData();
  form.append('file', new File([original], 'photo-4000w.jpg', { type: 'image/jpeg' }));
  const uploaded = (await (await fetch(`${api}/v1`, { method: 'POST', body: form, headers: auth })).json()) as {
    result: { variants: string[] };
  };
  const publicUrl = uploaded.result.variants[0] as string;
  return { publicUrl, imageBase: publicUrl.slice(0, publicUrl.lastIndexOf('/')) };
}

/** Peak resident memory of a process (VmHWM), bytes. */
function peakRss(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kib ?? 0) * 1024;
}

/**
 * (c) Runs `pictor serve` in its own process (so its memory is measured alone), uploads the photo and
 * sends 64 cold requests for it at once.
 */
async function burstInChild(original: Buffer): Promise<{ statuses: number[]; rssBefore: number; rssPeak: number }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pictor-bench-burst-'));
  // As `npm start` runs it: fewer glibc malloc arenas keep libvips' memory from fragmenting.
  const child = await spawnServer({ dataDir, accountId: ACCOUNT_ID, token: TOKEN, env: NPM_START_ENV });
  const agent = new Agent({ connections: 64 });
  try {
    const { imageBase } = await uploadPhoto(child.url, original);
    const rssBefore = peakRss(child.pid);
    const statuses = await Promise.all(
      Array.from({ length: 64 }, async (_unused, i) => {
        const response = await request(`${imageBase}/w=${2000 + i},fit=scale-down`, { dispatcher: agent, headers: { accept: ACCEPT } });
        await response.body.arrayBuffer();
        return response.statusCode;
      }),
    );
    return { statuses, rssBefore, rssPeak: peakRss(child.pid) };
  } finally {
    await agent.close();
    await child.stop('SIGTERM');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Writes other images of the account while hits are measured: uploads of a small JPEG (each with
 * unique bytes) at `uploadsPerSecond` and metadata edits of the uploaded ones at `editsPerSecond`,
 * sent on schedule whether or not earlier ones have answered. Returns a stop function that waits
 * for what is in flight and reports how many were sent and how many failed.
 */
function writeInBackground(serverUrl: string, rates: { uploadsPerSecond: number; editsPerSecond: number }): () => Promise<{ uploads: number; edits: number; failed: number }> {
  const api = `${serverUrl}/client/v4/accounts/${ACCOUNT_ID}/images`;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const small = fs.readFileSync(path.resolve(import.meta.dirname, '../test/fixtures/images/320x240.jpg'));
  const ids: string[] = [];
  const inFlight = new Set<Promise<void>>();
  const counts = { uploads: 0, edits: 0, failed: 0 };
  const track = (work: Promise<void>): void => {
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  };
  const upload = async (): Promise<void> => {
    const form = new FormData();
    form.append('file', new File([taggedImage(small, randomBytes(8).toString('hex'))], 'w.jpg'));
    const response = await fetch(`${api}/v1`, { method: 'POST', body: form, headers: auth });
    const body = (await response.json()) as { result?: { id: string } };
    if (response.status === 200 && body.result) ids.push(body.result.id);
    else counts.failed += 1;
  };
  const edit = async (): Promise<void> => {
    const id = ids[Math.floor(Math.random() * ids.length)];
    if (id === undefined) return;
    const response = await fetch(`${api}/v1/${id}`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ metadata: { edited: Date.now() } }),
    });
    await response.arrayBuffer();
    if (response.status !== 200) counts.failed += 1;
  };
  const uploader = setInterval(() => {
    counts.uploads += 1;
    track(upload().catch(() => void (counts.failed += 1)));
  }, 1000 / rates.uploadsPerSecond);
  const editor = setInterval(() => {
    counts.edits += 1;
    track(edit().catch(() => void (counts.failed += 1)));
  }, 1000 / rates.editsPerSecond);
  return async () => {
    clearInterval(uploader);
    clearInterval(editor);
    await Promise.all([...inFlight]);
    return counts;
  };
}

export async function benchDelivery(options: DeliveryBenchOptions): Promise<void> {
  // (a) Cold renders, each side in its own process as `npm start` would run it.
  await benchColdRenders({
    seconds: options.seconds,
    concurrency: options.concurrency,
    serverEnv: NPM_START_ENV,
    serverSettingLabel: `as \`npm start\` runs it (${Object.entries(NPM_START_ENV).map(([k, v]) => `${k}=${v}`).join(' ') || 'no allocator setting'}), render pool and libvips threads at their defaults`,
  });
  await benchCacheWriteLatency({
    seconds: options.seconds,
    concurrency: options.concurrency,
    serverEnv: NPM_START_ENV,
    serverSettingLabel: '',
  });
  await benchAgainstIpx({ seconds: options.seconds, concurrency: options.concurrency, serverEnv: NPM_START_ENV });
  await benchRemote({ seconds: options.seconds, concurrency: options.concurrency, serverEnv: NPM_START_ENV });

  const original = fs.readFileSync(SOURCE);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pictor-bench-delivery-'));
  const server = await startServer(
    loadConfig({
      HOST: '127.0.0.1',
      PORT: '0',
      PICTOR_DATA_DIR: dataDir,
      PICTOR_LOG_LEVEL: 'silent',
      PICTOR_BOOTSTRAP_ACCOUNT_ID: ACCOUNT_ID,
      PICTOR_BOOTSTRAP_TOKEN: TOKEN,
    }),
  );
  const agent = new Agent({ connections: 16, keepAliveTimeout: 30_000 });
  try {
    const { publicUrl } = await uploadPhoto(server.url, original);
    const response = await request(publicUrl, { dispatcher: agent, headers: { accept: ACCEPT } });
    const hit = Buffer.from(await response.body.arrayBuffer());

    // (b) Cached hits of one URL against a server that only returns bytes from memory, then the same
    // while other images of the account are uploaded and edited.
    const minimal = await minimalServer(hit, 'image/webp');
    const loadOptions = { concurrency: 16, durationMs: options.seconds * 1000, warmupMs: 1000 };
    const perSecond = (result: { ok: number; elapsedMs: number }): number => result.ok / (result.elapsedMs / 1000);
    const pictorHits = await runLoad({ method: 'GET', url: publicUrl, headers: { accept: ACCEPT } }, loadOptions);
    const minimalHits = await runLoad({ method: 'GET', url: minimal.url, headers: {} }, loadOptions);
    const stopWriting = writeInBackground(server.url, { uploadsPerSecond: 10, editsPerSecond: 1 });
    const hitsUnderWrites = await runLoad({ method: 'GET', url: publicUrl, headers: { accept: ACCEPT } }, loadOptions);
    const written = await stopWriting();
    const minimalAgain = await runLoad({ method: 'GET', url: minimal.url, headers: {} }, loadOptions);
    minimal.close();
    const baseline = (perSecond(minimalHits) + perSecond(minimalAgain)) / 2;

    console.log('\nCached hits of one URL (WebP), 16 at once, server in the bench process');
    const row = (label: string, result: typeof pictorHits): string[] => [
      label,
      perSecond(result).toFixed(0),
      `${baseline.toFixed(0)} (${perSecond(minimalHits).toFixed(0)} / ${perSecond(minimalAgain).toFixed(0)}) node:http from memory`,
      ratio(perSecond(result) / baseline),
      '>= 0.70x',
      `${ms(percentile(result.latenciesMs, 50))} / ${ms(percentile(result.latenciesMs, 99))}`,
    ];
    printTable(
      ['measure', 'Pictor/s', 'baseline/s (rounds)', 'ratio', 'target', 'Pictor p50 / p99 ms'],
      [row('cached hits', pictorHits), row('cached hits while 10 uploads/s + 1 edit/s', hitsUnderWrites)],
    );
    console.log(`  writes during the second row: ${written.uploads} uploads and ${written.edits} edits sent, ${written.failed} failed`);
    if (pictorHits.errors + hitsUnderWrites.errors > 0) {
      console.log(`  errors: hits ${pictorHits.errors}, under writes ${hitsUnderWrites.errors} ${hitsUnderWrites.firstError ?? pictorHits.firstError ?? ''}`);
    }
    const burst = await burstInChild(original);
    const count = (status: number): number => burst.statuses.filter((s) => s === status).length;
    console.log(
      `  (c) 64 concurrent cold renders of the 13 MP photo, server in its own process: ${count(200)} × 200, ` +
        `${count(503)} × 503, other ${64 - count(200) - count(503)}; server RSS ${kb(burst.rssBefore)} before, ` +
        `peak ${kb(burst.rssPeak)} (target < 1 GB)`,
    );
  } finally {
    await agent.close();
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
