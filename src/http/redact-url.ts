/**
 * URLs as they may be logged. Signed-URL signatures and direct-upload secrets are credentials; `meta.*`
 * list filters carry metadata values, which belong to the account's users.
 */

const SIGNATURE = /([?&]sig=)[^&]*/g;
const UPLOAD_SECRET = /^(\/upload\/[^/]+\/)[^/?]+/;
/** `meta.` in a query, spelled plainly or percent-encoded (`meta%2E`), in any case. */
const MAY_HOLD_METADATA = /meta(?:\.|%2e)/i;

function redactMetadataFilters(query: string): string {
  return query
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      if (equals === -1) return pair;
      let name = pair.slice(0, equals);
      try {
        name = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // An undecodable name is compared as sent.
      }
      return name.toLowerCase().startsWith('meta.') ? `${pair.slice(0, equals)}=[redacted]` : pair;
    })
    .join('&');
}

export function redactUrl(url: string): string {
  let redacted = url.replace(SIGNATURE, '$1[redacted]').replace(UPLOAD_SECRET, '$1[redacted]');
  const queryStart = redacted.indexOf('?');
  if (queryStart !== -1 && MAY_HOLD_METADATA.test(redacted)) {
    redacted = redacted.slice(0, queryStart + 1) + redactMetadataFilters(redacted.slice(queryStart + 1));
  }
  return redacted;
}
