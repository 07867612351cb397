/**
 * The dashboard's shell: sign-in when there is no session, otherwise the account's header, navigation
 * (Images, Variants, Signing keys, Webhooks; the hash keeps the view across reloads) and the current view.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { AccountApi, AlertingApi, Api } from './api';
import { ImagesView } from './ImagesView';
import { KeysView } from './KeysView';
import { clearSession, loadSession, saveSession, type Session } from './session';
import { SignIn } from './SignIn';
import { VariantsView } from './VariantsView';
import { WebhooksView } from './WebhooksView';

type View = 'images' | 'variants' | 'keys' | 'webhooks';
const VIEWS: Array<{ id: View; label: string }> = [
  { id: 'images', label: 'Images' },
  { id: 'variants', label: 'Variants' },
  { id: 'keys', label: 'Signing keys' },
  { id: 'webhooks', label: 'Webhooks' },
];

function viewFromHash(): View {
  const id = location.hash.replace(/^#\/?/, '');
  return VIEWS.find((view) => view.id === id)?.id ?? 'images';
}

export function App() {
  const [session, setSession] = useState<Session | undefined>(loadSession);
  const [view, setView] = useState<View>(viewFromHash);

  useEffect(() => {
    const onHash = (): void => setView(viewFromHash());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  const account = useMemo(
    () => (session ? new AccountApi(new Api(session.credentials), session.account.id) : undefined),
    [session],
  );
  const alerting = useMemo(() => (account ? new AlertingApi(account.api, account.accountId) : undefined), [account]);

  if (!session || !account || !alerting) {
    return (
      <SignIn
        onSignedIn={(signedIn) => {
          saveSession(signedIn);
          setSession(signedIn);
        }}
      />
    );
  }

  const switchAccount = (id: string): void => {
    const chosen = session.accounts.find((candidate) => candidate.id === id);
    if (!chosen) return;
    const next = { ...session, account: chosen };
    saveSession(next);
    setSession(next);
  };

  return (
    <div class="shell">
      <header class="topbar">
        <span class="brand">Pictor</span>
        {session.accounts.length > 1 ? (
          <label class="account-switch">
            Account
            <select value={session.account.id} onChange={(event) => switchAccount(event.currentTarget.value)}>
              {session.accounts.map((candidate) => (
                <option key={candidate.id} value={candidate.id}>
                  {candidate.name}
                </option>
              ))}
            </select>
          </label>
        ) : (
          <span class="account" title={session.account.id}>
            {session.account.name}
          </span>
        )}
        <nav aria-label="Sections">
          <ul>
            {VIEWS.map((item) => (
              <li key={item.id}>
                <a href={`#/${item.id}`} aria-current={item.id === view ? 'page' : undefined}>
                  {item.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <button
          type="button"
          class="secondary"
          onClick={() => {
            clearSession();
            setSession(undefined);
          }}
        >
          Sign out
        </button>
      </header>
      <main key={`${session.account.id}-${view}`}>
        {view === 'images' && <ImagesView account={account} />}
        {view === 'variants' && <VariantsView account={account} />}
        {view === 'keys' && <KeysView account={account} />}
        {view === 'webhooks' && <WebhooksView alerting={alerting} />}
      </main>
    </div>
  );
}
