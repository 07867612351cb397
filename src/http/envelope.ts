/** Cloudflare's JSON envelope: `{success, errors, messages, result}` (+ `result_info` on lists). */
import { type ErrorChainItem, PictorError } from '../errors.js';

export interface Envelope<T> {
  success: boolean;
  errors: Array<{ code: number; message: string; error_chain?: ErrorChainItem[] }>;
  messages: Array<{ code: number; message: string }>;
  result: T | null;
  result_info?: unknown;
}

export function success<T>(
  result: T,
  resultInfo?: unknown,
  messages: Array<{ code: number; message: string }> = [],
): Envelope<T> & { success: true } {
  return {
    success: true as const,
    errors: [],
    messages,
    result,
    ...(resultInfo !== undefined && { result_info: resultInfo }),
  };
}

export function failure(error: PictorError): Envelope<null> {
  return {
    success: false,
    errors: [{ code: error.code, message: error.message, ...(error.chain && { error_chain: error.chain }) }],
    messages: [],
    result: null,
  };
}

/** Headers that go with an error: no SDK retry of conflicts; Retry-After when overloaded. */
export function errorHeaders(error: PictorError): Record<string, string> {
  const headers: Record<string, string> = {};
  if (error.status === 409) headers['x-should-retry'] = 'false';
  if (error.retryAfter !== undefined) headers['retry-after'] = String(error.retryAfter);
  return headers;
}
