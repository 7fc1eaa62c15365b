#!/usr/bin/env node
// Dashboard queries over a day of metrics history, llmscope against a real Prometheus on the
// same data in one run, and the bytes per sample each keeps on disk (docs/BENCHMARKS.md,
// "Metrics history and rules"). Goals of the alerting issue: query_range no slower than
// Prometheus; bytes per sample compared with Prometheus'.
//
//   node bench/promql_vs_prometheus.mjs [--pairs 42] [--hours 24] [--reps 7] [--keep]
//
// One OpenMetrics file (seeded, so every run stores the same samples): --pairs model/provider
// pairs (14 models x 3 providers by default), each with llm_requests_total{status} (2),
// llm_errors_total (1), llm_request_duration_seconds with llmscope's real bucket bounds (16
// buckets, _sum, _count), llm_tokens_total{type} (2) and llm_cost_usd_total (1): 24 series a
// pair, 1008 by default, one sample every 15 s for --hours. Sample times carry millisecond
// jitter and queries run at whole seconds 7 s past a minute, so no sample sits on a window's
// edge, where Prometheus 2.42 (left-closed windows) and llmscope (Prometheus 3's left-open
// windows) differ by design; counters start far from zero for the same reason (see
// tests/e2e/promql_differential.test.mjs).
//
// Prometheus (Debian's 2.42) is backfilled with `promtool tsdb create-blocks-from
// openmetrics`, llmscope with `llmscope tsdb import`; both are then started on free loopback
// ports (llmscope: `serve` with the event store, the built-in rules and practically the
// self-scrape off, so neither server does other work) and stopped by PID at the end.
// Prometheus compacts the 2 h blocks promtool writes about a minute after it starts: the
// script waits for that to finish before timing, so both are measured at rest.
//
// Each query runs over the whole day at a 15 s step, --reps times per server, alternating
// which server goes first; the time is the client's, from sending the request to the last
// byte of the body (JSON included, as a dashboard sees it). The answers of the first rep are
// compared (the same series, and sampled points equal to 1e-6 relative) so the comparison is
// of equal work. Bounded: every request has a 120 s deadline and the whole run stops after
// 20 minutes.
//
// Needs build/release/llmscope (or $LLMSCOPE_BIN), `prometheus` and `promtool` on PATH.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { defaultConfig, LLMSCOPE_BIN, makeTempDir, startGateway, waitFor } from '../tests/e2e/lib/harness.mjs';
import { PROMETHEUS_MISSING, PROMTOOL, startPrometheus } from '../tests/e2e/lib/prometheus.mjs';

const STEP_S = 15;
const args = process.argv.slice(2);
const flag = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const PAIRS = flag('pairs', 42);
const HOURS = flag('hours', 24);
const REPS = flag('reps', 7);
const KEEP = args.includes('--keep');
const DEADLINE = Date.now() + 20 * 60_000;

const QUERIES = [
  ['plain selector (every duration bucket)', 'llm_request_duration_seconds_bucket'],
  ['rate by model', 'sum by (model) (rate(llm_requests_total[5m]))'],
  ['p99 by model', 'histogram_quantile(0.99, sum by (le, model) (rate(llm_request_duration_seconds_bucket[5m])))'],
  ['error ratio', 'sum by (model, provider) (rate(llm_errors_total[5m])) / sum by (model, provider) (rate(llm_requests_total[5m]))'],
  ['cost per hour', 'sum by (model) (rate(llm_cost_usd_total[1h])) * 3600'],
  ['tokens by type', 'sum by (type) (rate(llm_tokens_total[5m]))'],
  ['mean duration', 'sum(rate(llm_request_duration_seconds_sum[5m])) / sum(rate(llm_request_duration_seconds_count[5m]))'],
];

// mulberry32, as in the e2e differential test.
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

const BOUNDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320];
const PROVIDERS = ['openai', 'anthropic', 'azure.ai.openai'];

// Writes the fixture to `file` series by series (each series' samples in time order);
// returns {series, samples, startS, endS}.
function writeFixture(file, endS) {
  const rand = prng(20261124);
  const n = Math.floor((HOURS * 3600) / STEP_S);
  const startS = endS - n * STEP_S;
  const fd = fs.openSync(file, 'w');
  let series = 0;
  let samples = 0;
  // Jittered times shared by all series of one pair (a scrape), never on a whole second.
  const emit = (name, labels, values, times) => {
    const head = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}} `;
    const parts = [];
    for (let i = 0; i <= n; i++) parts.push(`${head}${values[i]} ${times[i]}\n`);
    fs.writeSync(fd, parts.join(''));
    series++;
    samples += n + 1;
  };
  for (let p = 0; p < PAIRS; p++) {
    const model = `model-${Math.floor(p / PROVIDERS.length)}`;
    const provider = PROVIDERS[p % PROVIDERS.length];
    const base = { model, provider, endpoint: 'chat_completions' };
    const times = [];
    for (let i = 0; i <= n; i++) {
      times.push(`${startS + i * STEP_S}.${String(1 + Math.floor(rand() * 998)).padStart(3, '0')}`);
    }
    const rate = 0.2 + 4 * rand();
    const mean = (p % 11 === 3 ? 2.5 : 0.6) * (0.7 + 0.6 * rand());
    const price = 0.002 + 0.02 * rand();
    // Counters start far from zero (see the header).
    let ok = 1e5 * rand() + 1000;
    let limited = 100 + Math.floor(100 * rand());
    let errors = limited + 50;
    const buckets = BOUNDS.map(() => 0).concat([0]);
    let sum = 500 + 100 * rand();
    let tin = 1e7;
    let tout = 3e6;
    let usd = 100 + 50 * rand();
    const cols = { ok: [], limited: [], errors: [], sum: [], count: [], tin: [], tout: [], usd: [] };
    const bucketCols = buckets.map(() => []);
    for (let i = 0; i <= n; i++) {
      const day = 2 / 3 + Math.sin((2 * Math.PI * ((startS + i * STEP_S) % 86400)) / 86400) / 3;
      const calls = Math.floor(rate * day * STEP_S * (0.5 + rand()));
      const failed = Math.floor(calls * 0.02 * rand() + 0.2);
      ok += calls - failed;
      limited += failed;
      errors += failed;
      const m = mean * (0.8 + 0.4 * rand());
      for (let b = 0; b < BOUNDS.length; b++) buckets[b] += Math.floor(calls * (1 - Math.exp(-BOUNDS[b] / m)));
      buckets[BOUNDS.length] += calls;
      sum += calls * m;
      const tokensIn = Math.floor(calls * (400 + 800 * rand()));
      const tokensOut = Math.floor(calls * (100 + 300 * rand()));
      tin += tokensIn;
      tout += tokensOut;
      usd += ((tokensIn + tokensOut) / 1000) * price;
      cols.ok.push(ok);
      cols.limited.push(limited);
      cols.errors.push(errors);
      buckets.forEach((c, b) => bucketCols[b].push(c));
      cols.sum.push(sum.toFixed(4));
      cols.count.push(buckets[BOUNDS.length]);
      cols.tin.push(tin);
      cols.tout.push(tout);
      cols.usd.push(usd.toFixed(6));
    }
    emit('llm_requests_total', { ...base, status: '200' }, cols.ok, times);
    emit('llm_requests_total', { ...base, status: '429' }, cols.limited, times);
    emit('llm_errors_total', { ...base, error_type: 'rate_limit' }, cols.errors, times);
    bucketCols.forEach((col, b) => emit('llm_request_duration_seconds_bucket',
      { ...base, le: b < BOUNDS.length ? String(BOUNDS[b]) : '+Inf' }, col, times));
    emit('llm_request_duration_seconds_sum', base, cols.sum, times);
    emit('llm_request_duration_seconds_count', base, cols.count, times);
    emit('llm_tokens_total', { model, provider, type: 'input' }, cols.tin, times);
    emit('llm_tokens_total', { model, provider, type: 'output' }, cols.tout, times);
    emit('llm_cost_usd_total', { model, provider }, cols.usd, times);
  }
  fs.writeSync(fd, '# EOF\n');
  fs.closeSync(fd);
  return { series, samples, startS, endS: startS + n * STEP_S };
}

// Bytes of the regular files under `dir` whose path (relative) passes `keep`.
function duSync(dir, keep = () => true) {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const full = path.join(e.parentPath ?? e.path, e.name);
    if (keep(path.relative(dir, full))) total += fs.statSync(full).size;
  }
  return total;
}

// Prometheus' persistent blocks (ULID directories): chunks, index, meta, tombstones.
function promBlocks(dir) {
  const blocks = fs.readdirSync(dir).filter((d) => /^[0-9A-HJKMNP-TV-Z]{26}$/.test(d));
  let chunks = 0;
  let index = 0;
  let other = 0;
  let samples = 0;
  for (const b of blocks) {
    const bd = path.join(dir, b);
    chunks += duSync(path.join(bd, 'chunks'));
    index += fs.statSync(path.join(bd, 'index')).size;
    other += duSync(bd) - duSync(path.join(bd, 'chunks')) - fs.statSync(path.join(bd, 'index')).size;
    samples += JSON.parse(fs.readFileSync(path.join(bd, 'meta.json'), 'utf8')).stats.numSamples;
  }
  return { blocks: blocks.length, chunks, index, other, samples };
}

async function post(url, params) {
  const body = new URLSearchParams(params).toString();
  const t0 = process.hrtime.bigint();
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
    signal: AbortSignal.timeout(120_000),
  });
  const text = await r.text();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${text.slice(0, 300)}`);
  return { ms, text };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function sameValue(a, b) {
  const x = Number(a);
  const y = Number(b);
  if (Number.isNaN(x) && Number.isNaN(y)) return true;
  if (!Number.isFinite(x) || !Number.isFinite(y)) return x === y;
  return Math.abs(x - y) <= 1e-6 * Math.max(1, Math.abs(x), Math.abs(y));
}

// Compares two query_range answers: the same series, the same number of points each, and
// up to 200 points picked by a seeded PRNG equal. Returns a list of differences.
function compare(oursText, theirsText) {
  const a = JSON.parse(oursText).data.result;
  const b = JSON.parse(theirsText).data.result;
  const key = (m) => JSON.stringify(Object.keys(m).sort().map((k) => [k, m[k]]));
  const ma = new Map(a.map((s) => [key(s.metric), s.values]));
  const diffs = [];
  if (a.length !== b.length) diffs.push(`${a.length} series vs ${b.length}`);
  const rand = prng(99);
  let points = 0;
  for (const s of b) {
    const va = ma.get(key(s.metric));
    if (!va) {
      diffs.push(`missing ${key(s.metric)}`);
      continue;
    }
    points += s.values.length;
    if (va.length !== s.values.length) diffs.push(`${key(s.metric)}: ${va.length} points vs ${s.values.length}`);
  }
  for (let k = 0; k < 200 && b.length; k++) {
    const s = b[Math.floor(rand() * b.length)];
    const va = ma.get(key(s.metric));
    if (!va || !s.values.length) continue;
    const j = Math.floor(rand() * s.values.length);
    const pa = va.find(([t]) => t === s.values[j][0]);
    if (!pa || !sameValue(pa[1], s.values[j][1])) {
      diffs.push(`${key(s.metric)} at ${s.values[j][0]}: ${pa?.[1]} vs ${s.values[j][1]}`);
    }
  }
  return { diffs, series: b.length, points };
}

async function main() {
  if (PROMETHEUS_MISSING) throw new Error(PROMETHEUS_MISSING);
  if (!fs.existsSync(LLMSCOPE_BIN)) throw new Error(`${LLMSCOPE_BIN} is missing: build it first`);
  const tmp = makeTempDir('llmscope-bench-promql-');
  let prom;
  let gw;
  const stopAll = async () => {
    await gw?.stop();
    await prom?.stop();
    if (KEEP) console.log(`kept ${tmp.dir}`);
    else tmp.cleanup();
  };
  try {
    const endS = Math.floor(Date.now() / 1000 / STEP_S) * STEP_S - 60;
    const file = path.join(tmp.dir, 'history.om');
    let t0 = Date.now();
    const fx = writeFixture(file, endS);
    console.log(`fixture: ${fx.series} series, ${fx.samples} samples, ${(fs.statSync(file).size / 1e6).toFixed(0)} MB of text (${Date.now() - t0} ms)`);

    const promData = path.join(tmp.dir, 'prometheus-data');
    t0 = Date.now();
    const created = spawnSync(PROMTOOL, ['tsdb', 'create-blocks-from', 'openmetrics', file, promData],
      { encoding: 'utf8', timeout: 600_000, maxBuffer: 1 << 26 });
    if (created.status !== 0) throw new Error(`promtool: ${created.stdout}\n${created.stderr}`);
    const backfilled = promBlocks(promData);
    console.log(`promtool backfill: ${Date.now() - t0} ms, ${backfilled.blocks} blocks`);

    const tsdbDir = path.join(tmp.dir, 'llmscope-tsdb');
    t0 = Date.now();
    const imported = spawnSync(LLMSCOPE_BIN, ['tsdb', 'import', '--dir', tsdbDir, file],
      { encoding: 'utf8', timeout: 600_000 });
    if (imported.status !== 0) throw new Error(`llmscope tsdb import: ${imported.stdout}\n${imported.stderr}`);
    console.log(`llmscope import: ${Date.now() - t0} ms: ${imported.stdout.trim()}`);
    const ourDisk = {
      raw: duSync(tsdbDir, (f) => f.startsWith('raw-')),
      downsampled: duSync(tsdbDir, (f) => f.startsWith('downsampled-')),
      all: duSync(tsdbDir),
    };
    fs.rmSync(file);  // half a gigabyte; the stores have it now

    prom = await startPrometheus({
      dir: tmp.dir,
      dataDir: promData,
      config: { global: { scrape_interval: '1h', evaluation_interval: '1h' }, scrape_configs: [] },
    });
    gw = await startGateway((callsPath) => ({
      ...defaultConfig(callsPath),
      storage: { backend: 'off' },
      tsdb: { dir: tsdbDir, scrape_interval: '1h', persist_interval: '1h' },
      rules: { builtin: false },
    }));
    const ourMetrics = await (await fetch(`${gw.baseURL}/metrics`)).text();
    const metric = (re) => [...ourMetrics.matchAll(re)].reduce((s, m) => s + Number(m[1]), 0);
    const ourMemory = {
      bytes: metric(/^llmscope_tsdb_memory_bytes\{[^}]*\} (\S+)$/gm),
      chunks: metric(/^llmscope_tsdb_memory_bytes\{part="chunks"\} (\S+)$/gm),
      series: metric(/^llmscope_tsdb_series (\S+)$/gm),
    };

    // Prometheus compacts the backfilled 2 h blocks a minute or so after start: wait until it
    // has compacted and its block count has been steady for 20 s (or, should it never
    // compact, 150 s have passed), at most 4 minutes.
    t0 = Date.now();
    const promMetric = async (name) => {
      const text = await (await fetch(`${prom.url}/metrics`)).text();
      const m = text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
      return m ? Number(m[1]) : NaN;
    };
    let last = { blocks: -1, at: Date.now() };
    await waitFor(async () => {
      const compactions = await promMetric('prometheus_tsdb_compactions_total');
      const blocks = await promMetric('prometheus_tsdb_blocks_loaded');
      if (blocks !== last.blocks) last = { blocks, at: Date.now() };
      return (compactions > 0 || Date.now() - t0 > 150_000) && Date.now() - last.at > 20_000;
    }, { timeoutMs: 240_000, intervalMs: 1000, what: 'Prometheus compaction to settle' });
    const compacted = promBlocks(promData);
    console.log(`Prometheus compaction settled after ${Date.now() - t0} ms: ${compacted.blocks} blocks`);

    const start = Math.ceil((fx.startS + 300) / 60) * 60 + 7;
    const end = Math.floor(fx.endS / 60) * 60 + 7 - 60;
    const steps = Math.floor((end - start) / STEP_S) + 1;
    console.log(`query_range ${new Date(start * 1000).toISOString()} .. ${new Date(end * 1000).toISOString()}, step ${STEP_S}s: ${steps} steps`);
    const results = [];
    for (const [name, query] of QUERIES) {
      const params = { query, start, end, step: STEP_S };
      const times = { ours: [], theirs: [] };
      let check;
      for (let rep = 0; rep < REPS; rep++) {
        if (Date.now() > DEADLINE) throw new Error('the run passed its 20-minute bound');
        const order = rep % 2 === 0 ? ['ours', 'theirs'] : ['theirs', 'ours'];
        const got = {};
        for (const who of order) {
          got[who] = await post(`${who === 'ours' ? gw.baseURL : prom.url}/api/v1/query_range`, params);
          times[who].push(got[who].ms);
        }
        if (rep === 0) check = compare(got.ours.text, got.theirs.text);
      }
      const r = {
        name,
        query,
        series: check.series,
        points: check.points,
        ours_ms: median(times.ours),
        theirs_ms: median(times.theirs),
        diffs: check.diffs.length,
      };
      r.ratio = r.ours_ms / r.theirs_ms;
      results.push(r);
      console.log(`${name}: llmscope ${r.ours_ms.toFixed(1)} ms, Prometheus ${r.theirs_ms.toFixed(1)} ms, ratio ${r.ratio.toFixed(2)} (${r.series} series, ${r.points} points, ${r.diffs} differences)`);
      for (const d of check.diffs.slice(0, 5)) console.log(`    ${d}`);
    }

    const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) ?? [])[1];
    console.log(`\nmachine: nproc ${os.cpus().length}, ${cpu}; ${REPS} reps per query per server, medians`);
    console.log('| query | series | llmscope ms | Prometheus ms | llmscope / Prometheus | answers |');
    console.log('|---|--:|--:|--:|--:|---|');
    for (const r of results) {
      console.log(`| ${r.name}: \`${r.query}\` | ${r.series} | ${r.ours_ms.toFixed(1)} | ${r.theirs_ms.toFixed(1)} | ${r.ratio.toFixed(2)}x | ${r.diffs ? `${r.diffs} differences` : 'agree'} |`);
    }
    const promBytes = (b) => b.chunks + b.index + b.other;
    console.log(`\nsamples: ${fx.samples} in ${fx.series} series`);
    console.log(`Prometheus blocks as backfilled (${backfilled.blocks}): chunks ${backfilled.chunks} + index ${backfilled.index} + meta ${backfilled.other} bytes = ${(promBytes(backfilled) / fx.samples).toFixed(3)} bytes/sample (meta.json samples: ${backfilled.samples})`);
    console.log(`Prometheus blocks compacted (${compacted.blocks}): chunks ${compacted.chunks} + index ${compacted.index} + meta ${compacted.other} bytes = ${(promBytes(compacted) / fx.samples).toFixed(3)} bytes/sample (chunks alone ${(compacted.chunks / fx.samples).toFixed(3)})`);
    console.log(`llmscope tsdb dir: ${ourDisk.all} bytes = ${(ourDisk.all / fx.samples).toFixed(3)} bytes/sample; raw tier ${ourDisk.raw} bytes = ${(ourDisk.raw / fx.samples).toFixed(3)}, downsampled tier ${ourDisk.downsampled} bytes`);
    console.log(`llmscope / Prometheus (compacted) on disk: whole dir ${(ourDisk.all / promBytes(compacted)).toFixed(2)}x, raw tier ${(ourDisk.raw / promBytes(compacted)).toFixed(2)}x`);
    console.log(`llmscope in memory after load: ${ourMemory.bytes} bytes for ${ourMemory.series} series (${(ourMemory.bytes / fx.samples).toFixed(3)} bytes per imported sample, chunk payload ${(ourMemory.chunks / fx.samples).toFixed(3)}; ${(ourMemory.bytes / ourMemory.series / 1024).toFixed(1)} KiB per series; both tiers, its own few series included)`);
  } finally {
    await stopAll();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
