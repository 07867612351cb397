/** Builds the absolute URLs Pictor hands out (delivery URLs now, upload URLs later). */
export class PublicUrls {
  private base: string | undefined;

  constructor(base?: string) {
    this.base = base?.replace(/\/+$/, '');
  }

  /** Called once the server knows its address when PICTOR_PUBLIC_URL is not set. */
  setBaseIfUnset(base: string): void {
    this.base ??= base.replace(/\/+$/, '');
  }

  get baseUrl(): string {
    if (this.base === undefined) throw new Error('Public URL is not known before the server listens');
    return this.base;
  }

  /** The one-time direct-upload URL: `<base>/upload/<account_hash>/<secret>`. */
  upload(accountHash: string, token: string): string {
    return `${this.baseUrl}/upload/${accountHash}/${token}`;
  }

  /** `<base>/<account_hash>/<image_id>/<variant>`; each id segment is percent-encoded, `/` kept. */
  delivery(accountHash: string, imageId: string, variant: string): string {
    const path = imageId.split('/').map(encodeURIComponent).join('/');
    return `${this.baseUrl}/${accountHash}/${path}/${encodeURIComponent(variant)}`;
  }
}
