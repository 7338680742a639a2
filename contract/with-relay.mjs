#!/usr/bin/env node
// Runs a command against a relay serving the sample MISP feed (make ts-client, make prism-check).
//
//   node contract/with-relay.mjs <command> [args...]
//
// It starts bin/relay serve (build it first: make build) on a free loopback port with a fresh
// SECRET_KEY from `bin/relay jwt`, API_URL=sample/feed, MISP_UI_URL=https://misp.example (so
// refer links appear) and a fake urlscan.io on loopback (so the urlscan-scan action is offered
// and can be triggered without leaving the machine). It waits until POST /version answers,
// runs the command with RELAY_URL and RELAY_JWT in its environment, stops the relay and exits
// with the command's status. The relay's log is printed only when something fails.
import { execFileSync, spawn } from "node:child_process";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const relayBin = path.join(root, "bin", "relay");
const readyTimeoutMs = 30_000;

if (process.argv.length < 3) {
  console.error("usage: node contract/with-relay.mjs <command> [args...]");
  process.exit(2);
}

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

// A urlscan.io stand-in: every scan submission succeeds.
function fakeURLScan() {
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.method === "POST" && req.url === "/api/v1/scan/") {
      const uuid = "0b3f6a52-6c1e-4d6e-9d0e-5f1d2c3b4a59";
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ uuid, result: `https://urlscan.example/result/${uuid}/`, visibility: "unlisted" }));
      return;
    }
    res.writeHead(404, { "Content-Type": "application/json" });
    res.end('{"message":"not found"}');
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

function jwtEnv() {
  // `relay jwt --format env` prints SECRET_KEY=... and RELAY_JWT=... lines (shell-quoted).
  const out = execFileSync(relayBin, ["jwt", "--key", "sample-misp-key", "--format", "env"], { encoding: "utf8" });
  const env = {};
  for (const line of out.split("\n")) {
    const m = /^(?:export\s+)?([A-Z_]+)=['"]?([^'"]*)['"]?$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  if (!env.SECRET_KEY || !env.RELAY_JWT) throw new Error(`unexpected output of relay jwt --format env:\n${out}`);
  return env;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const { SECRET_KEY, RELAY_JWT } = jwtEnv();
  const urlscan = await fakeURLScan();
  const port = await freePort();
  const relayURL = `http://127.0.0.1:${port}`;
  let log = "";
  const relay = spawn(relayBin, ["serve"], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      SECRET_KEY,
      API_URL: path.join(root, "sample", "feed"),
      MISP_UI_URL: "https://misp.example",
      URLSCAN_API_KEY: "contract-test-urlscan-key",
      URLSCAN_API_URL: `http://127.0.0.1:${urlscan.address().port}`,
      PORT: String(port),
      LOG_FORMAT: "text",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  relay.stdout.on("data", (b) => (log += b));
  relay.stderr.on("data", (b) => (log += b));
  let exited = false;
  const relayExit = new Promise((resolve) => relay.on("exit", (code, signal) => {
    exited = true;
    resolve(code ?? signal);
  }));
  const stop = async () => {
    if (!exited) {
      relay.kill("SIGTERM");
      await relayExit;
    }
    urlscan.close();
  };
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, () => stop().then(() => process.exit(130)));
  }

  // Wait for readiness by polling, never a blind sleep.
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited) {
      console.error(`with-relay: the relay exited before answering:\n${log}`);
      await stop();
      process.exit(1);
    }
    try {
      const res = await fetch(`${relayURL}/version`, { method: "POST" });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      console.error(`with-relay: the relay did not answer POST /version within ${readyTimeoutMs / 1000} s:\n${log}`);
      await stop();
      process.exit(1);
    }
    await sleep(50);
  }
  console.log(`with-relay: relay on ${relayURL} (sample feed, MISP_UI_URL=https://misp.example)`);

  const [cmd, ...args] = process.argv.slice(2);
  const child = spawn(cmd, args, { stdio: "inherit", env: { ...process.env, RELAY_URL: relayURL, RELAY_JWT } });
  const status = await new Promise((resolve) => {
    child.on("error", (err) => {
      console.error(`with-relay: ${cmd}: ${err.message}`);
      resolve(1);
    });
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
  await stop();
  if (status !== 0) console.error(`with-relay: ${cmd} failed; the relay's log:\n${log}`);
  process.exit(status);
}

main().catch((err) => {
  console.error(`with-relay: ${err.stack ?? err}`);
  process.exit(1);
});
