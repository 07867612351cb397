/**
 * The upload baseline: the least a durable image upload endpoint must do, with nothing else. A bare
 * node:http server that parses the multipart body with busboy, validates the image with the same
 * `probeImage` Pictor uses, writes the bytes to a temp file, fsyncs it and renames it into place.
 * No auth, no metadata database, no framework, no directory fsync.
 */
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import busboy from 'busboy';
import { DEFAULT_LIMITS, loadConfig } from '../src/config.js';
import { probeImage } from '../src/imaging/probe.js';
import { RenderPool } from '../src/imaging/render-pool.js';
import { HeicDecoder } from '../src/imaging/heic.js';
import { SvgWorkers } from '../src/imaging/svg-workers.js';

export interface BaselineServer {
  url: string;
  close(): Promise<void>;
}

function readFile(request: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parser = busboy({ headers: request.headers, limits: { fileSize: DEFAULT_LIMITS.maxUploadBytes, files: 1 } });
    let file: Buffer | undefined;
    parser.on('file', (name, stream) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (name === 'file') file = Buffer.concat(chunks);
      });
    });
    parser.on('error', reject);
    parser.on('close', () => (file ? resolve(file) : reject(new Error('no file part'))));
    request.pipe(parser);
  });
}

async function writeDurably(dir: string, bytes: Buffer): Promise<string> {
  const name = randomBytes(16).toString('hex');
  const tmpPath = path.join(dir, 'tmp', `${name}.tmp`);
  const finalPath = path.join(dir, 'blobs', name);
  const handle = await fsp.open(tmpPath, 'wx', 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsp.rename(tmpPath, finalPath);
  return name;
}

export async function startBaselineUploadServer(dir: string): Promise<BaselineServer> {
  await fsp.mkdir(path.join(dir, 'tmp'), { recursive: true });
  await fsp.mkdir(path.join(dir, 'blobs'), { recursive: true });
  // The same validation as the server, through the same kind of work pool.
  const defaults = loadConfig({});
  const svgWorkers = new SvgWorkers(1);
  const heic = new HeicDecoder(1);
  const probe = {
    limits: DEFAULT_LIMITS,
    svgLimits: defaults.svg,
    svgWorkers,
    heic,
    timeoutSeconds: defaults.rendering.timeoutSeconds,
    pool: new RenderPool({
      slots: defaults.rendering.concurrency,
      heavySlots: defaults.rendering.heavyConcurrency,
      heavyCost: defaults.rendering.heavyPixels,
      maxQueue: 1000,
      maxHeavyQueue: 1000,
      maxWaitMs: 600_000,
    }),
  };
  const server = http.createServer((request, response) => {
    const reply = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    readFile(request)
      .then(async (bytes) => {
        const probed = await probeImage(bytes, probe);
        const id = await writeDurably(dir, bytes);
        reply(200, { success: true, result: { id, width: probed.width, height: probed.height } });
      })
      .catch((error: unknown) => reply(400, { success: false, error: String(error) }));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/upload`,
    close: async () => {
      await new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      });
      await svgWorkers.close();
      await heic.close();
    },
  };
}
