#!/usr/bin/env node
// make prism-check: the relay's answers through Prism's validating proxy. Run through
// contract/with-relay.mjs, which starts the relay on the sample feed (RELAY_URL, RELAY_JWT).
//
// Three `prism proxy` instances (npx --yes @stoplight/prism-cli@$PRISM_VERSION) front the relay:
// - strict: `--errors`. Requests must match api/openapi.yaml, and so must the relay's answers.
//   Every valid request of every operation goes through it.
// - answers: `--errors --validate-request=false`. Forwards requests the spec refuses (missing
//   token, invalid bodies) and validates the relay's answers to them: XDR sends such requests
//   and gets HTTP 200 envelopes, which must match the spec.
// - self-test: `--errors` on a copy of the spec whose VersionResult pattern no answer matches.
//   The check must see that violation, or it proves nothing.
// With --errors, Prism answers a violation itself (problem+json, 422 for a request, 500 for an
// answer) and lists it in an sl-violations header; any sl-violations header, of any severity,
// fails the check.
//
// Two things Prism does not forward, checked directly against the relay instead:
// - Unknown paths and wrong methods: Prism answers them itself (404 NO_PATH_MATCHED_ERROR, 405
//   NO_METHOD_MATCHED_ERROR), which shows the spec and the relay agree on what exists; the
//   relay's own 404/405 HTTPError answers are checked directly (and by make ts-client).
// - HEAD /watchdog: Prism 5.x parses any non-204 answer with a JSON Content-Type as JSON, and a
//   HEAD answer has no body (its own stoplightio/prism#1361 fixed this for 204 only), so the
//   proxied HEAD fails inside Prism with "invalid json response body". When that happens, the
//   relay's HEAD answer is checked directly: 200, no body, a valid X-Request-Id.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const specPath = path.join(root, "api", "openapi.yaml");
const prismVersion = process.env.PRISM_VERSION || "5.14.2";
const relayURL = process.env.RELAY_URL;
const jwt = process.env.RELAY_JWT;
if (!relayURL || !jwt) {
  console.error("prism-check: RELAY_URL and RELAY_JWT are not set: run it through make prism-check");
  process.exit(2);
}
const readyTimeoutMs = 300_000; // the first run downloads Prism
const requestIdPattern = /^[A-Za-z0-9_.:-]{1,64}$/;
const prismError = "https://stoplight.io/prism/errors#";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const prisms = [];

// startPrism runs `prism proxy` in its own process group (npx starts prism as a child), so that
// stopping it stops exactly the processes this script started.
async function startPrism(name, spec, flags) {
  const port = await freePort();
  const args = ["--yes", `@stoplight/prism-cli@${prismVersion}`, "proxy", ...flags, "-h", "127.0.0.1", "-p", String(port), spec, relayURL];
  const child = spawn("npx", args, { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const p = { name, url: `http://127.0.0.1:${port}`, child, log: "", exited: false };
  child.stdout.on("data", (b) => (p.log += b));
  child.stderr.on("data", (b) => (p.log += b));
  p.done = new Promise((resolve) => child.on("exit", () => {
    p.exited = true;
    resolve();
  }));
  prisms.push(p);
  return p;
}

async function waitReady(p) {
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (p.exited) throw new Error(`Prism (${p.name}) exited before listening:\n${p.log}`);
    try {
      const res = await fetch(`${p.url}/`); // any answer (404 NO_PATH_MATCHED_ERROR) means it listens
      await res.arrayBuffer();
      return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`Prism (${p.name}) did not listen within ${readyTimeoutMs / 1000} s:\n${p.log}`);
    await sleep(200);
  }
}

async function stopAll() {
  for (const p of prisms) {
    if (!p.exited) {
      try {
        process.kill(-p.child.pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
  }
  await Promise.all(prisms.map((p) => Promise.race([p.done, sleep(5000)])));
}

let failures = 0;
let checked = 0;

function fail(what, detail) {
  failures++;
  console.error(`FAIL ${what}${detail ? `\n     ${detail}` : ""}`);
}

async function send(base, { method = "POST", path: p, body, headers = {}, token = jwt }) {
  const h = { ...headers };
  if (token !== null) h.Authorization = `Bearer ${token}`;
  if (body !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === "content-type")) h["Content-Type"] = "application/json";
  const res = await fetch(`${base}${p}`, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

// problems lists what is wrong with one proxied answer: a violation Prism reports, or an
// answer that is not the relay's.
function problems(res, wantStatus = 200) {
  const out = [];
  const violations = res.headers.get("sl-violations");
  if (violations) out.push(`Prism reports violations: ${violations}`);
  const ct = res.headers.get("content-type") || "";
  if (ct.startsWith("application/problem+json")) out.push(`Prism answered itself: ${res.status} ${res.text}`);
  if (res.status !== wantStatus) out.push(`status ${res.status}, want ${wantStatus}: ${res.text.slice(0, 300)}`);
  const id = res.headers.get("x-request-id");
  if (!id || !requestIdPattern.test(id)) out.push(`X-Request-Id ${JSON.stringify(id)}`);
  return out;
}

async function expectClean(prism, what, req, check) {
  checked++;
  const res = await send(prism.url, req);
  const found = problems(res, req.wantStatus ?? 200);
  if (found.length === 0 && check) {
    const msg = check(res.text ? JSON.parse(res.text) : undefined, res);
    if (msg) found.push(msg);
  }
  if (found.length > 0) fail(`${prism.name}: ${what}`, found.join("\n     "));
  else console.log(`ok   ${prism.name}: ${what}`);
}

// prismAnswers checks that Prism itself answered with the given error type (routing, or its
// request validation), which also means the request never reached the relay.
async function expectPrismError(prism, what, req, type, status) {
  checked++;
  const res = await send(prism.url, req);
  let body;
  try {
    body = JSON.parse(res.text);
  } catch {
    body = {};
  }
  if (res.status !== status || body.type !== prismError + type) {
    fail(`${prism.name}: ${what}`, `want Prism's ${status} ${type}, got ${res.status} ${res.text.slice(0, 300)}`);
  } else {
    console.log(`ok   ${prism.name}: ${what} (Prism: ${status} ${type})`);
  }
}

const envelope = (code) => (body) => {
  const got = (body?.errors ?? []).map((e) => e.code).join();
  return got === code ? "" : `want a ${code} envelope, got ${JSON.stringify(body)}`;
};

async function main() {
  const sample = JSON.parse(readFileSync(path.join(root, "sample", "observables.json"), "utf8"));
  const unsupported = [{ type: "user", value: "alice" }, { type: "mac_address", value: "00:00:5e:00:53:01" }];

  // The self-test's spec: VersionResult.version can never match.
  const tmp = mkdtempSync(path.join(os.tmpdir(), "prism-check-"));
  const spec = readFileSync(specPath, "utf8");
  const broken = spec.replace(/(VersionResult:[\s\S]*?pattern: )'[^']*'/, (_, head) => `${head}'^never$'`);
  if (broken === spec) throw new Error("self-test: could not break VersionResult's pattern in the spec copy");
  const brokenPath = path.join(tmp, "openapi.yaml");
  writeFileSync(brokenPath, broken);

  try {
    console.log(`prism-check: starting three Prism ${prismVersion} proxies in front of ${relayURL}`);
    const strict = await startPrism("strict", specPath, ["--errors"]);
    await waitReady(strict); // installs Prism once before the others start from the same npx cache
    const answers = await startPrism("answers", specPath, ["--errors", "--validate-request=false"]);
    const selftest = await startPrism("self-test", brokenPath, ["--errors"]);
    await Promise.all([waitReady(answers), waitReady(selftest)]);

    // 0. The check sees a deliberate violation, and Prism validates requests.
    checked++;
    {
      const res = await send(selftest.url, { path: "/version", token: null });
      const found = problems(res);
      if (found.length === 0 || !(res.headers.get("sl-violations") || "").includes("response")) {
        fail("self-test: a spec the relay's /version answer violates must fail the check", `got ${res.status} ${res.text}`);
      } else {
        console.log(`ok   self-test: a deliberate violation is caught (${res.status}, sl-violations: ${res.headers.get("sl-violations")})`);
      }
    }
    await expectPrismError(strict, "an invalid body is refused by Prism's request validation",
      { path: "/observe/observables", body: [{ type: "ip", value: "" }] }, "UNPROCESSABLE_ENTITY", 422);

    // 1. Every operation with a valid token and valid input.
    await expectClean(strict, "POST /health", { path: "/health", headers: { "X-Request-Id": "prism-check-1" } },
      (b, res) => (b?.data?.status === "ok" && res.headers.get("x-request-id") === "prism-check-1" ? "" : `health ${JSON.stringify(b)}`));
    for (const op of ["deliberate", "observe", "refer", "respond"]) {
      const p = `/${op}/observables`;
      await expectClean(strict, `POST ${p} (sample observables)`, { path: p, body: sample }, (b) => (b?.data ? "" : `no data: ${JSON.stringify(b)}`));
      await expectClean(strict, `POST ${p} (empty list)`, { path: p, body: [] }, (b) => (b?.errors ? `errors: ${JSON.stringify(b)}` : ""));
      await expectClean(strict, `POST ${p} (unsupported types only)`, { path: p, body: unsupported }, (b) => (b?.errors ? `errors: ${JSON.stringify(b)}` : ""));
      await expectClean(strict, `POST ${p} (a bad token)`, { path: p, body: sample, token: "not.a.jwt" }, envelope("authorization error"));
    }
    await expectClean(strict, "POST /respond/trigger (urlscan-scan)",
      { path: "/respond/trigger", body: { "action-id": "urlscan-scan", observable_type: "url", observable_value: "http://invoice-portal.example.com/download/inv_0412.php" } },
      (b) => (b?.data?.status === "success" ? "" : `want success, got ${JSON.stringify(b)}`));
    await expectClean(strict, "POST /respond/trigger (misp-add-sighting on a feed: failure envelope)",
      { path: "/respond/trigger", body: { "action-id": "misp-add-sighting", observable_type: "ip", observable_value: "198.51.100.23" } },
      envelope("invalid argument"));
    await expectClean(strict, "POST /respond/trigger (unknown action, extra keys)",
      { path: "/respond/trigger", body: { "action-id": "no-such-action", observable_type: "user", observable_value: "alice", extra: 1 } },
      envelope("invalid argument"));
    await expectClean(strict, "POST /health (a bad token)", { path: "/health", token: "not.a.jwt" }, envelope("authorization error"));
    await expectClean(strict, "POST /tiles", { path: "/tiles" }, (b) => (b?.data?.length === 5 ? "" : `tiles ${JSON.stringify(b)}`));
    const tileIds = ["misp-summary", "misp-threat-levels", "misp-attribute-types", "misp-top-tags", "misp-latest-events"];
    for (const id of tileIds) {
      await expectClean(strict, `POST /tiles/tile (${id})`, { path: "/tiles/tile", body: { tile_id: id } },
        (b) => (b?.data?.id === id ? "" : `tile ${JSON.stringify(b)}`));
      for (const period of ["last_24_hours", "last_7_days", "last_30_days", "last_60_days", "last_90_days"]) {
        await expectClean(strict, `POST /tiles/tile-data (${id}, ${period})`, { path: "/tiles/tile-data", body: { tile_id: id, period } },
          (b) => (Array.isArray(b?.data?.data) && !b.errors ? "" : `tile data ${JSON.stringify(b)}`));
      }
    }
    await expectClean(strict, "POST /tiles/tile (unknown tile)", { path: "/tiles/tile", body: { tile_id: "nope" } }, envelope("invalid argument"));
    await expectClean(strict, "POST /tiles/tile-data (unknown period)", { path: "/tiles/tile-data", body: { tile_id: "misp-summary", period: "last_year" } },
      envelope("invalid argument"));
    await expectClean(strict, "POST /version", { path: "/version", token: null });
    await expectClean(strict, "GET /watchdog", { method: "GET", path: "/watchdog", token: null, headers: { "Health-Check": "prism" } },
      (b) => (b?.data === "prism" ? "" : `echo: ${JSON.stringify(b)}`));
    await expectClean(strict, "GET /watchdog (no Health-Check)", { method: "GET", path: "/watchdog", token: null }, envelope("health check failed"));

    // 2. Requests the spec refuses, forwarded as XDR would send them: the answers must match.
    const bad = [
      ["a blank value", [{ type: "ip", value: "" }]],
      ["a value that is not a string", [{ type: "ip", value: 1 }]],
      ["an unknown field", [{ type: "ip", value: "198.51.100.23", extra: 1 }]],
      ["a missing field", [{ type: "ip" }]],
      ["an object, not a list", { type: "ip", value: "198.51.100.23" }],
      ["null", null],
      ["a type over maxLength", [{ type: "t".repeat(129), value: "x" }]],
    ];
    for (const op of ["deliberate", "observe", "refer", "respond"]) {
      const p = `/${op}/observables`;
      for (const [what, body] of bad) {
        await expectClean(answers, `POST ${p} (${what})`, { path: p, body }, envelope("invalid argument"));
      }
      await expectClean(answers, `POST ${p} (not JSON)`, { path: p, body: "not json", headers: { "Content-Type": "text/plain" } }, envelope("invalid argument"));
      await expectClean(answers, `POST ${p} (no body)`, { path: p }, envelope("invalid argument"));
    }
    for (const [what, body] of [
      ["missing fields", {}],
      ["a blank value", { "action-id": "misp-add-sighting", observable_type: "ip", observable_value: "" }],
      ["a list", []],
      ["an over-long action-id", { "action-id": "a".repeat(129), observable_type: "ip", observable_value: "198.51.100.23" }],
    ]) {
      await expectClean(answers, `POST /respond/trigger (${what})`, { path: "/respond/trigger", body }, envelope("invalid argument"));
    }

    for (const [p, what, body] of [
      ["/tiles/tile", "a misspelt key", { "tile-id": "misp-summary" }],
      ["/tiles/tile", "a blank tile_id", { tile_id: "" }],
      ["/tiles/tile", "no body", undefined],
      ["/tiles/tile-data", "an unknown key", { tile_id: "misp-summary", not_period: "last_7_days" }],
      ["/tiles/tile-data", "a blank period", { tile_id: "misp-summary", period: "" }],
      ["/tiles/tile-data", "an over-long tile_id", { tile_id: "t".repeat(129), period: "last_7_days" }],
    ]) {
      await expectClean(answers, `POST ${p} (${what})`, { path: p, body }, envelope("invalid argument"));
    }

    // 3. No token at all: Prism enforces the spec's security requirement itself (401, even
    // without request validation) and never forwards the request, so the relay's answer, the
    // same authorization error envelope as a bad token's (checked through Prism above), is
    // checked directly.
    const tileBodies = { "/tiles": undefined, "/tiles/tile": { tile_id: "misp-summary" }, "/tiles/tile-data": { tile_id: "misp-summary", period: "last_7_days" } };
    for (const p of ["/health", "/deliberate/observables", "/observe/observables", "/refer/observables", "/respond/observables", "/respond/trigger",
      "/tiles", "/tiles/tile", "/tiles/tile-data"]) {
      const body = p === "/health" ? undefined : p === "/respond/trigger"
        ? { "action-id": "urlscan-scan", observable_type: "url", observable_value: "http://x.example/" } : p in tileBodies ? tileBodies[p] : sample;
      await expectPrismError(answers, `POST ${p} (no token)`, { path: p, body, token: null }, "UNAUTHORIZED", 401);
      checked++;
      const res = await send(relayURL, { path: p, body, token: null });
      const found = problems(res);
      const msg = found.length === 0 ? envelope("authorization error")(JSON.parse(res.text)) : "";
      if (msg) found.push(msg);
      if (found.length > 0) fail(`relay: POST ${p} (no token)`, found.join("\n     "));
      else console.log(`ok   relay: POST ${p} (no token: HTTP 200 authorization error envelope)`);
    }

    // 4. Unknown paths and wrong methods: Prism's routing and the relay agree.
    for (const [method, p, status, type] of [
      ["POST", "/nope", 404, "NO_PATH_MATCHED_ERROR"],
      ["POST", "/observe", 404, "NO_PATH_MATCHED_ERROR"],
      ["GET", "/health", 405, "NO_METHOD_MATCHED_ERROR"],
      ["POST", "/watchdog", 405, "NO_METHOD_MATCHED_ERROR"],
      ["DELETE", "/respond/trigger", 405, "NO_METHOD_MATCHED_ERROR"],
    ]) {
      await expectPrismError(strict, `${method} ${p}`, { method, path: p }, type, status);
      checked++;
      const res = await send(relayURL, { method, path: p });
      const found = problems(res, status);
      let body = {};
      try {
        body = JSON.parse(res.text);
      } catch {
        found.push(`not JSON: ${res.text}`);
      }
      if (body.code !== status || typeof body.message !== "string" || Object.keys(body).sort().join() !== "code,message") {
        found.push(`not an HTTPError body: ${res.text}`);
      }
      if (found.length > 0) fail(`relay: ${method} ${p}`, found.join("\n     "));
      else console.log(`ok   relay: ${method} ${p} (${status} HTTPError)`);
    }

    // 5. HEAD /watchdog.
    checked++;
    {
      const req = { method: "HEAD", path: "/watchdog", token: null, headers: { "Health-Check": "prism", "X-Request-Id": "prism-check-head" } };
      const res = await send(strict.url, req);
      // A HEAD answer has no body, so Prism's reason is read from its log.
      let prismHeadBug = false;
      for (let i = 0; i < 20 && res.status === 500 && !res.headers.get("sl-violations"); i++) {
        prismHeadBug = /head \/watchdog .*invalid json response body/.test(strict.log);
        if (prismHeadBug) break;
        await sleep(100);
      }
      if (!prismHeadBug) {
        // Prism proxied it: the answer must be clean.
        const found = problems(res);
        if (found.length > 0) fail("strict: HEAD /watchdog", found.join("\n     "));
        else console.log("ok   strict: HEAD /watchdog");
      } else {
        const direct = await send(relayURL, req);
        const found = problems(direct);
        if (direct.text !== "") found.push(`a body: ${direct.text}`);
        if (direct.headers.get("x-request-id") !== "prism-check-head") found.push("X-Request-Id not echoed");
        if (found.length > 0) fail("relay: HEAD /watchdog", found.join("\n     "));
        else console.log("ok   relay: HEAD /watchdog (checked directly: Prism cannot proxy a bodiless JSON answer)");
      }
    }

    // 6. Nothing Prism logged as a violation of an answer.
    for (const p of [strict, answers]) {
      const lines = p.log.split("\n").filter((l) => /violation/i.test(l) && /response/i.test(l));
      if (lines.length > 0) fail(`${p.name}: Prism logged violations`, lines.join("\n     "));
    }
  } finally {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }

  if (failures > 0) {
    for (const p of prisms) console.error(`--- Prism (${p.name}) log:\n${p.log}`);
  }
  console.log(`prism-check: ${checked} checks, ${failures} failed`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch(async (err) => {
  console.error(`prism-check: ${err.stack ?? err}`);
  await stopAll();
  process.exit(1);
});
