// The web console in a real headless Chromium (Debian's, driven by puppeteer-core; no browser
// download) against a live fleetpland on 127.0.0.1:0 loaded with the example fleet
// (deploy/examples/load.sh). Each page is loaded and used as a person would; the numbers on the
// page are checked against the API's answers for the same request; a plan is committed and the
// fleet grid must change; no request may leave the server's origin; no console error (a CSP
// violation is one). Screenshots of each page go to the artifacts directory.
//
// Usage: node console.test.mjs FLEETPLAND FLEETPLAN_CLI REPO_ROOT ARTIFACTS_DIR
// Exit 0: passed; 1: failed; 77: skipped, only when FLEETPLAN_SKIP_BROWSER_TEST=1 says so.

import {spawn, execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [fleetpland, cli, root, artifacts] = process.argv.slice(2);
if (process.env.FLEETPLAN_SKIP_BROWSER_TEST === '1') {
  console.log('SKIPPED: FLEETPLAN_SKIP_BROWSER_TEST=1');
  process.exit(77);
}
const chromium = process.env.FLEETPLAN_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(chromium)) {
  console.error(`no browser at ${chromium}: deploy/test.sh installs Debian's chromium`);
  process.exit(1);
}
let puppeteer;
try {
  ({default: puppeteer} = await import('puppeteer-core'));
} catch (e) {
  console.error('puppeteer-core is not installed: npm ci --prefix tests/browser (deploy/test.sh does)');
  process.exit(1);
}

const deadline = setTimeout(() => { console.error('FAILED: the test ran past 240 s'); process.exit(1); }, 240_000);
let failures = 0;
function check(ok, what) {
  if (ok) { console.log('ok   ' + what); return; }
  failures++;
  console.error('FAIL ' + what);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleetplan-console-'));
fs.mkdirSync(artifacts, {recursive: true});
const server = spawn(fleetpland, ['--listen=127.0.0.1:0', '--metrics_listen=', '--http_listen=127.0.0.1:0',
  `--port_file=${dir}/port`, `--http_port_file=${dir}/http_port`, `--db=${dir}/fleet.db`,
  '--failure_simulation_interval_s=0'], {stdio: ['ignore', 'pipe', 'inherit']});
let browser = null;

async function waitFile(file) {
  for (let i = 0; i < 200; i++) {
    if (fs.existsSync(file) && fs.readFileSync(file, 'utf8').trim()) return fs.readFileSync(file, 'utf8').trim();
    await new Promise((ok) => setTimeout(ok, 50));
  }
  throw new Error('fleetpland did not write ' + file);
}

const GIB = 2 ** 30;
const gib = (b) => (Number(b || 0) / GIB).toFixed(2);

try {
  const grpcPort = await waitFile(`${dir}/port`);
  const httpPort = await waitFile(`${dir}/http_port`);
  const origin = `http://127.0.0.1:${httpPort}`;
  execFileSync(path.join(root, 'deploy/examples/load.sh'), [`127.0.0.1:${grpcPort}`],
    {env: {...process.env, FLEETPLAN_CLI: cli}, stdio: ['ignore', 'ignore', 'inherit']});
  const api = async (method, body) => {
    const r = await fetch(`${origin}/api/v1/${method}`, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
    if (!r.ok) throw new Error(`${method}: HTTP ${r.status} ${await r.text()}`);
    return r.json();
  };

  browser = await puppeteer.launch({executablePath: chromium, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run']});
  const page = await browser.newPage();
  await page.setViewport({width: 1280, height: 900});
  const foreign = [];
  const errors = [];
  page.on('request', (r) => { if (!r.url().startsWith(origin + '/')) foreign.push(r.url()); });
  // The one error status the test provokes on purpose: the stale commit's 409.
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 409/.test(m.text())) errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  const shot = (name) => page.screenshot({path: path.join(artifacts, `console-${name}.png`), fullPage: true});
  const text = (sel) => page.$eval(sel, (e) => e.textContent.trim());
  // Nothing on a page reads "null", "undefined" or "NaN" (a field the code forgot).
  const clean = async (what) => {
    const shown = await page.evaluate(() => document.querySelector('main').innerText);
    const bad = shown.match(/\b(null|undefined|NaN)\b/);
    check(!bad, `${what}: no "${bad ? bad[0] : 'null'}" on the page`);
  };

  // ---- Estimate: a catalog model on H100, the form as a person fills it.
  await page.goto(`${origin}/#estimate`, {waitUntil: 'networkidle0'});
  await page.waitForSelector('#est-model option[value="llama-3.1-8b-instruct"]');
  await page.select('#est-model', 'llama-3.1-8b-instruct');
  await page.$eval('#est-gpu', (e) => { e.value = ''; });
  await page.type('#est-gpu', 'H100-80GB');
  for (const [id, value] of [['#est-context', '16384'], ['#est-concurrency', '24']]) {
    await page.$eval(id, (e) => { e.value = ''; });
    await page.type(id, value);
  }
  const key = 'llama-3.1-8b-instruct|H100-80GB|1|1|16384|24';
  await page.waitForFunction((k) => {
    const launch = document.querySelector('#est-launch');
    return document.querySelector('#estimate-result').dataset.key === k && launch && launch.dataset.key === k &&
      document.querySelector('#est-command') !== null;
  }, {timeout: 20000}, key);
  const estReq = {modelName: 'llama-3.1-8b-instruct', engine: 'ENGINE_VLLM', gpuType: 'H100-80GB',
    parallelism: {tp: 1, pp: 1, ep: 1}, dtype: '', kvCacheDtype: '', quantization: '', concurrency: 24,
    contextTokens: 16384, vllm: {maxModelLen: 16384}};
  const est = await api('EstimatorService/Estimate', estReq);
  check(await text('#est-total') === gib(est.maxTotalBytes), `estimate total ${await text('#est-total')} GiB = API ${gib(est.maxTotalBytes)}`);
  check(await text('#est-high') === gib(est.maxHighBytes), `the band's high end ${await text('#est-high')} GiB = API ${gib(est.maxHighBytes)}`);
  check(Number(est.maxHighBytes) > Number(est.maxTotalBytes), 'the high end lies above the estimate');
  check(await text('#est-kv-tokens-low') === Number(est.kvCacheTokensLow).toLocaleString('en-US'), 'KV tokens counted on equal the API');
  check(await text('#est-headroom') === gib(est.headroomBytes), 'estimate headroom equals the API');
  check(await text('#est-kv-tokens') === Number(est.kvCacheTokens).toLocaleString('en-US'), 'KV tokens equal the API');
  check(await text('#est-max-concurrency') === String(Number(est.maxConcurrency)), 'max concurrency equals the API');
  check(await text('[data-part="weightsBytes"]') === gib(est.stages[0].weightsBytes), 'weights segment equals the API');
  check((await page.$$('svg.stack rect.part')).length >= 3, 'the stacked bar has its segments');
  const command = await text('#est-command');
  check(command.startsWith('vllm serve') && command.includes('llama-3.1-8b-instruct'), 'launch line to copy: ' + command);
  await clean('estimate');
  await shot('estimate');
  // Narrow window: still usable (no horizontal overflow of the form).
  await page.setViewport({width: 480, height: 900});
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `narrow window: no horizontal scroll (${overflow}px)`);
  await shot('estimate-narrow');
  await page.setViewport({width: 1280, height: 900});

  // ---- Recommend.
  await page.goto(`${origin}/#recommend`, {waitUntil: 'networkidle0'});
  await page.waitForSelector('#rec-model option[value="llama-3.1-70b-instruct"]');
  await page.select('#rec-model', 'llama-3.1-70b-instruct');
  await page.click('#recommend-form button[type=submit]');
  await page.waitForSelector('#rec-best');
  const rec = await api('PlannerService/Recommend', {deployment: {model: 'llama-3.1-70b-instruct', concurrency: 32,
    contextTokens: 8192, allowUnverified: false}, gpusPerNode: 8, builtinGpuTypes: false, limit: 12});
  const best = rec.configurations[0];
  check(await text('#rec-best') === `Use ${best.gpus} × ${best.gpuType} (tp=${best.tp}${Number(best.pp) > 1 ? ', pp=' + best.pp : ''})`,
    `recommendation "${await text('#rec-best')}" equals the API's first`);
  check((await page.$$('#rec-cards .card')).length === rec.configurations.length, 'one card per configuration');
  await clean('recommend');
  await shot('recommend');

  // ---- Fleet: the grid holds every GPU of the example fleet, nothing committed yet.
  const head = await api('HeadroomService/GetFleetHeadroom', {includeGpus: true, pageSize: 1000});
  await page.goto(`${origin}/#fleet`, {waitUntil: 'domcontentloaded'});
  await page.waitForSelector('#fleet-grid .cell');
  check((await page.$$('#fleet-grid .cell')).length === Number(head.fleet.gpus), `grid shows ${head.fleet.gpus} GPUs`);
  check((await page.$$('#fleet-pools .bar-row')).length === head.pools.length, 'one bar per pool');
  await page.waitForFunction(() => document.querySelector('#fleet-live').dataset.state === 'live', {timeout: 10000});
  const committedBefore = await page.$$eval('#fleet-grid .cell', (cs) => cs.filter((c) => c.dataset.committed !== '0').length);
  check(committedBefore === 0, 'nothing committed before the plan');
  await page.click('#fleet-grid .node-name');
  await page.waitForSelector('#fleet-node table');
  await shot('fleet');

  // ---- Plan the example deployments and commit them.
  await page.goto(`${origin}/#plan`, {waitUntil: 'networkidle0'});
  const deployments = fs.readFileSync(path.join(root, 'deploy/examples/deployments.json'), 'utf8');
  await page.$eval('#plan-deployments', (e, v) => { e.value = v; }, deployments);
  await page.click('#plan-run');
  await page.waitForSelector('#plan-summary');
  const planned = await page.$$('#plan-replicas tbody tr');
  check(planned.length > 0, `the plan places ${planned.length} replicas`);
  check((await page.$$('#plan-grid .cell.planned')).length > 0, 'the plan is laid on the GPU grid');
  await clean('plan');
  await shot('plan');
  await page.click('#plan-commit');
  await page.waitForSelector('#plan-committed');
  check((await text('#plan-committed')).startsWith('Committed'), await text('#plan-committed'));
  // A second plan of the same deployments, made stale by a commit elsewhere, says so.
  await page.click('#plan-run');
  await page.waitForSelector('#plan-summary');
  const otherPlan = await api('PlannerService/PlanPlacement', {deployments: [{name: 'other', model: 'llama-3.1-8b-instruct'}]});
  await api('PlannerService/CommitPlan', {planId: otherPlan.planId});
  if (!(await page.$eval('#plan-commit', (b) => b.disabled))) {
    await page.click('#plan-commit');
    await page.waitForSelector('#plan-stale, #plan-committed');
    check(await page.$('#plan-stale') !== null, 'a stale plan is reported with a re-plan button');
  }

  // ---- The fleet grid shows the commits (live, through the event stream).
  await page.goto(`${origin}/#fleet`, {waitUntil: 'domcontentloaded'});
  await page.waitForFunction(() => [...document.querySelectorAll('#fleet-grid .cell')].some((c) => c.dataset.committed !== '0'), {timeout: 15000});
  const committedAfter = await page.$$eval('#fleet-grid .cell', (cs) => cs.filter((c) => c.dataset.committed !== '0').length);
  check(committedAfter > 0, `the grid changed: ${committedAfter} GPUs now hold placements`);
  const headAfter = await api('HeadroomService/GetFleetHeadroom', {});
  check(await text('#fleet-committed') === `${gib(headAfter.fleet.committedBytes)} GiB`, 'committed total equals the API');
  await clean('fleet');
  await shot('fleet-after-commit');

  // ---- Models and nodes, with a filter.
  await page.goto(`${origin}/#catalog`, {waitUntil: 'networkidle0'});
  await page.waitForSelector('#models-table tbody tr');
  const models = await api('CatalogService/ListModels', {pageSize: 1000});
  check((await page.$$('#models-table tbody tr')).length === models.models.length, 'every catalog model is listed');
  await page.waitForSelector('#nodes-table tbody tr');
  const nodes = await api('InventoryService/ListNodes', {pageSize: 1000});
  check((await page.$$('#nodes-table tbody tr')).length === nodes.nodes.length, 'every node is listed');
  await page.type('#nodes-pool', 'l4');
  await page.waitForFunction(() => document.querySelectorAll('#nodes-table tbody tr').length === 4, {timeout: 5000});
  check(true, 'the pool filter narrows the node list to the l4 pool');
  await clean('catalog');
  await shot('catalog');

  check(foreign.length === 0, 'no request left the server: ' + foreign.join(', '));
  check(errors.length === 0, 'no console errors: ' + errors.join(' | '));
} catch (e) {
  failures++;
  console.error('FAIL ' + (e && e.stack ? e.stack : e));
} finally {
  if (browser) await browser.close();
  server.kill('SIGTERM');
  fs.rmSync(dir, {recursive: true, force: true});
  clearTimeout(deadline);
}
console.log(failures ? `FAILED: ${failures} checks` : 'PASSED');
process.exit(failures ? 1 : 0);
