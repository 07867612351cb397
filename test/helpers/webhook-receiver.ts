/**
 * A webhook receiver on loopback, as a user's endpoint would be: records every POST (headers and the
 * raw body) and answers with what the test scripts (a status per request, or no answer at all).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  headers: http.IncomingHttpHeaders;
  raw: string;
  body: {
    name?: string;
    text?: string;
    data?: Record<string, unknown>;
    ts?: number;
    account_id?: string;
    policy_id?: string;
    policy_name?: string;
    alert_type?: string;
    alert_correlation_id?: string;
  };
  at: number;
  /** How the receiver answered it. */
  answer: Answer;
}

/** What to do with a request: answer with a status, or hold it open without answering. */
export type Answer = number | 'hang';

export interface WebhookReceiver {
  url: string;
  port: number;
  received: ReceivedWebhook[];
  /** Answers for the next requests, in order; afterwards `fallback`. */
  script(...answers: Answer[]): void;
  fallback: Answer;
  /** Requests whose body says `data.status` (the upload events, not the test messages). */
  events(): ReceivedWebhook[];
  close(): Promise<void>;
}

export async function startReceiver(port = 0): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const queue: Answer[] = [];
  const held = new Set<http.ServerResponse>();
  const receiver: WebhookReceiver = {
    url: '',
    port: 0,
    received,
    fallback: 200,
    script: (...answers) => queue.push(...answers),
    events: () => received.filter((r) => r.body.data !== undefined && 'status' in r.body.data),
    close: async () => {
      for (const response of held) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const answer = queue.shift() ?? receiver.fallback;
      received.push({ headers: request.headers, raw, body: JSON.parse(raw) as ReceivedWebhook['body'], at: Date.now(), answer });
      if (answer === 'hang') {
        held.add(response);
        return;
      }
      response.writeHead(answer, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}/hook`;
  return receiver;
}

/** A loopback port nothing listens on (taken, then given back). */
export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Checks `pictor-webhook-signature` as a receiver would (the README's recipe): HMAC-SHA256 of `<ts>.<body>`. */
export function signatureValid(webhook: ReceivedWebhook, secret: string): boolean {
  const timestamp = String(webhook.headers['pictor-webhook-timestamp']);
  const presented = String(webhook.headers['pictor-webhook-signature']);
  const expected = `v1=${createHmac('sha256', secret).update(`${timestamp}.${webhook.raw}`).digest('hex')}`;
  return presented.length === expected.length && timingSafeEqual(Buffer.from(presented), Buffer.from(expected));
}
