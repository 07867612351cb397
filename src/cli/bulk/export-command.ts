/**
 * `pictor export <folder>`: every original under `<folder>/images/` (named by id, `/` making folders, with
 * the extension of its format) and `<folder>/manifest.json` (each image's attributes and sha256, the
 * variants, the signing keys with their values, the settings). A rerun into the same folder downloads
 * only images it does not hold yet (an id's bytes never change without a new upload time). Restore with
 * `pictor upload --manifest <folder>/manifest.json`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Connection } from '../remote/connection.js';
import { describeError, ImagesClient } from '../remote/images-client.js';
import { sha256 } from './account-copy.js';
import { eachConcurrently, Progress } from './progress.js';
import { type Manifest, MANIFEST_VERSION, type ManifestImage, readManifest, RemoteAccount } from './sources.js';

/** The extension of an original, from its first bytes. */
function extensionOf(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'jpg';
  if (bytes[0] === 0x89 && bytes.subarray(1, 4).toString('latin1') === 'PNG') return 'png';
  if (bytes.subarray(0, 4).toString('latin1') === 'GIF8') return 'gif';
  if (bytes.subarray(8, 12).toString('latin1') === 'WEBP') return 'webp';
  if (bytes.subarray(4, 8).toString('latin1') === 'ftyp') return bytes.subarray(8, 12).toString('latin1').startsWith('avi') ? 'avif' : 'heic';
  if (bytes.subarray(0, 1024).toString('utf8').includes('<svg')) return 'svg';
  return 'bin';
}

/** Writes through a temp file and a rename, so an interrupted export never leaves a half file. */
function writeAtomically(file: string, bytes: Buffer | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.partial-${process.pid}`;
  fs.writeFileSync(temp, bytes);
  fs.renameSync(temp, file);
}

export interface ExportSummary {
  written: number;
  kept: number;
  failed: Array<{ id: string; error: string }>;
}

export async function exportAccount(connection: Connection, folder: string, options: { concurrency: number }, out: NodeJS.WritableStream = process.stdout): Promise<ExportSummary> {
  const client = new ImagesClient(connection);
  const source = new RemoteAccount(client);
  const manifestFile = path.join(folder, 'manifest.json');
  const previous = new Map<string, ManifestImage>();
  if (fs.existsSync(manifestFile)) for (const image of readManifest(manifestFile).images) previous.set(image.id, image);

  const [config, variants, keys, images] = await Promise.all([source.config(), source.variants(), source.keys(), source.images()]);
  const entries: ManifestImage[] = [];
  const summary: ExportSummary = { written: 0, kept: 0, failed: [] };
  const progress = new Progress({ files: images.length, bytes: 0 });

  await eachConcurrently(images, options.concurrency, async (image) => {
    const before = previous.get(image.id);
    if (before && before.uploaded === image.uploaded && fs.existsSync(path.join(folder, before.file))) {
      // Attributes may have changed since; the bytes have not.
      entries.push({ ...image, sha256: before.sha256, size: before.size, file: before.file });
      summary.kept += 1;
      progress.done(before.size, `kept: ${image.id}`);
      return;
    }
    try {
      const bytes = await client.original(image.id);
      const file = `images/${image.id}.${extensionOf(bytes)}`;
      writeAtomically(path.join(folder, file), bytes);
      entries.push({ ...image, sha256: sha256(bytes), size: bytes.length, file });
      summary.written += 1;
      progress.done(bytes.length, `exported: ${image.id}`);
    } catch (error) {
      summary.failed.push({ id: image.id, error: describeError(error) });
      progress.done(0, `FAILED ${image.id}: ${describeError(error)}`);
    }
  });
  progress.finish();

  const order = new Map(images.map((image, index) => [image.id, index]));
  entries.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  const manifest: Manifest = {
    version: MANIFEST_VERSION,
    exportedAt: new Date().toISOString(),
    source: { apiBase: connection.apiBase, accountId: connection.accountId },
    config,
    variants,
    keys,
    images: entries,
  };
  writeAtomically(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  out.write(`\nexported ${summary.written}, already in the folder ${summary.kept}, failed ${summary.failed.length}; manifest: ${manifestFile}\n`);
  for (const failure of summary.failed) out.write(`  FAILED ${failure.id}: ${failure.error}\n`);
  return summary;
}
