/** The two places an account is copied from: a live Images API, or a folder written by `pictor export`. */
import fs from 'node:fs';
import path from 'node:path';
import { ApiError, type ImagesClient, type RemoteConfig, type RemoteKey, type RemoteVariant } from '../remote/images-client.js';
import { type AccountSource, sha256, type SourceImage } from './account-copy.js';

/** Another Images API: Cloudflare's, or any Pictor's. */
export class RemoteAccount implements AccountSource {
  constructor(private readonly client: ImagesClient) {}

  async images(): Promise<SourceImage[]> {
    const images: SourceImage[] = [];
    for await (const image of this.client.images()) {
      images.push({
        id: image.id,
        filename: image.filename,
        uploaded: image.uploaded,
        requireSignedURLs: image.requireSignedURLs,
        metadata: image.meta ?? {},
        creator: image.creator ?? null,
      });
    }
    return images;
  }

  bytes(image: SourceImage): Promise<Buffer> {
    return this.client.original(image.id);
  }

  variants(): Promise<RemoteVariant[]> {
    return this.client.variants();
  }

  keys(): Promise<RemoteKey[]> {
    return this.client.keys();
  }

  /** Cloudflare documents only PATCH of the config route; a source without GET keeps its settings. */
  async config(): Promise<RemoteConfig> {
    try {
      return await this.client.config();
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 405 || error.code === 7003)) return {};
      throw error;
    }
  }
}

export const MANIFEST_VERSION = 1;

export interface ManifestImage extends SourceImage {
  sha256: string;
  size: number;
  /** The original's file, relative to the manifest. */
  file: string;
}

/** `manifest.json` of an export. */
export interface Manifest {
  version: number;
  exportedAt: string;
  source: { apiBase: string; accountId: string };
  config: RemoteConfig;
  variants: RemoteVariant[];
  keys: RemoteKey[];
  images: ManifestImage[];
}

export function readManifest(file: string): Manifest {
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
  if (manifest.version !== MANIFEST_VERSION || !Array.isArray(manifest.images)) throw new Error(`${file} is not a Pictor export manifest (version ${MANIFEST_VERSION})`);
  return manifest;
}

/** An export folder: its manifest, and the originals next to it (checked against their sha256). */
export class ExportFolder implements AccountSource {
  private readonly manifest: Manifest;
  private readonly root: string;

  constructor(manifestFile: string) {
    this.manifest = readManifest(manifestFile);
    this.root = path.dirname(manifestFile);
  }

  async images(): Promise<SourceImage[]> {
    return this.manifest.images;
  }

  async bytes(image: SourceImage): Promise<Buffer> {
    const entry = image as ManifestImage;
    const bytes = await fs.promises.readFile(path.join(this.root, entry.file));
    if (sha256(bytes) !== entry.sha256) throw new Error(`${entry.file} does not match its sha256 in the manifest`);
    return bytes;
  }

  async variants(): Promise<RemoteVariant[]> {
    return this.manifest.variants;
  }

  async keys(): Promise<RemoteKey[]> {
    return this.manifest.keys;
  }

  async config(): Promise<RemoteConfig> {
    return this.manifest.config;
  }
}
