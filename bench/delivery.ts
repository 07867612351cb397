/**
 * Delivery figures for `npm run bench`, each measured against a baseline in the same run:
 *  (a) cold renders/s of photo-4000w.jpg at widths that defeat every cache, against raw sharp doing the
 *      same resize + encode in-process at the same concurrency;
 *  (b) cached hits/s for one URL, against a minimal node:http server returning the same bytes from memory;
 *  (c) peak RSS of a server process while 64 cold requests for the 13 MP photo arrive at once, with the
 *      count of 200s and 503s (the render queue refuses what it cannot hold instead of growing).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { Agent, request } from 'undici';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { spawnServer } from '../test/helpers/child-server.js';
import { kb, ms, percentile, printTable, ratio, runLoad } from './lib.js';

const SOURCE = path.resolve(import.meta.dirname, '../test/fixtures/images/photo-4000w.jpg');
const ACCOUNT_ID = 'be0cbe0cbe0cbe0cbe0cbe0cbe0cbe0c';
const TOKEN = 'bench-delivery-token';
const ACCEPT = 'image/webp,*/*';

export interface DeliveryBenchOptions {
  seconds: number;
  concurrency: number;
}

interface Throughput {
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

/** Runs `task(i)` from `concurrency` workers for `seconds`, counting completions. */
async function closedLoop(concurrency: number, seconds: number, task: (i: number) => Promise<boolean>): Promise<Throughput> {
  let next = 0;
  let done = 0;
  let errors = 0;
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        const ok = await task(next++);
        if (ok) {
          done += 1;
          latencies.push(performance.now() - t0);
        } else errors += 1;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { perSecond: done / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors };
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
  const child = await spawnServer({ dataDir, accountId: ACCOUNT_ID, token: TOKEN, env: { MALLOC_ARENA_MAX: '2' } });
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

export async function benchDelivery(options: DeliveryBenchOptions): Promise<void> {
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
  const agent = new Agent({ connections: 128, keepAliveTimeout: 30_000 });
  try {
    const { publicUrl, imageBase } = await uploadPhoto(server.url, original);

    const get = async (url: string): Promise<{ status: number; bytes: Buffer }> => {
      const response = await request(url, { dispatcher: agent, headers: { accept: ACCEPT } });
      return { status: response.statusCode, bytes: Buffer.from(await response.body.arrayBuffer()) };
    };

    // (a) Cold renders: every request asks for a width never asked before, so no cache can answer.
    let width = 700;
    const pictorCold = await closedLoop(options.concurrency, options.seconds, async () => {
      width += 1;
      return (await get(`${imageBase}/w=${width},fit=scale-down`)).status === 200;
    });
    let rawWidth = 700;
    const sharpCold = await closedLoop(options.concurrency, options.seconds, async () => {
      rawWidth += 1;
      await sharp(original, { autoOrient: true }).resize({ width: rawWidth }).webp({ quality: 85 }).toBuffer();
      return true;
    });

    // (b) Cached hits of one URL against a server that only returns bytes from memory.
    const hit = await get(publicUrl);
    const minimal = await minimalServer(hit.bytes, 'image/webp');
    const loadOptions = { concurrency: 16, durationMs: options.seconds * 1000, warmupMs: 1000 };
    const pictorHits = await runLoad({ method: 'GET', url: publicUrl, headers: { accept: ACCEPT } }, loadOptions);
    const minimalHits = await runLoad({ method: 'GET', url: minimal.url, headers: {} }, loadOptions);
    minimal.close();

    const perSecond = (result: { ok: number; elapsedMs: number }): number => result.ok / (result.elapsedMs / 1000);
    console.log(`\nDelivery (photo-4000w.jpg, 4000x3266, WebP output, concurrency ${options.concurrency} for renders)`);
    printTable(
      ['measure', 'Pictor', 'baseline', 'ratio', 'target', 'Pictor p50 / p99 ms'],
      [
        [
          '(a) cold renders/s, new width each',
          pictorCold.perSecond.toFixed(1),
          `${sharpCold.perSecond.toFixed(1)} (raw sharp in-process)`,
          ratio(pictorCold.perSecond / sharpCold.perSecond),
          '≥ 0.90×',
          `${ms(pictorCold.p50)} / ${ms(pictorCold.p99)}`,
        ],
        [
          '(b) cached hits/s, one URL (c=16)',
          perSecond(pictorHits).toFixed(0),
          `${perSecond(minimalHits).toFixed(0)} (node:http from memory)`,
          ratio(perSecond(pictorHits) / perSecond(minimalHits)),
          '≥ 0.70×',
          `${ms(percentile(pictorHits.latenciesMs, 50))} / ${ms(percentile(pictorHits.latenciesMs, 99))}`,
        ],
      ],
    );
    const burst = await burstInChild(original);
    const count = (status: number): number => burst.statuses.filter((s) => s === status).length;
    console.log(
      `  (c) 64 concurrent cold renders of the 13 MP photo, server in its own process: ${count(200)} × 200, ` +
        `${count(503)} × 503, other ${64 - count(200) - count(503)}; server RSS ${kb(burst.rssBefore)} before, ` +
        `peak ${kb(burst.rssPeak)} (target < 1 GB)`,
    );
    if (pictorCold.errors + pictorHits.errors > 0) {
      console.log(`  errors: cold ${pictorCold.errors}, hits ${pictorHits.errors} ${pictorHits.firstError ?? ''}`);
    }
  } finally {
    await agent.close();
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

