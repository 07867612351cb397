/**
 * Finding what to upload: files named on the command line and every file under the folders named,
 * sorted, each told apart as an image (by its first bytes, the formats the Images API accepts) or not.
 * A `<image>.json` next to an image is that image's metadata, not a file to upload.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface FoundFile {
  /** The path as found (for messages). */
  path: string;
  /** Relative to the folder it was found under, with `/` separators (the file name for a file argument). */
  relative: string;
  size: number;
}

export interface Discovery {
  images: FoundFile[];
  /** Files that are not images the API takes (and are not an image's metadata sidecar). */
  skipped: FoundFile[];
}

const SNIFF_BYTES = 1024;

/** The image formats the Images API accepts, recognised from the file's first bytes. */
export function looksLikeImage(head: Buffer): boolean {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return true; // JPEG
  if (head.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return true; // PNG
  if (head.subarray(0, 4).toString('latin1') === 'GIF8') return true;
  if (head.subarray(0, 4).toString('latin1') === 'RIFF' && head.subarray(8, 12).toString('latin1') === 'WEBP') return true;
  if (head.subarray(4, 8).toString('latin1') === 'ftyp') {
    const brand = head.subarray(8, 12).toString('latin1');
    return ['avif', 'avis', 'heic', 'heix', 'mif1', 'msf1'].includes(brand);
  }
  const text = head.toString('utf8').replace(/^\uFEFF/, '').trimStart();
  return (text.startsWith('<?xml') || text.startsWith('<svg') || text.startsWith('<!--')) && text.includes('<svg');
}

function head(file: string): Buffer {
  const handle = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const read = fs.readSync(handle, buffer, 0, SNIFF_BYTES, 0);
    return buffer.subarray(0, read);
  } finally {
    fs.closeSync(handle);
  }
}

function walk(root: string, dir: string, out: FoundFile[]): void {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(root, full, out);
    else if (entry.isFile()) out.push({ path: full, relative: path.relative(root, full).split(path.sep).join('/'), size: fs.statSync(full).size });
  }
}

export function discover(inputs: string[]): Discovery {
  const files: FoundFile[] = [];
  for (const input of inputs) {
    const stat = fs.statSync(input);
    if (stat.isDirectory()) walk(input, input, files);
    else files.push({ path: input, relative: path.basename(input), size: stat.size });
  }
  const images = files.filter((file) => file.size > 0 && looksLikeImage(head(file.path)));
  const imagePaths = new Set(images.map((file) => file.path));
  const skipped = files.filter((file) => !imagePaths.has(file.path) && !(file.path.endsWith('.json') && imagePaths.has(file.path.slice(0, -'.json'.length))));
  return { images, skipped };
}

/** The metadata of `<image>.json`, when there is one; throws with the file named when it is not a JSON object. */
export function sidecarMetadata(imagePath: string): Record<string, unknown> | undefined {
  const sidecar = `${imagePath}.json`;
  if (!fs.existsSync(sidecar)) return undefined;
  const parsed: unknown = JSON.parse(fs.readFileSync(sidecar, 'utf8'));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${sidecar} must hold a JSON object`);
  return parsed as Record<string, unknown>;
}
