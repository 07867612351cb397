/**
 * What an image job costs, in pixels: the unit the render pool weighs work in. An estimate, made from
 * numbers known before any pixel is touched: the pixels the decoder will produce (JPEG and WebP decode
 * at a reduced scale when the output is much smaller: shrink-on-load) plus the pixels produced.
 */
import type { Geometry } from './geometry.js';

export interface CostSource {
  width: number;
  height: number;
  frames: number;
  contentType: string;
}

/** The reduction the decoder applies by itself when asked for `target` pixels wide and high. */
function shrinkOnLoad(source: CostSource, target: { width: number; height: number }): number {
  const scale = Math.min(source.width / Math.max(1, target.width), source.height / Math.max(1, target.height));
  if (scale < 2) return 1;
  if (source.contentType === 'image/jpeg') return scale >= 8 ? 8 : scale >= 4 ? 4 : 2;
  if (source.contentType === 'image/webp') return scale;
  return 1;
}

export function decodeCost(source: CostSource, target: { width: number; height: number }): number {
  const shrink = shrinkOnLoad(source, target);
  return Math.ceil((source.width * source.height * Math.max(1, source.frames)) / (shrink * shrink));
}

export function renderCost(source: CostSource, geometry: Geometry, animated: boolean): number {
  // A trim reads a region first: the decoder cannot shrink on load then.
  const target = geometry.trim ? source : (geometry.resize ?? geometry);
  const frames = animated ? Math.max(1, source.frames) : 1;
  const resized = geometry.resize ? geometry.resize.width * geometry.resize.height : 0;
  const produced = Math.max(resized, geometry.width * geometry.height) * frames;
  return decodeCost(animated ? source : { ...source, frames: 1 }, target) + produced;
}

/**
 * Parsing and sanitising SVG is pure JavaScript at roughly 8 MB a second, about what decoding and
 * scaling four pixels per byte costs: a 10 MB document weighs as a 40 MP render (heavy), an icon as
 * nothing.
 */
export function svgCost(bytes: number): number {
  return bytes * 4;
}
