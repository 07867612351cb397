/**
 * Output geometry computed in one place, from the displayed source size and the plan, before any pixel
 * is touched: the format negotiation needs the output size up front (AVIF only up to 1200 px) and the
 * pipeline then applies exactly these numbers. Fit semantics follow Cloudflare:
 * scale-down never enlarges; contain fits inside; cover fills the box and crops; crop is cover that never
 * enlarges; pad fits inside then fills the box with the background; squeeze stretches to the box.
 */
import { PictorError } from '../errors.js';
import { MAX_OUTPUT_SIDE, type Gravity, type RenderPlan } from './plan.js';

export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface Geometry {
  /** Region kept from the oriented source (trim), before rotation. */
  trim?: Rect;
  /**
   * The same region in the coordinates of the source once flipped and rotated, when there is a rotation.
   * With a rotation sharp flips and rotates before it extracts (an extract of the unrotated region fails
   * with "bad extract area" once the pipeline also resizes), so the pipeline extracts this instead.
   */
  orientedTrim?: Rect;
  /** Exact size the (trimmed, rotated) image is scaled to; absent when the size does not change. */
  resize?: { width: number; height: number };
  /** Region kept after scaling: a rectangle, or "the most interesting" one of this size (gravity=auto). */
  crop?: Rect | { attention: true; width: number; height: number };
  /** Borders added after scaling (fit=pad). */
  pad?: { top: number; right: number; bottom: number; left: number };
  width: number;
  height: number;
}

const MAX_OUTPUT_PIXELS = 100_000_000;

function invalid(message: string): PictorError {
  return new PictorError(9401, message);
}

function trimRect(width: number, height: number, plan: RenderPlan): Rect | undefined {
  const trim = plan.trim;
  if (!trim) return undefined;
  let rect: Rect;
  if ('right' in trim) {
    rect = { left: trim.left, top: trim.top, width: width - trim.left - trim.right, height: height - trim.top - trim.bottom };
  } else {
    const left = trim.left ?? 0;
    const top = trim.top ?? 0;
    rect = { left, top, width: trim.width ?? width - left, height: trim.height ?? height - top };
  }
  if (rect.width < 1 || rect.height < 1 || rect.left + rect.width > width || rect.top + rect.height > height) {
    throw invalid('trim removes the whole image');
  }
  return rect;
}

function offset(free: number, gravity: Gravity, axis: 'x' | 'y'): number {
  if (free <= 0) return 0;
  if (gravity.kind === 'point') return Math.min(free, Math.max(0, Math.round((axis === 'x' ? gravity.x : gravity.y) * free)));
  if (gravity.kind === 'auto') return Math.floor(free / 2);
  const side = gravity.side;
  if ((axis === 'x' && side === 'left') || (axis === 'y' && side === 'top')) return 0;
  if ((axis === 'x' && side === 'right') || (axis === 'y' && side === 'bottom')) return free;
  return Math.floor(free / 2);
}

function scaled(width: number, height: number, ratio: number): { width: number; height: number } {
  return { width: Math.max(1, Math.round(width * ratio)), height: Math.max(1, Math.round(height * ratio)) };
}

function cropTo(
  size: { width: number; height: number },
  box: { width: number; height: number },
  gravity: Gravity,
): Rect | { attention: true; width: number; height: number } | undefined {
  const width = Math.min(box.width, size.width);
  const height = Math.min(box.height, size.height);
  if (width === size.width && height === size.height) return undefined;
  if (gravity.kind === 'auto') return { attention: true, width, height };
  if (gravity.kind === 'point') {
    // The focal point should stay as close to the middle of the crop as the image allows.
    const left = Math.round(gravity.x * size.width - width / 2);
    const top = Math.round(gravity.y * size.height - height / 2);
    return {
      left: Math.min(size.width - width, Math.max(0, left)),
      top: Math.min(size.height - height, Math.max(0, top)),
      width,
      height,
    };
  }
  return {
    left: offset(size.width - width, gravity, 'x'),
    top: offset(size.height - height, gravity, 'y'),
    width,
    height,
  };
}

/** `rect` of a `width`x`height` image, after the image is turned clockwise by `angle`. */
function rotateRect(rect: Rect, width: number, height: number, angle: 90 | 180 | 270): Rect {
  switch (angle) {
    case 90:
      return { left: height - rect.top - rect.height, top: rect.left, width: rect.height, height: rect.width };
    case 180:
      return { left: width - rect.left - rect.width, top: height - rect.top - rect.height, width: rect.width, height: rect.height };
    case 270:
      return { left: rect.top, top: width - rect.left - rect.width, width: rect.height, height: rect.width };
  }
}

/** Where `rect` of a `width`x`height` image lands once the image is flipped, then rotated (Cloudflare's order). */
function orientRect(rect: Rect, width: number, height: number, plan: RenderPlan): Rect {
  let flipped = rect;
  if (plan.flip === 'h' || plan.flip === 'hv') flipped = { ...flipped, left: width - flipped.left - flipped.width };
  if (plan.flip === 'v' || plan.flip === 'hv') flipped = { ...flipped, top: height - flipped.top - flipped.height };
  return plan.rotate ? rotateRect(flipped, width, height, plan.rotate) : flipped;
}

export function computeGeometry(sourceWidth: number, sourceHeight: number, plan: RenderPlan): Geometry {
  const trim = trimRect(sourceWidth, sourceHeight, plan);
  let width = trim?.width ?? sourceWidth;
  let height = trim?.height ?? sourceHeight;
  if (plan.rotate === 90 || plan.rotate === 270) [width, height] = [height, width];

  const orientedTrim = trim && plan.rotate ? orientRect(trim, sourceWidth, sourceHeight, plan) : undefined;
  const geometry: Geometry = { ...(trim && { trim }), ...(orientedTrim && { orientedTrim }), width, height };
  const boxW = plan.width;
  const boxH = plan.height;
  const enlarges = plan.fit !== 'scale-down' && plan.fit !== 'crop';

  let size = { width, height };
  if (boxW !== undefined && boxH !== undefined) {
    switch (plan.fit) {
      case 'scale-down':
      case 'contain':
      case 'pad': {
        const fitRatio = Math.min(boxW / width, boxH / height);
        size = scaled(width, height, enlarges ? fitRatio : Math.min(1, fitRatio));
        if (plan.fit === 'pad') {
          const padX = Math.max(0, boxW - size.width);
          const padY = Math.max(0, boxH - size.height);
          if (padX > 0 || padY > 0) {
            const left = offset(padX, plan.gravity, 'x');
            const top = offset(padY, plan.gravity, 'y');
            geometry.pad = { top, bottom: padY - top, left, right: padX - left };
          }
        }
        break;
      }
      case 'squeeze':
        size = { width: boxW, height: boxH };
        break;
      case 'cover':
      case 'crop': {
        const fills = width <= boxW && height <= boxH;
        if (plan.fit === 'crop' && fills) break; // smaller than the box: unchanged, like scale-down
        const coverRatio = Math.max(boxW / width, boxH / height);
        size = scaled(width, height, plan.fit === 'crop' ? Math.min(1, coverRatio) : coverRatio);
        const crop = cropTo(size, { width: boxW, height: boxH }, plan.gravity);
        if (crop) geometry.crop = crop;
        break;
      }
    }
  } else if (boxW !== undefined || boxH !== undefined) {
    const ratio = boxW !== undefined ? boxW / width : (boxH as number) / height;
    size = scaled(width, height, enlarges ? ratio : Math.min(1, ratio));
  }

  if (size.width !== width || size.height !== height) geometry.resize = size;
  const crop = geometry.crop;
  let outWidth = crop ? crop.width : size.width;
  let outHeight = crop ? crop.height : size.height;
  if (geometry.pad) {
    outWidth += geometry.pad.left + geometry.pad.right;
    outHeight += geometry.pad.top + geometry.pad.bottom;
  }
  if (outWidth > MAX_OUTPUT_SIDE || outHeight > MAX_OUTPUT_SIDE || outWidth * outHeight > MAX_OUTPUT_PIXELS) {
    throw invalid(`The output would be ${outWidth}x${outHeight}, larger than allowed`);
  }
  geometry.width = outWidth;
  geometry.height = outHeight;
  return geometry;
}
