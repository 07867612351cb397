/**
 * Pictor against ipx 3.1.1 (same sharp, forced by package.json overrides), each at its defaults, each in
 * its own process, on photo-4000w.jpg at a width never asked before (so neither side's cache answers):
 * renders per second in alternating rounds (Pictor, ipx, ipx, Pictor) for JPEG and WebP, then the bytes
 * and SSIM of an 800 px rendition of each large test photo from each side (and Pictor's `quality=auto`),
 * judged against an exact unencoded sharp resize of the original.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { ssim } from 'ssim.js';
import { Agent, request } from 'undici';
import { spawnServer } from '../test/helpers/child-server.js';
import { kb, printTable, ratio } from './lib.js';

const PROJECT_ROOT = path.resolve(import.meta.dirname, '..');
const PHOTO = 'photo-4000w.jpg';
const FIXTURES = path.join(PROJECT_ROOT, 'test/fixtures/images');
/** The large photos whose bytes and fidelity are compared (the second is below the master threshold). */
const QUALITY_PHOTOS = [PHOTO, '2569067123_aca715a2ee_o.jpg'];
const ACCOUNT_ID = '1b0c1b0c1b0c1b0c1b0c1b0c1b0c1b0c';
const TOKEN = 'bench-ipx-token';

export async function startIpx(dir: string, env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/ipx-server.ts'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, IPX_DIR: dir, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const match = /"port":(\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`ipx exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

let nextWidth = 599;

/** Renders per second of `url(width)` at `concurrency`, a new width each request from `firstWidth` up. */
export async function round(url: (width: number) => string, accept: string, agent: Agent, concurrency: number, seconds: number): Promise<number> {
  let done = 0;
  let failed = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        nextWidth += 1;
        const response = await request(url(nextWidth), { dispatcher: agent, headers: { accept } });
        await response.body.arrayBuffer();
        if (response.statusCode === 200) done += 1;
        else failed += 1;
      }
    }),
  );
  if (failed > 0) console.log(`  (${failed} non-200 answers in a round)`);
  return done / ((performance.now() - started) / 1000);
}

async function fetchBytes(url: string, accept: string): Promise<Buffer> {
  const response = await request(url, { headers: { accept } });
  const bytes = Buffer.from(await response.body.arrayBuffer());
  if (response.statusCode !== 200) throw new Error(`${url} → ${response.statusCode}`);
  return bytes;
}

async function rgba(image: Sharp): Promise<{ data: Uint8ClampedArray; width: number; height: number }> {
  const { data, info } = await image.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

export interface IpxBenchOptions {
  seconds: number;
  concurrency: number;
  /** What `npm start` gives Pictor's process. */
  serverEnv: Record<string, string>;
}

export async function benchAgainstIpx(options: IpxBenchOptions): Promise<void> {
  const ipxDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pictor-bench-ipx-'));
  for (const photo of QUALITY_PHOTOS) fs.copyFileSync(path.join(FIXTURES, photo), path.join(ipxDir, photo));
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pictor-bench-vs-ipx-'));
  const ipx = await startIpx(ipxDir);
  const pictor = await spawnServer({ dataDir, accountId: ACCOUNT_ID, token: TOKEN, env: options.serverEnv });
  const agent = new Agent({ connections: options.concurrency * 2, keepAliveTimeout: 30_000 });
  try {
    const api = `${pictor.url}/client/v4/accounts/${ACCOUNT_ID}/images`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    await fetch(`${api}/v1/config`, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ flexible_variants: true }) });
    const upload = async (photo: string): Promise<string> => {
      const form = new FormData();
      form.append('file', new File([fs.readFileSync(path.join(FIXTURES, photo))], photo));
      const uploaded = (await (await fetch(`${api}/v1`, { method: 'POST', body: form, headers: auth })).json()) as { result: { variants: string[] } };
      const publicUrl = uploaded.result.variants[0] as string;
      return publicUrl.slice(0, publicUrl.lastIndexOf('/'));
    };
    const imageBase = await upload(PHOTO);
    const formats = [
      { name: 'JPEG', accept: 'image/jpeg', pictor: (w: number) => `${imageBase}/w=${w}`, ipx: (w: number) => `${ipx.url}/w_${w}/${PHOTO}` },
      { name: 'WebP', accept: 'image/webp,*/*', pictor: (w: number) => `${imageBase}/w=${w}`, ipx: (w: number) => `${ipx.url}/w_${w},f_webp/${PHOTO}` },
    ];
    // The same encoder settings on both sides (quality 80, sharp's default and so ipx's): equal output quality.
    const equalSettings = formats.map((format) => ({
      ...format,
      name: `${format.name} at quality 80 on both sides`,
      pictor: (w: number) => `${imageBase}/w=${w},q=80`,
    }));
    const rows: string[][] = [];
    const half = options.seconds / 2;
    for (const format of [...formats, ...equalSettings]) {
      // Every row over the same widths (600 px up): each row's URLs differ from the others', so no cache
      // answers, and wider renditions (costlier, and past the master) do not drift into later rows.
      nextWidth = 599;
      // Warm-up: code loaded, pools started, Pictor's master made (as it is after an image's first render).
      await round(format.pictor, format.accept, agent, options.concurrency, 1);
      await round(format.ipx, format.accept, agent, options.concurrency, 1);
      const pictorRounds = [await round(format.pictor, format.accept, agent, options.concurrency, half)];
      const ipxRounds = [await round(format.ipx, format.accept, agent, options.concurrency, half)];
      ipxRounds.push(await round(format.ipx, format.accept, agent, options.concurrency, half));
      pictorRounds.push(await round(format.pictor, format.accept, agent, options.concurrency, half));
      const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
      rows.push([
        `${format.name} cold renders/s`,
        `${mean(pictorRounds).toFixed(1)} (${pictorRounds.map((r) => r.toFixed(1)).join(' / ')})`,
        `${mean(ipxRounds).toFixed(1)} (${ipxRounds.map((r) => r.toFixed(1)).join(' / ')})`,
        ratio(mean(pictorRounds) / mean(ipxRounds)),
        '≥ 1.0× (aim 1.5×)',
      ]);
    }
    console.log(`\nPictor against ipx 3.1.1 (same sharp, each in its own process; at each side's defaults, then at equal encoder settings; ${options.concurrency} at once, rounds A-B-B-A)`);
    printTable(['measure', 'Pictor', 'ipx', 'ratio', 'target'], rows);

    // Bytes and fidelity of one rendition, against an exact unencoded resize: the whole image decoded, no
    // shrink-on-load (which is itself lossy, and would favour whichever side resizes exactly like the judge).
    const quality: string[][] = [];
    for (const photo of QUALITY_PHOTOS) {
      const base = photo === PHOTO ? imageBase : await upload(photo);
      const original = fs.readFileSync(path.join(FIXTURES, photo));
      const reference = await rgba(sharp(original, { autoOrient: true }).resize({ width: 800, fastShrinkOnLoad: false }));
      const score = async (bytes: Buffer): Promise<number> => ssim(reference, await rgba(sharp(bytes)), { ssim: 'weber' }).mssim;
      for (const format of formats) {
        const ipxUrl = format.ipx(800).replace(PHOTO, photo);
        const ipxBytes = await fetchBytes(ipxUrl, format.accept);
        const ipxScore = await score(ipxBytes);
        for (const [label, url] of [
          ['default', `${base}/w=800`],
          ['quality=auto', `${base}/w=800,q=auto`],
        ] as const) {
          const bytes = await fetchBytes(url, format.accept);
          const own = await score(bytes);
          quality.push([
            `${photo} ${format.name} 800 px, Pictor ${label}`,
            `${kb(bytes.length)} SSIM ${own.toFixed(4)}`,
            `${kb(ipxBytes.length)} SSIM ${ipxScore.toFixed(4)}`,
            ratio(bytes.length / ipxBytes.length),
            own >= ipxScore ? 'SSIM ≥ ipx' : `SSIM ${(own - ipxScore).toFixed(4)} below ipx`,
          ]);
        }
      }
    }
    printTable(['rendition', 'Pictor bytes, SSIM', 'ipx bytes, SSIM', 'bytes ratio', 'fidelity'], quality);
  } finally {
    await agent.close();
    await pictor.stop('SIGTERM');
    ipx.child.kill('SIGTERM');
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(ipxDir, { recursive: true, force: true });
  }
}
