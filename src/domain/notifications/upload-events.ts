/**
 * The events of direct creator uploads, in the shape of Cloudflare's generic webhook payload
 * (`name, text, data, ts, account_id, policy_id, policy_name, alert_type, alert_correlation_id`;
 * Cloudflare documents the envelope but not the Images `data`, so `data` is Pictor's:
 * `{event, status, account_id, image_id, time, image | error}`).
 */
import { randomUUID } from 'node:crypto';
import type { ImageView } from '../images.js';
import type { AlertSubscription, WebhookDelivery } from '../model.js';
import type { NotificationFanOut } from '../../store/ports.js';

/** Cloudflare's alert type for Images notifications (the SDK's `alert_type` enum). */
export const IMAGE_ALERT_TYPE = 'image_notification';

export type UploadEventData =
  | { event: 'upload.success'; status: 'success'; account_id: string; image_id: string; time: string; image: ImageView }
  | { event: 'upload.failure'; status: 'failure'; account_id: string; image_id: string; time: string; error: { code: number; message: string } };

function deliveriesFor(
  subscriptions: AlertSubscription[],
  event: { id: string; accountId: string; at: number; text: string; data: UploadEventData },
): WebhookDelivery[] {
  return subscriptions.map((subscription) => ({
    id: randomUUID(),
    accountId: event.accountId,
    destinationId: subscription.destinationId,
    policyId: subscription.policyId,
    eventId: event.id,
    alertType: IMAGE_ALERT_TYPE,
    body: JSON.stringify({
      name: subscription.policyName,
      text: event.text,
      data: event.data,
      ts: Math.floor(event.at / 1000),
      account_id: event.accountId,
      policy_id: subscription.policyId,
      policy_name: subscription.policyName,
      alert_type: IMAGE_ALERT_TYPE,
      alert_correlation_id: event.id,
    }),
    attempts: 0,
    createdAt: event.at,
    nextAttemptAt: event.at,
  }));
}

/** The success event, built from the image as committed (inside the completing transaction). */
export function uploadSucceeded<T>(accountId: string, at: number, view: (written: T) => ImageView): NotificationFanOut<T> {
  const id = randomUUID();
  return {
    alertType: IMAGE_ALERT_TYPE,
    build: (subscriptions, written) => {
      const image = view(written);
      const data: UploadEventData = {
        event: 'upload.success',
        status: 'success',
        account_id: accountId,
        image_id: image.id,
        time: new Date(at).toISOString(),
        image,
      };
      return deliveriesFor(subscriptions, { id, accountId, at, text: `Image ${image.id} was uploaded.`, data });
    },
  };
}

/** The failure event: the upload to the one-time URL was refused or broke off. */
export function uploadFailed(accountId: string, imageId: string, at: number, error: { code: number; message: string }): NotificationFanOut<undefined> {
  const id = randomUUID();
  return {
    alertType: IMAGE_ALERT_TYPE,
    build: (subscriptions) => {
      const data: UploadEventData = {
        event: 'upload.failure',
        status: 'failure',
        account_id: accountId,
        image_id: imageId,
        time: new Date(at).toISOString(),
        error,
      };
      return deliveriesFor(subscriptions, { id, accountId, at, text: `The upload of image ${imageId} failed: ${error.message}`, data });
    },
  };
}
