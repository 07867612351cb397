/**
 * `pictor upload <file-or-folder>…`: every image found is uploaded (through the same public API as the
 * SDK), `--concurrency` at a time. With `--id-from-path` the id is the path under its folder, and a rerun
 * skips what is already there, so an interrupted upload resumes. Ends with a summary; the exit status is
 * 0 only when nothing failed.
 */
import fs from 'node:fs';
import { ApiError, describeError, ImagesClient } from '../remote/images-client.js';
import type { Connection } from '../remote/connection.js';
import { discover, type FoundFile, sidecarMetadata } from './files.js';
import { eachConcurrently, Progress } from './progress.js';

export interface UploadOptions {
  concurrency: number;
  idFromPath: boolean;
  metadata?: Record<string, unknown>;
  requireSignedUrls: boolean;
  creator?: string;
  dryRun: boolean;
}

export interface UploadSummary {
  uploaded: number;
  present: number;
  notImages: FoundFile[];
  failed: Array<{ file: string; error: string }>;
}

export async function uploadFiles(connection: Connection, inputs: string[], options: UploadOptions, out: NodeJS.WritableStream = process.stdout): Promise<UploadSummary> {
  const client = new ImagesClient(connection);
  const { images, skipped } = discover(inputs);
  const summary: UploadSummary = { uploaded: 0, present: 0, notImages: skipped, failed: [] };
  for (const file of skipped) out.write(`skipped (not an image): ${file.path}\n`);
  const progress = new Progress({ files: images.length, bytes: images.reduce((sum, file) => sum + file.size, 0) });

  await eachConcurrently(images, options.concurrency, async (file) => {
    const id = options.idFromPath ? file.relative : undefined;
    try {
      const sidecar = sidecarMetadata(file.path);
      const metadata = options.metadata || sidecar ? { ...options.metadata, ...sidecar } : undefined;
      if (id !== undefined && (await client.image(id))) {
        summary.present += 1;
        progress.done(file.size, `already there: ${file.path} (id ${id})`);
        return;
      }
      if (options.dryRun) {
        summary.uploaded += 1;
        progress.done(file.size, `would upload: ${file.path}${id === undefined ? '' : ` as ${id}`}`);
        return;
      }
      const image = await client.upload({
        bytes: fs.readFileSync(file.path),
        filename: file.relative.split('/').pop() ?? file.relative,
        ...(id !== undefined && { id }),
        ...(metadata !== undefined && { metadata }),
        ...(options.creator !== undefined && { creator: options.creator }),
        ...(options.requireSignedUrls && { requireSignedURLs: true }),
      });
      summary.uploaded += 1;
      progress.done(file.size, `uploaded: ${file.path} (id ${image.id})`);
    } catch (error) {
      // A concurrent or earlier run that got there first is not a failure of this one.
      if (id !== undefined && error instanceof ApiError && error.code === 5409) {
        summary.present += 1;
        progress.done(file.size, `already there: ${file.path} (id ${id})`);
        return;
      }
      summary.failed.push({ file: file.path, error: describeError(error) });
      progress.done(file.size, `FAILED: ${file.path}: ${describeError(error)}`);
    }
  });
  progress.finish();

  const verb = options.dryRun ? 'would upload' : 'uploaded';
  out.write(`\n${verb} ${summary.uploaded}, already there ${summary.present}, skipped ${summary.notImages.length} (not images), failed ${summary.failed.length}\n`);
  for (const failure of summary.failed) out.write(`  FAILED ${failure.file}: ${failure.error}\n`);
  return summary;
}
