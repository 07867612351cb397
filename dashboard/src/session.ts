/**
 * The signed-in session lives in sessionStorage only: gone when the tab closes, never in a cookie (so
 * it is never sent by the browser on its own) and never in a URL (so it cannot leak through history or
 * a Referer).
 */
import type { AccountSummary, Credentials } from './api';

export interface Session {
  credentials: Credentials;
  account: AccountSummary;
  /** Every account the credential may use, for the account switcher. */
  accounts: AccountSummary[];
}

const KEY = 'pictor.dashboard.session';

export function loadSession(): Session | undefined {
  try {
    const text = sessionStorage.getItem(KEY);
    return text === null ? undefined : (JSON.parse(text) as Session);
  } catch {
    return undefined;
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}
