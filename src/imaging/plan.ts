/**
 * A RenderPlan is the validated, normalized description of one rendition. Named variants and flexible
 * option strings (`w=400,fit=cover,...`) both become plans here, so the pipeline never parses text.
 * Parsing errors are delivery error 9401.
 */
import sharp from 'sharp';
import type { VariantOptions } from '../domain/model.js';
import { PictorError } from '../errors.js';

export type Fit = 'scale-down' | 'contain' | 'cover' | 'crop' | 'pad' | 'squeeze';
export type RequestedFormat = 'auto' | 'avif' | 'webp' | 'jpeg' | 'baseline-jpeg' | 'png' | 'json';
export type MetadataMode = 'keep' | 'copyright' | 'none';
export type Side = 'left' | 'right' | 'top' | 'bottom' | 'center';
export type Gravity = { kind: 'side'; side: Side } | { kind: 'point'; x: number; y: number } | { kind: 'auto' };

export interface Trim {
  top: number;
  right: number;
  bottom: number;
  left: number;
}

export interface RenderPlan {
  /** Target box in output pixels (dpr already applied). */
  width?: number;
  height?: number;
  fit: Fit;
  gravity: Gravity;
  /** 1-100; undefined means the format's default (85 for JPEG/WebP/AVIF). */
  quality?: number;
  /** `quality=auto` (a Pictor extension): the smallest JPEG/WebP meeting a perceptual target (auto-quality.ts). */
  autoQuality?: true;
  format: RequestedFormat;
  anim: boolean;
  /** CSS colour for `pad` and for flattening transparency onto JPEG. */
  background?: string;
  blur?: number;
  sharpen?: number;
  rotate?: 90 | 180 | 270;
  flip?: 'h' | 'v' | 'hv';
  brightness?: number;
  contrast?: number;
  gamma?: number;
  saturation?: number;
  trim?: Trim | { width?: number; height?: number; left?: number; top?: number };
  metadata: MetadataMode;
}

export const MAX_OUTPUT_SIDE = 12_000;
const MAX_DPR = 3;
/** A Map, not an object literal: `q=constructor` must not find Object.prototype's members. */
const NAMED_QUALITY = new Map<string, number>([
  ['high', 90],
  ['medium-high', 75],
  ['medium-low', 50],
  ['low', 35],
]);
const FITS: readonly Fit[] = ['scale-down', 'contain', 'cover', 'crop', 'pad', 'squeeze'];
const FORMATS: readonly RequestedFormat[] = ['auto', 'avif', 'webp', 'jpeg', 'baseline-jpeg', 'png', 'json'];
const SIDES: readonly Side[] = ['left', 'right', 'top', 'bottom', 'center'];

export function planFromVariant(options: VariantOptions): RenderPlan {
  return {
    ...(options.width !== undefined && { width: options.width }),
    ...(options.height !== undefined && { height: options.height }),
    fit: options.fit,
    gravity: { kind: 'side', side: 'center' },
    format: 'auto',
    anim: true,
    metadata: options.metadata,
  };
}

function invalid(message: string): PictorError {
  return new PictorError(9401, message);
}

/**
 * Number() also reads `1e3`, `0x10`, ` 5`, `+5` and `5.0`; Cloudflare documents plain integers and
 * decimals, and every spelling of one rendition would be a separate cache entry, so only these pass.
 */
const INTEGER_TEXT = /^\d+$/;
const DECIMAL_TEXT = /^\d+(\.\d+)?$|^\.\d+$/;

function number(name: string, text: string, min: number, max: number, integer = false): number {
  const value = Number(text);
  const spelled = (integer ? INTEGER_TEXT : DECIMAL_TEXT).test(text);
  if (!spelled || !Number.isFinite(value) || value < min || value > max) {
    throw invalid(`${name} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`);
  }
  return value;
}

function pick<T extends string>(name: string, text: string, allowed: readonly T[]): T {
  const found = allowed.find((a) => a === text);
  if (!found) throw invalid(`${name} must be one of ${allowed.join(', ')}`);
  return found;
}

/** sharp's own colour parser decides what a valid CSS colour is, so validation and rendering agree. */
export function isValidColour(text: string): boolean {
  try {
    sharp().flatten({ background: text });
    return true;
  } catch {
    return false;
  }
}

function parseGravity(text: string): Gravity {
  if (text === 'auto' || text === 'face') return { kind: 'auto' };
  const side = SIDES.find((s) => s === text);
  if (side) return { kind: 'side', side };
  const point = /^([^x]+)x([^x]+)$/.exec(text);
  if (point) {
    const x = number('gravity x', point[1] ?? '', 0, 1);
    const y = number('gravity y', point[2] ?? '', 0, 1);
    return { kind: 'point', x, y };
  }
  throw invalid('gravity must be auto, face, left, right, top, bottom, center or XxY with X and Y from 0 to 1');
}

function parseTrim(text: string): Trim {
  const parts = text.split(';');
  if (parts.length !== 4) throw invalid('trim must be top;right;bottom;left in pixels');
  const [top = 0, right = 0, bottom = 0, left = 0] = parts.map((p) => number('trim', p, 0, MAX_OUTPUT_SIDE, true));
  return { top, right, bottom, left };
}

function parseBoolean(name: string, text: string): boolean {
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw invalid(`${name} must be true or false`);
}

/** Options accepted for compatibility whose effect does not apply to stored images. */
const IGNORED = new Set(['compression', 'onerror', 'zoom', 'face-zoom', 'slow-connection-quality', 'scq']);

/**
 * Parses a flexible-variant option list: `key=value` pairs separated by `,`, full names or aliases.
 * Values are percent-decoded one by one, so `background=rgb%28240%2C40%2C145%29` keeps its commas.
 */
export function parseFlexibleOptions(segment: string): RenderPlan {
  if (segment === '' || !segment.includes('=')) throw invalid('No transformation options given');
  const plan: RenderPlan = { fit: 'scale-down', gravity: { kind: 'side', side: 'center' }, format: 'auto', anim: true, metadata: 'none' };
  let dpr = 1;
  const seen = new Set<string>();
  const trimParts: { width?: number; height?: number; left?: number; top?: number } = {};
  for (const pair of segment.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalid(`Malformed option "${pair}"`);
    const key = pair.slice(0, eq);
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(eq + 1));
    } catch {
      throw invalid(`Option ${key} is not correctly percent-encoded`);
    }
    if (/\s/.test(pair)) throw invalid('Options must not contain spaces');
    if (seen.has(key)) throw invalid(`Option ${key} is given twice`);
    seen.add(key);
    switch (key) {
      case 'width':
      case 'w':
        plan.width = number('width', value, 1, MAX_OUTPUT_SIDE, true);
        break;
      case 'height':
      case 'h':
        plan.height = number('height', value, 1, MAX_OUTPUT_SIDE, true);
        break;
      case 'fit':
        plan.fit = pick('fit', value, FITS);
        break;
      case 'gravity':
      case 'g':
        plan.gravity = parseGravity(value);
        break;
      case 'quality':
      case 'q':
        delete plan.quality;
        delete plan.autoQuality;
        if (value === 'auto') plan.autoQuality = true;
        else plan.quality = NAMED_QUALITY.get(value) ?? number('quality', value, 1, 100, true);
        break;
      case 'format':
      case 'f':
        plan.format = pick('format', value, FORMATS);
        break;
      case 'dpr':
        dpr = number('dpr', value, 0.1, MAX_DPR);
        break;
      case 'metadata':
        plan.metadata = pick('metadata', value, ['keep', 'copyright', 'none'] as const);
        break;
      case 'anim':
        plan.anim = parseBoolean('anim', value);
        break;
      case 'background':
        if (!isValidColour(value)) throw invalid(`background "${value}" is not a CSS colour`);
        plan.background = value;
        break;
      case 'blur':
        plan.blur = number('blur', value, 0, 250);
        break;
      case 'sharpen':
        plan.sharpen = number('sharpen', value, 0, 10);
        break;
      case 'rotate': {
        const angle = number('rotate', value, 0, 270, true);
        if (angle !== 0 && angle !== 90 && angle !== 180 && angle !== 270) throw invalid('rotate must be 90, 180 or 270');
        if (angle !== 0) plan.rotate = angle;
        break;
      }
      case 'flip':
        plan.flip = pick('flip', value, ['h', 'v', 'hv'] as const);
        break;
      case 'brightness':
      case 'contrast':
      case 'gamma':
      case 'saturation':
        plan[key] = number(key, value, 0, 10);
        break;
      case 'trim':
        plan.trim = parseTrim(value);
        break;
      case 'trim.width':
      case 'trim.height':
      case 'trim.left':
      case 'trim.top':
        trimParts[key.slice(5) as 'width' | 'height' | 'left' | 'top'] = number(key, value, 0, MAX_OUTPUT_SIDE, true);
        break;
      default:
        if (!IGNORED.has(key)) throw invalid(`Unknown option ${key}`);
    }
  }
  if (Object.keys(trimParts).length > 0) {
    if (plan.trim) throw invalid('Use either trim or trim.width/height/left/top');
    plan.trim = trimParts;
  }
  // Factors of 0 mean "no change" for these options (Cloudflare ignores them).
  for (const factor of ['brightness', 'contrast', 'gamma'] as const) if (plan[factor] === 0) delete plan[factor];
  if (plan.blur === 0) delete plan.blur;
  if (plan.sharpen === 0) delete plan.sharpen;
  if (dpr !== 1) {
    for (const side of ['width', 'height'] as const) {
      const value = plan[side];
      if (value === undefined) continue;
      const scaled = Math.round(value * dpr);
      if (scaled > MAX_OUTPUT_SIDE) throw invalid(`${side} times dpr exceeds ${MAX_OUTPUT_SIDE} pixels`);
      plan[side] = Math.max(1, scaled);
    }
  }
  return plan;
}
