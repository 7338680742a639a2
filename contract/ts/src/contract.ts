// Contract test of misp-relay as a TypeScript client sees it: the types come from
// api/openapi.yaml (openapi-typescript, src/api.gen.ts), the calls go through openapi-fetch, and
// the whole file is type-checked under `strict`. Run by `make ts-client` against a relay on the
// sample feed (contract/with-relay.mjs sets RELAY_URL and RELAY_JWT).
import { readFileSync } from "node:fs";

import createClient from "openapi-fetch";

import type { components, paths } from "./api.gen.js";

type Schemas = components["schemas"];

function need(name: string): string {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set: run this through make ts-client`);
    process.exit(2);
  }
  return v;
}

const baseUrl = need("RELAY_URL");
const jwt = need("RELAY_JWT");

const relay = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${jwt}` } });
const anonymous = createClient<paths>({ baseUrl });
const badToken = createClient<paths>({ baseUrl, headers: { Authorization: "Bearer not.a.jwt" } });

// The sample observables: one of each supported type, and an IP the feed does not know.
const sample: Schemas["ObservableList"] = JSON.parse(
  readFileSync(new URL("../../../sample/observables.json", import.meta.url), "utf8"),
) as Schemas["ObservableList"];
const sampleTypes = new Set(sample.map((o) => o.type));

// Type-level checks: compiling this file is part of the test.
const supported: Schemas["SupportedObservableType"][] = [
  "ip", "ipv6", "domain", "hostname", "url", "md5", "sha1", "sha256", "sha512", "email", "file_name",
];
// @ts-expect-error: SupportedObservableType is a closed list
const notSupported: Schemas["SupportedObservableType"] = "user";
// ...but an observable may carry any type: XDR sends types a module does not know.
const unsupportedInput: Schemas["ObservableInput"] = { type: "user", value: "alice" };
// @ts-expect-error: a value is a string
const wrongValue: Schemas["ObservableInput"] = { type: "ip", value: 1 };
void notSupported;

const requestIdPattern = /^[A-Za-z0-9_.:-]{1,64}$/;
const uiPrefix = "https://misp.example/";

let failures = 0;
let checks = 0;

function check(cond: boolean, what: string, detail?: unknown): void {
  checks++;
  if (!cond) {
    failures++;
    console.error(`FAIL ${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
  }
}

// Every answer, whatever its status, carries a sane X-Request-Id.
function checkRequestId(what: string, res: Response, sent?: string): void {
  const id = res.headers.get("x-request-id");
  check(id !== null && requestIdPattern.test(id), `${what}: X-Request-Id header`, id);
  if (sent !== undefined) check(id === sent, `${what}: X-Request-Id echoed`, id);
}

function errorCodes(errors: Schemas["Errors"] | undefined): Schemas["ErrorCode"][] {
  return (errors ?? []).map((e) => e.code);
}

async function run(name: string, fn: () => Promise<void>): Promise<void> {
  const before = failures;
  try {
    await fn();
  } catch (err) {
    failures++;
    console.error(`FAIL ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
  console.log(`${failures === before ? "ok  " : "FAIL"} ${name}`);
}

await run("POST /health", async () => {
  const { data, response } = await relay.POST("/health", { params: { header: { "X-Request-Id": "ts-contract-health" } } });
  check(response.status === 200, "status", response.status);
  checkRequestId("health", response, "ts-contract-health");
  check(data?.data?.status === "ok" && data.errors === undefined, "data.status ok", data);
});

await run("POST /health with a bad token: HTTP 200 authorization error envelope", async () => {
  const { data, response } = await badToken.POST("/health");
  check(response.status === 200, "status", response.status);
  checkRequestId("health (bad token)", response);
  check(data?.data === undefined, "no data", data);
  const errors = data?.errors ?? [];
  check(errors.length === 1 && errors[0]?.code === "authorization error" && errors[0].type === "fatal", "errors", errors);
  check(errors[0]?.message.startsWith("Authorization failed: ") === true, "message", errors[0]?.message);
});

await run("POST /observe/observables without a token: HTTP 200 authorization error envelope", async () => {
  const { data, response } = await anonymous.POST("/observe/observables", { body: sample });
  check(response.status === 200, "status", response.status);
  check(errorCodes(data?.errors).join() === "authorization error", "errors", data);
});

await run("POST /deliberate/observables", async () => {
  const { data, response } = await relay.POST("/deliberate/observables", { body: sample });
  check(response.status === 200, "status", response.status);
  checkRequestId("deliberate", response);
  const verdicts = data?.data?.verdicts;
  check(verdicts !== undefined && verdicts.count === sample.length - 1 && verdicts.docs.length === verdicts.count,
    "a verdict for every sample observable but the unknown one", verdicts?.count);
  check(data?.data?.judgements === undefined && data?.data?.sightings === undefined, "only verdicts", Object.keys(data?.data ?? {}));
  for (const v of verdicts?.docs ?? []) {
    check(v.type === "verdict" && [1, 2, 3, 4, 5].includes(v.disposition), "verdict", v);
    check(sampleTypes.has(v.observable.type), "verdict observable type", v.observable);
  }
});

await run("POST /observe/observables", async () => {
  const { data, response } = await relay.POST("/observe/observables", { body: sample });
  check(response.status === 200, "status", response.status);
  checkRequestId("observe", response);
  const d: Schemas["EnrichData"] = data?.data ?? {};
  check(data?.errors === undefined, "no errors", data?.errors);
  for (const key of ["verdicts", "judgements", "sightings", "indicators", "relationships"] as const) {
    const list = d[key];
    check(list !== undefined && list.count > 0 && list.count === list.docs.length, `${key} count`, list?.count);
  }
  for (const j of d.judgements?.docs ?? []) {
    check(j.type === "judgement" && j.id.startsWith("transient:"), "judgement id", j.id);
    check(j.source_uri === undefined || j.source_uri.startsWith(uiPrefix), "judgement source_uri", j.source_uri);
  }
  for (const r of d.relationships?.docs ?? []) {
    check(["sighting-of", "element-of"].includes(r.relationship_type), "relationship type", r.relationship_type);
  }
});

await run("POST /observe/observables: empty list and unsupported types answer {\"data\":{}}", async () => {
  // A value over 4096 characters is skipped like an unsupported type, not refused.
  for (const body of [[], [unsupportedInput, { type: "mac_address", value: "00:00:5e:00:53:01" }], [{ type: "ip", value: "1".repeat(4097) }]]) {
    const { data, response } = await relay.POST("/observe/observables", { body });
    check(response.status === 200, "status", response.status);
    check(JSON.stringify(data) === '{"data":{}}', "nothing found", data);
  }
});

await run("POST /observe/observables: invalid bodies are HTTP 200 invalid argument envelopes", async () => {
  const bodies: [unknown, string][] = [
    [[wrongValue], "{0: {'value': ['Not a valid string.']}}"],
    [[{ type: "ip", value: "" }], "{0: {'value': ['Field may not be blank.']}}"],
    [{ type: "ip", value: "198.51.100.23" }, "{'_schema': ['Invalid input type.']}"],
  ];
  for (const [body, dict] of bodies) {
    // The types refuse these bodies, so they go through a cast: the relay must refuse them too.
    const { data, response } = await relay.POST("/observe/observables", { body: body as Schemas["ObservableList"] });
    check(response.status === 200, "status", response.status);
    const e = data?.errors?.[0];
    check(e?.code === "invalid argument" && e.message === `Invalid JSON payload received. ${dict}`, "error", data);
  }
});

await run("POST /refer/observables", async () => {
  const { data, response } = await relay.POST("/refer/observables", { body: sample });
  check(response.status === 200, "status", response.status);
  checkRequestId("refer", response);
  const links = data?.data ?? [];
  check(links.length === sample.length, "a link per supported observable", links.length);
  for (const l of links) {
    check(
      l.url.startsWith(`${uiPrefix}events/index/searchvalue:`) || l.url.startsWith(`${uiPrefix}events/index/searcheventid:`),
      "refer url",
      l.url,
    );
    check(l.url.endsWith("/sort:timestamp/direction:desc"), "refer url tail", l.url);
    check(l.categories.includes("MISP"), "refer categories", l.categories);
  }
  const empty = await relay.POST("/refer/observables", { body: [] });
  check(JSON.stringify(empty.data) === '{"data":[]}', "empty list", empty.data);
});

let scanAction: Schemas["RespondAction"] | undefined;

await run("POST /respond/observables", async () => {
  const { data, response } = await relay.POST("/respond/observables", { body: sample });
  check(response.status === 200, "status", response.status);
  checkRequestId("respond", response);
  const actions = data?.data ?? [];
  // A feed cannot be written to, so only urlscan.io scans of the URL and the domain are offered.
  check(actions.length === 2 && actions.every((a) => a.id === "urlscan-scan"), "actions", actions.map((a) => a.id));
  for (const a of actions) {
    check(supported.includes(a["query-params"].observable_type as Schemas["SupportedObservableType"]), "query-params type", a["query-params"]);
  }
  scanAction = actions.find((a) => a["query-params"].observable_type === "url");
  const empty = await relay.POST("/respond/observables", { body: [] });
  check(JSON.stringify(empty.data) === '{"data":[]}', "empty list", empty.data);
});

await run("POST /respond/trigger", async () => {
  check(scanAction !== undefined, "a scan action to trigger");
  if (scanAction === undefined) return;
  const body: Schemas["TriggerRequest"] = { "action-id": scanAction.id, ...scanAction["query-params"] };
  const { data, response } = await relay.POST("/respond/trigger", { body });
  check(response.status === 200, "status", response.status);
  checkRequestId("trigger", response);
  check(data?.data?.status === "success" && data.errors === undefined, "scan submitted", data);

  const sighting = await relay.POST("/respond/trigger", {
    body: { "action-id": "misp-add-sighting", observable_type: "ip", observable_value: "198.51.100.23" },
  });
  check(sighting.data?.data?.status === "failure" && errorCodes(sighting.data.errors).join() === "invalid argument",
    "no sightings on a feed", sighting.data);

  const unknown = await relay.POST("/respond/trigger", {
    body: { "action-id": "no-such-action", observable_type: "ip", observable_value: "198.51.100.23" },
  });
  check(errorCodes(unknown.data?.errors).join() === "invalid argument", "unknown action", unknown.data);
});

const tileIds = ["misp-summary", "misp-threat-levels", "misp-attribute-types", "misp-top-tags", "misp-latest-events"] as const;
const periods: Schemas["TilePeriod"][] = ["last_24_hours", "last_7_days", "last_30_days", "last_60_days", "last_90_days"];

await run("POST /tiles, /tiles/tile, /tiles/tile-data", async () => {
  const { data, response } = await relay.POST("/tiles");
  check(response.status === 200, "status", response.status);
  checkRequestId("tiles", response);
  check(JSON.stringify((data?.data ?? []).map((d) => d.id)) === JSON.stringify(tileIds), "tile ids", data);
  for (const id of tileIds) {
    const one = await relay.POST("/tiles/tile", { body: { tile_id: id } });
    check(one.data?.data?.id === id && one.data.data.periods.length === 5, "definition", one.data);
    for (const period of periods) {
      const got = await relay.POST("/tiles/tile-data", { body: { tile_id: id, period } });
      const d = got.data?.data;
      check(d !== undefined && Array.isArray(d.data) && got.data?.errors === undefined && d.observed_time.start_time !== "", `${id} ${period}`, got.data);
    }
  }
  const unknown = await relay.POST("/tiles/tile-data", { body: { tile_id: "nope", period: "last_7_days" } });
  check(errorCodes(unknown.data?.errors).join() === "invalid argument", "unknown tile", unknown.data);
});

await run("POST /version", async () => {
  const { data, response } = await anonymous.POST("/version");
  check(response.status === 200, "status", response.status);
  checkRequestId("version", response);
  check(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(data?.version ?? ""), "semver", data);
});

await run("GET /watchdog", async () => {
  const { data, response } = await anonymous.GET("/watchdog", { params: { header: { "Health-Check": "ts-contract" } } });
  check(response.status === 200, "status", response.status);
  checkRequestId("watchdog", response);
  check(data?.data === "ts-contract" && data.errors === undefined, "echo", data);
  const without = await anonymous.GET("/watchdog");
  check(without.response.status === 200 && errorCodes(without.data?.errors).join() === "health check failed", "without Health-Check", without.data);
});

await run("HEAD /watchdog", async () => {
  const { response } = await anonymous.HEAD("/watchdog", {
    params: { header: { "Health-Check": "ts-contract", "X-Request-Id": "ts-contract-head" } },
  });
  check(response.status === 200, "status", response.status);
  checkRequestId("watchdog HEAD", response, "ts-contract-head");
  check((await response.text()) === "", "no body");
});

// Unknown paths and wrong methods are not in `paths`, so the typed client cannot even express
// them: plain fetch, with the body typed from the spec's HTTPError.
async function httpError(method: string, path: string, status: 404 | 405): Promise<void> {
  const res = await fetch(`${baseUrl}${path}`, { method, headers: { Authorization: `Bearer ${jwt}` } });
  check(res.status === status, `${method} ${path}: status`, res.status);
  check(res.headers.get("content-type")?.startsWith("application/json") === true, `${method} ${path}: JSON`, res.headers.get("content-type"));
  checkRequestId(`${method} ${path}`, res);
  const body = (await res.json()) as Schemas["HTTPError"];
  check(body.code === status && typeof body.message === "string" && body.message.length > 0 &&
    Object.keys(body).sort().join() === "code,message", `${method} ${path}: HTTPError body`, body);
}

await run("unknown path: 404 HTTPError", async () => {
  await httpError("POST", "/nope", 404);
  await httpError("GET", "/observe", 404);
});

await run("wrong method: 405 HTTPError", async () => {
  await httpError("GET", "/health", 405);
  await httpError("POST", "/watchdog", 405);
  await httpError("PUT", "/observe/observables", 405);
});

console.log(`${checks} checks, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
