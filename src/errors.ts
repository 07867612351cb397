/**
 * The one error type of Pictor. Domain code throws `PictorError` with a Cloudflare error code;
 * only the HTTP adapters decide how it is written (JSON envelope for the API, plain text for delivery).
 * API codes are 4-5 digit 5xxx/6xxx/7xxx/10000 (alerting: 17xxx); delivery codes are 9xxx, as on imagedelivery.net.
 */

/** Every code Pictor emits, with its HTTP status and default message. */
export const ERRORS = {
  971: { status: 429, message: 'Please wait and consider throttling your request speed' },
  1000: { status: 401, message: 'Invalid API Token' },
  5400: { status: 400, message: 'Bad Request' },
  5401: { status: 404, message: 'Variant name not found' },
  5403: { status: 403, message: 'The given account is not valid or is not authorized to access this service' },
  5404: { status: 404, message: 'Image not found' },
  5409: { status: 409, message: 'Resource already exists' },
  5413: { status: 413, message: 'Maximum image size of 10 Mb is reached' },
  5415: {
    status: 415,
    message: 'Images must be uploaded as a form, not as raw image data. Please use multipart/form-data format',
  },
  5443: { status: 413, message: 'Animated image is too large: all frames together exceed 100 megapixels' },
  5453: { status: 403, message: 'The given account has reached a service limit' },
  5455: {
    status: 415,
    message:
      'Uploaded image must have image/jpeg, image/png, image/webp, image/gif, image/avif, image/heic or image/svg+xml content-type',
  },
  5500: { status: 500, message: 'Internal Server Error' },
  5503: { status: 503, message: 'Server Unavailable' },
  6003: { status: 400, message: 'Invalid request headers' },
  7003: { status: 404, message: 'No route for that URI' },
  10000: { status: 403, message: 'Authentication error' },
  17001: { status: 404, message: 'Not found' },
  17002: { status: 400, message: 'The test message to the webhook failed' },
  9401: { status: 400, message: 'Invalid or missing image transformation options' },
  9402: { status: 502, message: 'The image could not be fetched' },
  9403: { status: 508, message: 'Request loop: the image is already a transformation' },
  9404: { status: 404, message: 'Image not found' },
  9406: { status: 403, message: 'The image URL is not valid' },
  9408: { status: 408, message: 'The image origin answered with an error' },
  9412: { status: 415, message: 'The origin did not send an image' },
  9420: { status: 400, message: 'The image origin redirected to an invalid URL' },
  9421: { status: 400, message: 'Too many redirects fetching the image' },
  9425: { status: 403, message: 'Image access denied' },
  9413: { status: 403, message: 'Image too large' },
  9429: { status: 403, message: 'Flexible variants are not enabled for this image' },
  9431: { status: 404, message: 'Not found' },
  9500: { status: 500, message: 'Internal error while rendering the image' },
  9520: { status: 415, message: 'The original image has an unsupported format' },
  9523: { status: 503, message: 'Too many images are being resized; try again shortly' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorChainItem {
  code: number;
  message: string;
}

export class PictorError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly chain: ErrorChainItem[] | undefined;
  /** Seconds a client should wait before retrying (503s). */
  readonly retryAfter: number | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options: { chain?: ErrorChainItem[]; retryAfter?: number; status?: number; cause?: unknown } = {},
  ) {
    super(message ?? ERRORS[code].message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PictorError';
    this.code = code;
    this.status = options.status ?? ERRORS[code].status;
    this.chain = options.chain;
    this.retryAfter = options.retryAfter;
  }
}

export const badRequest = (message: string): PictorError => new PictorError(5400, message);
export const imageNotFound = (): PictorError => new PictorError(5404);
export const alreadyExists = (): PictorError => new PictorError(5409);
