// The specification's section 5.3 example, as written plus one registerAgent line, run as a
// program against the WebAssembly core and against a real server (HMS_ENDPOINT). Its final
// watch loop never ends: the harness makes an ERROR event happen, the test waits for the
// example to print it, then stops the process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { PKG, startServer } from "./helpers.mjs";

async function runExample(env) {
  const proc = spawn(process.execPath, [join(PKG, "test", "example", "run_example.mjs")], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stderr.on("data", (d) => (err += d));
  const printed = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 30_000);
    proc.stdout.on("data", (d) => {
      out += d;
      if (out.includes("Event: Error - injected failure")) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    proc.on("exit", () => resolve(false));
  });
  const still = proc.exitCode === null;
  proc.kill("SIGTERM");
  await new Promise((r) => (proc.exitCode !== null || proc.signalCode !== null ? r() : proc.once("exit", r)));
  assert.ok(printed, `the example did not print the event:\n${out}\n${err}`);
  assert.ok(still, "the example's watch loop ended by itself");
  assert.equal(
    out,
    "Current state: Initialized\nTransitioned from Initialized to Active\nEvent: Error - injected failure\n",
  );
  assert.equal(err, "");
}

test("section 5.3 example, embedded (WebAssembly)", async () => {
  await runExample({ HMS_ENDPOINT: "" });
});

test("section 5.3 example, against a server (Connect)", async () => {
  const srv = await startServer();
  try {
    await runExample({ HMS_ENDPOINT: srv.url });
  } finally {
    await srv.stop();
  }
});
