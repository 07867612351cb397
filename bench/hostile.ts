/**
 * (e) The hostile mix: p50/p99 of small cold renders and cached hits on a server process, first quiet,
 * then while attacks from the security review run at the same time (SVG bombs at direct-upload URLs,
 * slowloris connections, bodies dripped to bogus upload URLs, 100-megapixel flexible renders).
 * The ratio of the two p99s is the figure: how much an attacker can slow everyone else down.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { spawnServer } from '../test/helpers/child-server.js';
import { ms, percentile, printTable, ratio } from './lib.js';

const FIXTURES = path.resolve(import.meta.dirname, '../test/fixtures/images');
const ACCOUNT_ID = 'abadc0deabadc0deabadc0deabadc0de';
const TOKEN = 'bench-hostile-token';
const auth = { authorization: `Bearer ${TOKEN}` };

interface Latencies {
  cold: number[];
  cached: number[];
  errors: number;
}

function svgBomb(): Buffer {
  const parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="1000">'];
  for (let i = 0; i < 170_000; i++) parts.push(`<rect x="${i % 997}" y="${i % 991}" width="2" height="2" fill="#a1b2c3"/>`);
  parts.push('</svg>');
  return Buffer.from(parts.join(''));
}

async function uploadFile(api: string, name: string): Promise<string> {
  const form = new FormData();
  form.append('file', new File([fs.readFileSync(path.join(FIXTURES, name))], name));
  const res = (await (await fetch(`${api}/v1`, { method: 'POST', headers: auth, body: form })).json()) as { result: { variants: string[] } };
  const publicUrl = res.result.variants[0] as string;
  return publicUrl.slice(0, publicUrl.lastIndexOf('/'));
}

/** Small cold renders (a new width each time) and cached hits, two workers each, for `seconds`. */
async function measure(imageBase: string, seconds: number, agent: Agent, widthBase: number): Promise<Latencies> {
  const result: Latencies = { cold: [], cached: [], errors: 0 };
  const deadline = performance.now() + seconds * 1000;
  let width = widthBase;
  const worker = async (kind: 'cold' | 'cached'): Promise<void> => {
    while (performance.now() < deadline) {
      const url = kind === 'cold' ? `${imageBase}/w=${width++},f=webp` : `${imageBase}/public`;
      const started = performance.now();
      try {
        const res = await request(url, { dispatcher: agent, headers: { accept: 'image/webp,*/*' } });
        await res.body.arrayBuffer();
        if (res.statusCode === 200) result[kind].push(performance.now() - started);
        else result.errors += 1;
      } catch {
        result.errors += 1;
      }
    }
  };
  await Promise.all([worker('cold'), worker('cold'), worker('cached'), worker('cached')]);
  return result;
}

interface AttackCounts {
  svgAnswers: Record<number, number>;
  bigRenderAnswers: Record<number, number>;
  slowConnections: number;
}

function count(into: Record<number, number>, status: number): void {
  into[status] = (into[status] ?? 0) + 1;
}

/** Runs every attack in loops until `stop()`; resolves with what the server answered. */
function attack(serverUrl: string, api: string, photoBase: string): { stop: () => Promise<AttackCounts> } {
  let running = true;
  const counts: AttackCounts = { svgAnswers: {}, bigRenderAnswers: {}, slowConnections: 0 };
  // Encoded once: the attacker's own CPU should not be what slows the measurement down.
  const boundary = 'hostilebenchboundary';
  const bombBody = Buffer.concat([
    Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="bomb.svg"\r\ncontent-type: image/svg+xml\r\n\r\n`),
    svgBomb(),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const attacker = new Agent({ connections: 16 });
  const { port } = new URL(serverUrl);
  const sockets: net.Socket[] = [];

  const svgLoop = async (): Promise<void> => {
    while (running) {
      const minted = (await (await fetch(`${api}/v2/direct_upload`, { method: 'POST', headers: auth })).json()) as { result: { uploadURL: string } };
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          const res = await request(minted.result.uploadURL, {
            method: 'POST',
            dispatcher: attacker,
            headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
            body: bombBody,
          }).catch(() => undefined);
          count(counts.svgAnswers, res?.statusCode ?? 0);
          await res?.body.arrayBuffer();
        }),
      );
    }
  };
  const bigRenderLoop = async (offset: number): Promise<void> => {
    for (let i = 0; running; i++) {
      const url = `${photoBase}/w=11999,h=${8333 - offset - 4 * i},fit=squeeze,f=jpeg`;
      const res = await request(url, { dispatcher: attacker }).catch(() => undefined);
      count(counts.bigRenderAnswers, res?.statusCode ?? 0);
      await res?.body.arrayBuffer();
    }
  };
  const slowloris = (): void => {
    for (let i = 0; i < 50; i++) {
      const socket = net.connect(Number(port), '127.0.0.1');
      socket.on('error', () => undefined);
      counts.slowConnections += 1;
      socket.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Slow: `);
      const timer = setInterval(() => (running && !socket.destroyed ? socket.write('a') : clearInterval(timer)), 1000);
      sockets.push(socket);
    }
    // Bodies dripped to upload URLs that do not exist.
    for (let i = 0; i < 20; i++) {
      const socket = net.connect(Number(port), '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(`POST /upload/AAAAAAAAAAAAAAAAAAAAAA/${'x'.repeat(43)} HTTP/1.1\r\nHost: x\r\ncontent-type: multipart/form-data; boundary=b\r\ncontent-length: 10000000\r\n\r\n`);
      const timer = setInterval(() => (running && !socket.destroyed ? socket.write('x') : clearInterval(timer)), 1000);
      sockets.push(socket);
    }
  };

  slowloris();
  const loops = [svgLoop(), bigRenderLoop(0), bigRenderLoop(1), bigRenderLoop(2), bigRenderLoop(3)];
  return {
    async stop() {
      running = false;
      for (const socket of sockets) socket.destroy();
      await Promise.allSettled(loops);
      await attacker.close();
      return counts;
    },
  };
}

function summary(counts: Record<number, number>): string {
  return Object.entries(counts)
    .map(([status, n]) => `${n}x${status}`)
    .join(' ');
}

export async function benchHostileMix(seconds: number): Promise<void> {
  console.log(`\n(e) Hostile mix: small cold renders and cached hits (2 workers each, ${seconds} s), quiet and under attack`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pictor-bench-hostile-'));
  const child = await spawnServer({
    dataDir,
    accountId: ACCOUNT_ID,
    token: TOKEN,
    // The attacks need 100 MP flexible renders to be allowed at all (the default ceiling is 50 MP).
    env: { MALLOC_ARENA_MAX: '2', PICTOR_FLEXIBLE_MAX_PIXELS: '100000000', PICTOR_LOG_LEVEL: 'info' },
  });
  const api = `${child.url}/client/v4/accounts/${ACCOUNT_ID}/images`;
  const agent = new Agent({ connections: 8 });
  try {
    await fetch(`${api}/v1/config`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ flexible_variants: true }),
    });
    const small = await uploadFile(api, 'Landscape_1.jpg');
    const photo = await uploadFile(api, 'photo-4000w.jpg');
    await measure(small, 1, agent, 10); // warm-up
    const quiet = await measure(small, seconds, agent, 100);
    const attacks = attack(child.url, api, photo);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const attacked = await measure(small, seconds, agent, 5000);
    const counts = await attacks.stop();
    const rows = (['cold', 'cached'] as const).map((kind) => [
      kind === 'cold' ? 'small cold render (w=N, 600x450 source)' : 'cached hit (public)',
      String(quiet[kind].length),
      ms(percentile(quiet[kind], 50)),
      ms(percentile(quiet[kind], 99)),
      String(attacked[kind].length),
      ms(percentile(attacked[kind], 50)),
      ms(percentile(attacked[kind], 99)),
      ratio(percentile(attacked[kind], 99) / percentile(quiet[kind], 99)),
    ]);
    printTable(['request', 'quiet n', 'p50 ms', 'p99 ms', 'attacked n', 'p50 ms', 'p99 ms', 'p99 attacked/quiet'], rows);
    console.log(`  errors: quiet ${quiet.errors}, attacked ${attacked.errors}`);
    console.log(`  SVG bomb POSTs (4 at a time per URL): ${summary(counts.svgAnswers)}`);
    console.log(`  100 MP flexible renders: ${summary(counts.bigRenderAnswers)}`);
    console.log(`  slowloris + bogus-URL drips: ${counts.slowConnections} + 20 connections`);
    const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
    console.log(`  server peak RSS: ${Math.round(Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024)} MB`);
  } finally {
    await agent.close();
    await child.stop('SIGTERM');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
