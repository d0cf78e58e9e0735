// fleetplan's web console: five pages over the HTTP/JSON API of the fleetpland that serves it
// (POST /api/v1/<Service>/<Method>, the gRPC messages in protobuf JSON). No framework, nothing
// fetched from another origin (the CSP forbids it), no inline script.
'use strict';

const GIB = 2 ** 30;

// ---- API ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(http, status, message) {
    super(message);
    this.http = http;
    this.status = status;
  }
}

function headers() {
  const h = {'Content-Type': 'application/json'};
  const token = sessionStorage.getItem('fleetplan-token');
  if (token) h.Authorization = 'Bearer ' + token;
  return h;
}

async function api(method, body) {
  const r = await fetch('/api/v1/' + method, {method: 'POST', headers: headers(), body: JSON.stringify(body || {})});
  let j = null;
  try { j = await r.json(); } catch (e) { /* not JSON: a proxy's page */ }
  if (!r.ok) {
    const err = (j && j.error) || {};
    throw new ApiError(r.status, err.status || String(r.status), err.message || r.statusText);
  }
  return j;
}

// A server-streaming method as server-sent events, read with fetch so that the token header goes
// with it. Calls onEvent(message) per event until stop() or the stream ends; then retries.
function watch(method, query, onEvent, onState) {
  let controller = null;
  let stopped = false;
  async function run() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const h = headers();
        delete h['Content-Type'];
        const r = await fetch('/api/v1/' + method + '?' + query, {headers: h, signal: controller.signal});
        if (!r.ok) throw new Error('HTTP ' + r.status);
        onState('live');
        const reader = r.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, {stream: true});
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
            if (data && !block.startsWith('event: error')) onEvent(JSON.parse(data));
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      onState('reconnecting');
      await new Promise((ok) => setTimeout(ok, 2000));
    }
  }
  run();
  return {stop() { stopped = true; if (controller) controller.abort(); }};
}

// ---- helpers --------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const num = (v) => Number(v || 0);
const gib = (bytes) => (num(bytes) / GIB).toFixed(2);
const pct = (r) => (100 * num(r)).toFixed(1) + '%';
const risk = (r) => String(r || 'RISK_LEVEL_UNSPECIFIED').replace('RISK_LEVEL_', '').toLowerCase();

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'title' || k === 'tabindex') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children.flat()) if (c) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// Sets a node's children, skipping the null/false ones (replaceChildren would print "null").
function fill(target, ...children) {
  target.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function showError(target, e) {
  fill(target, el('p', {class: 'error', role: 'alert', 'data-status': e.status || ''},
    (e.status ? e.status + ': ' : '') + e.message));
}

function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

function table(columns, rows, attrs) {
  return el('table', attrs || {},
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', {scope: 'col'}, c)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c))))));
}

let catalog = [];
let gpuTypes = [];

async function loadCatalog() {
  try {
    const [models, types] = await Promise.all([api('CatalogService/ListModels', {pageSize: 1000}),
      api('InventoryService/ListGpuTypes', {})]);
    catalog = models.models || [];
    gpuTypes = types.gpuTypes || [];
    $('server-error').hidden = true;
  } catch (e) {
    $('server-error').textContent = 'The server refused to list the catalog: ' + e.message +
      (e.http === 401 ? ' (give a token above)' : '');
    $('server-error').hidden = false;
  }
  for (const id of ['est-model', 'rec-model']) {
    const select = $(id);
    const keep = select.value;
    fill(select, ...catalog.map((m) => el('option', {value: m.name}, m.name)),
      el('option', {value: ''}, 'Paste a config.json…'));
    if (keep && [...select.options].some((o) => o.value === keep)) select.value = keep;
    togglePaste(select);
  }
  fill($('gpu-types'), ...gpuTypes.map((t) => el('option', {value: t.name})));
  if (gpuTypes.length && !gpuTypes.some((t) => t.name === $('est-gpu').value)) $('est-gpu').value = gpuTypes[0].name;
}

function togglePaste(select) {
  const form = select.closest('form');
  for (const e of form.querySelectorAll('.paste')) e.hidden = select.value !== '';
}

function modelOf(selectId, configId) {
  const name = $(selectId).value;
  return name ? {modelName: name} : {configJson: $(configId).value};
}

// ---- Estimate -------------------------------------------------------------------------------

const PARTS = [
  ['weightsBytes', 'weights'], ['kvCacheBytes', 'KV cache'], ['activationPeakBytes', 'activations'],
  ['cudaContextBytes', 'CUDA context'], ['engineOverheadBytes', 'non-torch / engine'],
  ['cudaGraphBytes', 'CUDA graphs'], ['gradientBytes', 'gradients'], ['optimizerBytes', 'optimizer'],
  ['fragmentationBytes', 'fragmentation'],
];

function estimateRequest() {
  const context = num($('est-context').value);
  const req = {
    ...modelOf('est-model', 'est-config'),
    engine: $('est-engine').value,
    gpuType: $('est-gpu').value.trim(),
    parallelism: {tp: num($('est-tp').value) || 1, pp: num($('est-pp').value) || 1, ep: num($('est-ep').value) || 1},
    dtype: $('est-dtype').value,
    kvCacheDtype: $('est-kv').value,
    quantization: $('est-quant').value.trim(),
    concurrency: num($('est-concurrency').value) || 1,
    contextTokens: context,
  };
  if (req.engine === 'ENGINE_VLLM' && context > 0) req.vllm = {maxModelLen: context};
  return req;
}

function stackedBars(stages, gpuBytes) {
  const width = 640, row = 34, left = 70;
  const height = stages.length * row + 26;
  const max = Math.max(gpuBytes, ...stages.map((s) => num(s.totalBytes))) || 1;
  const scale = (b) => (num(b) / max) * (width - left - 10);
  const g = svg('svg', {viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'stack',
    'aria-label': 'Memory per GPU rank by component'});
  stages.forEach((s, i) => {
    const y = 4 + i * row;
    g.append(svg('text', {x: 0, y: y + 18, class: 'axis'}, `stage ${s.ppStage || 0}`));
    let x = left;
    PARTS.forEach(([key, label], k) => {
      const w = scale(s[key]);
      if (w <= 0) return;
      g.append(svg('rect', {x, y, width: w, height: row - 10, class: 'part p' + k},
        svg('title', {}, `${label}: ${gib(s[key])} GiB`)));
      x += w;
    });
  });
  if (gpuBytes > 0) {
    const x = left + scale(gpuBytes);
    g.append(svg('line', {x1: x, x2: x, y1: 0, y2: height - 20, class: 'gpu-line'}));
    g.append(svg('text', {x: Math.min(x, width - 90), y: height - 6, class: 'axis'}, `GPU ${gib(gpuBytes)} GiB`));
  }
  return g;
}

function estimateKey(req) {
  return [req.modelName || 'inline', req.gpuType, req.parallelism.tp, req.parallelism.pp, req.contextTokens, req.concurrency].join('|');
}

let estimateSeq = 0;
async function runEstimate() {
  const seq = ++estimateSeq;
  const out = $('estimate-result');
  const req = estimateRequest();
  let r;
  try {
    r = await api('EstimatorService/Estimate', req);
  } catch (e) {
    if (seq === estimateSeq) showError(out, e);
    return;
  }
  if (seq !== estimateSeq) return;
  const stages = r.stages || [];
  const verdict = r.fits ? 'fits' : 'does not fit';
  const legend = el('ul', {class: 'legend-list'}, PARTS.map(([key, label], k) => {
    const bytes = Math.max(...stages.map((s) => num(s[key])), 0);
    return bytes > 0 ? el('li', {}, el('span', {class: 'swatch p' + k}), `${label} `,
      el('span', {'data-part': key}, gib(bytes)), ' GiB') : null;
  }));
  fill(out,
    el('p', {class: 'verdict ' + (r.fits ? 'ok' : 'bad'), id: 'est-verdict'},
      `${verdict} on ${req.gpuType}: `, el('strong', {id: 'est-total'}, gib(r.maxTotalBytes)), ' GiB (up to ',
      el('span', {id: 'est-high', title: 'the high end of the uncertainty band: what a plan reserves'}, gib(r.maxHighBytes)), ') of ',
      el('span', {id: 'est-gpu-bytes'}, gib(r.gpuMemoryBytes)), ' GiB per GPU, headroom ',
      el('span', {id: 'est-headroom'}, gib(r.headroomBytes)), ` GiB (${pct(r.headroomRatio)}), risk `,
      el('span', {id: 'est-risk', class: 'risk-' + risk(r.risk)}, risk(r.risk))),
    r.unverified ? el('p', {class: 'warn', role: 'alert'}, 'Unverified: the estimator did not fully understand this config; the numbers may be wrong either way.') : null,
    r.reason ? el('p', {class: 'muted'}, r.reason) : null,
    (r.bandWidened || []).length ? el('details', {id: 'est-band-widened'}, el('summary', {}, 'Band widened'), el('ul', {}, r.bandWidened.map((n) => el('li', {}, n)))) : null,
    stackedBars(stages, num(r.gpuMemoryBytes)),
    legend,
    el('dl', {class: 'facts'},
      el('dt', {}, 'KV cache tokens'), el('dd', {id: 'est-kv-tokens'}, num(r.kvCacheTokens).toLocaleString('en-US')),
      el('dt', {}, 'KV tokens counted on'), el('dd', {id: 'est-kv-tokens-low', title: 'the low end of the band: what a plan counts on'}, num(r.kvCacheTokensLow).toLocaleString('en-US')),
      el('dt', {}, 'Max concurrency'), el('dd', {id: 'est-max-concurrency'}, String(num(r.maxConcurrency))),
      el('dt', {}, 'Parameters'), el('dd', {id: 'est-params'}, (num(r.params) / 1e9).toFixed(2) + ' B')),
    (r.notes || []).length ? el('details', {}, el('summary', {}, 'Notes'), el('ul', {}, r.notes.map((n) => el('li', {}, n)))) : null,
    el('div', {id: 'est-launch'}));
  // What this result is for (tests and people comparing two tabs read it).
  out.dataset.key = estimateKey(req);
  if (req.engine === 'ENGINE_VLLM') launchLine(req, seq);
}

// The launch line the planner would print for this workload on this GPU type: the asked
// parallelism when it holds the workload, else the cheapest that does (as `estimate --emit vllm`).
async function launchLine(req, seq) {
  const registered = gpuTypes.some((t) => t.name === req.gpuType);
  const body = {
    deployment: {model: req.modelName || 'MODEL', concurrency: req.concurrency, contextTokens: req.contextTokens,
      kvCacheDtype: req.kvCacheDtype, gpuTypes: [req.gpuType], allowUnverified: true},
    builtinGpuTypes: !registered,
  };
  if (req.configJson !== undefined) { body.configJson = req.configJson; body.quantization = req.quantization; }
  let r;
  try { r = await api('PlannerService/Recommend', body); } catch (e) { return; }
  if (seq !== estimateSeq) return;
  const configs = r.configurations || [];
  const target = $('est-launch');
  if (!configs.length) {
    const v = (r.gpuTypes || [])[0];
    fill(target, el('p', {class: 'muted'}, 'No vLLM configuration on this GPU holds the workload' + (v && v.reason ? ': ' + v.reason : '')));
    return;
  }
  const p = req.parallelism;
  const same = configs.find((c) => num(c.tp) === p.tp && num(c.pp) === p.pp) || configs[0];
  target.dataset.key = estimateKey(req);
  fill(target, el('h3', {}, 'Launch line'),
    num(same.tp) !== p.tp || num(same.pp) !== p.pp ? el('p', {class: 'muted'}, `tp=${p.tp} pp=${p.pp} does not hold the workload; tp=${same.tp} pp=${same.pp} does`) : null,
    el('pre', {id: 'est-command', class: 'command'}, same.launchCommand),
    el('button', {type: 'button', onclick: () => navigator.clipboard && navigator.clipboard.writeText(same.launchCommand)}, 'Copy'));
}

function initEstimate() {
  const again = debounce(runEstimate, 250);
  for (const [range, box] of [['est-context-range', 'est-context'], ['est-concurrency-range', 'est-concurrency']]) {
    $(range).addEventListener('input', () => { $(box).value = $(range).value; again(); });
    $(box).addEventListener('input', () => { $(range).value = $(box).value; });
  }
  $('estimate-form').addEventListener('input', again);
  $('estimate-form').addEventListener('change', (e) => { if (e.target.id === 'est-model') togglePaste(e.target); again(); });
  $('estimate-form').addEventListener('submit', (e) => { e.preventDefault(); runEstimate(); });
}

// ---- Recommend ------------------------------------------------------------------------------

async function runRecommend() {
  const out = $('recommend-result');
  const m = modelOf('rec-model', 'rec-config');
  const body = {
    deployment: {model: m.modelName || 'MODEL', concurrency: num($('rec-concurrency').value) || 1,
      contextTokens: num($('rec-context').value), allowUnverified: false},
    gpusPerNode: num($('rec-gpus-per-node').value) || 8,
    builtinGpuTypes: $('rec-builtin').value === 'builtin',
    limit: 12,
  };
  if (m.configJson !== undefined) body.configJson = m.configJson;
  fill(out, el('p', {class: 'muted'}, 'Sizing…'));
  let r;
  try { r = await api('PlannerService/Recommend', body); } catch (e) { showError(out, e); return; }
  const configs = r.configurations || [];
  const best = configs[0];
  fill(out,
    best ? el('p', {class: 'verdict ok', id: 'rec-best'}, `Use ${best.gpus} × ${best.gpuType} (tp=${best.tp}${num(best.pp) > 1 ? ', pp=' + best.pp : ''})`)
      : el('p', {class: 'verdict bad', id: 'rec-best'}, 'No configuration holds this workload'),
    el('div', {class: 'cards', id: 'rec-cards'}, configs.map((c, i) => el('article', {class: 'card', 'data-rank': i + 1},
      el('h3', {}, `${i + 1}. ${c.gpus} × ${c.gpuType}`),
      el('p', {}, `tp=${c.tp} pp=${c.pp} ep=${c.ep}`),
      el('p', {}, `${gib(c.maxBytesPerGpu)} GiB per GPU · ${num(c.kvCacheTokens).toLocaleString('en-US')} KV tokens · utilization ${num(c.gpuMemoryUtilization).toFixed(2)}`),
      el('p', {class: 'cost'}, num(c.costPerHour) > 0 ? `$${num(c.costPerHour).toFixed(2)}/h` : 'cost unknown'),
      el('pre', {class: 'command'}, c.launchCommand)))),
    el('h3', {}, 'Per GPU type'),
    table(['GPU type', 'Fits', 'Fewest GPUs', 'Why not fewer / why not'],
      (r.gpuTypes || []).map((v) => [v.gpuType, v.fits ? 'yes' : 'no', v.fewestGpus && num(v.fewestGpus) > 0 ? String(v.fewestGpus) : '–', v.reason || ''])),
    (r.notes || []).length ? el('details', {}, el('summary', {}, 'Notes'), el('ul', {}, r.notes.map((n) => el('li', {}, n)))) : null);
}

function initRecommend() {
  $('recommend-form').addEventListener('submit', (e) => { e.preventDefault(); runRecommend(); });
  $('rec-model').addEventListener('change', (e) => togglePaste(e.target));
}

// ---- Fleet ----------------------------------------------------------------------------------

let fleetWatch = null;
let lastHeadroom = null;

function shareClass(h) {
  const total = num(h.totalBytes);
  const used = total > 0 ? (num(h.committedBytes) + num(h.reservedBytes)) / total : 0;
  return 's' + Math.min(4, Math.ceil(used * 4));
}

function bars(rows) {
  return rows.map((h) => {
    const total = num(h.totalBytes) || 1;
    const w = (b) => (100 * num(b) / total).toFixed(2) + '%';
    return el('div', {class: 'bar-row', 'data-key': h.key},
      el('span', {class: 'bar-label'}, h.key),
      el('div', {class: 'bar', role: 'img', 'aria-label': `${h.key}: ${gib(h.committedBytes)} GiB committed, ${gib(h.reservedBytes)} reserved, ${gib(h.freeBytes)} free of ${gib(h.totalBytes)} GiB`},
        el('span', {class: 'committed'}), el('span', {class: 'reserved'})),
      el('span', {class: 'bar-text'}, `${gib(h.freeBytes)} GiB free of ${gib(h.totalBytes)} · ${h.freeGpus}/${h.gpus} GPUs free · largest free NVLink domain ${h.largestFreeNvlinkDomain} · risk ${risk(h.risk)}`));
  }).map((row, i) => {
    // Widths set through the CSSOM (the CSP has no 'unsafe-inline' for style attributes).
    const h = rows[i];
    const total = num(h.totalBytes) || 1;
    row.querySelector('.committed').style.width = (100 * num(h.committedBytes) / total) + '%';
    row.querySelector('.reserved').style.width = (100 * num(h.reservedBytes) / total) + '%';
    return row;
  });
}

function renderFleet(h) {
  lastHeadroom = h;
  const f = h.fleet || {};
  $('fleet-live').dataset.generation = h.generation;
  fill($('fleet-summary'),
    el('article', {class: 'card'}, el('h3', {}, 'Free'), el('p', {id: 'fleet-free'}, `${gib(f.freeBytes)} GiB`), el('p', {class: 'muted'}, `of ${gib(f.totalBytes)} GiB (${pct(f.headroomRatio)})`)),
    el('article', {class: 'card'}, el('h3', {}, 'Committed'), el('p', {id: 'fleet-committed'}, `${gib(f.committedBytes)} GiB`), el('p', {class: 'muted'}, `${gib(f.reservedBytes)} GiB reserved`)),
    el('article', {class: 'card'}, el('h3', {}, 'GPUs free'), el('p', {id: 'fleet-free-gpus'}, `${f.freeGpus || 0} / ${f.gpus || 0}`), el('p', {class: 'muted'}, `generation ${h.generation}`)));
  fill($('fleet-pools'), ...bars(h.pools || []));
  fill($('fleet-types'), ...bars(h.gpuTypes || []));
  const byNode = new Map();
  for (const g of h.gpus || []) {
    if (!byNode.has(g.node)) byNode.set(g.node, []);
    byNode.get(g.node).push(g);
  }
  fill($('fleet-grid'), ...[...byNode.entries()].map(([node, gpus]) => el('div', {class: 'node-row'},
    el('button', {type: 'button', class: 'node-name', onclick: () => showNode(node)}, node),
    gpus.map((g) => el('span', {class: `cell ${shareClass(g.headroom || {})} risk-${(g.headroom || {}).risk}`,
      'data-node': g.node, 'data-index': String(g.index || 0),
      'data-committed': String((g.headroom || {}).committedBytes || 0), role: 'img',
      title: `${g.node}/${g.index || 0} ${g.gpuType}: ${gib((g.headroom || {}).committedBytes)} GiB committed, ${gib((g.headroom || {}).freeBytes)} GiB free, risk ${risk((g.headroom || {}).risk)}`,
      'aria-label': `${g.node} GPU ${g.index || 0}: ${gib((g.headroom || {}).freeBytes)} GiB free`})))));
}

async function showNode(name) {
  const out = $('fleet-node');
  try {
    const [node, placements] = await Promise.all([api('InventoryService/GetNode', {name}),
      api('PlannerService/ListPlacements', {pageSize: 1000})]);
    const here = (placements.placements || []).filter((p) => (p.ranks || []).some((r) => r.node === name));
    fill(out, el('h3', {}, `${name} · pool ${node.pool} · zone ${node.zone || '–'} · ${String(node.state).replace('NODE_STATE_', '').toLowerCase()}`),
      table(['GPU', 'Type', 'NVLink domain', 'Committed GiB', 'Reserved GiB'],
        (node.gpus || []).map((g) => [String(g.index || 0), g.gpuType, String(g.nvlinkDomain || 0), gib(g.committedBytes), gib(g.reservedBytes)])),
      el('h3', {}, 'Placements'),
      here.length ? table(['Id', 'Deployment', 'Model', 'Replica', 'tp/pp', 'State', 'GPUs here'],
        here.map((p) => [String(p.id), p.deployment, p.model, String(p.replica || 0), `${p.tp}/${p.pp}`, p.state,
          p.ranks.filter((r) => r.node === name).map((r) => r.gpuIndex || 0).join(',')])) : el('p', {class: 'muted'}, 'none'));
  } catch (e) { showError(out, e); }
}

async function startFleet() {
  if (fleetWatch) return;
  try { renderFleet(await api('HeadroomService/GetFleetHeadroom', {includeGpus: true, pageSize: 1000})); } catch (e) { showError($('fleet-node'), e); }
  fleetWatch = watch('HeadroomService/WatchHeadroom', 'include_gpus=true', renderFleet, (state) => {
    $('fleet-live').textContent = state === 'live' ? '· live' : '· reconnecting…';
    $('fleet-live').dataset.state = state;
  });
}

function stopFleet() {
  if (fleetWatch) fleetWatch.stop();
  fleetWatch = null;
}

// ---- Plan -----------------------------------------------------------------------------------

let currentPlan = null;

function planDeployments() {
  const text = $('plan-deployments').value;
  let parsed;
  try { parsed = JSON.parse(text); } catch (e) { throw new ApiError(400, 'INVALID_ARGUMENT', 'deployments: not JSON: ' + e.message); }
  if (Array.isArray(parsed)) return parsed;
  if (parsed && Array.isArray(parsed.deployments)) return parsed.deployments;
  throw new ApiError(400, 'INVALID_ARGUMENT', 'deployments: give an array of deployments or {"deployments": [...]}');
}

async function runPlan() {
  const out = $('plan-result');
  $('plan-commit').disabled = true;
  currentPlan = null;
  let plan;
  try {
    plan = await api('PlannerService/PlanPlacement', {deployments: planDeployments(), strategy: $('plan-strategy').value, headroomView: 'HEADROOM_VIEW_NONE'});
  } catch (e) { showError(out, e); return; }
  currentPlan = plan;
  $('plan-commit').disabled = !(plan.replicas || []).length;
  const used = new Map();
  for (const r of plan.replicas || []) for (const k of r.ranks || []) used.set(`${k.node}/${k.gpuIndex || 0}`, r.deployment);
  // The touched nodes whole: planned GPUs marked, the others by what they already hold.
  let fleetGpus = [];
  try { fleetGpus = (await api('HeadroomService/GetFleetHeadroom', {includeGpus: true, pageSize: 1000})).gpus || []; } catch (e) { /* the grid shows planned GPUs only */ }
  const nodes = [...new Set([...used.keys()].map((k) => k.split('/')[0]))].sort();
  fill(out,
    el('p', {class: 'verdict ' + ((plan.unplaced || []).length ? 'bad' : 'ok'), id: 'plan-summary'},
      `${(plan.replicas || []).length} replicas placed on ${plan.gpusUsed} GPUs (lower bound ${plan.lowerBoundGpus}, gap ${pct(plan.gap)}), ${(plan.unplaced || []).length} unplaced · ${plan.strategy}` +
      (num(plan.costPerHour) > 0 ? ` · $${num(plan.costPerHour).toFixed(2)}/h` : '')),
    table(['Deployment', 'Replica', 'GPU type', 'tp/pp/ep', 'GPUs', 'KV tokens', 'Utilization', 'Risk'],
      (plan.replicas || []).map((r) => [r.deployment, String(r.replica || 0), r.gpuType, `${r.tp}/${r.pp}/${r.ep}`,
        (r.cudaVisibleDevices || []).join(' '), num(r.kvCacheTokens).toLocaleString('en-US'), num(r.gpuMemoryUtilization).toFixed(2), risk(r.risk)]),
      {id: 'plan-replicas'}),
    (plan.unplaced || []).length ? el('div', {id: 'plan-unplaced'}, el('h3', {}, 'Unplaced'),
      el('ul', {}, plan.unplaced.map((u) => el('li', {}, `${u.deployment} #${u.replica || 0}: ${u.reason}`)))) : null,
    el('h3', {}, 'On the fleet'),
    el('div', {class: 'gpu-grid', id: 'plan-grid'}, nodes.map((n) => {
      const known = fleetGpus.filter((g) => g.node === n);
      const cells = known.length ? known.map((g) => `${g.node}/${g.index || 0}`) : [...used.keys()].filter((k) => k.startsWith(n + '/'));
      return el('div', {class: 'node-row'}, el('span', {class: 'node-name'}, n), cells.map((k) => {
        const g = known.find((x) => `${x.node}/${x.index || 0}` === k);
        const planned = used.get(k);
        return el('span', {class: planned ? 'cell planned' : `cell ${shareClass((g && g.headroom) || {})}`,
          title: planned ? `${k}: ${planned}` : `${k}: not in this plan`, 'data-gpu': k});
      }));
    }))
  );
}

async function commitPlan() {
  const out = $('plan-result');
  if (!currentPlan) return;
  $('plan-commit').disabled = true;
  try {
    const r = await api('PlannerService/CommitPlan', {planId: currentPlan.planId});
    out.prepend(el('p', {class: 'verdict ok', id: 'plan-committed', role: 'status'},
      `Committed: ${(r.placementIds || []).length} placements (fleet generation ${r.generation})`));
    currentPlan = null;
  } catch (e) {
    if (e.status === 'ABORTED' || e.status === 'NOT_FOUND') {
      out.prepend(el('p', {class: 'warn', id: 'plan-stale', role: 'alert'},
        'The fleet changed since this plan (or it expired): ', el('button', {type: 'button', onclick: runPlan}, 'Re-plan')));
    } else {
      showError(out, e);
    }
  }
}

function initPlan() {
  $('plan-form').addEventListener('submit', (e) => { e.preventDefault(); runPlan(); });
  $('plan-commit').addEventListener('click', commitPlan);
}

// ---- Models and nodes -----------------------------------------------------------------------

async function renderCatalog() {
  await loadCatalog();
  fill($('models'), table(['Name', 'Type', 'Parameters', 'Weights GiB', 'KV bytes/token', 'Quantization', 'Verified'],
    catalog.map((m) => [m.name, m.modelType, (num(m.params) / 1e9).toFixed(2) + ' B', gib(m.weightsBytes),
      num(m.kvBytesPerToken).toLocaleString('en-US'),
      m.format === 'gguf' ? 'GGUF file (llama.cpp)' : (m.quantization || '–'), m.unverified ? 'no' : 'yes']),
    {id: 'models-table'}));
  renderNodes();
}

async function renderNodes() {
  const out = $('nodes');
  try {
    const req = {pageSize: 1000, pool: $('nodes-pool').value.trim(), gpuType: $('nodes-type').value.trim()};
    const r = await api('InventoryService/ListNodes', req);
    const state = $('nodes-state').value;
    const nodes = (r.nodes || []).filter((n) => !state || n.state === state);
    fill(out, table(['Node', 'Pool', 'Zone', 'State', 'GPUs', 'Types', 'Committed GiB'],
      nodes.map((n) => [n.name, n.pool, n.zone || '–', String(n.state).replace('NODE_STATE_', '').toLowerCase(), String((n.gpus || []).length),
        [...new Set((n.gpus || []).map((g) => g.gpuType))].join(', '), gib((n.gpus || []).reduce((s, g) => s + num(g.committedBytes), 0))]),
      {id: 'nodes-table'}));
  } catch (e) { showError(out, e); }
}

function initCatalog() {
  $('import-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const file = $('import-file').files[0];
    if (!file) return;
    try {
      await api('CatalogService/ImportModel', {name: $('import-name').value.trim(), configJson: await file.text()});
      await renderCatalog();
    } catch (err) { showError($('models'), err); }
  });
  $('nodes-filter').addEventListener('input', debounce(renderNodes, 250));
}

// ---- pages ----------------------------------------------------------------------------------

const PAGES = {
  estimate: () => runEstimate(),
  recommend: () => {},
  fleet: () => startFleet(),
  plan: () => {},
  catalog: () => renderCatalog(),
};

function route() {
  const page = (location.hash || '#estimate').slice(1);
  const name = PAGES[page] ? page : 'estimate';
  for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== 'page-' + name;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (name !== 'fleet') stopFleet();
  PAGES[name]();
}

async function main() {
  const token = $('token');
  token.value = sessionStorage.getItem('fleetplan-token') || '';
  token.addEventListener('change', async () => {
    sessionStorage.setItem('fleetplan-token', token.value.trim());
    await loadCatalog();
    route();
  });
  initEstimate();
  initRecommend();
  initPlan();
  initCatalog();
  await loadCatalog();
  window.addEventListener('hashchange', route);
  route();
}

document.addEventListener('DOMContentLoaded', main);
