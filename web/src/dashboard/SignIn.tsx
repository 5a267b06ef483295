// Sign-in for now: a pasted merchandiser token, checked against the API before it is kept.
import { useState, type FormEvent } from "react";
import { message, newApi } from "./api";

export function SignIn({ note, onSignIn }: { note: string; onSignIn: (token: string) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const t = token.trim().replace(/^Bearer\s+/i, "");
    if (!t) {
      setError("Paste a token first.");
      return;
    }
    setBusy(true);
    setError("");
    const api = newApi(t, () => {}, () => {});
    try {
      // A merchandiser-only field: a customer's token is refused with FORBIDDEN.
      await api.request("query SignIn { warehouses { id } }");
      onSignIn(t);
    } catch (err) {
      setError(message(err));
    } finally {
      api.close();
      setBusy(false);
    }
  }

  return (
    <main className="signin" aria-labelledby="signin-title">
      <h1 id="signin-title">Storefront dashboard</h1>
      <form onSubmit={submit} noValidate>
        <label htmlFor="token">Merchandiser token</label>
        <p id="token-help" className="help">
          <code>make run</code> prints one; or run <code>bin/storefront token --role merchandiser</code>. It is kept for this browser tab only.
        </p>
        <textarea
          id="token"
          name="token"
          rows={4}
          value={token}
          onChange={(e) => setToken(e.target.value)}
          aria-describedby="token-help"
          aria-invalid={error ? true : undefined}
          autoComplete="off"
          spellCheck={false}
          required
        />
        {(error || note) && (
          <p className="error" role="alert">
            {error || note}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
