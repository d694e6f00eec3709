// The console's figures (make bench-ui), in headless Chromium against a real server
// (memory store): time to first render with AGENTS agents, then the frames dropped while
// RATE transitions/s arrive for SECONDS, from the page's own timeline (requestAnimationFrame
// deltas, and PerformanceObserver long animation frames), against an idle period of the
// same length measured in the same run. BENCH_AGENTS, BENCH_RATE and BENCH_SECONDS change them.
import { call, openBrowser, startServer } from "./helpers.mjs";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 10_000);
const RATE = Number(process.env.BENCH_RATE ?? 500);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

async function pool(n, concurrency, f) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await f(next++);
    }),
  );
}

const id = (i) => `agent-${String(i).padStart(5, "0")}`;

/** Frame statistics of the page over ms: rAF deltas and long animation frames. */
function measureFrames(ms) {
  return new Promise((resolve) => {
    const deltas = [];
    let loaf = 0;
    let loafMs = 0;
    let loafScriptMs = 0;
    let obs;
    try {
      obs = new PerformanceObserver((l) => {
        for (const e of l.getEntries()) {
          loaf++;
          loafMs += e.duration;
          // The part of the long frame spent running scripts (the console's code or the
          // binding's), as against style, layout, paint or the page waiting for a CPU.
          for (const sc of e.scripts ?? []) loafScriptMs += sc.duration;
        }
      });
      obs.observe({ type: "long-animation-frame", buffered: false });
    } catch {
      obs = undefined;
    }
    let last = performance.now();
    const start = last;
    const tick = (t) => {
      deltas.push(t - last);
      last = t;
      if (t - start < ms) requestAnimationFrame(tick);
      else {
        obs?.disconnect();
        const sorted = [...deltas].sort((a, b) => a - b);
        const frame = sorted[Math.floor(sorted.length / 2)];
        // A delta of k frame intervals means k-1 frames were not produced.
        const dropped = deltas.reduce((n, d) => n + Math.max(0, Math.round(d / frame) - 1), 0);
        resolve({
          frames: deltas.length,
          medianMs: frame,
          p99Ms: sorted[Math.floor(sorted.length * 0.99)],
          maxMs: sorted.at(-1),
          dropped,
          droppedPct: (100 * dropped) / (deltas.length + dropped),
          longAnimationFrames: loaf,
          longAnimationFrameMs: loafMs,
          longAnimationFrameScriptMs: loafScriptMs,
        });
      }
    };
    requestAnimationFrame(tick);
  });
}

const server = await startServer(["--store", "memory"]);
const browser = await openBrowser();
try {
  let t = performance.now();
  await pool(AGENTS, 32, (i) => call(server.url, "RegisterAgent", { agentId: id(i), labels: { shard: String(i % 16) } }));
  console.log(`registered ${AGENTS} agents in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const page = await browser.ctx.newPage();
  await page.goto(`${server.url}/ui/`);
  await page.waitForFunction(
    (n) => document.querySelector("[data-testid=count-INITIALIZED]")?.textContent === String(n) && document.querySelectorAll("[data-agent]").length > 0,
    AGENTS,
    { polling: "raf", timeout: 120_000 },
  );
  const render = await page.evaluate(() => ({
    ready: performance.now(),
    fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN,
    rows: document.querySelectorAll("[data-agent]").length,
  }));
  console.log(
    `time to first render with ${AGENTS} agents: ${render.ready.toFixed(0)} ms from navigation (first contentful paint ${render.fcp.toFixed(0)} ms; ${render.rows} rows in the DOM)`,
  );

  // The renderer's main-thread time (Chrome DevTools Protocol, Performance.getMetrics):
  // scripts, style and layout, and all tasks, over each window.
  const cdp = await browser.ctx.newCDPSession(page);
  await cdp.send("Performance.enable");
  const metrics = async () => Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
  const busyShare = (a, b, secs) => {
    const d = (k) => (b[k] - a[k]) * 1000;
    return `main thread busy ${((100 * d("TaskDuration")) / (secs * 1000)).toFixed(1)}% (scripts ${d("ScriptDuration").toFixed(0)} ms, style ${d("RecalcStyleDuration").toFixed(0)} ms, layout ${d("LayoutDuration").toFixed(0)} ms)`;
  };
  let m0 = await metrics();
  const idle = await page.evaluate(measureFrames, SECONDS * 1000);
  let m1 = await metrics();
  const idleCpu = busyShare(m0, m1, SECONDS);

  // RATE transitions/s: every 10 ms, RATE/100 agents move (ACTIVE and PAUSED in turn).
  const state = new Array(AGENTS).fill("INITIALIZED");
  let sent = 0;
  let failed = 0;
  m0 = await metrics();
  const busy = page.evaluate(measureFrames, SECONDS * 1000);
  t = performance.now();
  const inflight = new Set();
  for (let tick = 0; tick < SECONDS * 100; tick++) {
    const due = t + tick * 10;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    for (let k = 0; k < RATE / 100; k++) {
      const i = (sent * 7919) % AGENTS;
      const target = state[i] === "ACTIVE" ? "PAUSED" : "ACTIVE";
      state[i] = target;
      sent++;
      const p = call(server.url, "TransitionState", { agentId: id(i), targetState: target, reason: "bench" }).catch(() => failed++);
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
  }
  await Promise.all(inflight);
  const took = (performance.now() - t) / 1000;
  const frames = await busy;
  m1 = await metrics();
  const busyCpu = busyShare(m0, m1, took);
  const fmt = (f) =>
    `${f.frames} frames, median ${f.medianMs.toFixed(1)} ms, p99 ${f.p99Ms.toFixed(1)} ms, max ${f.maxMs.toFixed(1)} ms; dropped ${f.dropped} (${f.droppedPct.toFixed(1)}%); long animation frames ${f.longAnimationFrames} (${f.longAnimationFrameMs.toFixed(0)} ms, of which scripts ${f.longAnimationFrameScriptMs.toFixed(0)} ms)`;
  console.log(`idle ${SECONDS} s: ${fmt(idle)}; ${idleCpu}`);
  console.log(`${sent} transitions in ${took.toFixed(1)} s (${(sent / took).toFixed(0)}/s, ${failed} failed): ${fmt(frames)}; ${busyCpu}`);
  const received = await page.evaluate(() => document.querySelector("[data-testid=count-ACTIVE]")?.textContent);
  console.log(`agents ACTIVE on screen at the end: ${received}`);
} finally {
  await browser.close();
  await server.stop();
}
