/**
 * HTTP at the socket level, for what fetch cannot do: send a body slowly, send headers byte by byte,
 * reuse one connection on purpose, and see exactly when the server answers or closes.
 */
import net from 'node:net';

export interface RawConnection {
  socket: net.Socket;
  /** Everything received so far. */
  received(): string;
  /** Resolves with the first complete response (head + Content-Length body) after `from` bytes received. */
  nextResponse(from?: number, timeoutMs?: number): Promise<RawResponse>;
  /** Resolves when the server closes the connection; the value is ms since `connect`. */
  closed: Promise<number>;
  write(data: string | Buffer): Promise<void>;
  close(): void;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Offset in `received()` just past this response. */
  end: number;
  /** ms since `connect`. */
  at: number;
}

function parseResponse(text: string, from: number): RawResponse | undefined {
  const headEnd = text.indexOf('\r\n\r\n', from);
  if (headEnd === -1) return undefined;
  const [statusLine = '', ...lines] = text.slice(from, headEnd).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  const bodyStart = headEnd + 4;
  // The text is latin1: one character per byte.
  if (text.length - bodyStart < length) return undefined;
  const body = text.slice(bodyStart, bodyStart + length);
  return { status: Number(statusLine.split(' ')[1]), headers, body, end: bodyStart + length, at: 0 };
}

export function connect(baseUrl: string): Promise<RawConnection> {
  const { hostname, port } = new URL(baseUrl);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let text = '';
    const waiters = new Set<() => void>();
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      for (const wake of waiters) wake();
    });
    socket.on('error', () => undefined);
    const closed = new Promise<number>((resolveClosed) => socket.once('close', () => resolveClosed(Date.now() - started)));
    socket.once('connect', () => {
      resolve({
        socket,
        received: () => text,
        closed,
        nextResponse(from = 0, timeoutMs = 10_000) {
          return new Promise<RawResponse>((resolveResponse, rejectResponse) => {
            const check = (): void => {
              const parsed = parseResponse(text, from);
              if (!parsed) return;
              waiters.delete(check);
              clearTimeout(timer);
              resolveResponse({ ...parsed, at: Date.now() - started });
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              rejectResponse(new Error(`no response within ${timeoutMs} ms; received: ${text.slice(from, from + 300)}`));
            }, timeoutMs);
            waiters.add(check);
            void closed.then(() => {
              if (waiters.has(check)) {
                waiters.delete(check);
                clearTimeout(timer);
                rejectResponse(new Error(`connection closed before a response; received: ${text.slice(from, from + 300)}`));
              }
            });
            check();
          });
        },
        write: (data) =>
          new Promise<void>((resolveWrite) => {
            if (socket.destroyed) return resolveWrite();
            socket.write(data, () => resolveWrite());
          }),
        close: () => socket.destroy(),
      });
    });
    socket.once('error', reject);
  });
}

/** A multipart body with one `file` part; `boundary` is fixed so a caller can build the head itself. */
export const BOUNDARY = 'pictorboundary7MA4YWxkTrZu0gW';

export function multipartFile(bytes: Buffer, filename = 'f.bin', extraFields: Record<string, string> = {}): Buffer {
  const fields = Object.entries(extraFields).map(
    ([name, value]) => `--${BOUNDARY}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
  );
  return Buffer.concat([
    Buffer.from(
      `${fields.join('')}--${BOUNDARY}\r\ncontent-disposition: form-data; name="file"; filename="${filename}"\r\ncontent-type: application/octet-stream\r\n\r\n`,
    ),
    bytes,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

/** The head of a request; `contentLength` may promise more than will ever be sent. */
export function requestHead(method: string, url: string, headers: Record<string, string | number>): string {
  const { pathname, search, host } = new URL(url);
  const lines = Object.entries({ host, ...headers }).map(([name, value]) => `${name}: ${value}`);
  return `${method} ${pathname}${search} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
