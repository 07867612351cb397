/**
 * SVG sanitizer: SVGs are delivered as SVG, never rasterized, so they are rebuilt from an allow-list.
 * The document is parsed with a real XML parser (saxes) and re-serialized keeping only known SVG
 * elements and presentation attributes. Gone: scripts, event handlers, `javascript:` and every
 * external reference (links, images, CSS imports and urls), foreignObject, DOCTYPE and entities.
 * Hyperlinks (`<a>`) are unwrapped: their drawing stays, the link goes.
 */
import { SaxesParser, type SaxesTagPlain } from 'saxes';

/**
 * Bounds on the work one SVG may ask of us and of every browser that draws it. They are checked while
 * parsing, so a document over a limit is refused before it is fully read.
 */
export interface SvgLimits {
  maxElements: number;
  maxDepth: number;
  /** Numbers in all `d`, `points` and similar geometry attributes together. */
  maxPathCoordinates: number;
}

/** Why an SVG was refused: over a limit (the upload is too complex) or not a servable SVG at all. */
export class SvgRefusal extends Error {
  constructor(
    readonly kind: 'limit' | 'invalid',
    message: string,
  ) {
    super(message);
    this.name = 'SvgRefusal';
  }
}

export interface InspectedSvg {
  /** The sanitized document: what delivery serves. */
  sanitized: Buffer;
  /** Intrinsic size in CSS pixels, from the root's width/height or viewBox (300x150 when neither says). */
  width: number;
  height: number;
}

const ELEMENTS = new Set([
  'svg', 'g', 'defs', 'desc', 'title', 'symbol', 'use', 'switch', 'view',
  'path', 'rect', 'circle', 'ellipse', 'line', 'polyline', 'polygon',
  'text', 'tspan', 'textPath',
  'linearGradient', 'radialGradient', 'stop', 'pattern', 'clipPath', 'mask', 'marker', 'image', 'style',
  'filter', 'feBlend', 'feColorMatrix', 'feComponentTransfer', 'feComposite', 'feConvolveMatrix',
  'feDiffuseLighting', 'feDisplacementMap', 'feDistantLight', 'feDropShadow', 'feFlood', 'feFuncA', 'feFuncB',
  'feFuncG', 'feFuncR', 'feGaussianBlur', 'feImage', 'feMerge', 'feMergeNode', 'feMorphology', 'feOffset',
  'fePointLight', 'feSpecularLighting', 'feSpotLight', 'feTile', 'feTurbulence',
  'animateTransform', 'animateMotion', 'mpath',
]);

/** Elements removed but whose children are kept. */
const UNWRAPPED = new Set(['a']);

const REFERENCE_ATTRIBUTES = new Set(['href', 'xlink:href']);
const SAFE_DATA_IMAGE = /^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*$/i;

function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttribute(text: string): string {
  return escapeText(text).replace(/"/g, '&quot;');
}

/** Lower-cased with whitespace and control characters removed, as browsers read URL schemes. */
function squashed(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\s\u0000-\u001f]+/g, '').toLowerCase();
}

/** CSS constructs that can fetch or run something. */
const UNSAFE_CSS = ['@import', 'javascript:', 'expression(', '-moz-binding', 'behavior:', 'image-set(', 'image(', 'cross-fade(', 'element(', 'src(', '://'];

/**
 * CSS is kept only if every url() points inside the document and nothing imports, fetches or scripts.
 * CSS escapes (`\75 rl(` is `url(`) are refused outright rather than decoded: drawings do not need them.
 */
function cssIsSafe(css: string): boolean {
  if (css.includes('\\')) return false;
  const flat = squashed(css.replace(/\/\*[\s\S]*?\*\//g, ''));
  if (UNSAFE_CSS.some((token) => flat.includes(token))) return false;
  const urls = flat.match(/url\(([^)]*)\)/g) ?? [];
  return urls.every((u) => /^url\(['"]?#/.test(u));
}

function keepAttribute(element: string, name: string, value: string): boolean {
  const lower = name.toLowerCase();
  if (lower.startsWith('on')) return false;
  if (name.startsWith('xmlns')) return name === 'xmlns' || name === 'xmlns:xlink';
  if (name.includes(':') && !name.startsWith('xlink:') && !name.startsWith('xml:')) return false;
  const flat = squashed(value);
  if (flat.includes('javascript:') || flat.includes('vbscript:')) return false;
  if (REFERENCE_ATTRIBUTES.has(name)) {
    if (value.trim().startsWith('#')) return true;
    return (element === 'image' || element === 'feImage') && SAFE_DATA_IMAGE.test(value.trim());
  }
  if (lower === 'style') return cssIsSafe(value);
  if (flat.includes('url(')) return cssIsSafe(value);
  if (element.startsWith('animate') && lower === 'attributename') return !/href|^on/i.test(value);
  return true;
}

/** Attributes whose value is a list of coordinates (what makes a path expensive to draw). */
const GEOMETRY_ATTRIBUTES = new Set(['d', 'points', 'path', 'values', 'keyPoints', 'rotate']);
const NUMBER = /[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/g;

function countNumbers(value: string): number {
  let count = 0;
  NUMBER.lastIndex = 0;
  while (NUMBER.exec(value) !== null) count += 1;
  return count;
}

/** CSS pixels per unit, as browsers resolve absolute lengths. */
const UNITS: Record<string, number> = { '': 1, px: 1, pt: 4 / 3, pc: 16, mm: 96 / 25.4, cm: 96 / 2.54, in: 96, em: 16, ex: 8 };

function absoluteLength(text: string | undefined): number | undefined {
  const match = /^\s*(\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*([a-z]*)\s*$/i.exec(text ?? '');
  const factor = match ? UNITS[(match[2] ?? '').toLowerCase()] : undefined;
  if (!match || factor === undefined) return undefined;
  const value = Number.parseFloat(match[0]) * factor;
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

function intrinsicSize(attributes: Record<string, string>): { width: number; height: number } {
  const viewBox = (attributes.viewBox ?? '').trim().split(/[\s,]+/).map(Number);
  const boxWidth = viewBox.length === 4 && (viewBox[2] ?? 0) > 0 ? (viewBox[2] as number) : undefined;
  const boxHeight = viewBox.length === 4 && (viewBox[3] ?? 0) > 0 ? (viewBox[3] as number) : undefined;
  let width = absoluteLength(attributes.width);
  let height = absoluteLength(attributes.height);
  if (boxWidth !== undefined && boxHeight !== undefined) {
    if (width === undefined && height === undefined) [width, height] = [boxWidth, boxHeight];
    else if (width === undefined && height !== undefined) width = (height * boxWidth) / boxHeight;
    else if (height === undefined && width !== undefined) height = (width * boxHeight) / boxWidth;
  }
  const side = (value: number | undefined, fallback: number): number => Math.max(1, Math.min(1e6, Math.round(value ?? fallback)));
  return { width: side(width, 300), height: side(height, 150) };
}

/** Sanitizes a document already accepted at upload (delivery). */
export function sanitizeSvg(bytes: Buffer): Buffer {
  return inspectSvg(bytes, { maxElements: Infinity, maxDepth: Infinity, maxPathCoordinates: Infinity }).sanitized;
}

/**
 * Parses, checks the limits and sanitizes in one pass. Throws `SvgRefusal`. Pure JavaScript: callers
 * run it on a worker thread (see svg-workers.ts) so a 10 MB document never blocks the event loop.
 */
export function inspectSvg(bytes: Buffer, limits: SvgLimits): InspectedSvg {
  const parser = new SaxesParser({ xmlns: false });
  let elements = 0;
  let coordinates = 0;
  let size = { width: 300, height: 150 };
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n'];
  /** Each open element: written out, dropped with its subtree, or unwrapped (children kept). */
  const stack: Array<{ name: string; fate: 'written' | 'dropped' | 'unwrapped' }> = [];
  /** Depth inside a dropped subtree: while > 0 nothing is written. */
  let droppedDepth = 0;
  let styleText: string[] | undefined;
  let rootSeen = false;

  // A DOCTYPE is dropped, never interpreted: saxes does not expand entities declared in it (no XXE, no
  // billion laughs); a document that uses such an entity fails to parse and is refused.
  parser.on('opentag', (tag: SaxesTagPlain) => {
    const name = tag.name;
    elements += 1;
    if (elements > limits.maxElements) {
      throw new SvgRefusal('limit', `The SVG has more than ${limits.maxElements} elements`);
    }
    if (stack.length >= limits.maxDepth) {
      throw new SvgRefusal('limit', `The SVG nests elements deeper than ${limits.maxDepth} levels`);
    }
    for (const [attr, value] of Object.entries(tag.attributes as Record<string, string>)) {
      if (!GEOMETRY_ATTRIBUTES.has(attr)) continue;
      coordinates += countNumbers(value);
      if (coordinates > limits.maxPathCoordinates) {
        throw new SvgRefusal('limit', `The SVG has more than ${limits.maxPathCoordinates} path coordinates`);
      }
    }
    if (droppedDepth > 0 || (!ELEMENTS.has(name) && !UNWRAPPED.has(name))) {
      droppedDepth += 1;
      stack.push({ name, fate: 'dropped' });
      return;
    }
    if (!rootSeen) {
      if (name !== 'svg') throw new SvgRefusal('invalid', 'The document is not an SVG image');
      rootSeen = true;
      size = intrinsicSize(tag.attributes as Record<string, string>);
    }
    if (UNWRAPPED.has(name)) {
      stack.push({ name, fate: 'unwrapped' });
      return;
    }
    const attributes = Object.entries(tag.attributes as Record<string, string>)
      .filter(([attr, value]) => keepAttribute(name, attr, value))
      .map(([attr, value]) => ` ${attr}="${escapeAttribute(value)}"`)
      .join('');
    out.push(`<${name}${attributes}>`);
    stack.push({ name, fate: 'written' });
    if (name === 'style') styleText = [];
  });
  parser.on('text', (text) => {
    if (droppedDepth > 0) return;
    if (styleText) styleText.push(text);
    else out.push(escapeText(text));
  });
  parser.on('cdata', (text) => {
    if (droppedDepth > 0) return;
    if (styleText) styleText.push(text);
    else out.push(escapeText(text));
  });
  parser.on('closetag', () => {
    const open = stack.pop();
    if (!open || open.fate === 'unwrapped') return;
    if (open.fate === 'dropped') {
      droppedDepth -= 1;
      return;
    }
    if (open.name === 'style' && styleText) {
      const css = styleText.join('');
      if (cssIsSafe(css)) out.push(escapeText(css));
      styleText = undefined;
    }
    out.push(`</${open.name}>`);
  });

  try {
    parser.write(bytes.toString('utf8')).close();
  } catch (error) {
    if (error instanceof SvgRefusal) throw error;
    throw new SvgRefusal('invalid', 'The SVG document could not be parsed');
  }
  if (!rootSeen) throw new SvgRefusal('invalid', 'The document is not an SVG image');
  return { sanitized: Buffer.from(out.join(''), 'utf8'), ...size };
}
