// The console's shell: sign-in, navigation (paths under /ui/, history API), the
// connection's status, and the views.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Fleet, LifecycleError, errorText, signIn, type Role } from "./api";
import type { LifecycleManager } from "hms-agent-lifecycle";
import { FleetView } from "./fleet";
import { AgentView } from "./agent";
import { FeedView } from "./feed";
import { HooksView } from "./hooks";
import { PluginsView } from "./plugins";
import { navigate, useRoute } from "./route";
import "./style.css";

export interface Session {
  mgr: LifecycleManager;
  role: Role;
  fleet: Fleet;
}

const TOKEN_KEY = "hms-console-token";

function SignIn(props: { onSession: (s: Session) => void; error: string }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(props.error);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const { mgr, role } = await signIn(token.trim());
      sessionStorage.setItem(TOKEN_KEY, token.trim());
      props.onSession({ mgr, role, fleet: new Fleet(mgr) });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>HMS Lifecycle</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label for="token">Bearer token</label>
        <input id="token" type="password" autocomplete="current-password" value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        <p class="hint">Leave it empty when the server has no tokens configured (--auth-tokens).</p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const route = useRoute();
  const { fleet } = session;
  const [, setV] = useState(0);
  useEffect(() => {
    void fleet.run();
    const un = fleet.subscribe(() => setV(fleet.version));
    return () => {
      un();
      fleet.close();
    };
  }, [fleet]);
  const tab = (path: string, label: string) => (
    <a href={`/ui/${path}`} aria-current={route.view === (path || "fleet") ? "page" : undefined} onClick={(e) => navigate(e, path)}>
      {label}
    </a>
  );
  let view;
  switch (route.view) {
    case "agents":
      view = <AgentView session={session} id={route.arg} />;
      break;
    case "events":
      view = <FeedView session={session} />;
      break;
    case "hooks":
      view = <HooksView session={session} />;
      break;
    case "plugins":
      view = <PluginsView session={session} id={route.arg} />;
      break;
    default:
      view = <FleetView session={session} />;
  }
  return (
    <>
      <header>
        <strong class="brand">HMS Lifecycle</strong>
        <nav aria-label="Views">
          {tab("", "Fleet")}
          {tab("events", "Events")}
          {tab("plugins", "Plugins")}
          {tab("hooks", "Hooks")}
        </nav>
        <span class={`conn conn-${fleet.connection}`} role="status" data-testid="connection" title={fleet.lastError}>
          {fleet.connection}
        </span>
        <span class="role" data-testid="role">
          {session.role}
        </span>
        <button type="button" class="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      {view}
    </>
  );
}

function App() {
  const [session, setSession] = useState<Session | undefined>();
  const [error, setError] = useState("");
  const [trying, setTrying] = useState(true);
  useEffect(() => {
    // The token of this tab's earlier sign-in, or none (a server without tokens).
    const saved = sessionStorage.getItem(TOKEN_KEY) ?? "";
    signIn(saved)
      .then(({ mgr, role }) => setSession({ mgr, role, fleet: new Fleet(mgr) }))
      .catch((e: unknown) => {
        // No token and the server wants one: just ask for it. Anything else is worth saying.
        const wantsToken = e instanceof LifecycleError && e.code === "UNAUTHENTICATED" && saved === "";
        if (!wantsToken) setError(errorText(e));
      })
      .finally(() => setTrying(false));
  }, []);
  if (session) {
    return (
      <Shell
        session={session}
        onSignOut={() => {
          sessionStorage.removeItem(TOKEN_KEY);
          void session.mgr.close();
          setSession(undefined);
        }}
      />
    );
  }
  if (trying) return <p class="loading">Connecting…</p>;
  return <SignIn onSession={setSession} error={error} />;
}

render(<App />, document.getElementById("app") as HTMLElement);
