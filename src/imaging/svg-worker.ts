/**
 * Worker-thread entry (run by piscina, see svg-workers.ts): inspects one SVG. Results cross the thread
 * boundary as plain objects, so a refusal is returned, not thrown.
 */
import { type SvgLimits, SvgRefusal, inspectSvg } from './svg.js';

export interface SvgTask {
  bytes: Uint8Array;
  limits: SvgLimits;
}

export type SvgTaskResult =
  | { ok: true; sanitized: Uint8Array; width: number; height: number }
  | { ok: false; kind: SvgRefusal['kind']; message: string };

export default function inspect(task: SvgTask): SvgTaskResult {
  try {
    const result = inspectSvg(Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength), task.limits);
    return { ok: true, sanitized: result.sanitized, width: result.width, height: result.height };
  } catch (error) {
    if (error instanceof SvgRefusal) return { ok: false, kind: error.kind, message: error.message };
    return { ok: false, kind: 'invalid', message: 'The SVG document could not be parsed' };
  }
}
