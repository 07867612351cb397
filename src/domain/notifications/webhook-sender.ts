/**
 * One POST of a notification to a webhook destination, as Cloudflare sends generic webhooks (JSON body,
 * the destination's secret in `cf-webhook-auth`), plus Pictor's signature: an HMAC-SHA256 of
 * `<timestamp>.<body>` under the destination's signing secret, so a receiver can check that the body is
 * ours and fresh (reject timestamps older than a few minutes, and replays of a seen `webhook-id`).
 * The address rules of URL uploads apply: no private, loopback or link-local targets unless allowed.
 */
import { createHmac } from 'node:crypto';
import { FetchFailed, type FetchFailure, type UrlFetcher } from '../url-fetch.js';

export const SIGNATURE_HEADER = 'pictor-webhook-signature';
export const TIMESTAMP_HEADER = 'pictor-webhook-timestamp';
export const ID_HEADER = 'pictor-webhook-id';

/** `v1=<hex>`: HMAC-SHA256 over `<unix seconds>.<body>`. */
export function webhookSignature(signingSecret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', signingSecret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export interface WebhookTarget {
  url: string;
  secret: string | null;
  signingSecret: string;
}

/** What one POST came to: the receiver's status (2xx = delivered), or why there was no answer. */
export interface PostResult {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

function describeFailure(failure: FetchFailure): string {
  switch (failure.kind) {
    case 'refused':
      return 'the URL points to a private, loopback or link-local address';
    case 'timeout':
      return 'the receiver did not answer in time';
    case 'network':
      return `network error: ${failure.detail}`;
    case 'status':
      return `HTTP ${failure.status}`;
    default:
      return failure.kind;
  }
}

export class WebhookSender {
  constructor(
    private readonly fetcher: UrlFetcher,
    private readonly now: () => number,
  ) {}

  /** A destination URL as sends will use it: absolute http(s), else 400 code 5400. */
  parse(url: string): URL {
    return this.fetcher.parse(url);
  }

  /** POSTs `body` (an event id de-duplicates retries and fan-out on the receiver's side). */
  async post(target: WebhookTarget, eventId: string, body: string): Promise<PostResult> {
    const started = Date.now();
    const timestamp = Math.floor(this.now() / 1000);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'Pictor-Webhooks/1',
      [ID_HEADER]: eventId,
      [TIMESTAMP_HEADER]: String(timestamp),
      [SIGNATURE_HEADER]: webhookSignature(target.signingSecret, timestamp, body),
    };
    if (target.secret !== null) headers['cf-webhook-auth'] = target.secret;
    try {
      const status = await this.fetcher.post(this.parse(target.url), body, headers);
      const ok = status >= 200 && status < 300;
      return { ok, statusCode: status, error: ok ? null : `HTTP ${status}`, durationMs: Date.now() - started };
    } catch (error) {
      const message = error instanceof FetchFailed ? describeFailure(error.failure) : (error as Error).message;
      return { ok: false, statusCode: null, error: message, durationMs: Date.now() - started };
    }
  }
}
