/**
 * The cold-render baseline, run as its own process so its allocator can differ (MALLOC_ARENA_MAX and
 * LD_PRELOAD act at process start): the resize and encode Pictor does for `/w=<width>` of a JPEG, done
 * by sharp in-process with no HTTP, pool or cache, by RAW_CONCURRENCY pipelines of RAW_THREADS libvips
 * threads each, for RAW_SECONDS. Prints one JSON line: renders per second, p50/p99 ms.
 *
 * The encoder settings are Pictor's defaults for that request (JPEG quality 85, progressive between 50
 * and 3000 px, EXIF orientation applied), so the ratio measures the server, not a different encode.
 */
import fs from 'node:fs';
import sharp from 'sharp';

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  return raw !== undefined && /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : fallback;
}

const source = fs.readFileSync(process.env.RAW_SOURCE ?? '');
const threads = envNumber('RAW_THREADS', 1);
const concurrency = envNumber('RAW_CONCURRENCY', 2);
const seconds = envNumber('RAW_SECONDS', 5);
const firstWidth = envNumber('RAW_FIRST_WIDTH', 700);
const widthSpan = envNumber('RAW_WIDTH_SPAN', 300);
let rendered = 0;

sharp.concurrency(threads);

async function renderOnce(): Promise<void> {
  const width = firstWidth + (rendered++ % widthSpan);
  // A fresh copy, as the server reads the original from its store for every render: libvips' operation
  // cache must not hand the baseline a decode it already did.
  await sharp(Buffer.from(source), { autoOrient: true, failOn: 'none' }).resize({ width }).jpeg({ quality: 85, progressive: true }).toBuffer();
}

// One warm-up render per pipeline, as the server has rendered before it is measured.
await Promise.all(Array.from({ length: concurrency }, renderOnce));

const latencies: number[] = [];
const started = performance.now();
const deadline = started + seconds * 1000;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await renderOnce();
      latencies.push(performance.now() - t0);
    }
  }),
);
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const at = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
process.stdout.write(`${JSON.stringify({ perSecond: latencies.length / elapsed, p50: at(50), p99: at(99) })}\n`);
