/**
 * Output format choice. `format=auto` (the default for named and flexible variants): AVIF when the client
 * accepts it and the output is at most 1200 px per side and still, else WebP when accepted, else the
 * original's format. JPEG XL is never chosen (libvips here cannot encode it). SVG stays SVG.
 */
import type { RenderPlan } from './plan.js';

export type OutputFormat = 'avif' | 'webp' | 'jpeg' | 'png' | 'gif' | 'svg' | 'json';

export interface FormatChoice {
  format: OutputFormat;
  /** The choice depended on the Accept header (the response must say `Vary: Accept`). */
  negotiated: boolean;
  /** Baseline instead of progressive JPEG. */
  baseline: boolean;
}

export const AVIF_MAX_SIDE = 1200;

export const CONTENT_TYPES: Record<OutputFormat, string> = {
  avif: 'image/avif',
  webp: 'image/webp',
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  json: 'application/json',
};

/** True when `accept` lists `type` with a non-zero quality. */
export function accepts(accept: string, type: string): boolean {
  return accept.split(',').some((entry) => {
    const [mediaType = '', ...params] = entry.trim().split(';');
    if (mediaType.trim().toLowerCase() !== type) return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

function originalFormat(contentType: string, animated: boolean): OutputFormat {
  if (contentType === 'image/jpeg') return 'jpeg';
  if (contentType === 'image/gif') return 'gif';
  if (contentType === 'image/png') return 'png';
  // Browsers cannot show HEIC: a photo format gets JPEG.
  if (contentType === 'image/heic') return 'jpeg';
  // WebP or AVIF to a client that takes neither: GIF keeps an animation, PNG keeps transparency.
  return animated ? 'gif' : 'png';
}

export function chooseFormat(
  plan: RenderPlan,
  source: { contentType: string; frames: number },
  output: { width: number; height: number },
  accept: string,
): FormatChoice {
  const still = { negotiated: false, baseline: false };
  if (source.contentType === 'image/svg+xml') return { format: 'svg', ...still };
  const animated = source.frames > 1 && plan.anim;
  switch (plan.format) {
    case 'json':
      return { format: 'json', ...still };
    case 'avif':
    case 'webp':
    case 'jpeg':
    case 'png':
      return { format: plan.format, ...still };
    case 'baseline-jpeg':
      return { format: 'jpeg', negotiated: false, baseline: true };
    case 'auto': {
      const small = output.width <= AVIF_MAX_SIDE && output.height <= AVIF_MAX_SIDE;
      if (!animated && small && accepts(accept, 'image/avif')) return { format: 'avif', negotiated: true, baseline: false };
      if (accepts(accept, 'image/webp')) return { format: 'webp', negotiated: true, baseline: false };
      return { format: originalFormat(source.contentType, animated), negotiated: true, baseline: false };
    }
  }
}
