// console_test.mjs — the operator console (GET /) in a real browser, as an on-call engineer uses it
// (ctest test_console). It starts the real engine itself — `neuralops demo --stay` with its own
// mock Kafka, a synthetic fleet with injected incidents, recommendations from a generated history,
// signed playbooks and the demo policy — then drives Debian's chromium headless through
// puppeteer-core: a refused sign-in (401), each role signing in (viewer, operator, org-admin), an
// incident opened from the list, its timeline, charts and recommendations, the viewer's and the
// operator's refusals (403), the operator's suggestion and dry-run, the org-admin's approval and
// execution with real mouse clicks at the buttons' centres (the element under each point is the
// button), the executed run's output and pre/post state, automation pause/resume, and that no
// button is covered at 1024–2560 px and at 420 px (one column). No page errors; no failed API
// request beyond the expected 401/403 (and /series 404s while the engine has no such route).
// Screenshots at 1400 and 420 px go to $CONSOLE_OUT. Conditions are polled with generous
// deadlines; nothing here asserts how long anything takes.
//
// Environment: NEURALOPS_BIN (the engine), CONSOLE_OUT (screenshot dir), CHROMIUM (default
// /usr/bin/chromium). Prints "ok N - what" per check and "N passed, N failed" at the end.
import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

let puppeteer;
try {
  puppeteer = (await import("puppeteer-core")).default;
} catch (e) {
  console.error("puppeteer-core is not installed in tests/browser: run deploy/install-deps.sh (" + e.message + ")");
  process.exit(1);
}

const BIN = process.env.NEURALOPS_BIN;
const OUT = process.env.CONSOLE_OUT || "console-screenshots";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const KEYS = { viewer: "demo-viewer-key", operator: "demo-operator-key", admin: "demo-admin-key" };
const JWT_SECRET = randomBytes(24).toString("hex"); // the demo's api.jwt_secret for this run
const LONG = 240000; // ms: a generous deadline for anything the engine does on a loaded machine

let passed = 0, failed = 0;
function ok(cond, what) {
  if (cond) { passed++; console.log("ok " + (passed + failed) + " - " + what); }
  else { failed++; console.log("not ok " + (passed + failed) + " - " + what); }
  return cond;
}
class Fatal extends Error {}
function must(cond, what) { if (!ok(cond, what)) throw new Fatal(what); }

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/* Poll fn() until it returns a truthy value; that value, or null at the deadline. */
async function until(fn, ms = LONG, every = 250) {
  const end = Date.now() + ms;
  for (;;) {
    let v = null;
    try { v = await fn(); } catch (e) { v = null; }
    if (v) return v;
    if (Date.now() > end) return null;
    await sleep(every);
  }
}

/* ---- the engine ------------------------------------------------------------------------------ */
const dir = mkdtempSync(join(tmpdir(), "nops-console-"));
let demo = null, out = "", browser = null;
function startDemo() {
  const data = join(dir, "data");
  demo = spawn(BIN, ["demo", "--seconds", "12", "--series", "200", "--rate", "20000", "--stay",
                     "--listen", "127.0.0.1:0", "--data-dir", data, "--index", join(data, "index")],
               { env: { ...process.env, XDG_CONFIG_HOME: join(dir, "cfg"), NEURALOPS_API_JWT_SECRET: JWT_SECRET }, stdio: ["ignore", "pipe", "pipe"] });
  demo.stdout.on("data", (b) => { out += b.toString(); });
  let err = "";
  demo.stderr.on("data", (b) => { err = (err + b.toString()).slice(-4000); });
  demo.on("exit", (code, sig) => { if (!stopping) console.log("# the demo ended early (" + code + "/" + sig + "):\n" + out + "\n" + err); });
}
let stopping = false;
async function stopDemo() {
  stopping = true;
  if (demo && demo.exitCode == null && demo.signalCode == null) {
    demo.kill("SIGTERM");
    const gone = await until(() => demo.exitCode != null || demo.signalCode != null, 60000);
    if (!gone) demo.kill("SIGKILL");
  }
}

/* An HS256 bearer token for `role`, valid for an hour. */
function jwt(role, secret = JWT_SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = b64({ alg: "HS256", typ: "JWT" }) + "." + b64({ sub: "console-test", role, exp: Math.floor(Date.now() / 1000) + 3600 });
  return body + "." + createHmac("sha256", secret).update(body).digest("base64url");
}

let base = "";
async function rest(method, path, key, body) {
  const r = await fetch(base + path, { method, headers: { "X-API-Key": key, ...(body ? { "Content-Type": "application/json" } : {}) },
                                       body: body ? JSON.stringify(body) : undefined });
  return { status: r.status, body: await r.json().catch(() => null) };
}

/* ---- the page -------------------------------------------------------------------------------- */
const pageErrors = [], badResponses = [];
let seriesRoute = false; // whether GET /series answers (the route may not be merged yet)

async function signIn(page, key, kind = "key") {
  await page.$eval("#msg", (e) => { e.textContent = ""; });
  await page.select("#kind", kind);
  await page.$eval("#secret", (e) => { e.value = ""; });
  await page.type("#secret", key);
  await page.click("#signin-btn");
}

/* Click the element `selector` names with the mouse at its centre, after checking that nothing is
 * drawn over it there. The page re-renders a block when its data changed: an element replaced
 * between the look and the click is looked up again (a covered one is not). */
async function mouseClick(page, selector, what) {
  for (let attempt = 0; ; attempt++) {
    const handle = await until(() => page.$(selector));
    if (!handle) must(false, what + ": " + selector + " is on the page");
    await handle.evaluate((b) => b.scrollIntoView({ block: "center", inline: "center" }));
    await sleep(100);
    const box = await handle.boundingBox();
    const x = box ? box.x + box.width / 2 : 0, y = box ? box.y + box.height / 2 : 0;
    const hit = box && await page.evaluate((b, x, y) => { const e = document.elementFromPoint(x, y); return !!e && (e === b || b.contains(e)); }, handle, x, y);
    const live = await handle.evaluate((b) => b.isConnected).catch(() => false);
    if (!live && attempt < 5) continue;
    must(box && box.width > 0 && box.height > 0, what + ": laid out");
    must(hit, what + ": document.elementFromPoint at its centre is the element itself");
    await page.mouse.click(x, y);
    return;
  }
}

/* Every visible button: is the element under its centre the button itself? Names of those covered.
 * A button the page replaced meanwhile (a block re-renders when its data changed) is looked at
 * again in its new form; a covered one is looked at again after a pause, so a re-render in the
 * middle of a look does not count as covered, but a button that stays covered does. */
async function coveredButtons(page) {
  return page.evaluate(async () => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const look = async (b) => {
      b.scrollIntoView({ block: "center", inline: "center" });
      await frame();
      if (!b.isConnected) return "gone";
      const r = b.getBoundingClientRect();
      const e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      return !e || (e !== b && !b.contains(e)) ? (e ? e.tagName + "#" + e.id + "." + e.className : "nothing") + " at " +
        Math.round(r.left + r.width / 2) + "," + Math.round(r.top + r.height / 2) : "";
    };
    let bad = [];
    for (let round = 0; round < 4; round++) {
      bad = [];
      let gone = false;
      for (const b of document.querySelectorAll("button")) {
        if (!b.offsetParent) continue;
        let v = await look(b);
        for (let i = 0; i < 3 && v && v !== "gone"; i++) { await new Promise((r) => setTimeout(r, 300)); v = await look(b); }
        if (v === "gone") gone = true;
        else if (v) bad.push(b.textContent + " under " + v);
      }
      if (!gone) break;
    }
    window.scrollTo(0, 0);
    return bad;
  });
}

const orchState = (page, id) => page.$eval(`[data-orch="${id}"]`, (e) => e.dataset.state).catch(() => null);
const detailMsg = (page) => page.$eval('#detail [data-msg="detail"]', (e) => e.textContent).catch(() => "");

async function main() {
  must(!!BIN, "NEURALOPS_BIN names the engine");
  mkdirSync(OUT, { recursive: true });
  startDemo();
  const port = await until(() => (out.match(/HTTP API on http:\/\/127\.0\.0\.1:(\d+)/) || [])[1], LONG);
  must(port, "the demo prints the API's address");
  base = "http://127.0.0.1:" + port;
  ok(/console at http:\/\/127\.0\.0\.1:\d+\//.test(out) && out.includes("demo-admin-key") && out.includes("demo-operator-key"),
     "the demo prints the console's URL and the demo-only keys");
  must(await until(() => out.includes("The console stays at"), 600000), "the demo's fleet ran and the console stays up");

  // an incident with recommendations whose first non-automatic playbook needs an approval
  const incs = (await rest("GET", "/incidents?limit=200", KEYS.viewer)).body.incidents;
  const auto = new Set(["scale-out", "rotate-logs"]); // allowed to run on their own by the demo policy
  const inc = incs.find((i) => (i.recommendations || []).some((r) => !auto.has(r.playbook_id)));
  must(inc, "the engine made an incident with a recommendation that needs an approval");
  const pb = inc.recommendations.find((r) => !auto.has(r.playbook_id)).playbook_id;
  const sigs = (await rest("GET", "/signals?limit=1000", KEYS.viewer)).body.signals.filter((s) => inc.signals.includes(s.id));
  must(sigs.length > 0, "the incident's signals are listed by GET /signals");
  const probe = await rest("GET", "/series?key=" + encodeURIComponent(sigs[0].series), KEYS.viewer);
  seriesRoute = probe.status === 200;
  console.log("# incident " + inc.id + ", playbook " + pb + "; GET /series answers " + probe.status);

  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: "new",
                                     args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  const page = await browser.newPage();
  page.setDefaultTimeout(LONG);
  await page.setViewport({ width: 1400, height: 1000 });
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("requestfailed", (r) => { if (!r.url().endsWith("/favicon.ico")) badResponses.push("failed " + r.url() + " " + (r.failure() || {}).errorText); });
  page.on("response", (r) => {
    const t = r.request().resourceType();
    if (r.status() >= 400 && (t === "fetch" || t === "xhr" || t === "document")) badResponses.push(r.status() + " " + r.request().method() + " " + r.url());
  });
  await page.goto(base + "/", { waitUntil: "domcontentloaded" });
  ok(await until(() => page.$eval("#incidents", (e) => e.textContent.includes("sign in"))), "signed out, the page asks for a credential");

  // a wrong key: 401, said in words
  await signIn(page, "not-a-key");
  ok(await until(() => page.$eval("#msg", (e) => e.textContent.includes("401"))), "a refused key says 401 and what to do");

  // a bearer token signed with another secret: 401; one signed with the engine's: signed in
  await signIn(page, jwt("viewer", "not-the-secret"), "bearer");
  ok(await until(() => page.$eval("#msg", (e) => e.textContent.includes("401"))), "a refused bearer token says 401");
  await signIn(page, jwt("viewer"), "bearer");
  ok(await until(() => page.evaluate(() => document.getElementById("who").textContent.includes("bearer token") &&
     (!!document.querySelector("#incidents table") || document.getElementById("incidents").textContent === "none"))),
     "a viewer signs in with a bearer token and sees the (open) incidents");
  await page.click("#signout-btn");

  // viewer: reads everything, may not act
  await signIn(page, KEYS.viewer);
  ok(await until(() => page.$eval("#who", (e) => e.textContent.includes("…-key"))), "the viewer is signed in");
  ok(await page.evaluate(() => sessionStorage.getItem("neuralops-credential") !== null && localStorage.length === 0),
     "the credential is kept in sessionStorage only");
  await page.select("#f-status", "");
  const row = await until(() => page.$(`tr[data-incident="${inc.id}"]`));
  must(row, "the incident is listed (status any)");
  ok(await page.$eval("#incidents table", (t) => [...t.querySelectorAll("th")].map((h) => h.textContent).join("|")) ===
     "severity|service / host|opened|status|signals", "the list shows severity, service/host, opened, status, signal count");
  await page.select("#f-sev", inc.severity === "critical" ? "warning" : "critical");
  ok(await until(() => page.$(`tr[data-incident="${inc.id}"]`).then((r) => !r)), "the severity filter hides the incident");
  await page.select("#f-sev", inc.severity);
  const listed = (yes) => until(() => page.$(`tr[data-incident="${inc.id}"]`).then((r) => (yes ? !!r : !r)));
  const labelsTo = (v) => page.$eval("#f-labels", (e, v) => { e.value = v; e.dispatchEvent(new Event("change", { bubbles: true })); }, v);
  await labelsTo("service=no-such-service");
  ok(await listed(false), "the label filter hides the incident (service=no-such-service)");
  await labelsTo(Object.entries(inc.labels).map(([k, v]) => k + "=" + v).join(","));
  ok(await listed(true), "the label filter with the incident's labels lists it");
  await labelsTo("");
  const local = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60e3).toISOString().slice(0, 16);
  const rangeTo = (from, to) => page.evaluate((from, to) => {
    document.getElementById("f-range").value = "custom";
    document.getElementById("f-from").value = from; document.getElementById("f-to").value = to;
    document.getElementById("f-to").dispatchEvent(new Event("change", { bubbles: true }));
  }, from, to);
  await rangeTo(local(Date.now() + 86400e3), local(Date.now() + 2 * 86400e3));
  ok(await listed(false), "a time range in the future hides the incident");
  await rangeTo(local(Date.parse(inc.opened_at) - 3600e3), local(Date.now() + 3600e3));
  ok(await listed(true), "a time range around it lists it");
  await page.select("#f-range", "");
  ok(await until(() => page.$eval("#f-from", (e) => e.offsetParent === null)), "the from/to inputs show only for a custom range");
  await mouseClick(page, `tr[data-incident="${inc.id}"]`, "the incident's row");
  const hint = await until(() => page.$eval("#hint", (e) => e.textContent));
  const now = (await rest("GET", "/incidents/" + inc.id, KEYS.viewer)).body;
  ok(hint === now.root_cause_hint, "the detail shows the root-cause hint" + (hint === now.root_cause_hint ? "" : ": " + hint + " / " + now.root_cause_hint));
  ok(await until(() => page.$$eval("svg.timeline circle.tl-signal", (c) => c.length).then((n) => n >= 1)), "the signals are on a timeline");
  ok(await until(() => page.$$eval("#recommendations .recommendation", (r) => r.length).then((n) => n === inc.recommendations.length)),
     "the recommendations are listed");
  ok(await until(() => page.$eval("#recommendations", (e) => /confidence \d/.test(e.textContent) && /past run/.test(e.textContent))),
     "each recommendation shows its confidence and the past runs behind it");
  const charts = await until(() => page.$$eval(".chart", (c) => c.map((e) => ({ key: e.dataset.series, points: Number(e.dataset.points),
    src: e.dataset.src, anomalies: e.querySelectorAll("circle.anomaly").length, marks: e.querySelectorAll("path.signal-mark").length,
    noData: !!e.querySelector(".no-data") }))).then((c) => c.length ? c : null));
  must(charts, "a chart per involved series");
  if (seriesRoute) {
    ok(charts.some((c) => c.points > 0), "the charts have points (GET /series answered)");
    // each chart against the answer of the request it drew from: every point, every anomalous one
    let same = true, anomalous = 0;
    for (const c of charts.filter((c) => c.src)) {
      const d = (await rest("GET", c.src, KEYS.viewer)).body;
      const n = d && d.points ? d.points.filter((p) => p.anomalous).length : 0;
      anomalous += n;
      same &&= d && d.points ? c.points === d.points.length && c.anomalies === n : c.noData;
    }
    ok(same, "every chart draws the points of its GET /series answer and marks each anomalous one");
    ok(charts.some((c) => c.anomalies > 0 || (c.points > 0 && c.marks > 0)),
       "a chart marks the anomaly (" + anomalous + " anomalous points held; the incident's signals marked)");
    ok(await page.$$eval(".chart svg polyline.values", (p) => p.length) > 0, "the values are drawn as a line");
  } else {
    ok(charts.every((c) => c.noData), "without GET /series the charts say \"no data\" (the chart assertions wait for the route)");
  }
  await page.setViewport({ width: 1400, height: 1000 });
  await page.screenshot({ path: join(OUT, "console-1400.png"), fullPage: true });

  const suggest = '#detail [data-action="Suggest ' + pb + '"]';
  await mouseClick(page, suggest, "viewer's Suggest");
  ok(await until(() => detailMsg(page).then((t) => t.includes("403") && t.includes("operator"))), "the viewer's suggestion is refused: 403, needs operator");

  // operator: suggest and dry-run
  await page.click("#signout-btn");
  await signIn(page, KEYS.operator);
  const before = new Set((await rest("GET", "/orchestrations?limit=1000", KEYS.viewer)).body.orchestrations.map((o) => o.id));
  await until(() => page.$eval("#who", (e) => e.textContent.includes("…-key")));
  await mouseClick(page, suggest, "operator's Suggest");
  const id = await until(() => page.$$eval("#incident-orchs [data-orch]", (n) => n.map((e) => e.dataset.orch))
    .then((ids) => ids.find((i) => !before.has(i))));
  must(id, "the operator's suggestion shows among the incident's orchestrations");
  ok(await orchState(page, id) === "suggested", "it is suggested");
  const sel = `#incident-orchs [data-orch="${id}"]`;
  await mouseClick(page, sel + ' [data-action="Dry-run"]', "Dry-run");
  ok(await until(() => orchState(page, id).then((s) => s === "dry_run_ok")), "the dry-run passed (dry_run_ok)");
  ok(await until(() => page.$eval(sel, (e) => e.textContent.includes("Dry-run") && e.querySelector("pre").textContent.length > 0)),
     "the dry-run's output is shown");
  await mouseClick(page, sel + ' [data-action="Approve"]', "operator's Approve");
  ok(await until(() => page.$eval(`[data-msg="${id}"]`, (e) => e.textContent.includes("403") && e.textContent.includes("org-admin"))),
     "the operator's approval is refused: 403, needs org-admin");

  // org-admin: approve and execute with the mouse, at every width the buttons are free
  await page.click("#signout-btn");
  await signIn(page, KEYS.admin);
  ok(await until(() => page.$(sel + ' [data-action="Approve"]')), "the org-admin sees Approve");
  for (const w of [1024, 1920, 2560, 1400]) {
    await page.setViewport({ width: w, height: 1000 });
    const bad = await coveredButtons(page);
    ok(bad.length === 0, `no button is covered at ${w} px` + (bad.length ? ": " + bad.join("; ") : ""));
    if (w === 1024) await page.screenshot({ path: join(OUT, "console-1024.png"), fullPage: true });
  }
  await mouseClick(page, sel + ' [data-action="Approve"]', "org-admin's Approve (real mouse click)");
  ok(await until(() => orchState(page, id).then((s) => s === "approved")), "the mouse click approved it (approved)");
  must(await until(() => page.$(sel + ' [data-action="Execute"]')), "an approved run offers Execute");
  ok(await until(() => page.$(`#orchestrations [data-orch="${id}"] [data-action="Execute"]`)), "the Orchestrations list offers Execute too");
  await mouseClick(page, sel + ' [data-action="Execute"]', "Execute (real mouse click)");
  ok(await until(() => orchState(page, id).then((s) => s === "executed")), "the run is executed");
  ok(await until(() => page.$eval(sel, (e) => ["Execution", "State before", "State after"].every((h) => e.textContent.includes(h)) &&
    [...e.querySelectorAll("pre")].every((p) => p.textContent.length > 0))), "the steps' output and the pre/post state are shown");
  const rec = (await rest("GET", "/orchestrations/" + id, KEYS.viewer)).body;
  ok(rec.state === "executed" && rec.approval && rec.approval.by === "key:demo-admin" && rec.requested_by === "key:demo-operator",
     "the record: requested by the operator, approved by the org-admin, executed");

  // automation: pause and resume (org-admin)
  await mouseClick(page, "#pause", "Pause automation");
  ok(await until(() => page.$eval("#automation", (e) => e.textContent.includes("paused"))), "automation paused");
  await mouseClick(page, "#resume", "Resume automation");
  ok(await until(() => page.$eval("#automation", (e) => e.textContent === "automation on")), "automation resumed");

  // one column at 420 px: nothing wider than the screen, no button covered
  await page.setViewport({ width: 420, height: 900 });
  ok(await until(() => page.evaluate(() => getComputedStyle(document.querySelector("main")).gridTemplateColumns.trim().split(/\s+/).length === 1)),
     "one column at 420 px");
  ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "nothing is wider than 420 px");
  const bad = await coveredButtons(page);
  ok(bad.length === 0, "no button is covered at 420 px" + (bad.length ? ": " + bad.join("; ") : ""));
  await page.screenshot({ path: join(OUT, "console-420.png"), fullPage: true });
  await page.screenshot({ path: join(OUT, "console-420-top.png") }); // the first screen, as a phone shows it
  console.log("# screenshots: " + join(OUT, "console-1400.png") + ", " + join(OUT, "console-420.png"));

  await chartFixture(inc, sigs);

  ok(pageErrors.length === 0, "no page errors" + (pageErrors.length ? ": " + pageErrors.join("; ") : ""));
  // after its fleet stopped the demo's pipeline is drained: /readyz says 503 and the pill says so
  const ready = await page.$eval("#ready", (e) => e.textContent);
  // GET /series answers 404 for a series the engine does not hold (or has no such route): "no data"
  const unexpected = badResponses.filter((r) => !/^40[13] /.test(r) && !/^404 GET .*\/series\?/.test(r) &&
                                                !(ready === "not ready" && /^503 GET .*\/readyz$/.test(r)));
  ok(unexpected.length === 0, "no failed request beyond the expected 401/403" + (unexpected.length ? ": " + [...new Set(unexpected)].slice(0, 8).join("; ") : ""));
  ok(badResponses.some((r) => r.startsWith("401 ")) && badResponses.some((r) => r.startsWith("403 ")), "the expected 401 and 403 were seen");
}

/* The chart code against the /series contract whatever the engine answers: a second tab whose
 * GET /series requests get a fixture (50 points, a baseline and band, 3 anomalous points). */
async function chartFixture(inc, sigs) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.setViewport({ width: 1400, height: 1000 });
  await page.setRequestInterception(true);
  const t0 = Date.parse(sigs[0].ts) - 30 * 60e3, anomalous = new Set([20, 21, 35]);
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.pathname !== "/series") { r.continue(); return; }
    const key = u.searchParams.get("key");
    const points = Array.from({ length: 50 }, (_, i) => ({ ts: new Date(t0 + i * 60e3).toISOString(),
      value: anomalous.has(i) ? 140 + i : 100 + 3 * Math.sin(i / 3), anomalous: anomalous.has(i) }));
    r.respond({ status: 200, contentType: "application/json", body: JSON.stringify({ series: key, points, ts_estimated: false,
      baseline: { mean: 100, std: 2, lower: 94, upper: 106, z_threshold: 3 },
      signals: [{ id: "s1", ts: points[20].ts, value: points[20].value, method: "ewma", baseline: { mean: 100, lower: 94, upper: 106 } }] }) });
  });
  await page.goto(base + "/#incident=" + encodeURIComponent(inc.id), { waitUntil: "domcontentloaded" });
  await signIn(page, KEYS.viewer);
  const c = await until(() => page.$$eval(".chart", (cs) => cs.map((e) => ({ points: Number(e.dataset.points),
    line: (e.querySelector("polyline.values") || { getAttribute: () => "" }).getAttribute("points").trim().split(/\s+/).length,
    anomalies: e.querySelectorAll("circle.anomaly").length, band: !!e.querySelector("rect.band"), mean: !!e.querySelector("line.baseline"),
    signalBand: !!e.querySelector("line.signal-band"), inside: [...e.querySelectorAll("circle.anomaly")].every((a) => {
      const r = a.getBoundingClientRect(), s = a.ownerSVGElement.getBoundingClientRect();
      return r.left >= s.left && r.right <= s.right && r.top >= s.top && r.bottom <= s.bottom; }) }))).then((cs) => cs.length && cs[0].points ? cs : null));
  must(c, "fixture: the charts are drawn");
  ok(c.every((x) => x.points === 50 && x.line === 50), "fixture: every point of the series is on the line");
  ok(c.every((x) => x.anomalies === 3 && x.inside), "fixture: the anomalous points are marked, inside the chart");
  ok(c.every((x) => x.band && x.mean && x.signalBand), "fixture: the baseline, its band and the detector's band at the signal are drawn");
  await (await page.$(".chart")).screenshot({ path: join(OUT, "console-chart-fixture.png") });
  await page.close();
}

try {
  await main();
} catch (e) {
  if (!(e instanceof Fatal)) ok(false, "unexpected: " + (e && e.stack ? e.stack : e));
} finally {
  if (browser) await browser.close().catch(() => {});
  await stopDemo();
  if (demo && base) ok(demo.exitCode === 0, "the demo ended cleanly on SIGTERM (exit " + demo.exitCode + ", signal " + demo.signalCode + ")");
  rmSync(dir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
