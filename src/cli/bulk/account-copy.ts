/**
 * Copies one Images account into a Pictor account: the settings, the variants, the signing keys (with
 * their values) and every image (bytes, id, filename, metadata, creator, requireSignedURLs, upload time).
 * The source is another Images API (Cloudflare, or any Pictor) or an export folder. The target keeps
 * what cannot be set through Cloudflare's API through Pictor's import extension, so its token needs
 * `images:import`.
 *
 * Idempotent and resumable: each image is compared by sha256 of its bytes and by its attributes, and
 * only what is missing or different is written. A source image that cannot be read is reported and the
 * rest continue. Nothing in the target that the source lacks is removed.
 */
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { ApiError, describeError, type ImagesClient, type RemoteConfig, type RemoteKey, type RemoteVariant } from '../remote/images-client.js';
import { eachConcurrently, Progress } from './progress.js';

export interface SourceImage {
  id: string;
  filename: string;
  uploaded: string;
  requireSignedURLs: boolean;
  metadata: Record<string, unknown>;
  creator: string | null;
  /** Known up front for exports; otherwise learnt from the bytes. */
  size?: number;
}

/** Where an account is copied from. */
export interface AccountSource {
  images(): Promise<SourceImage[]>;
  bytes(image: SourceImage): Promise<Buffer>;
  variants(): Promise<RemoteVariant[]>;
  keys(): Promise<RemoteKey[]>;
  config(): Promise<RemoteConfig>;
}

export interface CopySummary {
  copied: number;
  updated: number;
  unchanged: number;
  failed: Array<{ id: string; error: string }>;
  variants: { created: number; updated: number };
  keys: { set: number };
}

/** The target refused what only `images:import` may do: stop at once, with what to do about it. */
export class ImportPermissionError extends Error {
  constructor(detail: string) {
    super(`the target token cannot import (${detail}); create one with \`pictor token create --account <id> --permission images:import\``);
  }
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function sameTime(a: string, b: string): boolean {
  return Date.parse(a) === Date.parse(b);
}

/** Variant options as compared: absent and default values read the same on both sides. */
function variantShape(variant: RemoteVariant): unknown {
  const { fit = 'scale-down', metadata = 'none', width, height, browser_ttl: ttl } = variant.options;
  return { fit, metadata, width, height, ttl, never: variant.neverRequireSignedURLs ?? false };
}

async function copySettings(source: AccountSource, target: ImagesClient, summary: CopySummary): Promise<void> {
  const [config, targetConfig] = await Promise.all([source.config(), target.config()]);
  const wanted: RemoteConfig = {
    ...(config.flexible_variants !== undefined && config.flexible_variants !== targetConfig.flexible_variants && { flexible_variants: config.flexible_variants }),
    ...(config.browser_ttl !== undefined && config.browser_ttl !== targetConfig.browser_ttl && { browser_ttl: config.browser_ttl }),
  };
  if (Object.keys(wanted).length > 0) await target.editConfig(wanted);

  const existing = new Map((await target.variants()).map((variant) => [variant.id, variant]));
  for (const variant of await source.variants()) {
    const there = existing.get(variant.id);
    if (!there) {
      await target.createVariant({ id: variant.id, options: variant.options, neverRequireSignedURLs: variant.neverRequireSignedURLs ?? false });
      summary.variants.created += 1;
    } else if (!isDeepStrictEqual(variantShape(there), variantShape(variant))) {
      await target.editVariant(variant);
      summary.variants.updated += 1;
    }
  }

  const keys = new Map((await target.keys()).map((key) => [key.name, key.value]));
  for (const key of await source.keys()) {
    if (keys.get(key.name) === key.value) continue;
    const after = await target.putKey(key.name, key.value);
    if (after.find((candidate) => candidate.name === key.name)?.value !== key.value) {
      throw new ImportPermissionError(`the signing key ${key.name} was given a new value instead of the source's`);
    }
    summary.keys.set += 1;
  }
}

async function copyImage(image: SourceImage, bytes: Buffer, target: ImagesClient): Promise<'copied' | 'updated' | 'unchanged'> {
  const existing = await target.image(image.id);
  if (existing) {
    const sameBytes = sha256(await target.original(image.id)) === sha256(bytes);
    if (sameBytes && existing.filename === image.filename && sameTime(existing.uploaded, image.uploaded)) {
      const attributes = { metadata: image.metadata, creator: image.creator, requireSignedURLs: image.requireSignedURLs };
      const current = { metadata: existing.meta ?? {}, creator: existing.creator ?? null, requireSignedURLs: existing.requireSignedURLs };
      if (isDeepStrictEqual(attributes, current)) return 'unchanged';
      await target.edit(image.id, attributes);
      return 'updated';
    }
    // Bytes, file name and upload time are fixed at upload: the image is uploaded again.
    await target.delete(image.id);
  }
  let uploaded;
  try {
    uploaded = await target.upload({
      bytes,
      filename: image.filename,
      id: image.id,
      metadata: image.metadata,
      creator: image.creator,
      requireSignedURLs: image.requireSignedURLs,
      uploaded: image.uploaded,
    });
  } catch (error) {
    if (error instanceof ApiError && error.code === 5400 && /UUID|requireSignedURLs/.test(error.message)) throw new ImportPermissionError(error.message);
    throw error;
  }
  if (!sameTime(uploaded.uploaded, image.uploaded)) {
    await target.delete(image.id);
    throw new ImportPermissionError('the upload time was not kept');
  }
  return existing ? 'updated' : 'copied';
}

export async function copyAccount(source: AccountSource, target: ImagesClient, options: { concurrency: number; out?: NodeJS.WritableStream }): Promise<CopySummary> {
  const out = options.out ?? process.stdout;
  const summary: CopySummary = { copied: 0, updated: 0, unchanged: 0, failed: [], variants: { created: 0, updated: 0 }, keys: { set: 0 } };
  await copySettings(source, target, summary);

  const images = await source.images();
  const progress = new Progress({ files: images.length, bytes: images.reduce((sum, image) => sum + (image.size ?? 0), 0) });
  let stopped: ImportPermissionError | undefined;
  await eachConcurrently(images, options.concurrency, async (image) => {
    if (stopped) return;
    let bytes: Buffer;
    try {
      bytes = await source.bytes(image);
    } catch (error) {
      summary.failed.push({ id: image.id, error: `cannot read the source: ${describeError(error)}` });
      progress.done(0, `FAILED ${image.id}: cannot read the source: ${describeError(error)}`);
      return;
    }
    try {
      const outcome = await copyImage(image, bytes, target);
      summary[outcome] += 1;
      progress.done(bytes.length, `${outcome}: ${image.id}`);
    } catch (error) {
      if (error instanceof ImportPermissionError) {
        stopped = error;
        return;
      }
      summary.failed.push({ id: image.id, error: describeError(error) });
      progress.done(bytes.length, `FAILED ${image.id}: ${describeError(error)}`);
    }
  });
  progress.finish();
  if (stopped) throw stopped;

  out.write(
    `\nimages: copied ${summary.copied}, updated ${summary.updated}, unchanged ${summary.unchanged}, failed ${summary.failed.length}; ` +
      `variants: created ${summary.variants.created}, updated ${summary.variants.updated}; signing keys set: ${summary.keys.set}\n`,
  );
  for (const failure of summary.failed) out.write(`  FAILED ${failure.id}: ${failure.error}\n`);
  return summary;
}
