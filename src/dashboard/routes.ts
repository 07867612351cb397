/**
 * The web dashboard (`/dashboard`): a static single-page app built from dashboard/src into
 * dist/dashboard-ui by `npm run build`. It talks to this server only through the public account API, so
 * this adapter just serves files: index.html uncached, the content-hashed bundles as immutable. Every
 * answer carries a strict Content-Security-Policy (no inline code; connections only to this origin and
 * the public URL the API hands out for uploads and deliveries) and refuses framing.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { PublicUrls } from '../domain/public-urls.js';
import { PictorError } from '../errors.js';

export const DASHBOARD_PATH = '/dashboard';
const DEFAULT_BUILD_DIR = path.resolve(import.meta.dirname, '../../dist/dashboard-ui');
const ASSET_NAME = /^[A-Za-z0-9_-]+\.(js|css|map)$/;
const CONTENT_TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  map: 'application/json; charset=utf-8',
};

export interface DashboardDependencies {
  dashboard: {
    enabled: boolean;
    urls: PublicUrls;
    /** Where the built dashboard is (default dist/dashboard-ui). */
    buildDir?: string;
  };
}

/** The origin of the public URL, when it differs from the page's own (a CDN or another host name). */
function publicOrigin(urls: PublicUrls): string | undefined {
  try {
    return new URL(urls.baseUrl).origin;
  } catch {
    return undefined;
  }
}

function contentSecurityPolicy(urls: PublicUrls): string {
  const origin = publicOrigin(urls);
  const extra = origin === undefined ? '' : ` ${origin}`;
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' blob: data:${extra}`,
    `connect-src 'self'${extra}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function secure(reply: FastifyReply, urls: PublicUrls): FastifyReply {
  return reply
    .header('content-security-policy', contentSecurityPolicy(urls))
    .header('x-frame-options', 'DENY')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin');
}

/** The built files, read once: the build is immutable while the server runs. */
function loadBuild(dir: string): { index: Buffer; assets: Map<string, Buffer> } | undefined {
  const indexFile = path.join(dir, 'index.html');
  if (!fs.existsSync(indexFile)) return undefined;
  const assetsDir = path.join(dir, 'assets');
  const assets = new Map<string, Buffer>();
  for (const name of fs.existsSync(assetsDir) ? fs.readdirSync(assetsDir) : []) {
    if (ASSET_NAME.test(name)) assets.set(name, fs.readFileSync(path.join(assetsDir, name)));
  }
  return { index: fs.readFileSync(indexFile), assets };
}

export async function dashboardPlugin(app: FastifyInstance, deps: DashboardDependencies): Promise<void> {
  const { enabled, urls, buildDir = DEFAULT_BUILD_DIR } = deps.dashboard;
  if (!enabled) return;
  const build = loadBuild(buildDir);

  const page = async (_request: unknown, reply: FastifyReply): Promise<FastifyReply> => {
    if (!build) throw new PictorError(5503, 'The dashboard is not built: run `npm run build`');
    return secure(reply, urls).header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(build.index);
  };
  app.get(DASHBOARD_PATH, page);
  app.get(`${DASHBOARD_PATH}/`, page);
  app.get<{ Params: { file: string } }>(`${DASHBOARD_PATH}/assets/:file`, async (request, reply) => {
    const name = request.params.file;
    const bytes = ASSET_NAME.test(name) ? build?.assets.get(name) : undefined;
    if (!bytes) throw new PictorError(7003, `No dashboard file ${name}`);
    const extension = name.slice(name.lastIndexOf('.') + 1);
    return secure(reply, urls)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .type(CONTENT_TYPES[extension] ?? 'application/octet-stream')
      .send(bytes);
  });
}
