/**
 * What every view shows of its last action: the server's refusal (announced as an alert) or what was
 * done (a status), and the one way actions run so that neither can be forgotten.
 */
import { useState } from 'preact/hooks';
import { errorText } from './api';
import { ErrorNote } from './ErrorNote';

export interface ActionFeedback {
  error: string | undefined;
  status: string;
  setError: (message: string | undefined) => void;
  /** Runs `action`; its returned text (or `done`) becomes the status, a failure the error. */
  run: (action: () => Promise<string | void>, done?: string) => Promise<void>;
}

export function useAction(): ActionFeedback {
  const [error, setError] = useState<string | undefined>();
  const [status, setStatus] = useState('');
  const run = async (action: () => Promise<string | void>, done = ''): Promise<void> => {
    setError(undefined);
    setStatus('');
    try {
      setStatus((await action()) || done);
    } catch (caught) {
      setError(errorText(caught));
    }
  };
  return { error, status, setError, run };
}

export function Feedback({ feedback }: { feedback: ActionFeedback }) {
  return (
    <>
      <ErrorNote message={feedback.error} />
      <p role="status" class="status">
        {feedback.status}
      </p>
    </>
  );
}
