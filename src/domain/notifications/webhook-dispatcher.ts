/**
 * Sends the webhook outbox. Every node runs one: each round claims due deliveries (a lease in the
 * database, so of several nodes one sends each), POSTs them, and records the attempt with its outcome.
 * A 2xx delivers; anything else is retried with exponential backoff (with jitter, capped) until the
 * retry window (24 h by default) from the event has passed, then the delivery is given up.
 *
 * At least once: a node that dies after the POST but before recording it leaves its claim to lapse,
 * and the delivery is sent again; receivers de-duplicate on `pictor-webhook-id`.
 */
import { randomUUID } from 'node:crypto';
import type { ClaimedDelivery, DeliveryOutcome } from '../model.js';
import type { NotificationStore } from '../../store/ports.js';
import type { WebhookTelemetry } from '../telemetry.js';
import type { WebhookSender } from './webhook-sender.js';

export interface RetryPolicy {
  /** Delay after the first failed attempt; doubled after each further one. */
  baseMs: number;
  /** Longest delay between two attempts. */
  maxMs: number;
  /** How long after the event attempts may still be made. */
  windowMs: number;
}

export interface DispatcherOptions {
  now: () => number;
  /** How often due deliveries are looked for (retries, other nodes' events). */
  pollMs: number;
  /** How long a claim holds: longer than one POST may take. */
  leaseMs: number;
  retry: RetryPolicy;
  /** Deliveries claimed per round. */
  batchSize?: number;
  onError?: (error: unknown) => void;
  telemetry?: WebhookTelemetry;
}

/** When to try again after `attempts` failed attempts, or undefined to give up. */
export function nextAttemptAt(delivery: { createdAt: number; attempts: number }, now: number, retry: RetryPolicy, random = Math.random): number | undefined {
  const exponential = retry.baseMs * 2 ** Math.min(delivery.attempts - 1, 30);
  // ±20% so that deliveries failing together do not come back together.
  const delay = Math.min(exponential, retry.maxMs) * (0.8 + 0.4 * random());
  const at = now + Math.round(delay);
  return at <= delivery.createdAt + retry.windowMs ? at : undefined;
}

export class WebhookDispatcher {
  private readonly owner = randomUUID();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(
    private readonly store: NotificationStore,
    private readonly sender: WebhookSender,
    private readonly options: DispatcherOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.nudge(), this.options.pollMs);
    this.timer.unref();
    this.nudge();
  }

  /** Runs a round now (or right after the current one): new events go out without waiting for the poll. */
  nudge(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.rounds().finally(() => {
      this.running = undefined;
    });
  }

  private async rounds(): Promise<void> {
    const batch = this.options.batchSize ?? 16;
    do {
      this.again = false;
      try {
        const now = this.options.now();
        const claimed = await this.store.claimDueDeliveries(now, now + this.options.leaseMs, this.owner, batch);
        await Promise.all(claimed.map((delivery) => this.attempt(delivery)));
        // A full batch may mean more are due.
        if (claimed.length === batch) this.again = true;
      } catch (error) {
        this.options.onError?.(error);
        return;
      }
    } while (this.again && !this.closed);
  }

  private async attempt(delivery: ClaimedDelivery): Promise<void> {
    const attemptedAt = this.options.now();
    const result = await this.sender.post(delivery, delivery.eventId, delivery.body);
    const done = this.options.now();
    let outcome: DeliveryOutcome;
    if (result.ok) {
      outcome = { kind: 'delivered' };
    } else {
      const at = nextAttemptAt({ createdAt: delivery.createdAt, attempts: delivery.attempts + 1 }, done, this.options.retry);
      outcome = at === undefined ? { kind: 'failed' } : { kind: 'retry', at };
    }
    const recorded = await this.store.finishAttempt(
      delivery,
      {
        id: randomUUID(),
        deliveryId: delivery.id,
        destinationId: delivery.destinationId,
        eventId: delivery.eventId,
        attemptedAt,
        statusCode: result.statusCode,
        error: result.error,
        durationMs: result.durationMs,
      },
      outcome,
    );
    // A claim lost meanwhile means another node's attempt is the one that counts.
    if (recorded) this.options.telemetry?.webhookAttempt(outcome.kind, result.durationMs / 1000);
  }

  /** Stops polling and waits for the round in progress (its POSTs are bounded by the send timeout). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
