/**
 * Graceful shutdown of a real `pictor serve` process (the sibling of crash.test.ts, with SIGTERM instead
 * of SIGKILL). On SIGTERM or SIGINT the server stops accepting connections, finishes the requests in
 * progress (an upload whose body is still arriving included), answers 503 to a new request on a
 * kept-alive connection, closes the stores and exits 0. After PICTOR_SHUTDOWN_TIMEOUT it stops waiting:
 * the connections still open are closed and it exits anyway. A restart on the same data dir then shows
 * every acknowledged upload intact and nothing of the others.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Envelope, ImageResult, StatsResult, V2ListResult } from './helpers/api.js';
import { type ChildServer, killAllChildServers, spawnServer } from './helpers/child-server.js';
import { BOUNDARY, connect, multipartFile, requestHead, sleep } from './helpers/raw-http.js';
import { fixture, randomAccountId, tempDir } from './helpers/server.js';
import { taggedImage } from './helpers/tagged-image.js';

/** Accepted JPEGs and PNGs, 0.5 KB to 1 MB; the big ones keep the server busy while it drains. */
const FIXTURES = [
  'photo-4000w.jpg',
  'Landscape_1.jpg',
  'with-alpha.png',
  '2569067123_aca715a2ee_o.jpg',
  'Landscape_2.jpg',
  'tbgn2c16.png',
  'Channel_digital_image_CMYK_color.jpg',
  '320x240.jpg',
  'Landscape_3.jpg',
  '16-bit-grey-alpha.png',
];
const UPLOADS_IN_FLIGHT = 20;
const UPLOADS_AFTER_SIGNAL = 5;
/** Connection errors a client may see from a server that has stopped accepting or closed its socket. */
const CLEAN_CONNECTION_FAILURES = ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET'];

type Outcome =
  | { kind: 'pending' }
  | { kind: 'acknowledged' }
  /** A complete answer other than 200 with the image. */
  | { kind: 'answered'; status: number; body: string }
  /** No answer: the connection failed (the code of the cause, e.g. ECONNREFUSED). */
  | { kind: 'connection failed'; code: string };

interface SentUpload {
  id: string;
  filename: string;
  bytes: Buffer;
  outcome: Outcome;
}

const dataDirs: string[] = [];

afterAll(async () => {
  await killAllChildServers();
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh data dir, account and token, and a way to (re)start a server on them. */
function installation(env: Record<string, string> = {}): {
  dataDir: string;
  accountId: string;
  token: string;
  start(): Promise<ChildServer>;
} {
  const dataDir = tempDir('pictor-shutdown-');
  dataDirs.push(dataDir);
  const accountId = randomAccountId();
  const token = `shutdown-token-${randomBytes(8).toString('hex')}`;
  return { dataDir, accountId, token, start: () => spawnServer({ dataDir, accountId, token, env }) };
}

function makeUpload(name: string, label: string): SentUpload {
  const id = `shutdown/${label}-${randomBytes(6).toString('hex')}`;
  return { id, filename: `${label}-${name}`, bytes: taggedImage(fixture(name), `pictor shutdown test ${id}`), outcome: { kind: 'pending' } };
}

function causeCode(error: unknown): string {
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  if (typeof cause?.code === 'string') return cause.code;
  return error instanceof Error ? error.message : String(error);
}

async function sendUpload(imagesUrl: string, token: string, upload: SentUpload): Promise<void> {
  const form = new FormData();
  form.append('file', new Blob([upload.bytes]), upload.filename);
  form.append('id', upload.id);
  try {
    const response = await fetch(`${imagesUrl}/v1`, { method: 'POST', body: form, headers: { authorization: `Bearer ${token}` } });
    const text = await response.text();
    let acknowledged = false;
    try {
      const body = JSON.parse(text) as Envelope<ImageResult>;
      acknowledged = response.status === 200 && body.success && body.result?.id === upload.id;
    } catch {
      acknowledged = false;
    }
    upload.outcome = acknowledged ? { kind: 'acknowledged' } : { kind: 'answered', status: response.status, body: text.slice(0, 300) };
  } catch (error) {
    upload.outcome = { kind: 'connection failed', code: causeCode(error) };
  }
}

/** Resolves once a new connection to `url` is refused: the server has closed its listening socket. */
async function listenerClosed(url: string, timeoutMs = 5000): Promise<void> {
  const { hostname, port } = new URL(url);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(Number(port), hostname);
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
    });
    if (refused) return;
    await sleep(20);
  }
  throw new Error(`${url} still accepts connections ${timeoutMs} ms after the signal`);
}

/** Every image id of the account, through v2 continuation tokens. */
async function listAll(imagesUrl: string, token: string): Promise<string[]> {
  const ids: string[] = [];
  let continuation: string | null = null;
  do {
    const query: string = `per_page=10${continuation ? `&continuation_token=${encodeURIComponent(continuation)}` : ''}`;
    const response = await fetch(`${imagesUrl}/v2?${query}`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Envelope<V2ListResult>;
    ids.push(...(body.result?.images ?? []).map((image) => image.id));
    continuation = body.result?.continuation_token ?? null;
  } while (continuation);
  return ids;
}

const imagePath = (id: string): string => id.split('/').map(encodeURIComponent).join('/');

/** After the restart: an acknowledged upload is whole (row and bytes); any other is not there at all. */
async function checkAfterRestart(imagesUrl: string, token: string, upload: SentUpload): Promise<void> {
  const auth = { authorization: `Bearer ${token}` };
  const where = `${upload.id} (${upload.outcome.kind})`;
  const image = await fetch(`${imagesUrl}/v1/${imagePath(upload.id)}`, { headers: auth });
  const body = (await image.json()) as Envelope<ImageResult>;
  if (upload.outcome.kind !== 'acknowledged') {
    expect(image.status, `an upload that got no 200 is visible: ${where}`).toBe(404);
    expect(body.errors[0]?.code, where).toBe(5404);
    return;
  }
  expect(image.status, `acknowledged upload lost: ${where} ${JSON.stringify(body)}`).toBe(200);
  expect(body.result?.filename, where).toBe(upload.filename);
  const blob = await fetch(`${imagesUrl}/v1/${imagePath(upload.id)}/blob`, { headers: auth });
  const bytes = Buffer.from(await blob.arrayBuffer());
  expect(blob.status, where).toBe(200);
  expect(bytes.length, `${where}: blob length`).toBe(upload.bytes.length);
  expect(bytes.equals(upload.bytes), `${where}: blob bytes differ`).toBe(true);
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
}

describe('graceful shutdown of pictor serve', () => {
  it('SIGTERM during 20 uploads: they finish, later requests are refused or get 503, exit 0, restart shows exactly the acknowledged ones', async () => {
    const site = installation();
    const server = await site.start();
    const imagesUrl = `${server.url}/client/v4/accounts/${site.accountId}/images`;
    const statsRequest = (headers: Record<string, string>): string =>
      requestHead('GET', `${imagesUrl}/v1/stats`, { authorization: `Bearer ${site.token}`, ...headers });

    // A kept-alive connection that has served one request before the signal.
    const keptAlive = await connect(server.url);
    await keptAlive.write(statsRequest({}));
    const first = await keptAlive.nextResponse();
    expect(first.status, first.body).toBe(200);

    // One upload whose body is still arriving after the signal (it must be finished, not cut).
    const trickled = makeUpload('Landscape_4.jpg', 'trickled');
    const trickledBody = multipartFile(trickled.bytes, trickled.filename, { id: trickled.id });
    const trickle = await connect(server.url);
    await trickle.write(
      requestHead('POST', `${imagesUrl}/v1`, {
        authorization: `Bearer ${site.token}`,
        'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
        'content-length': trickledBody.length,
      }),
    );
    const trickleSplit = Math.floor(trickledBody.length / 3);
    await trickle.write(trickledBody.subarray(0, trickleSplit));

    const inFlight = Array.from({ length: UPLOADS_IN_FLIGHT }, (_, index) =>
      makeUpload(FIXTURES[index % FIXTURES.length] as string, `in-flight-${String(index).padStart(2, '0')}`),
    );
    let signalledAt = 0;
    let firstAcknowledged: () => void = () => undefined;
    const oneAcknowledged = new Promise<void>((resolve) => (firstAcknowledged = resolve));
    const acknowledgedAfterSignal: string[] = [];
    const inFlightDone = Promise.all(
      inFlight.map(async (upload) => {
        await sendUpload(imagesUrl, site.token, upload);
        if (upload.outcome.kind !== 'acknowledged') return;
        if (signalledAt > 0) acknowledgedAfterSignal.push(upload.id);
        firstAcknowledged();
      }),
    );

    // Every request is on the server: answered already, or in progress there (the server's own count,
    // less the trickled upload and the scrape itself). Only then does the signal go.
    await oneAcknowledged;
    for (const deadline = Date.now() + 10_000; ; ) {
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      const inProgress = Number(/^pictor_http_requests_in_flight (\d+)$/m.exec(metrics)?.[1] ?? 0) - 2;
      const answered = inFlight.filter((upload) => upload.outcome.kind !== 'pending').length;
      if (inProgress + answered >= UPLOADS_IN_FLIGHT) break;
      if (Date.now() > deadline) throw new Error(`only ${inProgress} in progress and ${answered} answered of ${UPLOADS_IN_FLIGHT}`);
      await sleep(20);
    }
    // A request started on the kept-alive connection (the connection is no longer idle, so it stays
    // open); its last header line goes out after the signal.
    await keptAlive.write(statsRequest({}).replace(/\r\n\r\n$/, '\r\n'));
    signalledAt = performance.now();
    server.child.kill('SIGTERM');
    await listenerClosed(server.url);

    // New connections are refused now.
    const late = Array.from({ length: UPLOADS_AFTER_SIGNAL }, (_, index) => makeUpload(FIXTURES[index] as string, `late-${index}`));
    const lateDone = Promise.all(late.map((upload) => sendUpload(imagesUrl, site.token, upload)));

    // The request completed on the kept-alive connection during the drain is answered 503.
    const beforeDrain = keptAlive.received().length;
    await keptAlive.write('\r\n');
    const during = await keptAlive.nextResponse(beforeDrain);
    expect(during.status, during.body).toBe(503);
    expect(during.headers.connection).toBe('close');

    // The trickled body arrives in pieces over about a second, after the signal.
    const pieces = 10;
    const rest = trickledBody.subarray(trickleSplit);
    for (let piece = 0; piece < pieces; piece++) {
      await sleep(100);
      await trickle.write(rest.subarray(Math.floor((piece * rest.length) / pieces), Math.floor(((piece + 1) * rest.length) / pieces)));
    }
    const trickleAnswer = await trickle.nextResponse(0, 30_000);
    expect(trickleAnswer.status, trickleAnswer.body).toBe(200);
    trickled.outcome = { kind: 'acknowledged' };

    await Promise.all([inFlightDone, lateDone]);
    const exit = await server.exited;
    const stoppedAfterMs = performance.now() - signalledAt;
    expect(exit, server.output()).toEqual({ code: 0, signal: null });
    expect(server.output()).toContain('stopped: stores closed');
    expect(server.output()).not.toContain('shutdown timeout');

    // Every upload that was in progress at the signal finished with its 200.
    expect(
      inFlight.filter((upload) => upload.outcome.kind !== 'acknowledged').map((upload) => `${upload.id}: ${JSON.stringify(upload.outcome)}`),
      'uploads in progress at the signal that did not get their 200',
    ).toEqual([]);
    expect(acknowledgedAfterSignal.length, 'uploads answered after the signal').toBeGreaterThan(0);
    // What came after the signal failed cleanly: refused or reset connections, or a 503.
    for (const upload of late) {
      const outcome = upload.outcome;
      if (outcome.kind === 'answered') expect(outcome.status, outcome.body).toBe(503);
      else if (outcome.kind === 'connection failed') expect(CLEAN_CONNECTION_FAILURES, upload.id).toContain(outcome.code);
      else expect.fail(`${upload.id} after the signal: ${JSON.stringify(outcome)}`);
    }

    const restarted = await site.start();
    try {
      const restartedImages = `${restarted.url}/client/v4/accounts/${site.accountId}/images`;
      const all = [...inFlight, trickled, ...late];
      for (const upload of all) await checkAfterRestart(restartedImages, site.token, upload);
      const acknowledged = all.filter((upload) => upload.outcome.kind === 'acknowledged').map((upload) => upload.id);
      expect((await listAll(restartedImages, site.token)).sort()).toEqual([...acknowledged].sort());
      const stats = await fetch(`${restartedImages}/v1/stats`, { headers: { authorization: `Bearer ${site.token}` } });
      expect(((await stats.json()) as Envelope<StatsResult>).result?.count.current).toBe(acknowledged.length);
      expect(filesUnder(path.join(site.dataDir, 'originals', 'tmp')), 'temp files left').toEqual([]);
      console.log(
        `SIGTERM after the first of ${UPLOADS_IN_FLIGHT} uploads was answered: ${acknowledgedAfterSignal.length} more answered 200 ` +
          `after the signal, plus the trickled one; ${late.length} uploads after the signal: ` +
          `${late.map((upload) => (upload.outcome.kind === 'connection failed' ? upload.outcome.code : upload.outcome.kind === 'answered' ? `HTTP ${upload.outcome.status}` : upload.outcome.kind)).join(', ')}; ` +
          `exited ${stoppedAfterMs.toFixed(0)} ms after the signal`,
      );
    } finally {
      await restarted.stop('SIGTERM');
    }
    expect((await restarted.exited).code).toBe(0);
  });

  it('PICTOR_SHUTDOWN_TIMEOUT=2: a body that never finishes is cut after 2 s, the stores close, exit 0, nothing stored', async () => {
    // No minimum body rate: only the shutdown timeout may end the trickle.
    const site = installation({ PICTOR_SHUTDOWN_TIMEOUT: '2', PICTOR_BODY_MIN_BYTES_PER_SECOND: '0' });
    const server = await site.start();
    const imagesUrl = `${server.url}/client/v4/accounts/${site.accountId}/images`;
    const endless = makeUpload('Landscape_5.jpg', 'endless');
    const body = multipartFile(endless.bytes, endless.filename, { id: endless.id });
    const connection = await connect(server.url);
    await connection.write(
      requestHead('POST', `${imagesUrl}/v1`, {
        authorization: `Bearer ${site.token}`,
        'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
        'content-length': body.length,
      }),
    );
    await connection.write(body.subarray(0, 1000));
    // One byte every 100 ms: 140 KB would take hours.
    let sent = 1000;
    const drip = setInterval(() => {
      if (!connection.socket.destroyed) void connection.write(body.subarray(sent, ++sent));
    }, 100);
    try {
      await sleep(300);
      const signalledAt = performance.now();
      server.child.kill('SIGTERM');
      const exit = await server.exited;
      const exitedAfterMs = performance.now() - signalledAt;
      expect(exit, server.output()).toEqual({ code: 0, signal: null });
      expect(exitedAfterMs, 'exited before the timeout').toBeGreaterThan(1900);
      expect(exitedAfterMs, 'exited long after the timeout').toBeLessThan(6000);
      expect(server.output()).toContain('shutdown timeout: closing the connections of requests still in progress');
      expect(server.output()).toContain('stopped: stores closed');
      await connection.closed;
      expect(connection.received(), 'the cut upload got an answer').toBe('');
      console.log(`shutdown timeout 2 s: exited ${exitedAfterMs.toFixed(0)} ms after SIGTERM`);
    } finally {
      clearInterval(drip);
      connection.close();
    }

    const restarted = await site.start();
    try {
      const restartedImages = `${restarted.url}/client/v4/accounts/${site.accountId}/images`;
      endless.outcome = { kind: 'connection failed', code: 'cut by the shutdown timeout' };
      await checkAfterRestart(restartedImages, site.token, endless);
      expect(await listAll(restartedImages, site.token)).toEqual([]);
      expect(filesUnder(path.join(site.dataDir, 'originals', 'tmp')), 'temp files left').toEqual([]);
    } finally {
      await restarted.stop('SIGTERM');
    }
  });

  it('SIGINT with an idle kept-alive connection open: exits 0 at once', async () => {
    const site = installation();
    const server = await site.start();
    const connection = await connect(server.url);
    await connection.write(
      requestHead('GET', `${server.url}/client/v4/accounts/${site.accountId}/images/v1/stats`, { authorization: `Bearer ${site.token}` }),
    );
    expect((await connection.nextResponse()).status).toBe(200);
    const signalledAt = performance.now();
    server.child.kill('SIGINT');
    const exit = await server.exited;
    const exitedAfterMs = performance.now() - signalledAt;
    expect(exit, server.output()).toEqual({ code: 0, signal: null });
    // Neither the keep-alive timeout nor the shutdown timeout was waited for.
    expect(exitedAfterMs).toBeLessThan(2000);
    await connection.closed;
    console.log(`SIGINT, idle kept-alive connection: exited ${exitedAfterMs.toFixed(0)} ms after the signal`);
  });
});
