/**
 * SVG sanitizer: SVGs are delivered as SVG, never rasterized, so they are rebuilt from an allow-list.
 * The document is parsed with a real XML parser (saxes) and re-serialized keeping only known SVG
 * elements and presentation attributes. Gone: scripts, event handlers, `javascript:` and every
 * external reference (links, images, CSS imports and urls), foreignObject, DOCTYPE and entities.
 * Hyperlinks (`<a>`) are unwrapped: their drawing stays, the link goes.
 */
import { SaxesParser, type SaxesTagPlain } from 'saxes';
import { PictorError } from '../errors.js';

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

export function sanitizeSvg(bytes: Buffer): Buffer {
  const parser = new SaxesParser({ xmlns: false });
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n'];
  /** Each open element: written out, dropped with its subtree, or unwrapped (children kept). */
  const stack: Array<{ name: string; fate: 'written' | 'dropped' | 'unwrapped' }> = [];
  /** Depth inside a dropped subtree: while > 0 nothing is written. */
  let droppedDepth = 0;
  let styleText: string[] | undefined;
  let rootSeen = false;

  parser.on('doctype', () => {
    throw new PictorError(9520, 'SVG documents with a DOCTYPE are not served');
  });
  parser.on('opentag', (tag: SaxesTagPlain) => {
    const name = tag.name;
    if (droppedDepth > 0 || (!ELEMENTS.has(name) && !UNWRAPPED.has(name))) {
      droppedDepth += 1;
      stack.push({ name, fate: 'dropped' });
      return;
    }
    if (!rootSeen) {
      if (name !== 'svg') throw new PictorError(9520, 'The document is not an SVG image');
      rootSeen = true;
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
    if (error instanceof PictorError) throw error;
    throw new PictorError(9520, 'The SVG document could not be parsed');
  }
  if (!rootSeen) throw new PictorError(9520, 'The document is not an SVG image');
  return Buffer.from(out.join(''), 'utf8');
}
