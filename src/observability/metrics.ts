/**
 * Prometheus metrics of one server, in a registry of its own (several servers may share a process, as
 * in the tests). Counters on hot paths are bound to their labels once, so a request costs a few
 * additions and no label objects; gauges of the render pool and libvips are read at scrape time.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import sharp from 'sharp';
import type { DeliveryOutcome } from '../delivery/routes.js';
import type {
  DeliveryTelemetry,
  RenderStage,
  SignedUrlDenial,
  UploadChannel,
  UploadTelemetry,
  WebhookAttemptOutcome,
  WebhookTelemetry,
} from '../domain/telemetry.js';
import type { RenderPool } from '../imaging/render-pool.js';

/** The HTTP surfaces: account API, delivery, the direct-upload host, and health/readiness/metrics. */
import type { Surface } from '../http/surfaces.js';

export type { Surface };

const DELIVERY_OUTCOMES: readonly DeliveryOutcome[] = ['memory', 'render_cache', 'render', 'coalesced', 'not_modified'];
const RENDER_STAGES: readonly RenderStage[] = ['queue_wait', 'storage_read', 'transform_encode', 'svg_sanitize'];
const DENIALS: readonly SignedUrlDenial[] = ['missing', 'malformed', 'expired', 'mismatch'];
const UPLOAD_CHANNELS: readonly UploadChannel[] = ['api', 'upload_host'];

/** From a cached delivery (about a millisecond) to a slow upload. */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** From reading a small original to a render stopped at its deadline. */
const STAGE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30];

const MEGABYTE = 1024 * 1024;

interface RequestSeries {
  count: Counter.Internal;
  seconds: Histogram.Internal<'surface' | 'status'>;
}

/** One bound child per label value, made up front; each series is exported (at 0) from the start, so rates work at once. */
function counterChildren<K extends string>(counter: Counter<string>, values: readonly K[]): Record<K, Counter.Internal> {
  return Object.fromEntries(
    values.map((value) => {
      const child = counter.labels(value);
      child.inc(0);
      return [value, child];
    }),
  ) as Record<K, Counter.Internal>;
}

const WEBHOOK_OUTCOMES: readonly WebhookAttemptOutcome[] = ['delivered', 'retry', 'failed'];

export class PictorMetrics implements DeliveryTelemetry, UploadTelemetry, WebhookTelemetry {
  readonly registry = new Registry();
  private readonly requests: Counter<'surface' | 'status'>;
  private readonly requestSeconds: Histogram<'surface' | 'status'>;
  /** Per surface, the series of each status code seen so far. */
  private readonly requestSeries: Record<Surface, Map<number, RequestSeries>>;
  private readonly outcomes: Record<DeliveryOutcome, Counter.Internal>;
  private readonly stages: Record<RenderStage, Histogram.Internal<'stage'>>;
  private readonly denials: Record<SignedUrlDenial, Counter.Internal>;
  private readonly uploadsAccepted: Record<UploadChannel, Counter.Internal>;
  private readonly uploadBytes: Record<UploadChannel, Counter.Internal>;
  private readonly uploadRefusals: Counter<'surface' | 'code'>;
  private readonly webhookAttempts: Record<WebhookAttemptOutcome, Counter.Internal>;
  private readonly webhookSeconds: Histogram;

  constructor(sources: { pool: RenderPool }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'pictor_' });

    this.requests = new Counter({
      name: 'pictor_http_requests_total',
      help: 'HTTP requests answered, by surface and status code',
      labelNames: ['surface', 'status'],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'pictor_http_request_duration_seconds',
      help: 'Time from receiving a request to the end of its answer, by surface and status code',
      labelNames: ['surface', 'status'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.requestSeries = {
      api: new Map<number, RequestSeries>(),
      delivery: new Map<number, RequestSeries>(),
      upload_host: new Map<number, RequestSeries>(),
      ops: new Map<number, RequestSeries>(),
      dashboard: new Map<number, RequestSeries>(),
    };

    const outcomes = new Counter({
      name: 'pictor_delivery_outcomes_total',
      help: 'Successful deliveries by where the bytes came from (memory, render_cache, render, coalesced) or not_modified (304)',
      labelNames: ['outcome'],
      registers,
    });
    this.outcomes = counterChildren(outcomes, DELIVERY_OUTCOMES);

    const stages = new Histogram({
      name: 'pictor_render_stage_duration_seconds',
      help: 'Time spent in each stage of producing a rendition: queue_wait, storage_read, transform_encode, svg_sanitize',
      labelNames: ['stage'],
      buckets: STAGE_BUCKETS,
      registers,
    });
    this.stages = Object.fromEntries(
      RENDER_STAGES.map((stage) => {
        stages.zero({ stage });
        return [stage, stages.labels(stage)];
      }),
    ) as Record<RenderStage, Histogram.Internal<'stage'>>;

    const denials = new Counter({
      name: 'pictor_signed_url_denials_total',
      help: 'Deliveries refused for a missing, malformed, expired or mismatching signature (403 9425)',
      labelNames: ['reason'],
      registers,
    });
    this.denials = counterChildren(denials, DENIALS);

    const accepted = new Counter({
      name: 'pictor_uploads_accepted_total',
      help: 'Originals stored and committed, by surface (api, upload_host)',
      labelNames: ['surface'],
      registers,
    });
    this.uploadsAccepted = counterChildren(accepted, UPLOAD_CHANNELS);
    const bytes = new Counter({
      name: 'pictor_upload_accepted_bytes_total',
      help: 'Bytes of the originals stored and committed, by surface (api, upload_host)',
      labelNames: ['surface'],
      registers,
    });
    this.uploadBytes = counterChildren(bytes, UPLOAD_CHANNELS);
    this.uploadRefusals = new Counter({
      name: 'pictor_upload_refusals_total',
      help: 'Uploads answered with an error, by surface (api, upload_host) and Pictor error code',
      labelNames: ['surface', 'code'],
      registers,
    });

    const attempts = new Counter({
      name: 'pictor_webhook_attempts_total',
      help: 'Webhook POSTs made, by what became of the delivery (delivered, retry, failed: given up)',
      labelNames: ['outcome'],
      registers,
    });
    this.webhookAttempts = counterChildren(attempts, WEBHOOK_OUTCOMES);
    this.webhookSeconds = new Histogram({
      name: 'pictor_webhook_attempt_seconds',
      help: 'How long webhook receivers took to answer (or to fail)',
      buckets: STAGE_BUCKETS,
      registers,
    });

    this.registerPoolGauges(sources.pool);
    this.registerVipsGauges();
  }

  webhookAttempt(outcome: WebhookAttemptOutcome, seconds: number): void {
    this.webhookAttempts[outcome].inc();
    this.webhookSeconds.observe(seconds);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  requestCompleted(surface: Surface, status: number, seconds: number): void {
    const bySurface = this.requestSeries[surface];
    let series = bySurface.get(status);
    if (series === undefined) {
      const label = String(status);
      series = { count: this.requests.labels(surface, label), seconds: this.requestSeconds.labels(surface, label) };
      bySurface.set(status, series);
    }
    series.count.inc();
    series.seconds.observe(seconds);
  }

  deliveryCompleted(outcome: DeliveryOutcome): void {
    this.outcomes[outcome].inc();
  }

  uploadRefused(channel: UploadChannel, code: number): void {
    this.uploadRefusals.labels(channel, String(code)).inc();
  }

  uploadAccepted(channel: UploadChannel, bytes: number): void {
    this.uploadsAccepted[channel].inc();
    this.uploadBytes[channel].inc(bytes);
  }

  renderStage(stage: RenderStage, seconds: number): void {
    this.stages[stage].observe(seconds);
  }

  signedUrlDenied(reason: SignedUrlDenial): void {
    this.denials[reason].inc();
  }

  /** All image work goes through the pool: renders, upload checks, SVG sanitising. */
  private registerPoolGauges(pool: RenderPool): void {
    const registers = [this.registry];
    new Gauge({
      name: 'pictor_render_queue_depth',
      help: 'Image jobs waiting for a slot of the render pool, by weight (light, heavy)',
      labelNames: ['weight'],
      registers,
      collect() {
        const stats = pool.stats;
        this.set({ weight: 'light' }, stats.queued - stats.queuedHeavy);
        this.set({ weight: 'heavy' }, stats.queuedHeavy);
      },
    });
    new Gauge({
      name: 'pictor_renders_in_progress',
      help: 'Image jobs holding a slot of the render pool, by weight (light, heavy)',
      labelNames: ['weight'],
      registers,
      collect() {
        const stats = pool.stats;
        this.set({ weight: 'light' }, stats.running - stats.runningHeavy);
        this.set({ weight: 'heavy' }, stats.runningHeavy);
      },
    });
    const capacity = pool.capacity;
    new Gauge({ name: 'pictor_render_slots', help: 'Image jobs the render pool runs at once', registers }).set(capacity.slots);
    new Gauge({ name: 'pictor_render_heavy_slots', help: 'Of those, heavy jobs at once', registers }).set(capacity.heavySlots);
  }

  /** Requests being handled right now, every surface (read at scrape time from the transport guard). */
  observeRequestsInFlight(count: () => number): void {
    new Gauge({
      name: 'pictor_http_requests_in_flight',
      help: 'Requests received and not yet answered (this scrape included)',
      registers: [this.registry],
      collect() {
        this.set(count());
      },
    });
  }

  /** libvips keeps its own accounts (sharp reports memory rounded to whole megabytes). */
  private registerVipsGauges(): void {
    const registers = [this.registry];
    new Gauge({
      name: 'pictor_vips_memory_bytes',
      help: 'Memory libvips has allocated (pixel buffers and its operation cache), to the megabyte',
      registers,
      collect() {
        this.set(sharp.cache().memory.current * MEGABYTE);
      },
    });
    new Gauge({
      name: 'pictor_vips_memory_peak_bytes',
      help: 'Highest memory libvips has had allocated since start, to the megabyte',
      registers,
      collect() {
        this.set(sharp.cache().memory.high * MEGABYTE);
      },
    });
    new Gauge({
      name: 'pictor_vips_cache_operations',
      help: 'Operations held in the libvips operation cache',
      registers,
      collect() {
        this.set(sharp.cache().items.current);
      },
    });
    new Gauge({
      name: 'pictor_vips_open_files',
      help: 'Files libvips holds open',
      registers,
      collect() {
        this.set(sharp.cache().files.current);
      },
    });
    new Gauge({
      name: 'pictor_sharp_tasks',
      help: 'sharp pipelines in the libuv thread pool, by state (queued, processing)',
      labelNames: ['state'],
      registers,
      collect() {
        const counters = sharp.counters();
        this.set({ state: 'queued' }, counters.queue);
        this.set({ state: 'processing' }, counters.process);
      },
    });
  }
}
