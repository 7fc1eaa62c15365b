// A real Prometheus scraping llmscope: the exposition is valid (promtool), Prometheus
// ingests it (OpenMetrics with exemplars), and the PromQL a dashboard would use gives
// the right answers for a known traffic mix:
//   - p95 latency (histogram_quantile over llm_request_duration_seconds) falls in the
//     bucket holding the mix's true p95;
//   - the error rate sum(rate(llm_errors_total)) / sum(rate(llm_requests_total)) equals
//     the share of failed calls.
//
// Why the rates come out exact: Prometheus starts only after a warm-up cycle of the mix,
// so its first sample of every series already holds one cycle, and its last sample holds
// K more; rate() then extrapolates every series by the same factor (same scrape times,
// same first/increase ratio), and the quotient is exactly the traffic's error share.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { defaultConfig, makeTempDir, postJson, readCallLog, startGateway, waitFor } from './lib/harness.mjs';
import { PROMETHEUS_MISSING, PROMTOOL, startPrometheus } from './lib/prometheus.mjs';

const SKIP = PROMETHEUS_MISSING;

const MODEL = 'sim/gpt-4o-mini';
const MESSAGES = [{ role: 'user', content: 'ping' }];

// One cycle of the mix: [x-sim headers, expected duration in s, fails?]. Non-streaming
// answers arrive at latency + ttft + tokens/tps; errors at latency.
const fast = { 'x-sim-latency-ms': '5', 'x-sim-ttft-ms': '5', 'x-sim-output-tokens': '5', 'x-sim-tokens-per-second': '1000' };
const slow = { ...fast, 'x-sim-ttft-ms': '340' };
const fail = { 'x-sim-latency-ms': '5', 'x-sim-error': 'server_error' };
const CYCLE = [
  { headers: fail, duration: 0.005, error: true },
  { headers: fast, duration: 0.015, error: false },
  { headers: fast, duration: 0.015, error: false },
  { headers: fast, duration: 0.015, error: false },
  { headers: slow, duration: 0.35, error: false },
];
const K = 16;  // cycles of traffic after the warm-up cycle
const WORKERS = 4;
const M = CYCLE.filter((c) => c.error).length;
const N = CYCLE.length - M;
const ERROR_SHARE = M / (N + M);
const TRUE_P95 = (() => {
  const d = CYCLE.map((c) => c.duration).sort((a, b) => a - b);
  return d[Math.ceil(0.95 * d.length) - 1];  // nearest rank
})();

let gw;
let prom;
let promDir;

async function sendCycle() {
  for (const c of CYCLE) {
    const r = await postJson(`${gw.baseURL}/v1/chat/completions`, { model: MODEL, messages: MESSAGES }, c.headers);
    assert.equal(r.status, c.error ? 500 : 200, r.text);
  }
}

// Gateway /metrics value of llm_requests_total for MODEL, summed over series.
async function gatewayRequestCount() {
  const { body } = await gw.metrics();
  let sum = 0;
  for (const line of body.split('\n')) {
    if (line.startsWith(`llm_requests_total{model="${MODEL}"`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
const PROM_COUNT = `sum(llm_requests_total{model="${MODEL}"})`;

async function promQuery(expr) {
  const url = `${prom.url}/api/v1/query?query=${encodeURIComponent(expr)}`;
  const r = await fetch(url);
  const j = await r.json();
  if (j.status !== 'success') throw new Error(`query ${expr}: ${JSON.stringify(j)}`);
  return j.data.result;
}

async function promScalar(expr) {
  const res = await promQuery(expr);
  if (res.length !== 1) return undefined;
  return Number(res[0].value[1]);
}

async function startPrometheusFor(targetPort) {
  const { dir, cleanup } = makeTempDir('llmscope-prom-');
  promDir = { dir, cleanup };
  return startPrometheus({
    dir,
    config: {
      global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
      scrape_configs: [{
        job_name: 'llmscope',
        scrape_interval: '1s',
        scrape_timeout: '900ms',
        static_configs: [{ targets: [`127.0.0.1:${targetPort}`] }],
      }],
    },
    args: ['--enable-feature=exemplar-storage'],
  });
}

describe('Prometheus', { skip: SKIP }, () => {
  before(async () => {
    gw = await startGateway(defaultConfig);
  });

  after(async () => {
    try {
      if (prom) await prom.stop();
    } finally {
      promDir?.cleanup();
      if (gw) await gw.stop();
    }
  });

  test('promtool check metrics accepts /metrics (text format, with traffic recorded)', async () => {
    // A streamed call (another model) so the per-token families have data too. Its series
    // do not change once Prometheus runs, so their rate is 0 and the mix's queries ignore it.
    const streamed = await postJson(`${gw.baseURL}/v1/chat/completions`,
      { model: 'sim/gpt-4o', messages: MESSAGES, stream: true });
    assert.equal(streamed.status, 200);
    await gw.callById(streamed.headers.get('x-llmscope-request-id'));
    // The warm-up cycle: every series the mix produces exists from here on.
    await sendCycle();
    await waitFor(async () => (await gatewayRequestCount()) === CYCLE.length,
      { timeoutMs: 5000, what: 'the warm-up cycle in /metrics' });
    const { status, contentType, body } = await gw.metrics();
    assert.equal(status, 200);
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    for (const family of ['llm_requests_total', 'llm_errors_total', 'llm_request_duration_seconds_bucket',
      'llm_time_to_first_token_seconds_bucket', 'llm_time_per_output_token_seconds_bucket',
      'gen_ai_client_operation_time_to_first_chunk_seconds_bucket', 'llm_tokens_total', 'llm_cost_usd_total',
      'gen_ai_client_operation_duration_seconds_bucket', 'gen_ai_client_token_usage_bucket']) {
      assert.ok(body.includes(`\n${family}{`), `${family} in /metrics`);
    }
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, `promtool check metrics failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);

    const om = await gw.metrics('application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5');
    assert.match(om.contentType, /^application\/openmetrics-text; version=1\.0\.0/);
    assert.ok(om.body.endsWith('# EOF\n'));
  });

  test('PromQL over a real scrape: p95 in the right bucket, exact error rate, exemplars', async (t) => {
    prom = await startPrometheusFor(gw.port);

    // Prometheus' first sample: the warm-up cycle, complete.
    await waitFor(async () => (await promScalar(PROM_COUNT)) === CYCLE.length,
      { timeoutMs: 15_000, intervalMs: 200, what: 'Prometheus to scrape the warm-up cycle' });
    assert.equal(await promScalar('up{job="llmscope"}'), 1);

    // K cycles from WORKERS concurrent clients.
    let next = 0;
    await Promise.all(Array.from({ length: WORKERS }, async () => {
      while (next < K) {
        next++;
        await sendCycle();
      }
    }));
    const total = (K + 1) * CYCLE.length;
    await waitFor(async () => (await gatewayRequestCount()) === total,
      { timeoutMs: 5000, what: 'all calls in /metrics' });
    // Prometheus' last sample: everything.
    await waitFor(async () => (await promScalar(PROM_COUNT)) === total,
      { timeoutMs: 15_000, intervalMs: 200, what: 'Prometheus to scrape the whole run' });
    assert.equal(await promScalar('up{job="llmscope"}'), 1);
    assert.equal(await promScalar('sum(llm_errors_total{error_type="server_error"})'), (K + 1) * M);

    // The bucket bounds, from llmscope's own exposition.
    const { body } = await gw.metrics();
    const bounds = [...new Set([...body.matchAll(/^llm_request_duration_seconds_bucket\{[^}]*le="([^"]+)"/gm)]
      .map((m) => Number(m[1])))].sort((a, b) => a - b);
    const hi = bounds.find((b) => b >= TRUE_P95);
    const lo = bounds.filter((b) => b < TRUE_P95).at(-1) ?? 0;
    assert.ok(hi !== undefined && hi !== Infinity, `a finite bucket holds ${TRUE_P95}: ${bounds}`);

    const p95 = await waitFor(
      () => promScalar('histogram_quantile(0.95, sum by (le) (rate(llm_request_duration_seconds_bucket[1m])))'),
      { timeoutMs: 10_000, intervalMs: 200, what: 'the p95 query' });
    const bucketRates = async () => (await promQuery(
      'sum by (le) (rate(llm_request_duration_seconds_bucket[1m]))'))
      .map((s) => `le=${s.metric.le}: ${s.value[1]}`).sort().join(', ');
    assert.ok(p95 > lo && p95 <= hi,
      `p95 ${p95}s must fall in the bucket (${lo}, ${hi}] holding the mix's p95 of ${TRUE_P95}s; ` +
      `bucket rates: ${await bucketRates()}`);

    const errorRate = await waitFor(
      () => promScalar('sum(rate(llm_errors_total[1m])) / sum(rate(llm_requests_total[1m]))'),
      { timeoutMs: 10_000, intervalMs: 200, what: 'the error-rate query' });
    assert.ok(Math.abs(errorRate - ERROR_SHARE) <= 0.01,
      `error rate ${errorRate}, want ${ERROR_SHARE} (${M} of every ${N + M} calls fail)`);

    t.diagnostic(`p95 ${p95}s in (${lo}, ${hi}]; error rate ${errorRate} (want ${ERROR_SHARE})`);
    t.diagnostic(`bucket rates: ${await bucketRates()}`);

    // Prometheus parsed the OpenMetrics exemplars; they point at calls in the call log.
    const now = Date.now() / 1000;
    const ex = await fetch(`${prom.url}/api/v1/query_exemplars?query=${encodeURIComponent(
      'llm_request_duration_seconds_bucket')}&start=${now - 300}&end=${now + 60}`).then((r) => r.json());
    assert.equal(ex.status, 'success', JSON.stringify(ex));
    const traceIds = ex.data.flatMap((s) => s.exemplars.map((e) => e.labels.trace_id));
    assert.ok(traceIds.length > 0, 'exemplars were ingested');
    const logged = new Set(readCallLog(gw.callsPath).map((r) => r.trace_id));
    for (const id of traceIds) assert.ok(logged.has(id), `exemplar trace_id ${id} is a logged call`);

    const exit = await prom.stop();
    assert.ok(exit.code === 0 || exit.signal === 'SIGTERM', `prometheus exit ${JSON.stringify(exit)}`);
    prom = null;
  });
});
