/**
 * Sign-in with an API token (or a legacy API key and its email), through Cloudflare's own routes:
 * `GET /user/tokens/verify` checks a token, `GET /accounts` finds what the credential may use.
 */
import { useState } from 'preact/hooks';
import { Api, type Credentials, errorText } from './api';
import { ErrorNote } from './ErrorNote';
import type { Session } from './session';

export function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [mode, setMode] = useState<'token' | 'key'>('token');
  const [token, setToken] = useState('');
  const [email, setEmail] = useState('');
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setError(undefined);
    const credentials: Credentials = mode === 'token' ? { kind: 'token', token: token.trim() } : { kind: 'key', email: email.trim(), key: key.trim() };
    if (credentials.kind === 'token' ? credentials.token === '' : credentials.email === '' || credentials.key === '') {
      setError(mode === 'token' ? 'Enter an API token.' : 'Enter the email and the API key.');
      return;
    }
    setBusy(true);
    try {
      const api = new Api(credentials);
      // Legacy keys are not tokens: Cloudflare's verify route is for tokens only.
      if (credentials.kind === 'token') await api.verifyToken();
      const accounts = await api.accounts();
      const first = accounts[0];
      if (!first) throw new Error('This credential may not use any account.');
      onSignedIn({ credentials, account: first, accounts });
    } catch (caught) {
      setError(`Sign-in failed: ${errorText(caught)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin">
      <h1>Pictor</h1>
      <p>Sign in with an API token of your Pictor server. It is kept in this tab only, and forgotten when you sign out or close the tab.</p>
      <form onSubmit={submit}>
        {mode === 'token' ? (
          <label>
            API token
            <input type="password" name="token" autocomplete="off" value={token} onInput={(event) => setToken(event.currentTarget.value)} />
          </label>
        ) : (
          <>
            <label>
              Email
              <input type="email" name="email" autocomplete="username" value={email} onInput={(event) => setEmail(event.currentTarget.value)} />
            </label>
            <label>
              API key
              <input type="password" name="key" autocomplete="off" value={key} onInput={(event) => setKey(event.currentTarget.value)} />
            </label>
          </>
        )}
        <ErrorNote message={error} />
        <div class="actions">
          <button type="submit" disabled={busy}>
            Sign in
          </button>
          <button type="button" class="link" onClick={() => setMode(mode === 'token' ? 'key' : 'token')}>
            {mode === 'token' ? 'Use a legacy API key instead' : 'Use an API token instead'}
          </button>
        </div>
      </form>
    </main>
  );
}
