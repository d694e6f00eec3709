// Paths under /ui/ (the server answers every one with index.html): /ui/, /ui/agents/ID,
// /ui/events, /ui/hooks, /ui/plugins, /ui/plugins/ID.
import { useEffect, useState } from "preact/hooks";

export interface Route {
  view: string;
  arg: string;
}

function current(): Route {
  const rest = location.pathname.replace(/^\/ui\/?/, "");
  const i = rest.indexOf("/");
  const view = i < 0 ? rest : rest.slice(0, i);
  const arg = i < 0 ? "" : decodeURIComponent(rest.slice(i + 1));
  return { view: view || "fleet", arg };
}

const listeners = new Set<() => void>();
addEventListener("popstate", () => listeners.forEach((f) => f()));

/** Goes to /ui/PATH without a reload (a click with a modifier opens a tab as usual). */
export function navigate(e: MouseEvent | undefined, path: string): void {
  if (e && (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0)) return;
  e?.preventDefault();
  history.pushState(null, "", `/ui/${path}`);
  listeners.forEach((f) => f());
}

export const agentPath = (id: string): string => `agents/${encodeURIComponent(id)}`;

export function useRoute(): Route {
  const [r, setR] = useState(current);
  useEffect(() => {
    const f = () => setR(current());
    listeners.add(f);
    return () => void listeners.delete(f);
  }, []);
  return r;
}
