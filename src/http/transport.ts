/**
 * Connection-level defences shared by every surface (API, delivery, upload host): how long a client may
 * take to send headers and a body, and what happens to a body the server answered before reading.
 *
 * - Headers must arrive within `headersTimeoutMs` (slowloris); Node checks every second.
 * - A body must keep a minimum rate: fewer than `bodyMinBytesPerSecond` over any `bodyRateWindowMs`
 *   window closes the connection. A rate, not a total time, so a 10 MB upload over a slow mobile link
 *   finishes while a connection dripping a byte a second is closed within one window.
 * - After an early answer (an error before the whole body was read) the rest of the body is drained
 *   for at most `lingerMs` and `lingerMaxBytes`, then the connection is closed. Draining keeps the
 *   connection usable for the next keep-alive request and lets the client read the answer (closing a
 *   socket with unread data makes the kernel send a reset that can destroy the answer in flight).
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, STATUS_CODES, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyHttpOptions, FastifyInstance } from 'fastify';
import type { TransportSettings } from '../config.js';
import { REQUEST_ID_HEADER } from './request-ids.js';

/** How often Node looks for requests past their headers or request timeout. */
const TIMEOUT_CHECK_INTERVAL_MS = 1000;

export function transportServerOptions(settings: TransportSettings): Partial<FastifyHttpOptions<Server>> {
  return {
    http: { headersTimeout: settings.headersTimeoutMs, connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS },
    requestTimeout: settings.requestTimeoutMs,
    connectionTimeout: settings.idleTimeoutMs,
    clientErrorHandler: answerClientError,
  };
}

/**
 * What Fastify answers when Node could not read a request at all (a timeout, oversized headers, bytes
 * that are not HTTP), with the request id every answer carries: a fresh one, as nothing sent was parsed.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  // A reset connection has no one left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Client Timeout']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Exceeded maximum allowed HTTP header size']
        : [400, 'Client Error'];
  const body = JSON.stringify({ error: STATUS_CODES[status], message, statusCode: status });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json\r\n${REQUEST_ID_HEADER}: ${randomUUID()}\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

function hasBody(raw: IncomingMessage): boolean {
  const length = raw.headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  return raw.headers['transfer-encoding'] !== undefined;
}

/** Closes the connection if the body arrives slower than the minimum rate over a window. */
function watchBodyRate(raw: IncomingMessage, settings: TransportSettings, log: FastifyBaseLogger): () => void {
  const socket = raw.socket;
  const minimum = (settings.bodyMinBytesPerSecond * settings.bodyRateWindowMs) / 1000;
  let seen = socket.bytesRead;
  const timer = setInterval(() => {
    if (raw.complete) return stop();
    const received = socket.bytesRead - seen;
    seen = socket.bytesRead;
    if (received < minimum) {
      log.warn({ received, windowMs: settings.bodyRateWindowMs }, 'request body below the minimum rate: connection closed');
      stop();
      socket.destroy();
    }
  }, settings.bodyRateWindowMs);
  timer.unref();
  // Listeners are removed again: a keep-alive socket carries many requests.
  const stop = (): void => {
    clearInterval(timer);
    raw.off('end', stop);
    socket.off('close', stop);
  };
  raw.once('end', stop);
  socket.once('close', stop);
  return stop;
}

/** Drains what is left of a body after the answer was sent, within bounds; then closes. */
function linger(raw: IncomingMessage, settings: TransportSettings): void {
  const socket = raw.socket;
  let drained = 0;
  const finish = (): void => {
    clearTimeout(timer);
    raw.off('data', count);
    raw.off('end', finish);
    socket.off('close', finish);
  };
  const close = (): void => {
    finish();
    socket.destroy();
  };
  const count = (chunk: Buffer): void => {
    drained += chunk.length;
    if (drained > settings.lingerMaxBytes) close();
  };
  const timer = setTimeout(close, settings.lingerMs);
  timer.unref();
  raw.on('data', count);
  raw.once('end', finish);
  socket.once('close', finish);
  raw.resume();
}

/**
 * Installs the body-rate watch and the bounded linger on every route of `app` (call on the root).
 * Returns the number of requests in progress (a graceful stop closes every connection once it is 0).
 */
export function installTransportGuards(app: FastifyInstance, settings: TransportSettings): () => number {
  let inFlight = 0;
  app.addHook('onRequest', async (request, reply) => {
    inFlight += 1;
    // 'close' comes once per response, whether it was sent or the client went away.
    reply.raw.once('close', () => {
      inFlight -= 1;
    });
    const raw = request.raw;
    if (raw.complete || !hasBody(raw)) return;
    const stop = watchBodyRate(raw, settings, request.log);
    // From the answer on, the linger bounds what is left.
    reply.raw.once('finish', stop);
  });
  app.addHook('onSend', async (request, reply) => {
    // Fastify asks to close after a body it refused; draining instead keeps the answer readable.
    if (!request.raw.complete && reply.getHeader('connection') === 'close') reply.removeHeader('connection');
  });
  app.addHook('onResponse', async (request) => {
    const raw = request.raw;
    if (!raw.complete && !raw.destroyed && !raw.socket.destroyed) linger(raw, settings);
  });
  return () => inFlight;
}
