/**
 * Remote transformations side by side with ipx 3.1.1 fetching the same remote source (ipx's HTTP
 * storage; imgproxy's and ipx's home ground): a loopback origin serves photo-4000w.jpg with an ETag and
 * `Cache-Control: max-age=3600`; each side renders JPEG at a width never asked before, 2 at once, rounds
 * A-B-B-A. Also printed: how many times each side fetched the source from the origin.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Agent } from 'undici';
import { spawnServer } from '../test/helpers/child-server.js';
import { round, startIpx } from './ipx.js';
import { printTable, ratio } from './lib.js';

const PROJECT_ROOT = path.resolve(import.meta.dirname, '..');
const SOURCE = path.join(PROJECT_ROOT, 'test/fixtures/images/photo-4000w.jpg');

export async function benchRemote(options: { seconds: number; concurrency: number; serverEnv: Record<string, string> }): Promise<void> {
  const bytes = fs.readFileSync(SOURCE);
  const fetchedBy = { pictor: 0, ipx: 0 };
  const origin = http.createServer((req, res) => {
    if (/pictor/i.test(req.headers['user-agent'] ?? '')) fetchedBy.pictor += 1;
    else fetchedBy.ipx += 1;
    if (req.headers['if-none-match'] === '"photo-v1"') return void res.writeHead(304, { etag: '"photo-v1"' }).end();
    res.writeHead(200, { 'content-type': 'image/jpeg', etag: '"photo-v1"', 'cache-control': 'public, max-age=3600' }).end(bytes);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pictor-bench-remote-'));
  const ipxDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pictor-bench-remote-ipx-'));
  const pictor = await spawnServer({
    dataDir,
    accountId: 'feedfeedfeedfeedfeedfeedfeedfeed',
    token: 'bench-remote-token',
    env: { ...options.serverEnv, PICTOR_REMOTE_ORIGINS: originUrl, PICTOR_ALLOW_PRIVATE_URLS: 'true' },
  });
  const ipx = await startIpx(ipxDir, { IPX_HTTP_DOMAINS: '127.0.0.1' });
  const agent = new Agent({ connections: options.concurrency * 2, keepAliveTimeout: 30_000 });
  try {
    const pictorUrl = (width: number): string => `${pictor.url}/cdn-cgi/image/w=${width},f=jpeg/${originUrl}/photo.jpg`;
    const ipxUrl = (width: number): string => `${ipx.url}/w_${width},f_jpeg/${originUrl}/photo.jpg`;
    // Warm-up: code loaded; Pictor fetches the source once and keeps it.
    await round(pictorUrl, 'image/jpeg', agent, options.concurrency, 1);
    await round(ipxUrl, 'image/jpeg', agent, options.concurrency, 1);
    const half = options.seconds / 2;
    const pictorRounds = [await round(pictorUrl, 'image/jpeg', agent, options.concurrency, half)];
    const ipxRounds = [await round(ipxUrl, 'image/jpeg', agent, options.concurrency, half)];
    ipxRounds.push(await round(ipxUrl, 'image/jpeg', agent, options.concurrency, half));
    pictorRounds.push(await round(pictorUrl, 'image/jpeg', agent, options.concurrency, half));
    const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
    console.log(`\nRemote transformations: /cdn-cgi/image/w=<new width>,f=jpeg/<origin>/photo.jpg against ipx's HTTP storage (same sharp), ${options.concurrency} at once, rounds A-B-B-A`);
    printTable(
      ['measure', 'Pictor', 'ipx', 'ratio'],
      [
        [
          'cold renders/s of a remote 13 MP JPEG',
          `${mean(pictorRounds).toFixed(1)} (${pictorRounds.map((r) => r.toFixed(1)).join(' / ')})`,
          `${mean(ipxRounds).toFixed(1)} (${ipxRounds.map((r) => r.toFixed(1)).join(' / ')})`,
          ratio(mean(pictorRounds) / mean(ipxRounds)),
        ],
        ['fetches of the source from the origin', String(fetchedBy.pictor), String(fetchedBy.ipx), ''],
      ],
    );
  } finally {
    await agent.close();
    await pictor.stop('SIGTERM');
    ipx.child.kill('SIGTERM');
    await new Promise<void>((resolve) => origin.close(() => resolve()));
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(ipxDir, { recursive: true, force: true });
  }
}
