/**
 * Delivery routes: `/<account_hash>/<image_id>/<variant>` and the same under `/cdn-cgi/imagedelivery`,
 * and remote transformations under `/cdn-cgi/image`, GET and HEAD. Errors are plain text `ERROR <code>: <message>` with `Cf-Resized: err=<code>`, as
 * imagedelivery.net answers.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Delivery, DeliveryService, ServedRendition } from '../domain/delivery.js';
import type { RemoteOrigins } from '../domain/remote-originals.js';
import type { DeliveryLayer } from '../domain/telemetry.js';
import { PictorError } from '../errors.js';

const CUSTOM_DOMAIN_PREFIX = '/cdn-cgi/imagedelivery';

/** How a delivery was answered when it succeeded: the layer that served the bytes, or a 304. */
export type DeliveryOutcome = DeliveryLayer | 'not_modified';

declare module 'fastify' {
  interface FastifyReply {
    /** Set by the delivery routes on success (read by metrics and the request log). */
    deliveryOutcome: DeliveryOutcome | undefined;
  }
}

export interface DeliveryDependencies {
  delivery: DeliveryService;
  remote: RemoteOrigins;
  now: () => number;
}

const REMOTE_PREFIX = '/cdn-cgi/image/';

/**
 * `/cdn-cgi/image/<options>/<source>`: the options segment and the source as written (its own query
 * string included). A proxy may have collapsed the source's `//` (`https:/host`): restored here. A path
 * (`/uploads/a.jpg`) is taken relative to the first allowed origin, as Cloudflare takes it relative to
 * the zone.
 */
function parseRemoteTarget(rawUrl: string, remote: RemoteOrigins): { options: string; source: URL; redirect: boolean } {
  const rest = rawUrl.slice(REMOTE_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) throw new PictorError(9401, 'Expected /cdn-cgi/image/<options>/<source URL>', { status: 400 });
  let options: string;
  try {
    options = decodeURIComponent(rest.slice(0, slash));
  } catch {
    throw new PictorError(9401, 'The options are not correctly percent-encoded', { status: 400 });
  }
  let source = rest.slice(slash + 1).replace(/^(https?):\/(?!\/)/i, '$1://');
  if (!/^https?:\/\//i.test(source)) source = `${remote.defaultOrigin ?? 'http://invalid'}/${source.replace(/^\/+/, '')}`;
  const redirect = options.split(',').some((option) => option.trim() === 'onerror=redirect');
  return { options, source: remote.checkedUrl(source), redirect };
}

/** If-None-Match uses the weak comparison (RFC 9110 §13.1.2): `W/"x"` matches `"x"`. */
function notModified(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  return ifNoneMatch.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed.replace(/^W\//, '') === etag;
  });
}

/** Splits the raw URL into the parts a delivery needs; ids keep their `/`. */
function parseTarget(rawUrl: string): { accountHash: string; imageId: string; variant: string; signedPath: string; rawQuery: string } {
  const queryStart = rawUrl.indexOf('?');
  const path = queryStart === -1 ? rawUrl : rawUrl.slice(0, queryStart);
  const rawQuery = queryStart === -1 ? '' : rawUrl.slice(queryStart + 1);
  const signedPath = path.startsWith(`${CUSTOM_DOMAIN_PREFIX}/`) ? path.slice(CUSTOM_DOMAIN_PREFIX.length) : path;
  const segments = signedPath.split('/').slice(1);
  if (segments.length < 3 || segments.some((s) => s === '')) throw new PictorError(9431, 'Not found');
  try {
    return {
      accountHash: decodeURIComponent(segments[0] as string),
      imageId: segments.slice(1, -1).map(decodeURIComponent).join('/'),
      variant: segments[segments.length - 1] as string,
      signedPath,
      rawQuery,
    };
  } catch {
    throw new PictorError(9431, 'The URL is not correctly percent-encoded');
  }
}

export async function deliveryPlugin(app: FastifyInstance, deps: DeliveryDependencies): Promise<void> {
  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const target = parseTarget(request.raw.url ?? '/');
    const delivery = await deps.delivery.resolve({
      ...target,
      accept: request.headers.accept ?? '',
      now: deps.now(),
    });
    reply.header('etag', delivery.etag).header('cache-control', delivery.cacheControl);
    if (delivery.varyAccept) reply.header('vary', 'Accept');
    if (notModified(request.headers['if-none-match'], delivery.etag)) {
      reply.deliveryOutcome = 'not_modified';
      return reply.code(304).send();
    }
    const { bytes, layer } = await deps.delivery.serve(delivery);
    reply.deliveryOutcome = layer;
    reply.header('x-content-type-options', 'nosniff');
    if (delivery.contentType === 'image/svg+xml') {
      reply.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'");
    }
    return reply.type(delivery.contentType).header('content-length', bytes.length).send(bytes);
  };

  const remoteHandler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    if (!deps.remote.enabled) throw new PictorError(9401, 'Remote transformations are not enabled (PICTOR_REMOTE_ORIGINS)', { status: 403 });
    // A transformation of a transformation (our own fetch, or another resizer's) is a loop.
    if (/image-resizing/i.test(String(request.headers.via ?? ''))) throw new PictorError(9403);
    const target = parseRemoteTarget(request.raw.url ?? '/', deps.remote);
    let delivery: Delivery;
    let served: ServedRendition | undefined;
    try {
      const source = await deps.remote.source(target.source);
      delivery = await deps.delivery.resolveRemote({ source, options: target.options, accept: request.headers.accept ?? '' });
      if (!notModified(request.headers['if-none-match'], delivery.etag)) served = await deps.delivery.serve(delivery);
    } catch (error) {
      // `onerror=redirect`: whatever went wrong, send the client to the untransformed source.
      if (target.redirect) return reply.code(302).header('location', target.source.toString()).header('cache-control', 'no-store').send();
      throw error;
    }
    reply.header('etag', delivery.etag).header('cache-control', delivery.cacheControl);
    if (delivery.varyAccept) reply.header('vary', 'Accept');
    if (!served) {
      reply.deliveryOutcome = 'not_modified';
      return reply.code(304).send();
    }
    reply.deliveryOutcome = served.layer;
    reply.header('x-content-type-options', 'nosniff');
    if (delivery.contentType === 'image/svg+xml') reply.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'");
    return reply.type(delivery.contentType).header('content-length', served.bytes.length).send(served.bytes);
  };
  app.route({ method: ['GET', 'HEAD'], url: `${REMOTE_PREFIX}*`, handler: remoteHandler, exposeHeadRoute: false });

  // HEAD is declared with GET (not Fastify's generated HEAD route), so a 304 to HEAD carries no
  // Content-Length and a 200 carries the real one; Node drops the body of HEAD answers itself.
  app.route({ method: ['GET', 'HEAD'], url: `${CUSTOM_DOMAIN_PREFIX}/*`, handler, exposeHeadRoute: false });
  app.route({ method: ['GET', 'HEAD'], url: '/*', handler, exposeHeadRoute: false });
}
