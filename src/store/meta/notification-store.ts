/**
 * Webhook destinations, notification policies and the webhook outbox, written once with Kysely for
 * both dialects. The outbox is claimed with a lease (and `FOR UPDATE SKIP LOCKED` where the database
 * has concurrent writers), so of any number of nodes one at a time sends a delivery.
 */
import { type Kysely, type Selectable, type Transaction, sql } from 'kysely';
import type {
  AlertPolicy,
  AlertSubscription,
  ClaimedDelivery,
  DeliveryOutcome,
  SentNotification,
  WebhookAttempt,
  WebhookDelivery,
  WebhookDestination,
} from '../../domain/model.js';
import type { NotificationFanOut, NotificationStore } from '../ports.js';
import type { DialectQuirks } from './kysely-store.js';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

function toDestination(row: Selectable<Database['webhook_destinations']>): WebhookDestination {
  return {
    id: row.id,
    accountId: row.account_id,
    name: row.name,
    url: row.url,
    secret: row.secret,
    signingSecret: row.signing_secret,
    createdAt: Number(row.created_at),
    lastSuccess: row.last_success === null ? null : Number(row.last_success),
    lastFailure: row.last_failure === null ? null : Number(row.last_failure),
  };
}

function toPolicy(row: Selectable<Database['alert_policies']>, webhookIds: string[]): AlertPolicy {
  return {
    id: row.id,
    accountId: row.account_id,
    name: row.name,
    description: row.description,
    alertType: row.alert_type,
    enabled: Number(row.enabled) === 1,
    alertInterval: row.alert_interval,
    filters: JSON.parse(row.filters) as Record<string, string[]>,
    webhookIds,
    createdAt: Number(row.created_at),
    modifiedAt: Number(row.modified_at),
  };
}

function toAttempt(row: Selectable<Database['webhook_attempts']>): WebhookAttempt {
  return {
    id: row.id,
    deliveryId: row.delivery_id,
    destinationId: row.destination_id,
    eventId: row.event_id,
    attemptedAt: Number(row.attempted_at),
    statusCode: row.status_code === null ? null : Number(row.status_code),
    error: row.error,
    durationMs: Number(row.duration_ms),
  };
}

function policyRow(policy: AlertPolicy): Database['alert_policies'] {
  return {
    id: policy.id,
    account_id: policy.accountId,
    name: policy.name,
    description: policy.description,
    alert_type: policy.alertType,
    enabled: policy.enabled ? 1 : 0,
    alert_interval: policy.alertInterval,
    filters: JSON.stringify(policy.filters),
    created_at: policy.createdAt,
    modified_at: policy.modifiedAt,
  };
}

/**
 * Writes an event's outbox rows inside `db` (the caller's transaction when the event reports a write):
 * one per (enabled policy of the alert type, destination of that policy).
 */
export async function enqueueNotifications<T>(db: Db, accountId: string, fanOut: NotificationFanOut<T>, written: T): Promise<number> {
  const rows = await db
    .selectFrom('alert_policies as p')
    .innerJoin('alert_policy_webhooks as pw', 'pw.policy_id', 'p.id')
    .select(['p.id as policy_id', 'p.name as policy_name', 'pw.destination_id'])
    .where('p.account_id', '=', accountId)
    .where('p.alert_type', '=', fanOut.alertType)
    .where('p.enabled', '=', 1)
    .orderBy('p.id')
    .orderBy('pw.destination_id')
    .execute();
  if (rows.length === 0) return 0;
  const subscriptions: AlertSubscription[] = rows.map((r) => ({ policyId: r.policy_id, policyName: r.policy_name, destinationId: r.destination_id }));
  const deliveries = fanOut.build(subscriptions, written);
  if (deliveries.length === 0) return 0;
  await db
    .insertInto('webhook_deliveries')
    .values(
      deliveries.map((d: WebhookDelivery) => ({
        id: d.id,
        account_id: d.accountId,
        destination_id: d.destinationId,
        policy_id: d.policyId,
        event_id: d.eventId,
        alert_type: d.alertType,
        body: d.body,
        state: 'pending',
        attempts: d.attempts,
        created_at: d.createdAt,
        next_attempt_at: d.nextAttemptAt,
        leased_until: null,
        lease_owner: null,
        finished_at: null,
      })),
    )
    .execute();
  return deliveries.length;
}

export class KyselyNotificationStore implements NotificationStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly quirks: Pick<DialectQuirks, 'lockAccount' | 'skipLocked'>,
  ) {}

  /**
   * Runs `insert` in a transaction unless the account already has `max` rows in `table`; counted under
   * the account's lock, so concurrent creates cannot pass the cap together.
   */
  private capped(
    table: 'webhook_destinations' | 'alert_policies',
    accountId: string,
    max: number,
    insert: (trx: Transaction<Database>) => Promise<void>,
  ): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await this.quirks.lockAccount(trx, accountId);
      const { count } = await trx
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<string | number>().as('count'))
        .where('account_id', '=', accountId)
        .executeTakeFirstOrThrow();
      if (Number(count) >= max) return false;
      await insert(trx);
      return true;
    });
  }

  insertWebhookDestination(d: WebhookDestination, max: number): Promise<boolean> {
    return this.capped('webhook_destinations', d.accountId, max, async (trx) => {
      await trx
        .insertInto('webhook_destinations')
        .values({
          id: d.id,
          account_id: d.accountId,
          name: d.name,
          url: d.url,
          secret: d.secret,
          signing_secret: d.signingSecret,
          created_at: d.createdAt,
          last_success: d.lastSuccess,
          last_failure: d.lastFailure,
        })
        .execute();
    });
  }

  async updateWebhookDestination(
    accountId: string,
    id: string,
    change: Pick<WebhookDestination, 'name' | 'url' | 'secret' | 'signingSecret'>,
  ): Promise<WebhookDestination | undefined> {
    const result = await this.db
      .updateTable('webhook_destinations')
      .set({ name: change.name, url: change.url, secret: change.secret, signing_secret: change.signingSecret })
      .where('account_id', '=', accountId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return undefined;
    return this.findWebhookDestination(accountId, id);
  }

  async findWebhookDestination(accountId: string, id: string): Promise<WebhookDestination | undefined> {
    const row = await this.db
      .selectFrom('webhook_destinations')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toDestination(row);
  }

  async listWebhookDestinations(accountId: string): Promise<WebhookDestination[]> {
    const rows = await this.db
      .selectFrom('webhook_destinations')
      .selectAll()
      .where('account_id', '=', accountId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toDestination);
  }

  async deleteWebhookDestination(accountId: string, id: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const owned = await trx.selectFrom('webhook_destinations').select('id').where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
      if (!owned) return false;
      // Explicit rather than relying on cascades, which SQLite applies only with foreign keys on.
      await trx.deleteFrom('alert_policy_webhooks').where('destination_id', '=', id).execute();
      await trx.deleteFrom('webhook_deliveries').where('destination_id', '=', id).execute();
      await trx.deleteFrom('webhook_attempts').where('destination_id', '=', id).execute();
      await trx.deleteFrom('webhook_destinations').where('id', '=', id).execute();
      return true;
    });
  }

  insertAlertPolicy(policy: AlertPolicy, max: number): Promise<boolean> {
    return this.capped('alert_policies', policy.accountId, max, async (trx) => {
      await trx.insertInto('alert_policies').values(policyRow(policy)).execute();
      await this.linkWebhooks(trx, policy);
    });
  }

  async replaceAlertPolicy(policy: AlertPolicy): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const { id, account_id, created_at, ...rest } = policyRow(policy);
      const result = await trx.updateTable('alert_policies').set(rest).where('account_id', '=', account_id).where('id', '=', id).executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return false;
      void created_at;
      await trx.deleteFrom('alert_policy_webhooks').where('policy_id', '=', id).execute();
      await this.linkWebhooks(trx, policy);
      return true;
    });
  }

  private async linkWebhooks(trx: Transaction<Database>, policy: AlertPolicy): Promise<void> {
    if (policy.webhookIds.length === 0) return;
    await trx
      .insertInto('alert_policy_webhooks')
      .values(policy.webhookIds.map((destinationId) => ({ policy_id: policy.id, destination_id: destinationId })))
      .execute();
  }

  async findAlertPolicy(accountId: string, id: string): Promise<AlertPolicy | undefined> {
    const row = await this.db.selectFrom('alert_policies').selectAll().where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    const links = await this.db.selectFrom('alert_policy_webhooks').select('destination_id').where('policy_id', '=', id).orderBy('destination_id').execute();
    return toPolicy(row, links.map((l) => l.destination_id));
  }

  async listAlertPolicies(accountId: string): Promise<AlertPolicy[]> {
    const rows = await this.db.selectFrom('alert_policies').selectAll().where('account_id', '=', accountId).orderBy('created_at').orderBy('id').execute();
    if (rows.length === 0) return [];
    const links = await this.db
      .selectFrom('alert_policy_webhooks')
      .select(['policy_id', 'destination_id'])
      .where(
        'policy_id',
        'in',
        rows.map((r) => r.id),
      )
      .orderBy('destination_id')
      .execute();
    return rows.map((row) => toPolicy(row, links.filter((l) => l.policy_id === row.id).map((l) => l.destination_id)));
  }

  async deleteAlertPolicy(accountId: string, id: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const owned = await trx.selectFrom('alert_policies').select('id').where('account_id', '=', accountId).where('id', '=', id).executeTakeFirst();
      if (!owned) return false;
      await trx.deleteFrom('alert_policy_webhooks').where('policy_id', '=', id).execute();
      await trx.deleteFrom('alert_policies').where('id', '=', id).execute();
      return true;
    });
  }

  enqueue(accountId: string, fanOut: NotificationFanOut<undefined>): Promise<number> {
    return this.db.transaction().execute((trx) => enqueueNotifications(trx, accountId, fanOut, undefined));
  }

  async claimDueDeliveries(now: number, until: number, owner: string, limit: number): Promise<ClaimedDelivery[]> {
    const claimed = await this.db.transaction().execute(async (trx) => {
      const due = await trx
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('state', '=', 'pending')
        .where('next_attempt_at', '<=', now)
        .where((eb) => eb.or([eb('leased_until', 'is', null), eb('leased_until', '<', now)]))
        .orderBy('next_attempt_at')
        .limit(limit)
        .$if(this.quirks.skipLocked ?? false, (qb) => qb.forUpdate().skipLocked())
        .execute();
      if (due.length === 0) return [];
      const ids = due.map((row) => row.id);
      await trx.updateTable('webhook_deliveries').set({ leased_until: until, lease_owner: owner }).where('id', 'in', ids).execute();
      return ids;
    });
    if (claimed.length === 0) return [];
    const rows = await this.db
      .selectFrom('webhook_deliveries as w')
      .innerJoin('webhook_destinations as d', 'd.id', 'w.destination_id')
      .selectAll('w')
      .select(['d.url', 'd.secret', 'd.signing_secret'])
      .where('w.id', 'in', claimed)
      .where('w.lease_owner', '=', owner)
      .orderBy('w.next_attempt_at')
      .execute();
    return rows.map((row) => ({
      id: row.id,
      accountId: row.account_id,
      destinationId: row.destination_id,
      policyId: row.policy_id,
      eventId: row.event_id,
      alertType: row.alert_type,
      body: row.body,
      attempts: Number(row.attempts),
      createdAt: Number(row.created_at),
      nextAttemptAt: Number(row.next_attempt_at),
      url: row.url,
      secret: row.secret,
      signingSecret: row.signing_secret,
      leasedUntil: until,
      leaseOwner: owner,
    }));
  }

  async releaseClaims(): Promise<number> {
    const released = await this.db
      .updateTable('webhook_deliveries')
      .set({ leased_until: null, lease_owner: null })
      .where('state', '=', 'pending')
      .where('leased_until', 'is not', null)
      .executeTakeFirst();
    return Number(released.numUpdatedRows);
  }

  async finishAttempt(delivery: ClaimedDelivery, attempt: WebhookAttempt, outcome: DeliveryOutcome): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const finished = outcome.kind === 'retry' ? null : attempt.attemptedAt + attempt.durationMs;
      const updated = await trx
        .updateTable('webhook_deliveries')
        .set({
          state: outcome.kind === 'retry' ? 'pending' : outcome.kind,
          attempts: delivery.attempts + 1,
          next_attempt_at: outcome.kind === 'retry' ? outcome.at : delivery.nextAttemptAt,
          leased_until: null,
          lease_owner: null,
          finished_at: finished,
        })
        .where('id', '=', delivery.id)
        .where('lease_owner', '=', delivery.leaseOwner)
        .where('leased_until', '=', delivery.leasedUntil)
        .executeTakeFirst();
      // The claim lapsed and another node took the delivery: its attempt is the one that counts.
      if (Number(updated.numUpdatedRows) === 0) return false;
      await trx
        .insertInto('webhook_attempts')
        .values({
          id: attempt.id,
          delivery_id: attempt.deliveryId,
          destination_id: attempt.destinationId,
          event_id: attempt.eventId,
          attempted_at: attempt.attemptedAt,
          status_code: attempt.statusCode,
          error: attempt.error === null ? null : attempt.error.slice(0, 1024),
          duration_ms: attempt.durationMs,
        })
        .execute();
      await trx
        .updateTable('webhook_destinations')
        .set(outcome.kind === 'delivered' ? { last_success: attempt.attemptedAt } : { last_failure: attempt.attemptedAt })
        .where('id', '=', delivery.destinationId)
        .execute();
      return true;
    });
  }

  async listWebhookAttempts(accountId: string, destinationId: string, limit: number): Promise<WebhookAttempt[]> {
    const rows = await this.db
      .selectFrom('webhook_attempts as a')
      .innerJoin('webhook_destinations as d', 'd.id', 'a.destination_id')
      .selectAll('a')
      .where('d.account_id', '=', accountId)
      .where('a.destination_id', '=', destinationId)
      .orderBy('a.attempted_at', 'desc')
      .orderBy('a.id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toAttempt);
  }

  async listSentNotifications(
    accountId: string,
    range: { since: number; before: number },
    offset: number,
    limit: number,
  ): Promise<{ items: SentNotification[]; total: number }> {
    const sent = this.db
      .selectFrom('webhook_deliveries as w')
      .innerJoin('webhook_destinations as d', 'd.id', 'w.destination_id')
      .leftJoin('alert_policies as p', 'p.id', 'w.policy_id')
      .where('w.account_id', '=', accountId)
      .where('w.state', '=', 'delivered')
      .where('w.finished_at', '>=', range.since)
      .where('w.finished_at', '<', range.before);
    const counted = await sent.select((eb) => eb.fn.countAll<string | number>().as('total')).executeTakeFirst();
    const rows = await sent
      .select(['w.id', 'w.policy_id', 'w.alert_type', 'w.body', 'w.finished_at', 'd.url', 'p.name', 'p.description'])
      .orderBy('w.finished_at', 'desc')
      .orderBy('w.id', 'desc')
      .offset(offset)
      .limit(limit)
      .execute();
    return {
      total: Number(counted?.total ?? 0),
      items: rows.map((row) => ({
        id: row.id,
        policyId: row.policy_id,
        policyName: row.name,
        policyDescription: row.description,
        alertType: row.alert_type,
        body: row.body,
        destinationUrl: row.url,
        sentAt: Number(row.finished_at),
      })),
    };
  }

  async prune(before: number, keepPerDestination: number): Promise<number> {
    const finished = await this.db
      .deleteFrom('webhook_deliveries')
      .where('state', '!=', 'pending')
      .where('finished_at', '<', before)
      .executeTakeFirst();
    const old = await this.db.deleteFrom('webhook_attempts').where('attempted_at', '<', before).executeTakeFirst();
    // Beyond the newest `keepPerDestination` attempts of each destination.
    const excess = await sql`
      delete from webhook_attempts where id in (
        select id from (
          select id, row_number() over (partition by destination_id order by attempted_at desc, id desc) as n
          from webhook_attempts
        ) ranked where n > ${keepPerDestination}
      )`.execute(this.db);
    return Number(finished.numDeletedRows) + Number(old.numDeletedRows) + Number(excess.numAffectedRows ?? 0);
  }
}
