/**
 * Route schemas of the alerting (Notifications v3) routes Images webhooks use: webhook destinations,
 * policies and history, as the SDK's `alerting.*` calls send and read them.
 */
import { type Static, Type } from 'typebox';
import { AccountParams, Envelope, ListInfo, replies } from './schemas.js';

const tags = ['Notifications'];

export const WebhookParams = Type.Object({ account_id: Type.String(), webhook_id: Type.String() });
export type WebhookParams = Static<typeof WebhookParams>;
export const PolicyParams = Type.Object({ account_id: Type.String(), policy_id: Type.String() });
export type PolicyParams = Static<typeof PolicyParams>;

export const WebhookBody = Type.Object({
  name: Type.String({ description: 'The name of the webhook destination' }),
  url: Type.String({ description: 'Where notifications are POSTed (http or https; the SSRF rules of URL uploads apply)' }),
  secret: Type.Optional(Type.String({ description: 'Sent in the cf-webhook-auth header; also the key of the pictor-webhook-signature header' })),
});
export type WebhookBody = Static<typeof WebhookBody>;

const Webhook = Type.Object({
  id: Type.String(),
  name: Type.String(),
  url: Type.String(),
  type: Type.Literal('generic'),
  created_at: Type.String({ format: 'date-time' }),
  last_success: Type.Optional(Type.String({ format: 'date-time' })),
  last_failure: Type.Optional(Type.String({ format: 'date-time' })),
});

const WebhookCreated = Type.Object({
  id: Type.String(),
  signing_secret: Type.Optional(Type.String({ description: 'Pictor: the generated key of the signature header, when no secret was given (shown once)' })),
});

const WebhookAttempt = Type.Object({
  id: Type.String(),
  event_id: Type.String(),
  delivery_id: Type.String(),
  attempted_at: Type.String({ format: 'date-time' }),
  status_code: Type.Union([Type.Integer(), Type.Null()], { description: "The receiver's HTTP status; null when it did not answer" }),
  error: Type.Union([Type.String(), Type.Null()]),
  duration_ms: Type.Integer(),
});

const Mechanisms = Type.Object({
  webhooks: Type.Optional(Type.Array(Type.Object({ id: Type.Optional(Type.String()) }))),
  email: Type.Optional(Type.Array(Type.Unknown())),
  pagerduty: Type.Optional(Type.Array(Type.Unknown())),
});

const Filters = Type.Record(Type.String(), Type.Array(Type.String()));

const policyFields = {
  name: Type.String(),
  description: Type.Optional(Type.String()),
  alert_type: Type.String({ description: 'image_notification (direct upload success and failure) is the type Pictor raises' }),
  enabled: Type.Boolean(),
  alert_interval: Type.Optional(Type.String()),
  filters: Type.Optional(Filters),
  mechanisms: Mechanisms,
};

export const PolicyCreateBody = Type.Object(policyFields);
export type PolicyCreateBody = Static<typeof PolicyCreateBody>;
export const PolicyUpdateBody = Type.Partial(Type.Object(policyFields));
export type PolicyUpdateBody = Static<typeof PolicyUpdateBody>;

const Policy = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  alert_type: Type.String(),
  enabled: Type.Boolean(),
  alert_interval: Type.Optional(Type.String()),
  filters: Filters,
  mechanisms: Type.Object({ webhooks: Type.Array(Type.Object({ id: Type.String() })) }),
  created: Type.String({ format: 'date-time' }),
  modified: Type.String({ format: 'date-time' }),
});

export const AttemptsQuery = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })) },
  { additionalProperties: true },
);
export type AttemptsQuery = Static<typeof AttemptsQuery>;

export const HistoryQuery = Type.Object(
  {
    page: Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
    per_page: Type.Optional(Type.Integer({ minimum: 5, maximum: 1000, default: 25 })),
    since: Type.Optional(Type.String({ format: 'date-time', description: 'Default: 30 days ago' })),
    before: Type.Optional(Type.String({ format: 'date-time', description: 'Default: now' })),
  },
  { additionalProperties: true },
);
export type HistoryQuery = Static<typeof HistoryQuery>;

const HistoryItem = Type.Object({
  id: Type.String(),
  alert_body: Type.String({ description: 'The JSON body that was delivered' }),
  alert_type: Type.String(),
  description: Type.String(),
  mechanism: Type.String({ description: 'The URL it was delivered to' }),
  mechanism_type: Type.Literal('webhook'),
  name: Type.String(),
  policy_id: Type.String(),
  sent: Type.String({ format: 'date-time' }),
});

const Deleted = Envelope(Type.Null());

const AvailableAlerts = Type.Record(
  Type.String({ description: 'Product' }),
  Type.Array(Type.Object({ display_name: Type.String(), type: Type.String(), description: Type.String(), filter_options: Type.Array(Type.Unknown()) })),
);

const Eligible = Type.Record(
  Type.String({ description: 'Mechanism' }),
  Type.Array(Type.Object({ eligible: Type.Boolean(), ready: Type.Boolean(), type: Type.String({ enum: ['email', 'pagerduty', 'webhook'] }) })),
);

export const alertingSchemas = {
  availableAlerts: { tags, summary: 'Alert types Pictor raises (image_notification)', operationId: 'available-alerts-list', params: AccountParams, response: replies(Envelope(AvailableAlerts)) },
  eligibleDestinations: { tags, summary: 'Destination kinds: webhooks only', operationId: 'destinations-eligible', params: AccountParams, response: replies(Envelope(Eligible)) },
  createWebhook: { tags, summary: 'Create a webhook destination (a test message must be answered with 2xx)', operationId: 'webhooks-create', params: AccountParams, body: WebhookBody, response: replies(Envelope(WebhookCreated)) },
  listWebhooks: { tags, summary: 'List webhook destinations', operationId: 'webhooks-list', params: AccountParams, response: replies(Envelope(Type.Array(Webhook))) },
  getWebhook: { tags, summary: 'Webhook destination details', operationId: 'webhooks-get', params: WebhookParams, response: replies(Envelope(Webhook)) },
  updateWebhook: { tags, summary: 'Update a webhook destination (tested again)', operationId: 'webhooks-update', params: WebhookParams, body: WebhookBody, response: replies(Envelope(WebhookCreated)) },
  deleteWebhook: { tags, summary: 'Delete a webhook destination (and its pending deliveries)', operationId: 'webhooks-delete', params: WebhookParams, response: replies(Deleted) },
  webhookAttempts: {
    tags,
    summary: "Pictor: a destination's last delivery attempts, newest first",
    operationId: 'webhooks-attempts',
    params: WebhookParams,
    querystring: AttemptsQuery,
    response: replies(Envelope(Type.Array(WebhookAttempt))),
  },
  createPolicy: { tags, summary: 'Create a notification policy', operationId: 'policies-create', params: AccountParams, body: PolicyCreateBody, response: replies(Envelope(Type.Object({ id: Type.String() }))) },
  listPolicies: { tags, summary: 'List notification policies', operationId: 'policies-list', params: AccountParams, response: replies(Envelope(Type.Array(Policy))) },
  getPolicy: { tags, summary: 'Notification policy details', operationId: 'policies-get', params: PolicyParams, response: replies(Envelope(Policy)) },
  updatePolicy: { tags, summary: 'Update a notification policy (fields left out are kept)', operationId: 'policies-update', params: PolicyParams, body: PolicyUpdateBody, response: replies(Envelope(Type.Object({ id: Type.String() }))) },
  deletePolicy: { tags, summary: 'Delete a notification policy', operationId: 'policies-delete', params: PolicyParams, response: replies(Deleted) },
  history: {
    tags,
    summary: 'Delivered notifications, newest first',
    operationId: 'history-list',
    params: AccountParams,
    querystring: HistoryQuery,
    response: replies(Envelope(Type.Array(HistoryItem), ListInfo)),
  },
};
