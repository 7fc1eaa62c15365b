// PromQL answers compared with a real Prometheus on the same data.
//
// One OpenMetrics file with timestamps (LLM service metrics under llmscope's own names,
// generated from a seeded PRNG: counters with a reset, a series that starts late and one
// that stops, histograms, gauges) is loaded into both stores: into Prometheus with
// `promtool tsdb create-blocks-from openmetrics`, into llmscope with `llmscope tsdb import`.
// Then the same expressions (a hand-written seed set and a generated set) are asked of
// both HTTP APIs, instant and range, and the answers must agree: the same series and the
// same values (relative 1e-6, for summation order), NaN where Prometheus says NaN.
//
// llmscope follows Prometheus 3's semantics; Debian's Prometheus is 2.42, and the two
// differ by design in two places that the data and times here stay clear of:
//   - windows are left-open in 3 (a sample exactly on a window's start is out). Sample
//     times carry millisecond jitter, and queries are asked at whole seconds that are 7 s
//     past a minute, so neither a sample nor a subquery step (whole minutes) sits on an edge;
//   - rate() limits its extrapolation before the first sample at the counter's zero point
//     after, not before, deciding whether to extrapolate at all. Counters here start far
//     from zero, so that limit never applies.
//
// Query times all fall before the llmscope under test started, so its own self-scraped
// metrics (which begin at its start) are invisible to them.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { defaultConfig, LLMSCOPE_BIN, makeTempDir, startGateway, withDiagnostics } from './lib/harness.mjs';
import { PROMETHEUS_MISSING, PROMTOOL, startPrometheus } from './lib/prometheus.mjs';

const STEP_S = 15;
const HOURS = 4;

// mulberry32: a small seeded PRNG, so every run asks the same questions of the same data.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MODELS = ['gpt-4o-mini', 'claude-haiku-4-5', 'llama-3-8b'];
const BUCKETS = ['0.1', '0.25', '0.5', '1', '2.5', '5', '+Inf'];

// The fixture: OpenMetrics text, and the time span [startS, endS] it covers (Unix seconds).
function makeFixture(endS) {
  const rand = prng(20261123);
  const n = Math.floor((HOURS * 3600) / STEP_S);
  const startS = endS - n * STEP_S;
  const lines = [];
  const labelText = (labels) => `{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`;
  const ts = (i) => {
    const ms = 1 + Math.floor(rand() * 998);  // never on a whole second
    return `${startS + i * STEP_S}.${String(ms).padStart(3, '0')}`;
  };
  // A series of n points from `valueAt(i)` (undefined: no point at i).
  const series = (name, labels, valueAt) => {
    for (let i = 0; i <= n; i++) {
      const v = valueAt(i);
      if (v === undefined) continue;
      lines.push(`${name}${labelText(labels)} ${v} ${ts(i)}`);
    }
  };
  const counter = (rate, { resetAt = -1, from = 0, to = n } = {}) => {
    let v = rate * 1000;
    const values = [];
    for (let i = 0; i <= n; i++) {
      if (i === resetAt) v = 0;
      v += Math.floor(rand() * rate * 2);
      values.push(i >= from && i <= to ? v : undefined);
    }
    return (i) => values[i];
  };

  for (const [mi, model] of MODELS.entries()) {
    const opts = mi === 1 ? { resetAt: Math.floor(n * 0.6) }  // a restart
      : mi === 2 ? { from: Math.floor(n * 0.5), to: Math.floor(n * 0.85) } : {};  // late, stops
    series('llm_requests_total', { model, provider: mi === 1 ? 'anthropic' : 'openai', endpoint: 'chat' },
      counter(20 + mi * 7, opts));
    series('llm_errors_total', { model, error_class: 'server_error' }, counter(1 + mi, opts));
    series('llm_tokens_total', { model, type: 'input' }, counter(900, opts));
    series('llm_tokens_total', { model, type: 'output' }, counter(300, opts));
    series('llm_cost_usd_total', { model }, (() => {
      const c = counter(50, opts);
      return (i) => (c(i) === undefined ? undefined : c(i) / 1e4);
    })());
    // Histograms: cumulative buckets, _sum and _count from one stream of observations.
    for (const h of ['llm_request_duration_seconds', 'llm_time_to_first_token_seconds']) {
      const scale = h === 'llm_request_duration_seconds' ? 1.5 : 0.4;
      const counts = BUCKETS.map((_, bi) => 5000 + bi * 1000);
      let sum = 9000;
      const rows = [];
      for (let i = 0; i <= n; i++) {
        if (i === opts.resetAt) {
          counts.fill(0);
          sum = 0;
        }
        const obs = Math.floor(rand() * 30);
        for (let k = 0; k < obs; k++) {
          const x = -Math.log(1 - rand()) * scale * (1 + mi * 0.3);
          sum += x;
          BUCKETS.forEach((b, bi) => { if (b === '+Inf' || x <= Number(b)) counts[bi]++; });
        }
        rows.push(i >= (opts.from ?? 0) && i <= (opts.to ?? n) ? { counts: [...counts], sum } : undefined);
      }
      BUCKETS.forEach((le, bi) => series(`${h}_bucket`, { model, le }, (i) => rows[i]?.counts[bi]));
      series(`${h}_sum`, { model }, (i) => rows[i]?.sum);
      series(`${h}_count`, { model }, (i) => rows[i]?.counts[BUCKETS.length - 1]);
    }
  }
  for (const endpoint of ['chat', 'embeddings']) {
    let g = 5;
    series('llm_active_requests', { endpoint }, (i) => {
      g = Math.max(0, g + Math.round((rand() - 0.5) * 4));
      // A gap of 10 minutes: the series is absent for part of the window.
      return endpoint === 'embeddings' && i > n * 0.3 && i < n * 0.3 + 40 ? undefined : g;
    });
  }
  series('llmscope_storage_spill_records', {}, (i) => Math.floor(i / 10) * 3);
  lines.push('# EOF');
  return { text: `${lines.join('\n')}\n`, startS, endS: startS + n * STEP_S };
}

// The hand-written set: what dashboards and the alert rules ask.
const SEED = [
  'llm_requests_total',
  'rate(llm_requests_total[5m])',
  'sum by (model) (rate(llm_requests_total[5m]))',
  'irate(llm_requests_total[1m])',
  'increase(llm_errors_total[10m])',
  'sum(rate(llm_errors_total[5m])) / sum(rate(llm_requests_total[5m]))',
  'sum by (model) (rate(llm_errors_total[5m])) / on(model) group_left sum by (model) (rate(llm_requests_total[5m]))',
  'histogram_quantile(0.99, sum by (le, model) (rate(llm_request_duration_seconds_bucket[5m])))',
  'histogram_quantile(0.95, sum by (le) (rate(llm_time_to_first_token_seconds_bucket[5m])))',
  'histogram_quantile(0.5, rate(llm_request_duration_seconds_bucket[10m])) > 0.5',
  'sum(rate(llm_request_duration_seconds_sum[5m])) / sum(rate(llm_request_duration_seconds_count[5m]))',
  'rate(llm_cost_usd_total[1h]) * 3600',
  'sum by (model) (increase(llm_cost_usd_total[1h])) / (sum by (model) (increase(llm_tokens_total[1h])) / 1000)',
  'topk(2, sum by (model) (rate(llm_tokens_total[5m])))',
  'bottomk(1, rate(llm_tokens_total{type="output"}[5m]))',
  'count_values("active", llm_active_requests)',
  'quantile(0.5, rate(llm_requests_total[5m]))',
  'stddev(rate(llm_tokens_total[5m]))',
  'stdvar by (type) (rate(llm_tokens_total[5m]))',
  'group by (provider) (llm_requests_total)',
  'count(llm_requests_total) by (provider)',
  'avg_over_time(llm_active_requests[10m])',
  'max_over_time(llm_active_requests[30m])',
  'min_over_time(llm_active_requests[30m])',
  'sum_over_time(llm_active_requests[5m])',
  'count_over_time(llm_active_requests[15m])',
  'quantile_over_time(0.9, llm_active_requests[30m])',
  'stddev_over_time(llm_active_requests[30m])',
  'last_over_time(llm_active_requests[10m])',
  'present_over_time(llm_active_requests[10m])',
  'changes(llm_active_requests[30m])',
  'resets(llm_requests_total[2h])',
  'delta(llm_active_requests[10m])',
  'idelta(llm_active_requests[5m])',
  'deriv(llm_storage_spill_records[10m]) or deriv(llmscope_storage_spill_records[10m])',
  'predict_linear(llmscope_storage_spill_records[30m], 3600)',
  'llm_requests_total offset 30m',
  'rate(llm_requests_total[5m] offset 1h)',
  'sum by (model) (rate(llm_requests_total[5m])) > bool 0.5',
  'llm_requests_total > 1000',
  'llm_requests_total unless llm_requests_total{model="gpt-4o-mini"}',
  'llm_active_requests or vector(0)',
  'llm_errors_total and on(model) llm_requests_total > 500',
  'max_over_time(rate(llm_requests_total[5m])[30m:1m])',
  'avg_over_time(sum(rate(llm_errors_total[5m]))[1h:5m])',
  'absent(llm_nonexistent_metric)',
  'absent(llm_requests_total)',
  'absent_over_time(llm_requests_total{model="nope"}[5m])',
  'label_replace(rate(llm_requests_total[5m]), "family", "$1", "model", "([a-z]+)-.*")',
  'label_join(llm_requests_total, "key", "/", "provider", "model")',
  'clamp(llm_active_requests, 2, 6)',
  'clamp_min(llm_active_requests, 4)',
  'clamp_max(llm_active_requests, 4)',
  'abs(delta(llm_active_requests[10m]))',
  'ceil(rate(llm_requests_total[5m]))',
  'floor(rate(llm_requests_total[5m]))',
  'round(rate(llm_requests_total[5m]), 0.5)',
  'sqrt(rate(llm_tokens_total[5m]))',
  'ln(llm_requests_total + 1)',
  'exp(-rate(llm_errors_total[5m]))',
  'time()',
  'timestamp(llm_active_requests)',
  'vector(1)',
  'scalar(sum(llm_active_requests))',
  'sort_desc(sum by (model) (llm_requests_total))',
  '-llm_active_requests % 3',
  '2 ^ clamp_max(llm_active_requests, 10)',
  'llm_active_requests == bool 5',
  'sum without (le) (llm_request_duration_seconds_bucket)',
  'avg without (type) (rate(llm_tokens_total[5m]))',
];

// Generated expressions: functions over ranges, aggregations, binary operators.
function generated(count) {
  const rand = prng(7);
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const counters = ['llm_requests_total', 'llm_errors_total', 'llm_tokens_total', 'llm_cost_usd_total',
    'llm_request_duration_seconds_count', 'llm_time_to_first_token_seconds_sum'];
  const gauges = ['llm_active_requests', 'llmscope_storage_spill_records'];
  const ranges = ['1m', '2m', '5m', '10m', '30m'];
  const counterFns = ['rate', 'irate', 'increase', 'resets'];
  const gaugeFns = ['avg_over_time', 'max_over_time', 'min_over_time', 'sum_over_time', 'count_over_time',
    'stddev_over_time', 'stdvar_over_time', 'last_over_time', 'delta', 'idelta', 'changes', 'deriv'];
  const aggs = ['sum', 'avg', 'max', 'min', 'count', 'stddev', 'group'];
  const groupings = ['', ' by (model)', ' by (type)', ' without (model)', ' by (endpoint)', ' by (provider, model)'];
  const leaf = () => {
    if (rand() < 0.6) {
      return `${pick(counterFns)}(${pick(counters)}[${pick(ranges)}])`;
    }
    return `${pick(gaugeFns)}(${pick(gauges)}[${pick(ranges)}])`;
  };
  const expr = (depth) => {
    const r = rand();
    if (depth > 1 || r < 0.35) return leaf();
    if (r < 0.65) return `${pick(aggs)}${pick(groupings)} (${expr(depth + 1)})`;
    // topk/bottomk only outermost: among equal values either engine may pick any series
    // (Prometheus' order comes from Go map iteration), so only the values are compared.
    if (r < 0.75) {
      if (depth > 0) return leaf();
      return `${pick(['topk', 'bottomk'])}(${1 + Math.floor(rand() * 2)}, ${expr(depth + 1)})`;
    }
    if (r < 0.85) return `${expr(depth + 1)} ${pick(['*', '/', '+', '-'])} ${(rand() * 10).toFixed(2)}`;
    if (r < 0.92) return `${expr(depth + 1)} ${pick(['>', '<', '>='])} ${pick(['', 'bool '])}${(rand() * 5).toFixed(1)}`;
    return `quantile_over_time(0.${1 + Math.floor(rand() * 8)}, ${pick(gauges)}[${pick(ranges)}])`;
  };
  const out = new Set();
  while (out.size < count) out.add(expr(0));
  return [...out];
}

// POST (form-encoded) where Prometheus takes it, GET for label values (GET only there).
async function ask(baseURL, endpoint, params) {
  const query = new URLSearchParams(params).toString();
  const r = endpoint.startsWith('label/')
    ? await fetch(`${baseURL}/api/v1/${endpoint}?${query}`)
    : await fetch(`${baseURL}/api/v1/${endpoint}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: query,
    });
  const text = await r.text();
  try {
    return { status: r.status, json: JSON.parse(text) };
  } catch {
    throw new Error(`${baseURL}/api/v1/${endpoint}: ${r.status} ${text.slice(0, 300)}`);
  }
}

const key = (metric) => JSON.stringify(Object.keys(metric).sort().map((k) => [k, metric[k]]));

function sameValue(a, b) {
  if (a === b) return true;
  const x = Number(a);
  const y = Number(b);
  if (Number.isNaN(x) && Number.isNaN(y)) return true;
  if (!Number.isFinite(x) || !Number.isFinite(y)) return x === y;
  return Math.abs(x - y) <= 1e-6 * Math.max(1, Math.abs(x), Math.abs(y));
}

// Compares one answer; returns a list of differences (empty when they agree).
// For an outermost topk/bottomk: the values picked at each time (sorted), whichever series
// holds them, since ties may be broken differently.
function valuesOnly(answer) {
  if (answer.json.status !== 'success') return answer;
  const d = answer.json.data;
  if (d.resultType !== 'vector' && d.resultType !== 'matrix') return answer;
  const byTime = new Map();
  for (const s of d.result) {
    for (const [t, v] of d.resultType === 'vector' ? [s.value] : s.values) {
      if (!byTime.has(t)) byTime.set(t, []);
      byTime.get(t).push(v);
    }
  }
  const result = [...byTime].map(([t, vs]) => ({
    metric: { t: String(t) },
    values: vs.sort((x, y) => Number(x) - Number(y)).map((v, i) => [i, v]),
  }));
  return { json: { status: 'success', data: { resultType: 'matrix', result } } };
}

// `tiesByValue`: an outermost topk/bottomk is compared by its values only (generated
// expressions may rank equal values; the seed set's rankings have none).
function compare(ours, theirs, expr, tiesByValue) {
  if (tiesByValue && /^(topk|bottomk)\(/.test(expr)) {
    return compareExact(valuesOnly(ours), valuesOnly(theirs));
  }
  return compareExact(ours, theirs);
}

function compareExact(ours, theirs) {
  const diffs = [];
  if (ours.json.status !== theirs.json.status) {
    return [`status: llmscope ${JSON.stringify(ours.json).slice(0, 300)} vs Prometheus ${JSON.stringify(theirs.json).slice(0, 300)}`];
  }
  if (theirs.json.status !== 'success') return [];  // both refused it
  const a = ours.json.data;
  const b = theirs.json.data;
  if (a.resultType !== b.resultType) return [`resultType ${a.resultType} vs ${b.resultType}`];
  if (a.resultType === 'scalar' || a.resultType === 'string') {
    if (a.result[0] !== b.result[0] || !sameValue(a.result[1], b.result[1])) {
      diffs.push(`${JSON.stringify(a.result)} vs ${JSON.stringify(b.result)}`);
    }
    return diffs;
  }
  const ma = new Map(a.result.map((s) => [key(s.metric), s]));
  const mb = new Map(b.result.map((s) => [key(s.metric), s]));
  for (const k of mb.keys()) if (!ma.has(k)) diffs.push(`missing series ${k}`);
  for (const k of ma.keys()) if (!mb.has(k)) diffs.push(`extra series ${k}`);
  for (const [k, sb] of mb) {
    const sa = ma.get(k);
    if (!sa) continue;
    if (a.resultType === 'vector') {
      if (sa.value[0] !== sb.value[0] || !sameValue(sa.value[1], sb.value[1])) {
        diffs.push(`${k}: ${JSON.stringify(sa.value)} vs ${JSON.stringify(sb.value)}`);
      }
    } else {
      const pa = new Map(sa.values.map(([t, v]) => [t, v]));
      const pb = new Map(sb.values.map(([t, v]) => [t, v]));
      for (const [t, v] of pb) {
        if (!pa.has(t)) diffs.push(`${k}: missing point at ${t}`);
        else if (!sameValue(pa.get(t), v)) diffs.push(`${k} at ${t}: ${pa.get(t)} vs ${v}`);
      }
      for (const t of pa.keys()) if (!pb.has(t)) diffs.push(`${k}: extra point at ${t}`);
    }
  }
  return diffs;
}

describe('PromQL against a real Prometheus', { skip: PROMETHEUS_MISSING }, () => {
  let tmp;
  let prom;
  let gw;
  let fixture;
  const diag = {
    'llmscope output': () => gw?.output(),
    'prometheus output': () => prom?.output(),
  };

  before(async () => {
    tmp = makeTempDir('llmscope-promql-diff-');
    // Ends a minute ago on a whole step, so both stores hold it as recent data.
    const endS = Math.floor(Date.now() / 1000 / STEP_S) * STEP_S - 60;
    fixture = makeFixture(endS);
    const file = path.join(tmp.dir, 'fixture.om');
    fs.writeFileSync(file, fixture.text);

    const promData = path.join(tmp.dir, 'prometheus-data');
    const created = spawnSync(PROMTOOL, ['tsdb', 'create-blocks-from', 'openmetrics', file, promData],
      { encoding: 'utf8', timeout: 120_000 });
    assert.equal(created.status, 0, `promtool: ${created.stdout}\n${created.stderr}`);
    prom = await startPrometheus({
      dir: tmp.dir,
      dataDir: promData,
      config: { global: { scrape_interval: '1h', evaluation_interval: '1h' }, scrape_configs: [] },
    });

    const tsdbDir = path.join(tmp.dir, 'llmscope-tsdb');
    const imported = spawnSync(LLMSCOPE_BIN, ['tsdb', 'import', '--dir', tsdbDir, file],
      { encoding: 'utf8', timeout: 120_000 });
    assert.equal(imported.status, 0, `llmscope tsdb import: ${imported.stdout}\n${imported.stderr}`);
    gw = await startGateway((callsPath) => ({ ...defaultConfig(callsPath), tsdb: { dir: tsdbDir } }));
  });

  after(async () => {
    await gw?.stop();
    await prom?.stop();
    tmp?.cleanup();
  });

  const times = () => {
    const { startS, endS } = fixture;
    const span = endS - startS;
    // Whole seconds: early (short history), mid-reset, in the gap, around the stop, the end.
    return [0.05, 0.31, 0.42, 0.6, 0.61, 0.86, 0.9, 0.99]
      .map((f) => Math.floor((startS + span * f) / 60) * 60 + 7);
  };

  async function check(exprs, label, tiesByValue = false) {
    const failures = [];
    let compared = 0;
    for (const expr of exprs) {
      for (const time of times()) {
        const [ours, theirs] = await Promise.all([
          ask(gw.baseURL, 'query', { query: expr, time }),
          ask(prom.url, 'query', { query: expr, time }),
        ]);
        const d = compare(ours, theirs, expr, tiesByValue);
        compared++;
        if (d.length) failures.push(`${expr} @ ${time}:\n    ${d.slice(0, 5).join('\n    ')}`);
      }
      const start = Math.floor((fixture.endS - 7200) / 60) * 60 + 7;
      const range = { query: expr, start, end: start + 7080, step: 60 };
      const [ours, theirs] = await Promise.all([ask(gw.baseURL, 'query_range', range),
        ask(prom.url, 'query_range', range)]);
      const d = compare(ours, theirs, expr, tiesByValue);
      compared++;
      if (d.length) failures.push(`${expr} over the last 2h:\n    ${d.slice(0, 5).join('\n    ')}`);
    }
    assert.deepEqual(failures, [], `${failures.length} of ${compared} ${label} answers differ`);
    return compared;
  }

  test('the seed expressions give Prometheus\' answers', () => withDiagnostics(async () => {
    // The data really is there: not a comparison of two empty answers.
    const n = await ask(gw.baseURL, 'query', { query: 'count(llm_requests_total)', time: fixture.endS });
    assert.equal(n.json.data.result[0]?.value[1], '2', JSON.stringify(n.json));
    await check(SEED, 'seed');
  }, diag));

  test('generated expressions give Prometheus\' answers', () => withDiagnostics(async () => {
    await check(generated(120), 'generated', true);
  }, diag));

  test('series, labels and label values list what Prometheus lists', () => withDiagnostics(async () => {
    const range = { start: fixture.startS, end: fixture.endS };
    for (const [endpoint, params] of [
      ['series', { 'match[]': 'llm_requests_total', ...range }],
      ['series', { 'match[]': '{__name__=~"llm_time_to_first_token_seconds_.*",model="llama-3-8b"}', ...range }],
      ['labels', { 'match[]': 'llm_tokens_total', ...range }],
      ['label/model/values', { 'match[]': 'llm_cost_usd_total', ...range }],
      ['label/le/values', { 'match[]': 'llm_request_duration_seconds_bucket', ...range }],
    ]) {
      const [ours, theirs] = await Promise.all([ask(gw.baseURL, endpoint, params), ask(prom.url, endpoint, params)]);
      assert.equal(theirs.json.status, 'success', JSON.stringify(theirs.json));
      const norm = (d) => d.map((x) => (typeof x === 'string' ? x : key(x))).sort();
      assert.deepEqual(norm(ours.json.data), norm(theirs.json.data), `${endpoint} ${JSON.stringify(params)}`);
    }
  }, diag));
});
