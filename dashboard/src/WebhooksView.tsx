/**
 * Webhooks for direct uploads: the account's webhook destinations, whether an enabled Images policy
 * sends to each, their last delivery attempts, and adding or deleting one. Adding a destination here
 * also makes the Images policy that sends to it (as Cloudflare's dashboard does in two steps); deleting
 * one also removes the policies left sending nowhere.
 */
import { useEffect, useState } from 'preact/hooks';
import { type AlertingApi, type AlertPolicy, errorText, IMAGE_ALERT_TYPE, type WebhookAttempt, type WebhookDestination } from './api';
import { CopyButton } from './CopyButton';
import { Feedback, useAction } from './Feedback';

function when(iso: string | undefined): string {
  return iso === undefined ? 'never' : new Date(iso).toLocaleString();
}

function subscribed(policies: AlertPolicy[], webhookId: string): boolean {
  return policies.some((p) => p.enabled && p.alert_type === IMAGE_ALERT_TYPE && p.mechanisms.webhooks.some((w) => w.id === webhookId));
}

function Attempts({ alerting, webhook }: { alerting: AlertingApi; webhook: WebhookDestination }) {
  const [attempts, setAttempts] = useState<WebhookAttempt[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    alerting.attempts(webhook.id).then(setAttempts, (caught: unknown) => setError(errorText(caught)));
  }, [alerting, webhook.id]);
  if (error) return <p role="alert">{error}</p>;
  if (!attempts) return <p>Loading attempts…</p>;
  if (attempts.length === 0) return <p>No deliveries yet.</p>;
  return (
    <table>
      <caption>Last deliveries to {webhook.name}</caption>
      <thead>
        <tr>
          <th scope="col">Time</th>
          <th scope="col">Answer</th>
          <th scope="col">Took</th>
        </tr>
      </thead>
      <tbody>
        {attempts.map((attempt) => (
          <tr key={attempt.id}>
            <td>{when(attempt.attempted_at)}</td>
            <td>{attempt.status_code === null ? (attempt.error ?? 'no answer') : attempt.error === null ? `HTTP ${attempt.status_code}` : attempt.error}</td>
            <td>{attempt.duration_ms} ms</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function WebhooksView({ alerting }: { alerting: AlertingApi }) {
  const [webhooks, setWebhooks] = useState<WebhookDestination[]>([]);
  const [policies, setPolicies] = useState<AlertPolicy[]>([]);
  const [open, setOpen] = useState<string | undefined>();
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [secret, setSecret] = useState('');
  const [signingSecret, setSigningSecret] = useState<string | undefined>();
  const feedback = useAction();
  const { run, setError } = feedback;

  const reload = async (): Promise<void> => {
    const [hooks, rules] = await Promise.all([alerting.webhooks(), alerting.policies()]);
    setWebhooks(hooks);
    setPolicies(rules);
  };

  useEffect(() => {
    reload().catch((caught: unknown) => setError(errorText(caught)));
  }, [alerting]);

  const add = (event: Event): Promise<void> => {
    event.preventDefault();
    const wanted = { name: name.trim(), url: url.trim(), ...(secret !== '' && { secret }) };
    return run(async () => {
      const created = await alerting.createWebhook(wanted);
      await alerting.createPolicy(`Image uploads to ${wanted.name}`, created.id);
      await reload();
      setName('');
      setUrl('');
      setSecret('');
      setSigningSecret(created.signing_secret);
      return `Webhook ${wanted.name} added: it answered the test message and will receive direct upload events`;
    });
  };

  const remove = (webhook: WebhookDestination): Promise<void> =>
    run(async () => {
      if (!confirm(`Delete the webhook ${webhook.name}? Events not yet delivered to it are dropped.`)) return '';
      await alerting.deleteWebhook(webhook.id);
      // Policies that sent only to it now send nowhere.
      const orphaned = policies.filter((p) => p.mechanisms.webhooks.length > 0 && p.mechanisms.webhooks.every((w) => w.id === webhook.id));
      for (const policy of orphaned) await alerting.deletePolicy(policy.id);
      await reload();
      return `Webhook ${webhook.name} deleted`;
    });

  return (
    <section aria-labelledby="webhooks-heading">
      <h1 id="webhooks-heading">Webhooks</h1>
      <p>
        When a direct creator upload completes or fails, Pictor POSTs a JSON event to these URLs, with your secret in <code>cf-webhook-auth</code> and a signature
        in <code>pictor-webhook-signature</code>. Failed deliveries are retried for 24 hours.
      </p>
      <Feedback feedback={feedback} />
      {signingSecret && (
        <p class="notice">
          No secret was given, so deliveries are signed with this generated key, shown only now: <code class="key-value">{signingSecret}</code>{' '}
          <CopyButton text={signingSecret} label="Copy signing key" />
        </p>
      )}
      <div class="table-wrap">
        <table>
          <caption>Webhooks of this account</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">URL</th>
              <th scope="col">Upload events</th>
              <th scope="col">Last success</th>
              <th scope="col">Last failure</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {webhooks.map((webhook) => (
              <tr key={webhook.id}>
                <th scope="row">{webhook.name}</th>
                <td class="url-cell">{webhook.url}</td>
                <td>{subscribed(policies, webhook.id) ? 'Sent' : 'Not sent'}</td>
                <td>{when(webhook.last_success)}</td>
                <td>{when(webhook.last_failure)}</td>
                <td>
                  <div class="row-actions">
                    <button type="button" class="secondary small" aria-expanded={open === webhook.id} onClick={() => {
                        setOpen(open === webhook.id ? undefined : webhook.id);
                        // Last success and failure may have moved since the list was read.
                        reload().catch((caught: unknown) => setError(errorText(caught)));
                      }}
                    >
                      Deliveries
                    </button>
                    <button type="button" class="danger small" onClick={() => void remove(webhook)}>
                      Delete
                    </button>
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {open !== undefined && webhooks.some((w) => w.id === open) && (
        <div class="table-wrap">
          <Attempts alerting={alerting} webhook={webhooks.find((w) => w.id === open) as WebhookDestination} />
        </div>
      )}
      <form onSubmit={add} class="inline-form">
        <label>
          Webhook name
          <input type="text" required value={name} onInput={(event) => setName(event.currentTarget.value)} />
        </label>
        <label>
          Webhook URL
          <input type="url" required value={url} onInput={(event) => setUrl(event.currentTarget.value)} />
        </label>
        <label>
          Secret (optional)
          <input type="password" autocomplete="off" value={secret} onInput={(event) => setSecret(event.currentTarget.value)} />
        </label>
        <button type="submit">Add webhook</button>
      </form>
    </section>
  );
}
