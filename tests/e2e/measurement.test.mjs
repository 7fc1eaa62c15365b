// Measurement truth: llmscope's logged timings equal what the provider actually did.
//
// The simulator plays a known schedule (src/simulator/README.md, "Timing"), measured from
// the request's arrival at the simulator. With latency L, x-sim-ttft-ms T, x-sim-output-
// tokens N and x-sim-tokens-per-second R, and start = max(L, T):
//   streaming:      headers at L; content event i at start + i*1000/R ms; the closing
//                   events with the last content event, at start + (N-1)*1000/R ms.
//   non-streaming:  headers and body together at L + T + N*1000/R ms.
// The gateway's clock starts before the simulator's (it forwards the request) and stops
// after it (it forwards the last byte), on loopback: each median must be within 1 ms.
// The median of several sequential calls resists a scheduling hiccup on a busy machine.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { defaultConfig, median, postJson, startGateway, startSimulator } from './lib/harness.mjs';

const LATENCY_MS = 20;
const TTFT_MS = 150;
const TOKENS = 20;
const TPS = 100;
const SAMPLES = 7;
const TOLERANCE_S = 0.001;

const START_MS = Math.max(LATENCY_MS, TTFT_MS);
const STREAM_TTFT_S = START_MS / 1000;
const STREAM_DURATION_S = (START_MS + (TOKENS - 1) * (1000 / TPS)) / 1000;  // 150 + 19*10 ms
const STREAM_TPOT_S = (STREAM_DURATION_S - STREAM_TTFT_S) / (TOKENS - 1);   // 10 ms
const WHOLE_DURATION_S = (LATENCY_MS + TTFT_MS + TOKENS * (1000 / TPS)) / 1000;  // 370 ms

const HEADERS = {
  'x-sim-ttft-ms': String(TTFT_MS),
  'x-sim-output-tokens': String(TOKENS),
  'x-sim-tokens-per-second': String(TPS),
  'x-sim-latency-ms': String(LATENCY_MS),
};

let gw;
let sim;

before(async () => {
  // The standalone simulator stands in for a remote OpenAI-compatible provider.
  sim = await startSimulator({ args: ['--latency-ms', String(LATENCY_MS)] });
  gw = await startGateway((calls) => ({
    ...defaultConfig(calls),
    simulator: { latency_ms: LATENCY_MS },
    upstreams: [
      { name: 'sim', kind: 'simulator' },
      { name: 'remote', kind: 'openai_compatible', base_url: `${sim.baseURL}/v1` },
    ],
    routes: [
      { prefix: 'sim/', upstream: 'sim' },
      { prefix: 'remote/', upstream: 'remote', strip_prefix: true },
    ],
  }));
});

after(async () => {
  await Promise.all([gw?.stop(), sim?.stop()]);
});

// Runs SAMPLES sequential calls; returns their call log records.
async function sample(model, stream) {
  const ids = [];
  for (let i = 0; i < SAMPLES; i++) {
    const r = await postJson(`${gw.baseURL}/v1/chat/completions`, {
      model,
      stream,
      messages: [{ role: 'user', content: 'Count to twenty.' }],
    }, HEADERS);
    assert.equal(r.status, 200, r.text);
    if (stream) assert.ok(r.text.endsWith('data: [DONE]\n\n'), 'a complete stream');
    ids.push(r.headers.get('x-llmscope-request-id'));
  }
  // Read the log once the calls are done, so waiting for it never delays the next call.
  const recs = await gw.readCalls((rec) => ids.includes(rec.request_id), 5000, SAMPLES);
  for (const rec of recs) {
    assert.equal(rec.status, 200);
    assert.equal(rec.usage.output, TOKENS);
    assert.equal(rec.usage_source, 'provider');
  }
  return recs;
}

function assertNear(name, values, want, tol = TOLERANCE_S) {
  const m = median(values);
  const fmt = (x) => `${(x * 1000).toFixed(3)} ms`;
  assert.ok(Math.abs(m - want) <= tol,
    `${name}: median ${fmt(m)}, want ${fmt(want)} ± ${fmt(tol)}; samples ${values.map(fmt).join(', ')}`);
}

for (const [label, model] of [
  ['in-process simulator upstream', 'sim/gpt-4o-mini'],
  ['openai_compatible upstream (standalone simulator)', 'remote/gpt-4o-mini'],
]) {
  describe(label, () => {
    test(`streaming: ttft ${STREAM_TTFT_S * 1000} ms and duration ${STREAM_DURATION_S * 1000} ms, each within 1 ms`, async () => {
      const recs = await sample(model, true);
      assertNear('ttft_s', recs.map((r) => r.ttft_s), STREAM_TTFT_S);
      assertNear('duration_s', recs.map((r) => r.duration_s), STREAM_DURATION_S);
      // Derived from the two above: (duration - ttft) / (tokens - 1).
      assertNear('tpot_s', recs.map((r) => r.tpot_s), STREAM_TPOT_S, (2 * TOLERANCE_S) / (TOKENS - 1));
      // Headers (the role chunk) leave the simulator at its latency.
      assertNear('first_byte_s', recs.map((r) => r.first_byte_s), LATENCY_MS / 1000);
      for (const r of recs) assert.ok(r.ttft_s <= r.duration_s);
    });

    test(`non-streaming: duration ${WHOLE_DURATION_S * 1000} ms within 1 ms`, async () => {
      const recs = await sample(model, false);
      assertNear('duration_s', recs.map((r) => r.duration_s), WHOLE_DURATION_S);
    });
  });
}
