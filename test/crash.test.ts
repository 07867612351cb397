/**
 * Crash safety of uploads. A real `pictor serve` process takes ~40 concurrent uploads and is killed
 * with SIGKILL while they are in flight; a new process is started on the same data dir. Every upload
 * the client saw acknowledged (200) must be fully readable; every other one must be either absent or
 * fully readable, never half visible; stats and the v2 list must agree; no temp file may survive.
 * This repeats at three kill moments, on one data dir, so earlier rounds are re-checked after later crashes.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { taggedImage } from './helpers/tagged-image.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildServer, killAllChildServers, spawnServer } from './helpers/child-server.js';
import { fixture, randomAccountId, tempDir } from './helpers/server.js';

const UPLOADS_PER_ROUND = 40;
/** Kill when this many uploads of the round have been acknowledged: early, middle and late. */
const KILL_AFTER_ACKS = [1, 10, 25];

/** Accepted JPEGs and PNGs of various sizes (81 KB to 1 MB; the big ones keep the server busy longer). */
const FIXTURES = [
  'Landscape_1.jpg',
  'with-alpha.png',
  'photo-4000w.jpg',
  'Landscape_2.jpg',
  'tbgn2c16.png',
  '320x240.jpg',
  'Landscape_3.jpg',
  '16-bit-grey-alpha.png',
  '2569067123_aca715a2ee_o.jpg',
  'Landscape_4.jpg',
  'p3.png',
  'Landscape_5.jpg',
  'Channel_digital_image_CMYK_color.jpg',
  'prophoto.png',
  'Landscape_6.jpg',
  'full-transparent.png',
  'Landscape_7.jpg',
  'Landscape_8.jpg',
];

interface ImageBody {
  id: string;
  filename: string;
  meta: Record<string, unknown>;
}

interface Envelope<T> {
  success: boolean;
  errors: Array<{ code: number; message: string }>;
  result: T | null;
}

type Outcome =
  | { kind: 'pending' }
  /** A complete 200 response with the image: the upload must survive. */
  | { kind: 'acknowledged' }
  /** A complete non-200 response: never expected here. */
  | { kind: 'refused'; status: number; body: string }
  /** The connection died before a complete response: the upload may or may not have happened. */
  | { kind: 'unknown'; error: string };

interface SentUpload {
  round: number;
  id: string;
  fixture: string;
  filename: string;
  bytes: Buffer;
  meta: Record<string, unknown>;
  outcome: Outcome;
  /** For unacknowledged uploads: whether the first restart showed it. It must stay that way. */
  visible?: boolean;
}

const dataDir = tempDir('pictor-crash-');
const accountId = randomAccountId();
const token = `crash-token-${randomBytes(8).toString('hex')}`;
const auth = { authorization: `Bearer ${token}` };
const sent: SentUpload[] = [];
let server: ChildServer;

const imagesUrl = (): string => `${server.url}/client/v4/accounts/${accountId}/images`;
const imagePath = (id: string): string => id.split('/').map(encodeURIComponent).join('/');

async function getJson<T>(url: string): Promise<{ status: number; body: Envelope<T> }> {
  const response = await fetch(url, { headers: auth });
  const text = await response.text();
  let body: Envelope<T>;
  try {
    body = JSON.parse(text) as Envelope<T>;
  } catch {
    throw new Error(`GET ${url}: ${response.status}, not JSON: ${text.slice(0, 200)}`);
  }
  return { status: response.status, body };
}

/** Runs `work` over `items` with at most `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

function makeRound(round: number): SentUpload[] {
  return Array.from({ length: UPLOADS_PER_ROUND }, (_, index) => {
    const name = FIXTURES[(index + round * 7) % FIXTURES.length] as string;
    const nonce = randomBytes(6).toString('hex');
    const id = `crash/r${round}/${String(index).padStart(2, '0')}-${nonce}`;
    return {
      round,
      id,
      fixture: name,
      filename: `r${round}-${index}-${name}`,
      bytes: taggedImage(fixture(name), `pictor crash test ${id}`),
      meta: { round, index, fixture: name, nonce, nested: { ok: index % 2 === 0 } },
      outcome: { kind: 'pending' },
    };
  });
}

async function sendUpload(upload: SentUpload, url: string): Promise<void> {
  const form = new FormData();
  form.append('file', new Blob([upload.bytes]), upload.filename);
  form.append('id', upload.id);
  form.append('metadata', JSON.stringify(upload.meta));
  try {
    const response = await fetch(`${url}/v1`, { method: 'POST', body: form, headers: auth });
    const text = await response.text();
    let ok = false;
    try {
      const body = JSON.parse(text) as Envelope<ImageBody>;
      ok = response.status === 200 && body.success && body.result?.id === upload.id;
    } catch {
      ok = false;
    }
    upload.outcome = ok ? { kind: 'acknowledged' } : { kind: 'refused', status: response.status, body: text.slice(0, 300) };
  } catch (error) {
    upload.outcome = { kind: 'unknown', error: error instanceof Error ? error.message : String(error) };
  }
}

/** Checks one upload against the restarted server; returns whether it is visible. */
async function checkUpload(upload: SentUpload): Promise<boolean> {
  const where = `${upload.id} (${upload.fixture}, ${upload.outcome.kind})`;
  const { status, body } = await getJson<ImageBody>(`${imagesUrl()}/v1/${imagePath(upload.id)}`);
  if (upload.outcome.kind === 'acknowledged') expect(status, `acknowledged upload lost: ${where}`).toBe(200);
  if (status === 404) {
    expect(body.errors[0]?.code, where).toBe(5404);
    return false;
  }
  expect(status, `${where}: ${JSON.stringify(body)}`).toBe(200);
  expect(body.result?.id, where).toBe(upload.id);
  expect(body.result?.filename, where).toBe(upload.filename);
  expect(body.result?.meta, where).toEqual(upload.meta);

  const blob = await fetch(`${imagesUrl()}/v1/${imagePath(upload.id)}/blob`, { headers: auth });
  const bytes = Buffer.from(await blob.arrayBuffer());
  expect(blob.status, `${where}: blob ${bytes.toString('utf8', 0, 200)}`).toBe(200);
  expect(bytes.length, `${where}: blob length`).toBe(upload.bytes.length);
  expect(bytes.equals(upload.bytes), `${where}: blob bytes differ`).toBe(true);
  return true;
}

async function listAllV2(): Promise<string[]> {
  const ids: string[] = [];
  let token: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const query: string = `per_page=7${token ? `&continuation_token=${encodeURIComponent(token)}` : ''}`;
    const { status, body } = await getJson<{ images: ImageBody[]; continuation_token: string | null }>(
      `${imagesUrl()}/v2?${query}`,
    );
    expect(status, JSON.stringify(body)).toBe(200);
    ids.push(...(body.result?.images ?? []).map((image) => image.id));
    token = body.result?.continuation_token ?? null;
    if (!token) return ids;
  }
  throw new Error('v2 list did not end');
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
}

beforeAll(async () => {
  server = await spawnServer({ dataDir, accountId, token });
});

afterAll(async () => {
  await killAllChildServers();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('SIGKILL during concurrent uploads', () => {
  KILL_AFTER_ACKS.forEach((killAfter, round) => {
    it(`round ${round + 1}: kill -9 after ${killAfter} acknowledged uploads, restart, nothing half visible`, async () => {
      const batch = makeRound(round + 1);
      sent.push(...batch);
      const victim = server;
      const url = imagesUrl();
      let acknowledged = 0;
      let killedAt = -1;
      const started = performance.now();
      await Promise.all(
        batch.map(async (upload) => {
          await sendUpload(upload, url);
          if (upload.outcome.kind !== 'acknowledged') return;
          acknowledged += 1;
          if (acknowledged === killAfter) {
            victim.child.kill('SIGKILL');
            killedAt = performance.now() - started;
          }
        }),
      );
      const exit = await victim.exited;
      expect(exit.signal, victim.output()).toBe('SIGKILL');

      const outcomes = batch.map((u) => u.outcome);
      const refused = outcomes.filter((o) => o.kind === 'refused');
      expect(refused, 'uploads refused with a complete error response').toEqual([]);
      const acked = batch.filter((u) => u.outcome.kind === 'acknowledged');
      const unknown = batch.filter((u) => u.outcome.kind === 'unknown');
      expect(acked.length).toBeGreaterThanOrEqual(killAfter);
      // The kill must have landed while uploads were still in flight, or the round proves nothing.
      expect(unknown.length, 'every upload finished before the kill').toBeGreaterThan(0);
      const tmpBefore = filesUnder(path.join(dataDir, 'originals', 'tmp')).length;

      server = await spawnServer({ dataDir, accountId, token });
      expect(filesUnder(path.join(dataDir, 'originals', 'tmp')), 'temp files survived the restart').toEqual([]);

      // Every upload of every round so far: acknowledged ones readable, others all-or-nothing and stable.
      const visible = new Set<string>();
      await eachLimited(sent, 8, async (upload) => {
        const isVisible = await checkUpload(upload);
        if (isVisible) visible.add(upload.id);
        if (upload.outcome.kind === 'acknowledged') return;
        if (upload.visible === undefined) upload.visible = isVisible;
        else expect(isVisible, `${upload.id} changed visibility across restarts`).toBe(upload.visible);
      });

      const listed = await listAllV2();
      expect(new Set(listed).size, 'v2 list repeats ids').toBe(listed.length);
      expect([...listed].sort()).toEqual([...visible].sort());
      const stats = await getJson<{ count: { current: number; allowed: number } }>(`${imagesUrl()}/v1/stats`);
      expect(stats.status).toBe(200);
      expect(stats.body.result?.count.current).toBe(listed.length);

      const roundVisible = unknown.filter((u) => u.visible).length;
      const blobFiles = filesUnder(path.join(dataDir, 'originals', 'blobs')).length;
      console.log(
        `round ${round + 1}: killed ${killedAt.toFixed(0)} ms after firing ${UPLOADS_PER_ROUND} uploads; ` +
          `${acked.length} acknowledged, ${unknown.length} cut off (${roundVisible} of them committed); ` +
          `${tmpBefore} temp file(s) left by the crash; ${listed.length} images listed, ${blobFiles} blob files on disk`,
      );
    });
  });
});
