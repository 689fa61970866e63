import { type FormEvent, useState } from 'react';
import { api, problemText } from '../api/client';
import { Field } from '../ui';

/** Console sign-in with the operator token; tenant members arrive through a portal link instead. */
export function SignInPage(props: { notice?: string | undefined; onSignedIn(): void }) {
  const [error, setError] = useState<string>();
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const operatorToken = String(new FormData(event.currentTarget).get('token') ?? '');
    const { error } = await api.POST('/v1/session', { body: { operatorToken } });
    if (error) setError(problemText(error));
    else props.onSignedIn();
  };
  return (
    <main id="main" className="sign-in">
      <h1>Sign in to Twoway</h1>
      {props.notice ? (
        <p className="banner banner-yellow" role="alert">
          {props.notice}
        </p>
      ) : null}
      <p>Tenant members: open the portal link your platform sent you. It signs you in for this browser.</p>
      <form className="card" onSubmit={submit}>
        <h2>Operator console</h2>
        <Field label="Operator token" id="token" error={error}>
          <input id="token" name="token" type="password" autoComplete="off" required />
        </Field>
        <button type="submit" className="primary">
          Sign in
        </button>
      </form>
    </main>
  );
}
