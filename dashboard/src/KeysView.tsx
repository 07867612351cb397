/**
 * Signing keys: the account's keys (values hidden until revealed), add one by name, delete one after
 * confirmation. The server's rule is shown as it acts: an account always keeps a key, so deleting the
 * last one makes a new `default`.
 */
import { useEffect, useState } from 'preact/hooks';
import { type AccountApi, errorText, type SigningKey } from './api';
import { CopyButton } from './CopyButton';
import { Feedback, useAction } from './Feedback';

function KeyRow({ signingKey, onDelete }: { signingKey: SigningKey; onDelete: () => void }) {
  const [revealed, setRevealed] = useState(false);
  return (
    <tr>
      <th scope="row">{signingKey.name}</th>
      <td>
        <code class="key-value">{revealed ? signingKey.value : '•'.repeat(16)}</code>
      </td>
      <td>
        <div class="row-actions">
          <button type="button" class="secondary small" aria-pressed={revealed} onClick={() => setRevealed(!revealed)}>
            {revealed ? 'Hide' : 'Reveal'}
          </button>
          <CopyButton text={signingKey.value} label={`Copy key ${signingKey.name}`} />
          <button type="button" class="danger small" onClick={onDelete}>
            Delete
          </button>
        </div>
      </td>
    </tr>
  );
}

export function KeysView({ account }: { account: AccountApi }) {
  const [keys, setKeys] = useState<SigningKey[]>([]);
  const [name, setName] = useState('');
  const feedback = useAction();
  const { run, setError } = feedback;

  useEffect(() => {
    account.keys().then(setKeys, (caught: unknown) => setError(errorText(caught)));
  }, [account]);

  const add = (event: Event): Promise<void> => {
    event.preventDefault();
    const wanted = name.trim();
    return run(async () => {
      setKeys(await account.addKey(wanted));
      setName('');
      return `Key ${wanted} added`;
    });
  };

  const remove = (key: SigningKey): Promise<void> =>
    run(async () => {
      if (!confirm(`Delete the signing key ${key.name}? URLs signed with it stop working.`)) return '';
      const remaining = await account.deleteKey(key.name);
      setKeys(remaining);
      const made = remaining.length === 1 && keys.length === 1 ? remaining[0] : undefined;
      return made ? `Key ${key.name} deleted. It was the last one, so the server made a new key named ${made.name}.` : `Key ${key.name} deleted`;
    });

  return (
    <section aria-labelledby="keys-heading">
      <h1 id="keys-heading">Signing keys</h1>
      <p>
        Signed URLs carry an HMAC made with one of these keys. Add the new key, move your signers to it, then delete the old one. An account always keeps at
        least one key: deleting the last one makes a new key named <code>default</code>.
      </p>
      <Feedback feedback={feedback} />
      <div class="table-wrap">
        <table>
          <caption>Keys of this account</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Value</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {keys.map((key) => (
              <KeyRow key={key.name} signingKey={key} onDelete={() => void remove(key)} />
            ))}
          </tbody>
        </table>
      </div>
      <form onSubmit={add} class="inline-form">
        <label>
          Key name
          <input type="text" value={name} onInput={(event) => setName(event.currentTarget.value)} />
        </label>
        <button type="submit">Add key</button>
      </form>
    </section>
  );
}
