/**
 * Composition root of the server: config → stores → services → app → listen. Everything is built
 * here once and handed down; tests call `startServer` with their own config (and, to test expiry
 * without waiting, their own clock).
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { type LogDestination, buildApp } from './app.js';
import { type Config, defaultPublicUrl } from './config.js';
import { AccountService } from './domain/accounts.js';
import { AccountSettingsService } from './domain/account-settings.js';
import { DeliveryService } from './domain/delivery.js';
import { DirectUploadService } from './domain/direct-uploads.js';
import { ImageService } from './domain/images.js';
import { GarbageCollector } from './domain/garbage-collector.js';
import { sweepOrphanBlobs } from './domain/maintenance.js';
import { PublicUrls } from './domain/public-urls.js';
import { SigningKeyService } from './domain/signing-keys.js';
import { UrlFetcher } from './domain/url-fetch.js';
import { VariantService } from './domain/variants.js';
import { UploadGate } from './domain/upload-gate.js';
import { RenderPool } from './imaging/render-pool.js';
import { HeicDecoder } from './imaging/heic.js';
import { BatchTokenService } from './domain/batch-tokens.js';
import { RemoteOrigins } from './domain/remote-originals.js';
import { SvgWorkers } from './imaging/svg-workers.js';
import { ATTEMPTS_KEPT, AlertingService } from './domain/notifications/alerting.js';
import { WebhookDispatcher } from './domain/notifications/webhook-dispatcher.js';
import { WebhookSender } from './domain/notifications/webhook-sender.js';
import { PictorMetrics } from './observability/metrics.js';
import { isEmbedded, openStores } from './store/open.js';

/** How often expired direct-upload drafts are removed. */
const DRAFT_SWEEP_INTERVAL_MS = 60_000;
/** Finished webhook deliveries and attempts are kept this long (notification history). */
const WEBHOOK_HISTORY_MS = 30 * 86_400_000;
/** How often orphan originals and expired renders are collected. */
const GC_INTERVAL_MS = 3_600_000;

export interface RunningServer {
  app: FastifyInstance;
  /** Where the server listens, e.g. http://127.0.0.1:8080. */
  url: string;
  /** Set when this start created the first account of an empty data dir: shown once to the operator. */
  firstRun: { accountId: string; token: string } | undefined;
  close(): Promise<void>;
}

export interface ServerOptions {
  /** Unix milliseconds; injectable so tests can move time forward. */
  now?: () => number;
  /** Where log lines go instead of stdout (tests read the request log). */
  logDestination?: LogDestination;
}

export async function startServer(config: Config, options: ServerOptions = {}): Promise<RunningServer> {
  const now = options.now ?? Date.now;
  const stores = await openStores(config);
  // Embedded mode is one process per data dir, so nothing is uploading yet: safe to sweep. With a shared
  // database another node may be storing an upload right now, so this sweep is not for it.
  const orphans = isEmbedded(config) ? await sweepOrphanBlobs(stores.meta, stores.blobs) : 0;
  // Likewise the webhook deliveries a dead embedded process had claimed are sent again at once; on a
  // shared database they may be another node's, so their claims lapse by themselves.
  if (isEmbedded(config)) await stores.meta.notifications.releaseClaims();
  const accounts = new AccountService(stores.meta, now);
  // Once, however many nodes start together on an empty database.
  const firstRun = await stores.meta.runExclusive('bootstrap', async (): Promise<RunningServer['firstRun']> => {
    if (config.bootstrap) {
      await accounts.ensureBootstrap(config.bootstrap.accountId, config.bootstrap.token);
      return undefined;
    }
    if ((await accounts.listAccounts()).length > 0) return undefined;
    const account = await accounts.createAccount();
    const issued = await accounts.issueCredential({ accountId: account.id, permission: 'images:write', name: 'first run' });
    return { accountId: account.id, token: issued.secret };
  });

  const urls = new PublicUrls(config.publicUrl);
  const fetcher = new UrlFetcher({
    ...config.urlFetch,
    allowPrivate: config.allowPrivateUrls,
    maxBytes: config.limits.maxUploadBytes,
  });
  const rendering = config.rendering;
  // One pool weighs all image work (renders, upload checks, SVG sanitising) by its cost.
  const pool = new RenderPool({
    slots: rendering.concurrency,
    heavySlots: rendering.heavyConcurrency,
    heavyCost: rendering.heavyPixels,
    maxQueue: rendering.maxQueue,
    maxHeavyQueue: rendering.maxHeavyQueue,
    maxWaitMs: rendering.maxWaitMs,
  });
  sharp.concurrency(rendering.vipsThreads);
  const svgWorkers = new SvgWorkers(rendering.svgThreads);
  // HEIC decodes share the SVG workers' thread budget: both are rare, heavy, pure CPU work.
  const heic = new HeicDecoder(rendering.svgThreads);
  const metrics = new PictorMetrics({ pool });
  // Bound once the app (and its logger) exists.
  let cacheErrors = (_error: unknown, _operation: 'read' | 'write'): void => undefined;
  const delivery = new DeliveryService(stores.meta, stores.blobs, stores.renders, pool, svgWorkers, heic, {
    memoryCacheBytes: rendering.memoryCacheBytes,
    maxFlexiblePixels: rendering.maxFlexiblePixels,
    renderTimeoutSeconds: rendering.timeoutSeconds,
    onCacheError: (error, operation) => cacheErrors(error, operation),
    telemetry: metrics,
    remoteLimits: config.limits,
  });
  const remote = new RemoteOrigins(fetcher, stores.renders, { origins: config.remoteOrigins, now, memoryBytes: rendering.memoryCacheBytes });
  const images = new ImageService(stores.meta, stores.blobs, fetcher, urls, {
    limits: config.limits,
    probe: { limits: config.limits, svgLimits: config.svg, pool, svgWorkers, heic, timeoutSeconds: rendering.timeoutSeconds },
    imageQuota: config.imageQuota,
    now,
    telemetry: metrics,
    onCommitted: (image, bytes) => delivery.prepareMaster(image, bytes),
  });
  // Webhooks obey the address rules of URL uploads, with their own time limit.
  const webhookFetcher = new UrlFetcher({
    timeoutMs: config.webhooks.timeoutMs,
    maxRedirects: 0,
    allowPrivate: config.allowPrivateUrls,
    maxBytes: 64 * 1024,
  });
  const webhookSender = new WebhookSender(webhookFetcher, now);
  // Bound once the app (and its logger) exists.
  let dispatchErrors = (_error: unknown): void => undefined;
  const dispatcher = new WebhookDispatcher(stores.meta.notifications, webhookSender, {
    now,
    pollMs: config.webhooks.pollMs,
    // A claim outlives the POST it is for (cut off at the timeout), with room to record the attempt.
    leaseMs: config.webhooks.timeoutMs + 5000,
    retry: { baseMs: config.webhooks.retryBaseMs, maxMs: config.webhooks.retryMaxMs, windowMs: config.webhooks.retryWindowSeconds * 1000 },
    onError: (error) => dispatchErrors(error),
    telemetry: metrics,
  });
  const alerting = new AlertingService(stores.meta.notifications, webhookSender, now);
  const batchTokens = new BatchTokenService(stores.meta, { ttlMs: config.batch.tokenTtlSeconds * 1000, ratePerSecond: config.batch.ratePerSecond, now });
  const directUploads = new DirectUploadService(stores.meta, images, urls, {
    imageQuota: config.imageQuota,
    now,
    // A lease outlives the longest body the server accepts, plus time to check and store it.
    leaseMs: config.transport.requestTimeoutMs + 60_000,
    onNotified: () => dispatcher.nudge(),
  });
  const app = await buildApp(
    {
      accounts,
      images,
      directUploads,
      batchTokens,
      alerting,
      limits: config.limits,
      uploadGate: new UploadGate({
        maxInProgress: config.maxUploadsInProgress,
        maxWaiting: 8 * config.maxUploadsInProgress,
        maxWaitMs: config.uploadQueueWaitMs,
      }),
      variants: new VariantService(stores.meta, now),
      signingKeys: new SigningKeyService(stores.meta, now),
      settings: new AccountSettingsService(stores.meta),
      delivery,
      remote,
      now,
      dashboard: { enabled: config.dashboard, urls },
    },
    {
      logLevel: config.logLevel,
      transport: config.transport,
      logDestination: options.logDestination,
      batchPrefix: config.batch.prefix,
      observability: {
        metrics,
        metricsToken: config.metricsToken,
        readinessChecks: {
          metadata: () => stores.meta.ping(),
          blob: (signal) => stores.blobs.probe(signal),
          render_pool: () => {
            if (!pool.accepting) throw new Error('the render pool is closed or its queue is full');
          },
        },
      },
    },
  );
  if (orphans > 0) app.log.info({ orphans }, 'removed originals left by an interrupted upload');
  cacheErrors = (error, operation) => app.log.warn({ err: error, operation }, 'render cache unavailable; served without it');
  dispatchErrors = (error) => app.log.error({ err: error }, 'webhook delivery round failed; retried at the next poll');

  const garbage = new GarbageCollector(stores.meta, stores.blobs, stores.renders, {
    orphanGraceMs: config.orphanGraceSeconds * 1000,
    renderTtlMs: config.storage ? config.storage.renderTtlSeconds * 1000 : undefined,
    now,
  });
  // Drafts that expired while the server was down go before it answers anything.
  await directUploads.sweep();
  const sweepDrafts = (): void => {
    // One node at a time: the others skip the round.
    stores.meta.tryRunExclusive('drafts', () => directUploads.sweep()).catch((error: unknown) => app.log.error({ err: error }, 'draft sweep failed'));
    // Expired batch tokens and past rate windows; any node may do it (deletes are idempotent).
    batchTokens.sweep().catch((error: unknown) => app.log.error({ err: error }, 'batch token sweep failed'));
    stores.meta
      .tryRunExclusive('webhook-history', () => stores.meta.notifications.prune(now() - WEBHOOK_HISTORY_MS, ATTEMPTS_KEPT))
      .catch((error: unknown) => app.log.error({ err: error }, 'webhook history sweep failed'));
  };
  const collect = (): void => {
    garbage
      .collect()
      .then((done) => {
        if (done && (done.orphans > 0 || done.renders > 0)) app.log.info(done, 'garbage collected');
      })
      .catch((error: unknown) => app.log.error({ err: error }, 'garbage collection failed'));
  };
  const sweeper = setInterval(sweepDrafts, DRAFT_SWEEP_INTERVAL_MS);
  sweeper.unref();
  // The embedded server swept everything at start; shared stores are collected hourly by one node.
  const collector = setInterval(collect, GC_INTERVAL_MS);
  collector.unref();

  app.addHook('onClose', async () => {
    clearInterval(sweeper);
    clearInterval(collector);
    // Deliveries in flight finish (bounded by their timeout) and are recorded before the stores go.
    await dispatcher.close();
    await webhookFetcher.close();
    await fetcher.close();
    pool.close();
    await svgWorkers.close();
    await heic.close();
    // Render-cache writes finish after their answers: let them land before the stores go.
    await delivery.flush();
    await stores.close();
  });

  await app.listen({ host: config.host, port: config.port });
  dispatcher.start();
  const address = app.server.address() as AddressInfo;
  const url = defaultPublicUrl(config.host, address.port);
  urls.setBaseIfUnset(url);
  return { app, url, firstRun, close: () => closeGracefully(app, config.shutdownTimeoutSeconds * 1000) };
}

/** How often, while stopping, connections that went idle are looked for and closed. */
const REAP_INTERVAL_MS = 100;

/**
 * Stops accepting, lets in-flight requests finish, and closes keep-alive connections as they go idle
 * (Fastify closes only those idle at the moment close starts; a client holding one open would
 * otherwise keep the server up until its keep-alive timeout). Node's idle test misses some kept-alive
 * sockets, so once no request is in progress every remaining connection is closed. A request arriving
 * meanwhile on a kept-alive connection is answered 503 (`return503OnClosing`).
 *
 * After `timeoutMs` the connections of requests still in progress are closed too (a body trickling in
 * would otherwise hold the server up to the request timeout). For those clients that is a cut
 * connection, as in a crash, and leaves nothing half visible: an original is durable before its row
 * commits, and an original whose row never committed is swept at the next start or by the collector.
 * Fastify's `onClose` hooks, which close the stores, run once every connection is gone.
 */
async function closeGracefully(app: FastifyInstance, timeoutMs: number): Promise<void> {
  const reaper = setInterval(() => {
    if (app.requestsInFlight() === 0) app.server.closeAllConnections();
    else app.server.closeIdleConnections();
  }, REAP_INTERVAL_MS);
  const deadline = setTimeout(() => {
    app.log.warn(
      { requestsInFlight: app.requestsInFlight(), timeoutSeconds: timeoutMs / 1000 },
      'shutdown timeout: closing the connections of requests still in progress',
    );
    app.server.closeAllConnections();
  }, timeoutMs);
  try {
    await app.close();
  } finally {
    clearInterval(reaper);
    clearTimeout(deadline);
  }
}
