/**
 * The part of Cloudflare's Notifications (alerting v3) that Images webhooks need: webhook destinations,
 * notification policies of the `image_notification` alert type, the notification history, and (a Pictor
 * extension) each destination's last delivery attempts.
 *
 * As on Cloudflare, a destination is saved only once a test message to it was answered with a 2xx (on
 * create and on update). The secret, when given, is sent as `cf-webhook-auth`; it also keys the
 * signature header. Without one, a signing secret is generated and returned once, in the create answer.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { PictorError, badRequest } from '../../errors.js';
import type { AlertPolicy, SentNotification, WebhookAttempt, WebhookDestination } from '../model.js';
import type { NotificationStore } from '../../store/ports.js';
import { IMAGE_ALERT_TYPE } from './upload-events.js';
import type { WebhookSender } from './webhook-sender.js';

const MAX_NAME = 256;
const MAX_URL = 2048;
const MAX_SECRET = 1024;
const MAX_DESCRIPTION = 1024;
/** Per account; each destination costs a test POST and each policy a query per event. */
export const MAX_DESTINATIONS = 100;
export const MAX_POLICIES = 100;
/** Attempts kept (and shown) per destination. */
export const ATTEMPTS_KEPT = 100;

export interface DestinationInput {
  name: string;
  url: string;
  secret?: string;
}

export interface PolicyInput {
  name?: string;
  description?: string;
  alertType?: string;
  enabled?: boolean;
  alertInterval?: string;
  filters?: Record<string, string[]>;
  mechanisms?: { webhooks?: Array<{ id?: string }>; email?: unknown[]; pagerduty?: unknown[] };
}

function notFound(what: 'webhook' | 'policy'): PictorError {
  return new PictorError(17001, what === 'webhook' ? 'Webhook destination not found' : 'Notification policy not found');
}

function checkText(field: string, value: string, max: number, allowEmpty = false): string {
  const trimmed = value.trim();
  if (!allowEmpty && trimmed === '') throw badRequest(`${field} must not be empty`);
  if (value.length > max) throw badRequest(`${field} must be at most ${max} characters`);
  return trimmed;
}

export class AlertingService {
  constructor(
    private readonly store: NotificationStore,
    private readonly sender: WebhookSender,
    private readonly now: () => number,
  ) {}

  // ---------- webhook destinations ----------

  async createDestination(accountId: string, input: DestinationInput): Promise<{ destination: WebhookDestination; generatedSecret: string | undefined }> {
    const { name, url, secret } = this.checkDestination(input);
    const generatedSecret = secret === null ? randomBytes(32).toString('hex') : undefined;
    const destination: WebhookDestination = {
      id: randomBytes(16).toString('hex'),
      accountId,
      name,
      url,
      secret,
      signingSecret: secret ?? (generatedSecret as string),
      createdAt: this.now(),
      lastSuccess: null,
      lastFailure: null,
    };
    await this.sendTest(destination);
    if (!(await this.store.insertWebhookDestination(destination, MAX_DESTINATIONS))) {
      throw badRequest(`An account can have at most ${MAX_DESTINATIONS} webhook destinations`);
    }
    return { destination, generatedSecret };
  }

  /** Name and URL are replaced; the secret too when one is given (else the current one stays). */
  async updateDestination(accountId: string, id: string, input: DestinationInput): Promise<WebhookDestination> {
    const current = await this.getDestination(accountId, id);
    const { name, url, secret } = this.checkDestination(input);
    const next = { ...current, name, url, ...(secret !== null && { secret, signingSecret: secret }) };
    await this.sendTest(next);
    const updated = await this.store.updateWebhookDestination(accountId, id, next);
    if (!updated) throw notFound('webhook');
    return updated;
  }

  async getDestination(accountId: string, id: string): Promise<WebhookDestination> {
    const found = await this.store.findWebhookDestination(accountId, id);
    if (!found) throw notFound('webhook');
    return found;
  }

  listDestinations(accountId: string): Promise<WebhookDestination[]> {
    return this.store.listWebhookDestinations(accountId);
  }

  async deleteDestination(accountId: string, id: string): Promise<void> {
    if (!(await this.store.deleteWebhookDestination(accountId, id))) throw notFound('webhook');
  }

  async attempts(accountId: string, id: string, limit: number): Promise<WebhookAttempt[]> {
    await this.getDestination(accountId, id);
    return this.store.listWebhookAttempts(accountId, id, Math.min(limit, ATTEMPTS_KEPT));
  }

  private checkDestination(input: DestinationInput): { name: string; url: string; secret: string | null } {
    const secret = input.secret === undefined || input.secret === '' ? null : input.secret;
    if (secret !== null && secret.length > MAX_SECRET) throw badRequest(`secret must be at most ${MAX_SECRET} characters`);
    if (input.url.length > MAX_URL) throw badRequest(`url must be at most ${MAX_URL} characters`);
    return { name: checkText('name', input.name, MAX_NAME), url: this.sender.parse(input.url).toString(), secret };
  }

  /** Cloudflare's "Save and Test": the destination is kept only if the receiver takes a test message. */
  private async sendTest(destination: WebhookDestination): Promise<void> {
    const body = JSON.stringify({
      name: destination.name,
      text: 'Hello World! This is a test message sent from Pictor. If you can see this, your webhook is configured properly.',
      data: {},
      ts: Math.floor(this.now() / 1000),
      account_id: destination.accountId,
    });
    const result = await this.sender.post(destination, randomUUID(), body);
    if (!result.ok) throw new PictorError(17002, `The test message to the webhook failed: ${result.error ?? 'no answer'}`);
  }

  // ---------- notification policies ----------

  async createPolicy(accountId: string, input: PolicyInput): Promise<AlertPolicy> {
    if (input.name === undefined) throw badRequest('name is required');
    if (input.alertType === undefined) throw badRequest('alert_type is required');
    if (input.enabled === undefined) throw badRequest('enabled is required');
    const now = this.now();
    const policy = await this.checkPolicy(accountId, {
      id: randomUUID(),
      accountId,
      name: input.name,
      description: input.description ?? '',
      alertType: input.alertType,
      enabled: input.enabled,
      alertInterval: input.alertInterval ?? null,
      filters: input.filters ?? {},
      webhookIds: this.webhookIds(input),
      createdAt: now,
      modifiedAt: now,
    });
    if (!(await this.store.insertAlertPolicy(policy, MAX_POLICIES))) {
      throw badRequest(`An account can have at most ${MAX_POLICIES} notification policies`);
    }
    return policy;
  }

  /** Fields left out keep their values (Cloudflare's update takes any subset). */
  async updatePolicy(accountId: string, id: string, input: PolicyInput): Promise<AlertPolicy> {
    const current = await this.getPolicy(accountId, id);
    const policy = await this.checkPolicy(accountId, {
      ...current,
      ...(input.name !== undefined && { name: input.name }),
      ...(input.description !== undefined && { description: input.description }),
      ...(input.alertType !== undefined && { alertType: input.alertType }),
      ...(input.enabled !== undefined && { enabled: input.enabled }),
      ...(input.alertInterval !== undefined && { alertInterval: input.alertInterval }),
      ...(input.filters !== undefined && { filters: input.filters }),
      ...(input.mechanisms !== undefined && { webhookIds: this.webhookIds(input) }),
      modifiedAt: this.now(),
    });
    if (!(await this.store.replaceAlertPolicy(policy))) throw notFound('policy');
    return policy;
  }

  async getPolicy(accountId: string, id: string): Promise<AlertPolicy> {
    const found = await this.store.findAlertPolicy(accountId, id);
    if (!found) throw notFound('policy');
    return found;
  }

  listPolicies(accountId: string): Promise<AlertPolicy[]> {
    return this.store.listAlertPolicies(accountId);
  }

  async deletePolicy(accountId: string, id: string): Promise<void> {
    if (!(await this.store.deleteAlertPolicy(accountId, id))) throw notFound('policy');
  }

  private webhookIds(input: PolicyInput): string[] {
    const mechanisms = input.mechanisms ?? {};
    if ((mechanisms.email?.length ?? 0) > 0 || (mechanisms.pagerduty?.length ?? 0) > 0) {
      throw badRequest('Pictor sends notifications to webhooks only: mechanisms.email and mechanisms.pagerduty must be empty');
    }
    const ids = (mechanisms.webhooks ?? []).map((w) => w.id);
    if (ids.some((id) => id === undefined || id === '')) throw badRequest('every mechanisms.webhooks entry needs an id');
    return [...new Set(ids as string[])];
  }

  private async checkPolicy(accountId: string, policy: AlertPolicy): Promise<AlertPolicy> {
    if (policy.alertType !== IMAGE_ALERT_TYPE) {
      throw badRequest(`Pictor raises only the ${IMAGE_ALERT_TYPE} alert type (direct upload success and failure), not ${policy.alertType}`);
    }
    for (const id of policy.webhookIds) {
      if (!(await this.store.findWebhookDestination(accountId, id))) throw badRequest(`mechanisms.webhooks: no webhook destination ${id}`);
    }
    return {
      ...policy,
      name: checkText('name', policy.name, MAX_NAME),
      description: checkText('description', policy.description, MAX_DESCRIPTION, true),
    };
  }

  // ---------- history ----------

  history(
    accountId: string,
    range: { since: number; before: number },
    page: number,
    perPage: number,
  ): Promise<{ items: SentNotification[]; total: number }> {
    return this.store.listSentNotifications(accountId, range, (page - 1) * perPage, perPage);
  }
}
