// Drives the dashboard in jsdom against a running admin server and checks that the live
// numbers reach the DOM and the buttons work. Not part of `cargo test` (it needs node and
// the jsdom package); run it by hand or from an end-to-end script:
//
//   cargo run -p weir-admin --example demo -- 127.0.0.1:18080 127.0.0.1:19090 tok &
//   npm install --prefix /tmp/jsdom jsdom@24
//   NODE_PATH=/tmp/jsdom/node_modules node admin/tests/dom/dashboard.cjs http://127.0.0.1:18080/ tok
//
// Against `weir run`, pass a pipeline id that exists as the third argument (default clicks).
"use strict";
const assert = require("node:assert/strict");
const { JSDOM, VirtualConsole } = require("jsdom");

const [base, token = "", pipeline = "clicks"] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const console_ = new VirtualConsole();
  // jsdom has no canvas: the page skips drawing when getContext answers null.
  console_.on("jsdomError", (e) => { if (!/getContext/.test(e.message)) throw e; });
  const dom = await JSDOM.fromURL(base, {
    runScripts: "dangerously",
    pretendToBeVisual: true,
    virtualConsole: console_,
    beforeParse(window) {
      window.fetch = (url, opts) => fetch(new URL(url, window.location.href), opts);
      window.localStorage.setItem("weir.token", token);
    },
  });
  const d = dom.window.document;
  const value = (id) => d.getElementById(id) && d.getElementById(id).dataset.value;
  const until = async (what, ok) => {
    for (let i = 0; i < 50; i++) { if (ok()) return; await sleep(100); }
    assert.fail("timed out waiting for " + what + "; message: " + d.getElementById("message").textContent);
  };

  await until("the first update", () => value("updated"));
  for (const id of ["rate", "latency-p50", "latency-p99", "latency-p999", "lag", "windows", "late", "dropped"]) {
    const v = value(id + "-" + pipeline);
    assert.ok(v !== undefined && v !== "" && Number.isFinite(Number(v)), id + "-" + pipeline + " = " + v);
  }
  assert.ok(["ok", "unhealthy"].includes(value("health")));
  assert.ok(d.querySelectorAll("#shards tbody tr").length > 0, "shard rows");

  const first = Number(value("updated"));
  await until("a second update", () => Number(value("updated")) > first);

  d.getElementById("btn-stop-" + pipeline).click();
  await until("stopped", () => value("state-" + pipeline) === "stopped");
  d.getElementById("btn-start-" + pipeline).click();
  await until("running", () => value("state-" + pipeline) === "running");

  d.getElementById("btn-checkpoint").click();
  await until("the checkpoint", () => /^checkpoint \d+ complete/.test(d.getElementById("message").textContent));
  const id = d.getElementById("message").textContent.split(" ")[1];
  await until("the row of checkpoint " + id, () => d.getElementById("checkpoint-" + id));

  if (token) {
    d.getElementById("token").value = token + "-wrong";
    d.getElementById("btn-stop-" + pipeline).click();
    await until("the 401", () => /wrong token/.test(d.getElementById("message").textContent));
    assert.equal(value("state-" + pipeline), "running");
  }
  dom.window.close();
  console.log("dashboard: 1 passed, 0 failed");
})().catch((e) => { console.error(e); process.exit(1); });
