/**
 * What the domain tells an observer while it works: render stages, signed-URL denials and accepted
 * uploads. Plain calls with plain values, so services stay free of any metrics library or HTTP type;
 * the composition root plugs in an implementation (observability/metrics.ts) or leaves the silent one.
 */

/** Where a delivery's bytes came from. */
export type DeliveryLayer =
  /** The in-process LRU of recent renders. */
  | 'memory'
  /** The render cache (disk or bucket): rendered before, by this node or another. */
  | 'render_cache'
  /** Rendered for this request. */
  | 'render'
  /** Waited for an identical render (or cache read) another request had started. */
  | 'coalesced';

/**
 * Timed parts of producing a rendition. Transform and encode are one stage: sharp runs the whole
 * pipeline lazily inside the encoder's `toBuffer`, and splitting them would mean materialising the
 * pixels in between, a cost paid on every render just to measure it.
 */
export type RenderStage = 'queue_wait' | 'storage_read' | 'transform_encode' | 'svg_sanitize';

/** Why a signed URL was refused (9425). */
export type SignedUrlDenial = 'missing' | 'malformed' | 'expired' | 'mismatch';

/** The two ways an original arrives: the account API (file or URL) or a one-time direct-upload URL. */
export type UploadChannel = 'api' | 'upload_host';

export interface DeliveryTelemetry {
  renderStage(stage: RenderStage, seconds: number): void;
  signedUrlDenied(reason: SignedUrlDenial): void;
}

export interface UploadTelemetry {
  /** An original was stored and its image committed (refusals are not counted here). */
  uploadAccepted(channel: UploadChannel, bytes: number): void;
}

/** What became of one webhook POST: delivered (2xx), to be retried, or given up after the retry window. */
export type WebhookAttemptOutcome = 'delivered' | 'retry' | 'failed';

export interface WebhookTelemetry {
  webhookAttempt(outcome: WebhookAttemptOutcome, seconds: number): void;
}

/** For services built without an observer (the CLI, tools). */
export const SILENT_TELEMETRY: DeliveryTelemetry & UploadTelemetry & WebhookTelemetry = {
  renderStage: () => undefined,
  signedUrlDenied: () => undefined,
  uploadAccepted: () => undefined,
  webhookAttempt: () => undefined,
};
