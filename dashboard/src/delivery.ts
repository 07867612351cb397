/** Delivery URLs for previews: the smallest fitting rendition, signed when the image requires it. */
import type { AccountApi, ImageRecord, SigningKey, Variant } from './api';
import { signDeliveryUrl } from './signing';

/** What the grid and previews need to know about the account, loaded once per view. */
export interface DeliveryContext {
  flexibleVariants: boolean;
  variants: Variant[];
  keys: SigningKey[];
}

export async function loadDeliveryContext(account: AccountApi): Promise<DeliveryContext> {
  const [config, variants, keys] = await Promise.all([account.config(), account.variants(), account.keys().catch(() => [])]);
  return { flexibleVariants: config.flexible_variants, variants, keys };
}

/** `https://host/<hash>/<id>` from one of the image's variant URLs. */
export function imageBase(image: ImageRecord): string | undefined {
  const first = image.variants[0];
  return first === undefined ? undefined : first.slice(0, first.lastIndexOf('/'));
}

export function variantNameOf(url: string): string {
  return decodeURIComponent(url.slice(url.lastIndexOf('/') + 1));
}

/** One of the signing keys, to sign previews of images that require signed URLs. */
async function signedIfNeeded(url: string, image: ImageRecord, context: DeliveryContext, variant?: Variant): Promise<string | undefined> {
  if (!image.requireSignedURLs || variant?.neverRequireSignedURLs) return url;
  const key = context.keys[0];
  return key ? signDeliveryUrl(url, key.value, 3600) : undefined;
}

/**
 * A small rendition for a grid tile: a flexible-variant thumbnail, or the smallest named variant. Images
 * that require signed URLs never get flexible variants (Cloudflare's rule, 403 9429): a named one, signed.
 */
export async function thumbnailUrl(image: ImageRecord, context: DeliveryContext, size: number): Promise<string | undefined> {
  const base = imageBase(image);
  if (base === undefined) return undefined;
  if (context.flexibleVariants && !image.requireSignedURLs) return `${base}/w=${size},h=${size},fit=cover`;
  const area = (variant: Variant): number => (variant.options.width ?? 10_000) * (variant.options.height ?? 10_000);
  const smallest = [...context.variants].sort((a, b) => area(a) - area(b))[0];
  const url = smallest ? `${base}/${encodeURIComponent(smallest.id)}` : image.variants[0];
  return url === undefined ? undefined : signedIfNeeded(url, image, context, smallest);
}

/** The URL to preview one named variant with (signed when needed). */
export function previewUrl(url: string, image: ImageRecord, context: DeliveryContext): Promise<string | undefined> {
  const variant = context.variants.find((candidate) => candidate.id === variantNameOf(url));
  return signedIfNeeded(url, image, context, variant);
}

/** A signed URL of the image (for images that require signed URLs), valid for an hour. */
export async function signedPreviewUrl(image: ImageRecord, context: DeliveryContext): Promise<string | undefined> {
  const url = image.variants[0];
  const key = context.keys[0];
  return url && key ? signDeliveryUrl(url, key.value, 3600) : undefined;
}
