/**
 * Cloudflare's alerting v3 routes that Images webhooks use (`/accounts/{id}/alerting/v3/…`): webhook
 * destinations, notification policies, history, the alert types and destination kinds on offer, plus
 * Pictor's `…/webhooks/{id}/attempts`.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { AlertingService, PolicyInput } from '../domain/notifications/alerting.js';
import { IMAGE_ALERT_TYPE } from '../domain/notifications/upload-events.js';
import type { AlertPolicy, WebhookAttempt, WebhookDestination } from '../domain/model.js';
import { badRequest } from '../errors.js';
import { success } from '../http/envelope.js';
import { type PolicyUpdateBody, alertingSchemas as schemas } from '../http/alerting-schemas.js';

const DAY = 86_400_000;
const iso = (ms: number): string => new Date(ms).toISOString();

function webhookView(d: WebhookDestination) {
  return {
    id: d.id,
    name: d.name,
    url: d.url,
    type: 'generic' as const,
    created_at: iso(d.createdAt),
    ...(d.lastSuccess !== null && { last_success: iso(d.lastSuccess) }),
    ...(d.lastFailure !== null && { last_failure: iso(d.lastFailure) }),
  };
}

function policyView(p: AlertPolicy) {
  return {
    id: p.id,
    name: p.name,
    description: p.description,
    alert_type: p.alertType,
    enabled: p.enabled,
    ...(p.alertInterval !== null && { alert_interval: p.alertInterval }),
    filters: p.filters,
    mechanisms: { webhooks: p.webhookIds.map((id) => ({ id })) },
    created: iso(p.createdAt),
    modified: iso(p.modifiedAt),
  };
}

function attemptView(a: WebhookAttempt) {
  return {
    id: a.id,
    event_id: a.eventId,
    delivery_id: a.deliveryId,
    attempted_at: iso(a.attemptedAt),
    status_code: a.statusCode,
    error: a.error,
    duration_ms: a.durationMs,
  };
}

function policyInput(body: PolicyUpdateBody): PolicyInput {
  return {
    name: body.name,
    description: body.description,
    alertType: body.alert_type,
    enabled: body.enabled,
    alertInterval: body.alert_interval,
    filters: body.filters,
    mechanisms: body.mechanisms,
  };
}

function dateParam(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const at = Date.parse(raw);
  if (Number.isNaN(at)) throw badRequest(`${name} must be an RFC 3339 date-time`);
  return at;
}

export function registerAlertingRoutes(scope: FastifyInstance, alerting: AlertingService, now: () => number): void {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const base = '/accounts/:account_id/alerting/v3';
  const webhooks = `${base}/destinations/webhooks`;

  app.get(`${base}/available_alerts`, { schema: schemas.availableAlerts }, async () => {
    return success({
      Images: [{ display_name: 'Images', type: IMAGE_ALERT_TYPE, description: 'A direct creator upload completed or failed', filter_options: [] }],
    });
  });
  app.get(`${base}/destinations/eligible`, { schema: schemas.eligibleDestinations }, async (request) => {
    const ready = (await alerting.listDestinations(request.params.account_id)).length > 0;
    return success({
      webhooks: [{ eligible: true, ready, type: 'webhook' as const }],
      email: [{ eligible: false, ready: false, type: 'email' as const }],
      pagerduty: [{ eligible: false, ready: false, type: 'pagerduty' as const }],
    });
  });

  app.post(webhooks, { schema: schemas.createWebhook }, async (request) => {
    const { destination, generatedSecret } = await alerting.createDestination(request.params.account_id, request.body);
    return success({ id: destination.id, ...(generatedSecret !== undefined && { signing_secret: generatedSecret }) });
  });
  app.get(webhooks, { schema: schemas.listWebhooks }, async (request) => {
    return success((await alerting.listDestinations(request.params.account_id)).map(webhookView));
  });
  app.get(`${webhooks}/:webhook_id`, { schema: schemas.getWebhook }, async (request) => {
    return success(webhookView(await alerting.getDestination(request.params.account_id, request.params.webhook_id)));
  });
  app.put(`${webhooks}/:webhook_id`, { schema: schemas.updateWebhook }, async (request) => {
    const updated = await alerting.updateDestination(request.params.account_id, request.params.webhook_id, request.body);
    return success({ id: updated.id });
  });
  app.delete(`${webhooks}/:webhook_id`, { schema: schemas.deleteWebhook }, async (request) => {
    await alerting.deleteDestination(request.params.account_id, request.params.webhook_id);
    return success(null);
  });
  app.get(`${webhooks}/:webhook_id/attempts`, { schema: schemas.webhookAttempts }, async (request) => {
    const attempts = await alerting.attempts(request.params.account_id, request.params.webhook_id, request.query.limit ?? 20);
    return success(attempts.map(attemptView));
  });

  app.post(`${base}/policies`, { schema: schemas.createPolicy }, async (request) => {
    const policy = await alerting.createPolicy(request.params.account_id, policyInput(request.body));
    return success({ id: policy.id });
  });
  app.get(`${base}/policies`, { schema: schemas.listPolicies }, async (request) => {
    return success((await alerting.listPolicies(request.params.account_id)).map(policyView));
  });
  app.get(`${base}/policies/:policy_id`, { schema: schemas.getPolicy }, async (request) => {
    return success(policyView(await alerting.getPolicy(request.params.account_id, request.params.policy_id)));
  });
  app.put(`${base}/policies/:policy_id`, { schema: schemas.updatePolicy }, async (request) => {
    const policy = await alerting.updatePolicy(request.params.account_id, request.params.policy_id, policyInput(request.body));
    return success({ id: policy.id });
  });
  app.delete(`${base}/policies/:policy_id`, { schema: schemas.deletePolicy }, async (request) => {
    await alerting.deletePolicy(request.params.account_id, request.params.policy_id);
    return success(null);
  });

  app.get(`${base}/history`, { schema: schemas.history }, async (request) => {
    const page = request.query.page ?? 1;
    const perPage = request.query.per_page ?? 25;
    const before = dateParam('before', request.query.before, now());
    const since = dateParam('since', request.query.since, before - 30 * DAY);
    const { items, total } = await alerting.history(request.params.account_id, { since, before }, page, perPage);
    return success(
      items.map((sent) => ({
        id: sent.id,
        alert_body: sent.body,
        alert_type: sent.alertType,
        description: sent.policyDescription ?? '',
        mechanism: sent.destinationUrl,
        mechanism_type: 'webhook' as const,
        name: sent.policyName ?? '',
        policy_id: sent.policyId,
        sent: iso(sent.sentAt),
      })),
      { page, per_page: perPage, count: items.length, total_count: total },
    );
  });
}
