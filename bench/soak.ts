/**
 * (g) Soak: `npm run bench -- soak`. Mixed traffic at fixed arrival rates (open loop: a request is sent
 * when it is due, whether or not earlier ones have been answered, so a slow server meets a growing
 * queue instead of a politely waiting client) against a `pictor serve` process of its own, for
 * BENCH_SOAK_SECONDS (default 300). The figures: no errors, p50/p99 per kind of request, and the
 * server's resident memory sampled every second, whose growth after warm-up should stay under 10%.
 * Warm-up is the pre-fill of the server's bounded caches (see `PREFILL_FACTOR`; BENCH_SOAK_PREFILL=0 skips
 * it) and then the first 20% of the run; growth from the run's start, with no warm-up share, is printed too.
 * BENCH_SOAK_MALLOC=jemalloc runs the server with jemalloc preloaded instead of glibc malloc.
 *
 * Kinds: uploads (POST /images/v1), direct uploads (mint a URL, then POST the file to it), cold
 * deliveries (a flexible-variant width never asked before), cached deliveries (a URL already served),
 * v1 pages and a v2 continuation-token walk. BENCH_SOAK_SCALE multiplies every rate; PICTOR_* variables
 * in the bench's environment are passed to the server. When the server serves /metrics, the V8 heap,
 * Buffers and libvips memory are shown beside the RSS, so growth can be told from caches filling.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
// Spawns the real CLI in a child process; node built-ins only (nothing from vitest).
import { type ChildServer, spawnServer } from '../test/helpers/child-server.js';
import { jemallocPath } from './cold-renders.js';
import { ms, multipartBody, percentile, printTable } from './lib.js';

const FIXTURES = path.resolve(import.meta.dirname, '../test/fixtures/images');
const ACCOUNT_ID = '50a450a450a450a450a450a450a450a4';
const TOKEN = 'bench-soak-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
/** What Chrome sends for images: AVIF is negotiated for outputs up to 1200 px, as for real visitors. */
const BROWSER_ACCEPT = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';

/** Requests per second of each kind at BENCH_SOAK_SCALE=1 (about 30/s in all). */
const RATES = {
  upload: 3,
  'direct upload': 1,
  'cold delivery': 3,
  'cached delivery': 20,
  'v1 list': 1,
  'v2 list': 1,
} as const;
type Arrival = keyof typeof RATES;
/** What is timed: a direct upload is two requests, timed apart. */
type Timed = Exclude<Arrival, 'direct upload'> | 'direct-upload mint' | 'direct-upload POST';
const TIMED: Timed[] = ['upload', 'direct-upload mint', 'direct-upload POST', 'cold delivery', 'cached delivery', 'v1 list', 'v2 list'];

/** Uploaded files, with their widths (a cold width must be below the source's, or scale-down would serve the same render). */
const UPLOAD_FIXTURES: Array<{ name: string; width: number }> = [
  { name: 'Landscape_1.jpg', width: 600 },
  { name: 'Landscape_2.jpg', width: 600 },
  { name: 'Landscape_3.jpg', width: 600 },
  { name: 'Landscape_4.jpg', width: 600 },
  { name: 'Landscape_5.jpg', width: 450 },
  { name: 'Landscape_6.jpg', width: 450 },
  { name: 'Landscape_7.jpg', width: 450 },
  { name: 'Landscape_8.jpg', width: 450 },
  { name: '4.webp', width: 1024 },
  { name: 'Channel_digital_image_CMYK_color.jpg', width: 500 },
  { name: 'landscape.avif', width: 600 },
];
/** Every this many uploads, a large photo (13 MP or 6 MP) instead: the decodes that make memory peak. */
const LARGE_EVERY = 25;
const LARGE_FIXTURES: Array<{ name: string; width: number }> = [
  { name: 'photo-4000w.jpg', width: 4000 },
  { name: '2569067123_aca715a2ee_o.jpg', width: 2725 },
];
const MIN_COLD_WIDTH = 32;
const MAX_COLD_WIDTH = 1200;
/** Share of the run after which memory should have settled (caches warm, pools grown). */
const WARM_UP_SHARE = 0.2;
/** Samples averaged on each side of a reported RSS point, so one GC cycle does not decide the figure. */
const RSS_SMOOTHING_SAMPLES = 5;
/** Requests waiting for an answer beyond which the client stops sending (the server is not keeping up). */
const MAX_OUTSTANDING = 1000;
/**
 * Where the resident memory is, from the server's Prometheus metrics when it serves them (GET /metrics
 * without a token): V8's heap, memory V8 accounts outside it (Buffers), and what libvips tracks.
 */
const MEMORY_METRICS = {
  'V8 heap used': 'pictor_nodejs_heap_size_used_bytes',
  'V8 heap total': 'pictor_nodejs_heap_size_total_bytes',
  'external (Buffers)': 'pictor_nodejs_external_memory_bytes',
  libvips: 'pictor_vips_memory_bytes',
} as const;
type MemoryPart = keyof typeof MEMORY_METRICS;
const METRICS_EVERY_MS = 10_000;
/**
 * Pre-fill (BENCH_SOAK_PREFILL, on unless `0`): before the measured run, the server's bounded caches are
 * filled, so that what the run reports as growth is not a cache filling up to its limit. The memory LRU
 * of renditions (PICTOR_MEMORY_CACHE_BYTES, 64 MB by default) is the one that matters: at the soak's
 * rates cold deliveries add about 8 MB of renditions a minute, so a 5-minute run would otherwise end with
 * it still filling (+30-40 MB of resident memory that is cache, not growth). Requests are sent in the
 * soak's mix of the kinds that fill caches (uploads 3 : direct uploads 1 : cold deliveries 3, a large
 * photo every 25th upload), back to back by BENCH_SOAK_PREFILL_CONCURRENCY clients (1), until the cold
 * renditions received add up to PREFILL_FACTOR times the memory cache's limit: the LRU also holds masters,
 * so it is then full and evicting. With BENCH_SOAK_PREFILL=0 the run starts after set-up, as before.
 */
const PREFILL_FACTOR = 1.25;
/** The pre-fill stops here whether or not the caches are full (and says so). */
const PREFILL_MAX_MS = 15 * 60_000;
const PREFILL_CYCLE: readonly Arrival[] = ['upload', 'cold delivery', 'upload', 'cold delivery', 'direct upload', 'upload', 'cold delivery'];
/** The server's default PICTOR_MEMORY_CACHE_BYTES (src/config.ts). */
const DEFAULT_MEMORY_CACHE_BYTES = 64 * 1024 ** 2;

function prefillFromEnvironment(settings: Record<string, string>): { targetBytes: number; concurrency: number } | undefined {
  if (process.env.BENCH_SOAK_PREFILL === '0') return undefined;
  const cacheBytes = Number(settings.PICTOR_MEMORY_CACHE_BYTES ?? DEFAULT_MEMORY_CACHE_BYTES);
  const concurrency = Number(process.env.BENCH_SOAK_PREFILL_CONCURRENCY ?? 1);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('BENCH_SOAK_PREFILL_CONCURRENCY must be a positive integer');
  return { targetBytes: cacheBytes * PREFILL_FACTOR, concurrency };
}

interface StoredImage {
  /** `<public url>/<hash>/<id>` without the variant. */
  deliveryBase: string;
  width: number;
}

interface Tally {
  latencies: Record<Timed, number[]>;
  errors: Map<string, number>;
  /** Largest delay between when a request was due and when it was sent (load-generator health). */
  maxSendLagMs: number;
}

function emptyLatencies(): Record<Timed, number[]> {
  const latencies = {} as Record<Timed, number[]>;
  for (const kind of TIMED) latencies[kind] = [];
  return latencies;
}

interface RssSample {
  atMs: number;
  kb: number;
}

function readStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
}

/** User + system CPU time of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of /proc/<pid>/stat (utime, stime), counted from the state field (3).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;

/** Mean of the samples within `RSS_SMOOTHING_SAMPLES` of the one nearest to `atMs`. */
function smoothedRss(samples: RssSample[], atMs: number): number {
  let nearest = 0;
  samples.forEach((sample, index) => {
    if (Math.abs(sample.atMs - atMs) < Math.abs((samples[nearest]?.atMs ?? 0) - atMs)) nearest = index;
  });
  const window = samples.slice(Math.max(0, nearest - RSS_SMOOTHING_SAMPLES), nearest + RSS_SMOOTHING_SAMPLES + 1);
  return window.reduce((sum, sample) => sum + sample.kb, 0) / window.length;
}

/** Least-squares slope of RSS over time, in MB per minute. */
function slopeMbPerMinute(samples: RssSample[]): number {
  const n = samples.length;
  if (n < 2) return Number.NaN;
  const meanT = samples.reduce((s, x) => s + x.atMs, 0) / n;
  const meanR = samples.reduce((s, x) => s + x.kb, 0) / n;
  let covariance = 0;
  let variance = 0;
  for (const sample of samples) {
    covariance += (sample.atMs - meanT) * (sample.kb - meanR);
    variance += (sample.atMs - meanT) ** 2;
  }
  return (covariance / variance / 1024) * 60_000;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

/** Set by the harness for every server: not taken from the bench's environment. */
const HARNESS_VARIABLES = new Set(['PICTOR_DATA_DIR', 'PICTOR_BOOTSTRAP_ACCOUNT_ID', 'PICTOR_BOOTSTRAP_TOKEN']);

/**
 * PICTOR_* settings in the bench's environment, for the soaked server (the child-process helper passes
 * none of the outer ones on): `PICTOR_MEMORY_CACHE_BYTES=8388608 npm run bench -- soak`.
 */
function serverSettingsFromEnvironment(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] => entry[0].startsWith('PICTOR_') && !HARNESS_VARIABLES.has(entry[0]) && entry[1] !== undefined,
    ),
  );
}

/**
 * The server's malloc, from BENCH_SOAK_MALLOC: `glibc` (the default: glibc with MALLOC_ARENA_MAX=2, as
 * `npm start` runs it) or `jemalloc` (preloaded into the server process only, as `PICTOR_MALLOC=jemalloc
 * npm start` does). Other MALLOC_* / MALLOC_CONF variables in the bench's environment reach the server
 * unchanged.
 */
function allocatorFromEnvironment(): { label: string; env: Record<string, string> } {
  const choice = process.env.BENCH_SOAK_MALLOC ?? 'glibc';
  if (choice === 'glibc') return { label: 'glibc malloc, MALLOC_ARENA_MAX=2 (as npm start)', env: { MALLOC_ARENA_MAX: '2' } };
  if (choice === 'jemalloc') {
    const jemalloc = jemallocPath();
    if (!jemalloc) throw new Error('BENCH_SOAK_MALLOC=jemalloc: libjemalloc.so.2 is not installed (apt-get install libjemalloc2)');
    const conf = process.env.MALLOC_CONF;
    return { label: `jemalloc (LD_PRELOAD=${jemalloc}${conf ? ` MALLOC_CONF=${conf}` : ''})`, env: { LD_PRELOAD: jemalloc } };
  }
  throw new Error(`BENCH_SOAK_MALLOC must be glibc or jemalloc, not ${choice}`);
}

interface MemoryBreakdown {
  atMs: number;
  bytes: Partial<Record<MemoryPart, number>>;
}

/** The memory metrics the server exposes, or undefined if it has no (open) /metrics. */
async function scrapeMemory(serverUrl: string, agent: Agent, atMs: number): Promise<MemoryBreakdown | undefined> {
  try {
    const response = await request(`${serverUrl}/metrics`, { dispatcher: agent });
    const text = await response.body.text();
    if (response.statusCode !== 200) return undefined;
    const bytes: MemoryBreakdown['bytes'] = {};
    for (const [part, metric] of Object.entries(MEMORY_METRICS) as Array<[MemoryPart, string]>) {
      const value = new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1];
      if (value !== undefined) bytes[part] = Number(value);
    }
    return Object.keys(bytes).length > 0 ? { atMs, bytes } : undefined;
  } catch {
    return undefined;
  }
}

/** The scrape nearest to `atMs`. */
function nearestBreakdown(series: MemoryBreakdown[], atMs: number): MemoryBreakdown | undefined {
  let best: MemoryBreakdown | undefined;
  for (const entry of series) if (!best || Math.abs(entry.atMs - atMs) < Math.abs(best.atMs - atMs)) best = entry;
  return best;
}

export async function benchSoak(seconds: number, scale = 1): Promise<void> {
  const rateText = Object.entries(RATES)
    .map(([kind, rate]) => `${kind} ${rate * scale}/s`)
    .join(', ');
  console.log(
    `\n(g) Soak: ${seconds} s of mixed traffic at fixed arrival rates (open loop), server in its own process` +
      `${process.env.BENCH_SOAK_PREFILL === '0' ? '' : ', after a pre-fill of its caches'}`,
  );
  console.log(`  rates: ${rateText}`);
  const settings = serverSettingsFromEnvironment();
  if (Object.keys(settings).length > 0) {
    console.log(`  server settings from the environment: ${Object.entries(settings).map(([name, value]) => `${name}=${value}`).join(' ')}`);
  }
  const allocator = allocatorFromEnvironment();
  const prefill = prefillFromEnvironment(settings);
  console.log(`  server allocator: ${allocator.label}`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pictor-bench-soak-'));
  const child: ChildServer = await spawnServer({
    dataDir,
    accountId: ACCOUNT_ID,
    token: TOKEN,
    // Info logging (a line per request) as in production by default.
    env: { ...allocator.env, PICTOR_LOG_LEVEL: 'info', ...settings },
  });
  const jemallocMapped = fs.readFileSync(`/proc/${child.pid}/maps`, 'utf8').includes('libjemalloc');
  console.log(`  jemalloc mapped in the server process: ${jemallocMapped ? 'yes' : 'no'}`);
  const startRssKb = readStatus(child.pid, 'VmRSS');
  const api = `${child.url}/client/v4/accounts/${ACCOUNT_ID}/images`;
  const agent = new Agent({ connections: 64, keepAliveTimeout: 30_000 });
  const bodies = new Map<string, { body: Buffer; contentType: string }>();
  for (const { name } of [...UPLOAD_FIXTURES, ...LARGE_FIXTURES]) {
    bodies.set(name, multipartBody(fs.readFileSync(path.join(FIXTURES, name)), name, 'application/octet-stream'));
  }

  const images: StoredImage[] = [];
  const usedWidths = new Map<string, Set<number>>();
  const cachedUrls: string[] = [];
  const tally: Tally = { latencies: emptyLatencies(), errors: new Map(), maxSendLagMs: 0 };
  const countError = (kind: Timed, reason: string): void => {
    const key = `${kind}: ${reason}`;
    tally.errors.set(key, (tally.errors.get(key) ?? 0) + 1);
  };
  let uploadsSent = 0;
  let imagesStored = 0;
  let v2Token: string | null = null;
  /** Bytes of the renditions the cold deliveries received: each one a new entry of the server's memory LRU. */
  let renderedBytes = 0;

  /** One request; its latency is counted from `dueAt` (when it should have left), so queueing shows. */
  const call = async (
    kind: Timed,
    dueAt: number,
    url: string,
    options: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: Buffer },
  ): Promise<{ ok: true; text: string; bytes: number } | { ok: false }> => {
    try {
      const response = await request(url, { dispatcher: agent, method: options.method ?? 'GET', headers: options.headers, body: options.body });
      const raw = Buffer.from(await response.body.arrayBuffer());
      const text = raw.toString('utf8');
      if (response.statusCode !== 200) {
        countError(kind, `HTTP ${response.statusCode} ${text.slice(0, 120)}`);
        return { ok: false };
      }
      tally.latencies[kind].push(performance.now() - dueAt);
      return { ok: true, text, bytes: raw.length };
    } catch (error) {
      const code = (error as { code?: string }).code;
      countError(kind, code ?? (error instanceof Error ? error.message : String(error)));
      return { ok: false };
    }
  };

  const nextUpload = (): { name: string; width: number } => {
    uploadsSent += 1;
    return uploadsSent % LARGE_EVERY === 0 ? pick(LARGE_FIXTURES) : pick(UPLOAD_FIXTURES);
  };
  const remember = (text: string, width: number): void => {
    const result = (JSON.parse(text) as { result: { variants: string[] } }).result;
    const publicUrl = result.variants[0] as string;
    images.push({ deliveryBase: publicUrl.slice(0, publicUrl.lastIndexOf('/')), width });
    imagesStored += 1;
  };

  const send: Record<Arrival, (dueAt: number) => Promise<void>> = {
    upload: async (dueAt) => {
      const file = nextUpload();
      const body = bodies.get(file.name);
      if (!body) throw new Error(`no body for ${file.name}`);
      const answer = await call('upload', dueAt, `${api}/v1`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': body.contentType },
        body: body.body,
      });
      if (answer.ok) remember(answer.text, file.width);
    },
    'direct upload': async (dueAt) => {
      const minted = await call('direct-upload mint', dueAt, `${api}/v2/direct_upload`, { method: 'POST', headers: AUTH });
      if (!minted.ok) return;
      const uploadUrl = (JSON.parse(minted.text) as { result: { uploadURL: string } }).result.uploadURL;
      const file = nextUpload();
      const body = bodies.get(file.name);
      if (!body) throw new Error(`no body for ${file.name}`);
      // The browser's POST is a second request: timed from when it leaves.
      const answer = await call('direct-upload POST', performance.now(), uploadUrl, {
        method: 'POST',
        headers: { 'content-type': body.contentType },
        body: body.body,
      });
      if (answer.ok) remember(answer.text, file.width);
    },
    'cold delivery': async (dueAt) => {
      // A width this image was never rendered at (tries a few images if one has run out of widths).
      for (let attempt = 0; attempt < 10; attempt++) {
        const image = pick(images);
        const widths = usedWidths.get(image.deliveryBase) ?? new Set<number>();
        usedWidths.set(image.deliveryBase, widths);
        const top = Math.min(MAX_COLD_WIDTH, image.width - 1);
        if (widths.size >= top - MIN_COLD_WIDTH) continue;
        let width: number;
        do width = MIN_COLD_WIDTH + Math.floor(Math.random() * (top - MIN_COLD_WIDTH));
        while (widths.has(width));
        widths.add(width);
        const url = `${image.deliveryBase}/w=${width}`;
        const answer = await call('cold delivery', dueAt, url, { headers: { accept: BROWSER_ACCEPT } });
        if (answer.ok) {
          cachedUrls.push(url);
          renderedBytes += answer.bytes;
        }
        return;
      }
      countError('cold delivery', 'no fresh width left (client)');
    },
    'cached delivery': async (dueAt) => {
      await call('cached delivery', dueAt, pick(cachedUrls), { headers: { accept: BROWSER_ACCEPT } });
    },
    'v1 list': async (dueAt) => {
      const pages = Math.max(1, Math.ceil(imagesStored / 50));
      await call('v1 list', dueAt, `${api}/v1?page=${1 + Math.floor(Math.random() * pages)}&per_page=50`, { headers: AUTH });
    },
    'v2 list': async (dueAt) => {
      const token = v2Token;
      const answer = await call('v2 list', dueAt, `${api}/v2?per_page=100${token ? `&continuation_token=${encodeURIComponent(token)}` : ''}`, {
        headers: AUTH,
      });
      if (answer.ok) v2Token = (JSON.parse(answer.text) as { result: { continuation_token: string | null } }).result.continuation_token;
    },
  };

  const rss: RssSample[] = [];
  let sampler: NodeJS.Timeout | undefined;
  let scraper: NodeJS.Timeout | undefined;
  try {
    // Set-up: flexible variants on, one image of each kind stored and its public variant rendered once.
    const settings = await request(`${api}/v1/config`, {
      dispatcher: agent,
      method: 'PATCH',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ flexible_variants: true }),
    });
    await settings.body.text();
    if (settings.statusCode !== 200) throw new Error(`enabling flexible variants: ${settings.statusCode}`);
    for (const file of UPLOAD_FIXTURES) {
      const body = bodies.get(file.name);
      if (!body) throw new Error(`no body for ${file.name}`);
      const answer = await call('upload', performance.now(), `${api}/v1`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': body.contentType },
        body: body.body,
      });
      if (!answer.ok) throw new Error(`seeding ${file.name} failed: ${[...tally.errors.keys()].join('; ')}`);
      remember(answer.text, file.width);
    }
    for (const image of images) {
      const url = `${image.deliveryBase}/public`;
      const answer = await call('cached delivery', performance.now(), url, { headers: { accept: BROWSER_ACCEPT } });
      if (!answer.ok) throw new Error(`rendering ${url} failed`);
      cachedUrls.push(url);
    }
    const seeded = imagesStored;
    tally.latencies = emptyLatencies();
    const setupRssKb = readStatus(child.pid, 'VmRSS');

    let prefillSummary = 'no pre-fill (BENCH_SOAK_PREFILL=0): the run starts right after set-up, caches empty';
    let prefillRssKb: number | undefined;
    if (prefill) {
      const prefillStarted = performance.now();
      let prefillPeakKb = readStatus(child.pid, 'VmRSS');
      const prefillSampler = setInterval(() => {
        prefillPeakKb = Math.max(prefillPeakKb, readStatus(child.pid, 'VmRSS'));
      }, 1000);
      const storedBefore = imagesStored;
      const client = async (offset: number): Promise<void> => {
        for (let step = offset; renderedBytes < prefill.targetBytes && performance.now() - prefillStarted < PREFILL_MAX_MS; step++) {
          await send[PREFILL_CYCLE[step % PREFILL_CYCLE.length] as Arrival](performance.now());
        }
      };
      try {
        await Promise.all(Array.from({ length: prefill.concurrency }, (_, index) => client(index * 3)));
      } finally {
        clearInterval(prefillSampler);
      }
      prefillRssKb = readStatus(child.pid, 'VmRSS');
      const prefillErrors = [...tally.errors.values()].reduce((sum, n) => sum + n, 0);
      const full = renderedBytes >= prefill.targetBytes;
      prefillSummary =
        `pre-fill ${((performance.now() - prefillStarted) / 1000).toFixed(0)} s (${prefill.concurrency} client(s) back to back): ` +
        `${imagesStored - storedBefore} images stored, ${mb(renderedBytes / 1024)} of cold renditions received ` +
        `(${PREFILL_FACTOR} x the memory cache's ${mb(prefill.targetBytes / PREFILL_FACTOR / 1024)}${full ? '' : ': NOT reached, caches may not be full'}), ` +
        `${prefillErrors} errors${prefillErrors > 0 ? ` (${[...tally.errors.keys()].join('; ')})` : ''}; server RSS peak ${mb(prefillPeakKb)}, at its end ${mb(prefillRssKb)}`;
      tally.errors.clear();
      tally.latencies = emptyLatencies();
    }
    console.log(`  ${prefillSummary}`);
    const runStartImages = imagesStored;

    const durationMs = seconds * 1000;
    const started = performance.now();
    const cpuAtStart = cpuSeconds(child.pid);
    const sample = (): void => {
      rss.push({ atMs: performance.now() - started, kb: readStatus(child.pid, 'VmRSS') });
    };
    sample();
    sampler = setInterval(sample, 1000);
    const breakdowns: MemoryBreakdown[] = [];
    const scrape = (): void => {
      void scrapeMemory(child.url, agent, performance.now() - started).then((breakdown) => breakdown && breakdowns.push(breakdown));
    };
    scrape();
    scraper = setInterval(scrape, METRICS_EVERY_MS);

    let outstanding = 0;
    const inFlight = new Set<Promise<void>>();
    /** Sends `kind` every 1/rate s from a phase of its own, each request without waiting for the last. */
    const arrivals = async (kind: Arrival, phaseMs: number): Promise<void> => {
      const intervalMs = 1000 / (RATES[kind] * scale);
      for (let index = 0; ; index++) {
        const dueAt = started + phaseMs + index * intervalMs;
        if (dueAt >= started + durationMs) return;
        const wait = dueAt - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        tally.maxSendLagMs = Math.max(tally.maxSendLagMs, performance.now() - dueAt);
        if (outstanding >= MAX_OUTSTANDING) {
          countError(kind === 'direct upload' ? 'direct-upload mint' : kind, `not sent: ${MAX_OUTSTANDING} requests outstanding`);
          continue;
        }
        outstanding += 1;
        const pending = send[kind](dueAt).finally(() => {
          outstanding -= 1;
          inFlight.delete(pending);
        });
        inFlight.add(pending);
      }
    };
    const kinds = Object.keys(RATES) as Arrival[];
    await Promise.all(kinds.map((kind, index) => arrivals(kind, (index * 1000) / (kinds.length * RATES[kind] * scale))));
    await Promise.all([...inFlight]);
    const elapsedMs = performance.now() - started;
    clearInterval(sampler);
    clearInterval(scraper);
    sample();
    const endBreakdown = await scrapeMemory(child.url, agent, performance.now() - started);
    if (endBreakdown) breakdowns.push(endBreakdown);
    const cpuUsed = cpuSeconds(child.pid) - cpuAtStart;
    const peakHwmKb = readStatus(child.pid, 'VmHWM');

    const stats = await request(`${api}/v1/stats`, { dispatcher: agent, headers: AUTH });
    const current = (JSON.parse(await stats.body.text()) as { result: { count: { current: number } } }).result.count.current;

    console.log(`  ran ${(elapsedMs / 1000).toFixed(1)} s; largest send delay of the load generator ${ms(tally.maxSendLagMs)} ms`);
    console.log('');
    printTable(
      ['request', 'count', 'per s', 'p50 ms', 'p99 ms', 'max ms'],
      TIMED.map((kind) => {
        const latencies = tally.latencies[kind];
        return [
          kind,
          String(latencies.length),
          (latencies.length / (elapsedMs / 1000)).toFixed(2),
          ms(percentile(latencies, 50)),
          ms(percentile(latencies, 99)),
          ms(percentile(latencies, 100)),
        ];
      }),
    );
    const errorCount = [...tally.errors.values()].reduce((sum, n) => sum + n, 0);
    console.log(`  errors: ${errorCount}${errorCount === 0 ? '' : ' (must be 0)'}`);
    for (const [reason, n] of [...tally.errors].sort((a, b) => b[1] - a[1])) console.log(`    ${n} x ${reason}`);
    console.log(
      `  check: stats count ${current} = ${seeded} seeded + ${runStartImages - seeded} stored by the pre-fill + ` +
        `${imagesStored - runStartImages} stored during the run: ${current === imagesStored ? 'yes' : 'NO'}`,
    );

    const warmUpAtMs = durationMs * WARM_UP_SHARE;
    const afterWarmUp = smoothedRss(rss, warmUpAtMs);
    const end = smoothedRss(rss, elapsedMs);
    const peak = Math.max(...rss.map((s) => s.kb));
    const growth = ((end - afterWarmUp) / afterWarmUp) * 100;
    console.log(
      `  server RSS: at start ${mb(startRssKb)} (after set-up ${mb(setupRssKb)}` +
        `${prefillRssKb === undefined ? '' : `, after pre-fill ${mb(prefillRssKb)}`}), after warm-up (${(warmUpAtMs / 1000).toFixed(0)} s of the run) ` +
        `${mb(afterWarmUp)}, peak ${mb(peak)} sampled during the run (VmHWM ${mb(peakHwmKb)}, since the server started), end ${mb(end)}`,
    );
    const halfway = smoothedRss(rss, elapsedMs / 2);
    const signed = (value: number): string => `${value >= 0 ? '+' : ''}${value.toFixed(1)}`;
    const atRunStart = smoothedRss(rss, 0);
    console.log(
      `  growth from the start of the run (${prefill ? 'caches pre-filled' : 'caches empty'}, no warm-up share): ` +
        `${mb(atRunStart)} → ${mb(end)}, ${signed(((end - atRunStart) / atRunStart) * 100)}%`,
    );
    console.log(
      `  growth after warm-up (${prefill ? 'caches pre-filled, then' : 'caches empty at the start, only'} ${WARM_UP_SHARE * 100}% of the run): ${signed(growth)}% (target < 10%); over the second half ${signed(((end - halfway) / halfway) * 100)}%; ` +
        `trend after warm-up ${signed(slopeMbPerMinute(rss.filter((s) => s.atMs >= warmUpAtMs)))} MB/min, over the second half ` +
        `${signed(slopeMbPerMinute(rss.filter((s) => s.atMs >= elapsedMs / 2)))} MB/min (each point the mean of ` +
        `${2 * RSS_SMOOTHING_SAMPLES + 1} one-second samples)`,
    );
    const timeline = Array.from({ length: 11 }, (_, tenth) => mb(smoothedRss(rss, (elapsedMs * tenth) / 10)).replace(' MB', ''));
    console.log(`  RSS every 10% of the run (MB): ${timeline.join(' ')}`);
    const atWarmUp = nearestBreakdown(breakdowns, warmUpAtMs);
    const atEnd = nearestBreakdown(breakdowns, elapsedMs);
    if (atWarmUp && atEnd) {
      const parts = (Object.keys(MEMORY_METRICS) as MemoryPart[]).filter((part) => atWarmUp.bytes[part] !== undefined);
      const shown = parts.map((part) => `${part} ${mb((atWarmUp.bytes[part] ?? 0) / 1024)} → ${mb((atEnd.bytes[part] ?? 0) / 1024)}`);
      console.log(`  from the server's /metrics, after warm-up → end: ${shown.join(', ')}`);
      for (const part of ['V8 heap used', 'external (Buffers)'] as const) {
        const series = Array.from({ length: 11 }, (_, tenth) => {
          const value = nearestBreakdown(breakdowns, (elapsedMs * tenth) / 10)?.bytes[part];
          return value === undefined ? '-' : (value / 1024 / 1024).toFixed(0);
        });
        console.log(`  ${part} every 10% of the run (MB): ${series.join(' ')}`);
      }
    }
    console.log(`  server CPU: ${((cpuUsed / (elapsedMs / 1000)) * 100).toFixed(0)}% of one core on average (${os.availableParallelism()} cores)`);
  } finally {
    if (sampler) clearInterval(sampler);
    if (scraper) clearInterval(scraper);
    await agent.close();
    const stopping = performance.now();
    await child.stop('SIGTERM');
    const exit = await child.exited;
    console.log(`  stop: SIGTERM → exit code ${exit.code} after ${ms(performance.now() - stopping)} ms`);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
