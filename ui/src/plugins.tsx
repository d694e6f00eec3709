// Plugins: every plugin id with its versions side by side (state, deprecation and
// replacement, manifest, validation errors, last failure), the operations the server allows
// in each version's state (by role), resolve on demand, and the plugin's history; live from
// WatchPluginEvents.
import { useEffect, useState } from "preact/hooks";
import { errorText } from "./api";
import { navigate } from "./route";
import type { Session } from "./main";
// The generated messages' types (type-only: nothing of the file is bundled).
import type { Plugin, PluginEvent } from "../../bindings/typescript/src/gen/hms/plugin/lifecycle/v1/plugin_lifecycle_pb";

const PLUGIN_STATES = ["UNSPECIFIED", "DISCOVERED", "REGISTERED", "INACTIVE", "ACTIVATING", "ACTIVE", "DEACTIVATING", "FAILED", "DEPRECATED"];
const pstate = (n: number): string => PLUGIN_STATES[n] ?? String(n);

/** The operations an operator may do; deprecate needs admin (docs/auth.md). */
const OPERATOR_OPS = new Set(["validate", "load", "activate", "deactivate", "reset"]);

export function PluginsView({ session, id }: { session: Session; id: string }) {
  const plugins = session.mgr.plugins;
  const [all, setAll] = useState<Plugin[] | undefined>();
  const [error, setError] = useState("");
  const load = async () => {
    try {
      const out: Plugin[] = [];
      let pageToken = "";
      do {
        const r = await plugins.list({ pageToken });
        out.push(...r.plugins);
        pageToken = r.nextPageToken;
      } while (pageToken !== "");
      setAll(out);
      setError("");
    } catch (e) {
      setError(errorText(e));
    }
  };
  useEffect(() => {
    void load();
    // Any plugin event re-reads the list (plugins are few; their events are rare).
    const ac = new AbortController();
    void (async () => {
      for (;;) {
        try {
          for await (const ev of plugins.watch({}, ac.signal)) if (!ev.event?.bookmark) void load();
        } catch {
          // the server restarted or the stream broke: read again, then watch again
        }
        if (ac.signal.aborted) return;
        await new Promise((r) => setTimeout(r, 1000));
        void load();
      }
    })();
    return () => ac.abort();
  }, []);
  const ids = [...new Set((all ?? []).map((p) => p.id))].sort();
  return (
    <main class="plugins">
      <h1>Plugins</h1>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {session.role !== "viewer" && (
        <button type="button" onClick={() => void plugins.scan().then(load, (e: unknown) => setError(errorText(e)))}>
          Scan the repository
        </button>
      )}
      {all && ids.length === 0 && <p class="muted">No plugin is known (serve --plugin-repo DIR).</p>}
      {ids.map((pid) => (
        <PluginCard key={pid} session={session} id={pid} versions={(all ?? []).filter((p) => p.id === pid)} open={pid === id} onChange={load} />
      ))}
    </main>
  );
}

function PluginCard(props: { session: Session; id: string; versions: Plugin[]; open: boolean; onChange: () => Promise<void> }) {
  const { session, id, versions } = props;
  const plugins = session.mgr.plugins;
  const [msg, setMsg] = useState("");
  const [reason, setReason] = useState("");
  const [constraint, setConstraint] = useState("*");
  const [resolved, setResolved] = useState("");
  const [history, setHistory] = useState<PluginEvent[] | undefined>();
  const op = async (name: string, version: string) => {
    setMsg("");
    try {
      switch (name) {
        case "activate":
          await plugins.activate(id, version, reason);
          break;
        case "deactivate":
          await plugins.deactivate(id, version, reason);
          break;
        case "reset":
          await plugins.call("resetPlugin", { id, version, reason });
          break;
        case "validate":
          await plugins.call("validatePlugin", { id, version, reason });
          break;
        case "load":
          await plugins.call("loadPlugin", { id, version, reason });
          break;
        case "deprecate": {
          const replacement = prompt(`Deprecate ${id} ${version}: the replacing version (or empty)`, "");
          if (replacement === null) return;
          await plugins.call("deprecatePlugin", { id, version, reason, replacement });
          break;
        }
      }
    } catch (e) {
      setMsg(errorText(e));
    }
    await props.onChange();
  };
  const allowed = (o: string) => session.role === "admin" || (session.role === "operator" && OPERATOR_OPS.has(o));
  const showHistory = async () => {
    try {
      const r = await plugins.call("getPluginHistory", { id, limit: 100 });
      setHistory(r.events);
    } catch (e) {
      setMsg(errorText(e));
    }
  };
  return (
    <section class="card plugin" aria-labelledby={`p-${id}`} data-plugin={id}>
      <h2 id={`p-${id}`}>
        <a href={`/ui/plugins/${encodeURIComponent(id)}`} onClick={(e) => navigate(e, `plugins/${encodeURIComponent(id)}`)}>
          {id}
        </a>
      </h2>
      <div class="versions">
        {versions.map((p) => (
          <article key={p.version} class="version" data-version={p.version} aria-label={`${id} ${p.version}`}>
            <h3>
              {p.version} <span class={`pill pst-${pstate(p.state)}`} data-testid="plugin-state">{pstate(p.state)}</span>
            </h3>
            <dl>
              {p.manifest && (
                <>
                  <dt>Name</dt>
                  <dd>{p.manifest.name}</dd>
                  <dt>Type</dt>
                  <dd>{p.manifest.type}</dd>
                  <dt>Ports</dt>
                  <dd>
                    implements {p.manifest.implementedPorts.join(", ") || "none"}; uses {p.manifest.consumedCorePorts.join(", ") || "none"}
                  </dd>
                  {p.manifest.digest && (
                    <>
                      <dt>Digest</dt>
                      <dd class="mono">{p.manifest.digest.slice(0, 19)}</dd>
                    </>
                  )}
                </>
              )}
              {p.replacedBy && (
                <>
                  <dt>Replaced by</dt>
                  <dd>{p.replacedBy}</dd>
                </>
              )}
              {p.endpoint && (
                <>
                  <dt>Endpoint</dt>
                  <dd class="mono">{p.endpoint}</dd>
                </>
              )}
              {p.packageMissing && (
                <>
                  <dt>Package</dt>
                  <dd class="error">missing from the repository</dd>
                </>
              )}
            </dl>
            {p.manifest?.description && <p class="muted">{p.manifest.description}</p>}
            {p.manifest?.runtimeJson && (
              <details>
                <summary>Runtime</summary>
                <pre class="mono">{p.manifest.runtimeJson}</pre>
              </details>
            )}
            {p.policy && (p.policy.failoverTarget || p.policy.failoverNote || p.policy.deactivation) && (
              <p class="muted">
                {[p.policy.failoverTarget && `fails over to ${p.policy.failoverTarget}`, p.policy.failoverNote, p.policy.deactivation].filter(Boolean).join("; ")}
              </p>
            )}
            {p.errors.length > 0 && (
              <ul class="error" aria-label="Validation errors">
                {p.errors.map((e, i) => (
                  <li key={i}>
                    <code>{e.pointer || "/"}</code> {e.message}
                  </li>
                ))}
              </ul>
            )}
            {p.lastError && <pre class="error">{p.lastError}</pre>}
            {session.role !== "viewer" && (
              <div class="buttons">
                {p.allowedOperations.filter(allowed).map((o) => (
                  <button type="button" key={o} data-op={o} class={o === "deprecate" ? "danger" : ""} onClick={() => void op(o, p.version)}>
                    {o}
                  </button>
                ))}
              </div>
            )}
          </article>
        ))}
      </div>
      <div class="filters">
        {session.role !== "viewer" && (
          <label>
            Reason <input value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          </label>
        )}
        <label>
          Constraint <input value={constraint} onInput={(e) => setConstraint(e.currentTarget.value)} size={8} />
        </label>
        <button
          type="button"
          onClick={() =>
            void plugins.resolve(id, constraint).then(
              (r) => setResolved(`resolve picks ${r.plugin?.version ?? "nothing"}${r.endpoint ? ` at ${r.endpoint}` : ""}`),
              (e: unknown) => setResolved(errorText(e)),
            )
          }
        >
          Resolve
        </button>
        {resolved && <span role="status">{resolved}</span>}
        <button type="button" onClick={() => void showHistory()}>
          History
        </button>
      </div>
      {msg && (
        <p role="alert" class="error">
          {msg}
        </p>
      )}
      {history && (
        <ol class="timeline">
          {history.map((e) => (
            <li key={String(e.sequence)}>
              {e.version}: {pstate(e.fromState)} → {pstate(e.toState)} <span class="tl-type">{e.operation}</span> by <strong>{e.initiatedBy}</strong>
              {e.reason && <>: <q>{e.reason}</q></>}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
