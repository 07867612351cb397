/**
 * The five surfaces one server answers on, told apart by path prefix as their routes are mounted: the
 * account API (`/client/v4`), the direct-upload host (`/upload/`), the operator routes (`/health`,
 * `/ready`, `/metrics`), the web dashboard (`/dashboard`) and delivery (everything else). Errors,
 * metrics and logs all use this one map.
 */
export type Surface = 'api' | 'upload_host' | 'ops' | 'dashboard' | 'delivery';

export const OPS_PATHS = ['/health', '/ready', '/metrics'] as const;

const API_PREFIX = '/client/v4';
const UPLOAD_HOST_PREFIX = '/upload/';
const DASHBOARD_PREFIX = '/dashboard';
const SLASH = 47;
const QUESTION_MARK = 63;

function isPathOrQuery(url: string, path: string): boolean {
  return url.startsWith(path) && (url.length === path.length || url.charCodeAt(path.length) === QUESTION_MARK);
}

/**
 * The batch host's path prefix (PICTOR_BATCH_URL's path): its routes are the account API's, so they
 * answer as the `api` surface. Set once by the app as it is built (one batch prefix per process).
 */
let batchPrefix = '/batch';

export function setBatchPrefix(prefix: string): void {
  batchPrefix = prefix;
}

/** The surface a raw URL belongs to. Cheap: it runs for every answer. */
export function surfaceOf(url: string): Surface {
  if (url.startsWith(batchPrefix)) {
    const next = url.charCodeAt(batchPrefix.length);
    if (next === SLASH || next === QUESTION_MARK || url.length === batchPrefix.length) return 'api';
  }
  if (url.startsWith(API_PREFIX)) {
    const next = url.charCodeAt(API_PREFIX.length);
    if (url.length === API_PREFIX.length || next === SLASH || next === QUESTION_MARK) return 'api';
  }
  if (url.startsWith(UPLOAD_HOST_PREFIX)) return 'upload_host';
  for (const path of OPS_PATHS) if (isPathOrQuery(url, path)) return 'ops';
  if (url.startsWith(DASHBOARD_PREFIX)) {
    const next = url.charCodeAt(DASHBOARD_PREFIX.length);
    if (url.length === DASHBOARD_PREFIX.length || next === SLASH || next === QUESTION_MARK) return 'dashboard';
  }
  return 'delivery';
}
