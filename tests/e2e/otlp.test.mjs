// OTLP end to end with the real OpenTelemetry JS SDK (`@opentelemetry/sdk-node`) as the sender
// (lib/otel_app.cjs): a RAG app exports its spans with the official OTLP exporters (HTTP
// protobuf, HTTP JSON and gRPC, the last to otlp.grpc_listen), and calls the LLM through
// llmscope's gateway with the official `openai` SDK wrapped by
// @opentelemetry/instrumentation-openai. Asserted:
//   - every span is stored, and the trace is one tree: retrieval, rerank, the app's LLM span,
//     its HTTP span, and under it the gateway's call with its own timings;
//   - the app's span of the gateway call is not counted a second time; an LLM span the
//     gateway never saw becomes a call with its model, tokens, TTFT and cost, and shows in
//     /metrics like any gateway call;
//   - /api/v1/conformance describes the service's dialects;
//   - bad input gets OTLP's error responses, and partial success keeps the good spans.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  defaultConfig, LLMSCOPE_BIN, makeTempDir, startGateway, waitFor, withDiagnostics, metricValue, runNodeScript, findSpan,
} from './lib/harness.mjs';

const APP = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'otel_app.cjs');

let gw;
let grpcURL;  // http://host:port of otlp.grpc_listen, from the log
const EXPORTERS = ['proto', 'json', 'grpc'];

// Runs the instrumented app once; resolves with what it printed ({traceId, ...}).
function runApp(exporter, otlpUrl = gw.baseURL) {
  return runNodeScript(APP, {
    OTLP_URL: otlpUrl, OTLP_GRPC_URL: grpcURL, GATEWAY_URL: gw.baseURL,
    EXPORTER: exporter, SERVICE: 'rag-app',
  }, `otel app (${exporter})`);
}

async function trace(traceId) {
  const r = await gw.api(`/api/v1/traces/${traceId}`);
  assert.equal(r.status, 200, r.text);
  return r.body.data;
}

function allCalls(t) {
  const out = [...t.calls];
  const walk = (n) => {
    out.push(...(n.calls ?? []));
    (n.children ?? []).forEach(walk);
  };
  t.roots.forEach(walk);
  return out;
}


describe('OTLP receiver with the OpenTelemetry JS SDK', () => {
  before(async () => {
    gw = await startGateway((calls) => {
      const c = defaultConfig(calls);
      return {
        ...c, logs: { ...c.logs, level: 'info' },
        otlp: { listen: '127.0.0.1:0', grpc_listen: '127.0.0.1:0' },
      };
    });
    const m = /"msg":"otlp grpc listening","addr":"([0-9.]+:\d+)"/.exec(gw.output());
    assert.ok(m, `the log names the OTLP/gRPC listener:\n${gw.output()}`);
    grpcURL = `http://${m[1]}`;
  });
  after(async () => {
    if (gw) assert.equal((await gw.stop()).code, 0, gw.output());
  });
  const diagnostics = () => ({ llmscope: () => gw?.output() });

  for (const exporter of EXPORTERS) {
    test(`one trace holds the app's spans and the gateway's call (${exporter} exporter)`, async () => {
      await withDiagnostics(async () => {
        const app = await runApp(exporter);
        const t = await waitFor(async () => {
          await gw.api('/-/flush', { method: 'POST' });
          const d = await trace(app.traceId);
          return d.span_count >= 6 ? d : undefined;
        }, { timeoutMs: 10_000, intervalMs: 100, what: 'the stored trace' });

        assert.equal(t.roots.length, 1);
        const root = t.roots[0];
        assert.equal(root.name, 'rag-query');
        assert.equal(root.service, 'rag-app');
        const names = root.children.map((c) => c.name).sort();
        assert.deepEqual(names, ['chat gpt-4o-mini', 'chat sim/gpt-4o-mini', 'rerank', 'retrieval']);
        const retrieval = findSpan(t.roots, (n) => n.name === 'retrieval');
        assert.equal(retrieval.attributes['db.system.name'], 'qdrant');

        // The SDK's span of the call through the gateway; below it the HTTP span whose
        // traceparent the gateway continued, holding the gateway's call.
        const sdkSpan = root.children.find((c) => c.name === 'chat sim/gpt-4o-mini');
        assert.equal(sdkSpan.attributes['gen_ai.response.id'], app.gatewayResponseId);
        const http = sdkSpan.children.find((c) => (c.calls ?? []).length > 0);
        assert.ok(http, JSON.stringify(sdkSpan));
        const gatewayCall = http.calls[0];
        assert.equal(gatewayCall.parent_span_id, http.span_id);
        assert.equal(gatewayCall.model, 'sim/gpt-4o-mini');
        assert.equal(gatewayCall.provider, 'sim');
        assert.ok(gatewayCall.overhead_us > 0, 'the gateway call carries its own timings');
        assert.deepEqual(gatewayCall.tags, {});

        // Two calls in the trace, not three: the SDK's span of the gateway call is the same
        // call; the hand-described span is a call of its own.
        const calls = allCalls(t);
        assert.equal(calls.length, 2, JSON.stringify(calls, null, 1));
        assert.ok(!calls.some((c) => c.request_id === app.gatewayResponseId));
        const direct = calls.find((c) => c.request_id === `direct-${app.traceId}`);
        assert.ok(direct, JSON.stringify(calls));
        assert.equal(direct.span_id, app.directSpanId);
        assert.equal(direct.model, 'gpt-4o-mini');
        assert.equal(direct.response_model, 'gpt-4o-mini-2024-07-18');
        assert.equal(direct.provider_kind, 'openai');
        assert.deepEqual(direct.usage, { input: 100, output: 20, cache_read: 0, cache_write: 0, reasoning: 0 });
        assert.equal(direct.usage_source, 'provider');
        assert.equal(direct.ttft_s, 0.25);
        assert.ok(Math.abs(direct.duration_s - 0.8) < 1e-6, String(direct.duration_s));
        assert.ok(direct.cost_usd > 0, 'priced from the catalog like a gateway call');
        assert.deepEqual(direct.tags, { source: 'otlp', service: 'rag-app' });
        assert.deepEqual(direct.finish_reasons, ['stop']);
      }, diagnostics());
    });
  }

  test('OTLP calls count in /metrics; duplicates are counted apart', async () => {
    await withDiagnostics(async () => {
      const runs = EXPORTERS.length;  // one app run per exporter
      const m = (await gw.metrics()).body;
      assert.equal(metricValue(m, 'llm_requests_total', { model: 'gpt-4o-mini' }), runs);
      assert.equal(metricValue(m, 'llm_tokens_total', { model: 'gpt-4o-mini', type: 'input' }), 100 * runs);
      assert.equal(metricValue(m, 'llm_tokens_total', { model: 'gpt-4o-mini', type: 'output' }), 20 * runs);
      assert.equal(metricValue(m, 'llm_requests_total', { model: 'sim/gpt-4o-mini' }), runs);
      assert.equal(metricValue(m, 'llmscope_otlp_llm_spans_total', { outcome: 'gateway_duplicate' }), runs);
      assert.equal(metricValue(m, 'llmscope_otlp_llm_spans_total', { outcome: 'mapped' }), runs);
      // SimpleSpanProcessor exports each span on its own: six export calls per run.
      assert.ok(metricValue(m, 'llmscope_otlp_requests_total', { transport: 'grpc', signal: 'traces', code: 'OK' }) >= 6);
      assert.ok(metricValue(m, 'llmscope_otlp_requests_total', { transport: 'http', signal: 'traces', code: '200' }) >= 12);
    }, diagnostics());
  });

  test('conformance report per service', async () => {
    const r = await gw.api('/api/v1/conformance');
    assert.equal(r.status, 200, r.text);
    const svc = r.body.data.services.find((s) => s.service === 'rag-app');
    assert.ok(svc, r.text);
    assert.equal(svc.spans, 2 * EXPORTERS.length);  // two GenAI spans per run
    assert.equal(svc.dialects['otel-genai'], EXPORTERS.length);
    assert.equal(svc.deprecated['gen_ai.system'], EXPORTERS.length, 'instrumentation-openai still sends gen_ai.system');
  });

  test('GenAI metrics over OTLP are exposed unless their service sends GenAI spans', async () => {
    await withDiagnostics(async () => {
      const now = BigInt(Date.now()) * 1_000_000n;
      const request = (service) => ({ resourceMetrics: [{
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeMetrics: [{ metrics: [{
          name: 'gen_ai.client.token.usage', unit: '{token}',
          histogram: { aggregationTemporality: 2, dataPoints: [{
            attributes: [
              { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } },
              { key: 'gen_ai.provider.name', value: { stringValue: 'openai' } },
              { key: 'gen_ai.request.model', value: { stringValue: 'gpt-4o' } },
              { key: 'gen_ai.token.type', value: { stringValue: 'input' } },
            ],
            startTimeUnixNano: String(now - 60_000_000_000n), timeUnixNano: String(now),
            count: '6', sum: 1500, bucketCounts: ['2', '3', '1'], explicitBounds: [100, 1000],
          }] },
        }] }],
      }] });
      for (const service of ['metrics-only', 'rag-app']) {
        const r = await fetch(`${gw.baseURL}/v1/metrics`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify(request(service)),
        });
        assert.equal(r.status, 200, await r.text());
      }
      const m = (await gw.metrics()).body;
      assert.match(m, /# TYPE otlp_gen_ai_client_token_usage histogram/);
      assert.equal(metricValue(m, 'otlp_gen_ai_client_token_usage_bucket', { service: 'metrics-only', le: '1000' }), 5);
      assert.equal(metricValue(m, 'otlp_gen_ai_client_token_usage_count', { service: 'metrics-only' }), 6);
      // rag-app sends GenAI spans: its calls are already counted from them.
      assert.equal(metricValue(m, 'otlp_gen_ai_client_token_usage_count', { service: 'rag-app' }), 0);
      assert.equal(metricValue(m, 'llmscope_otlp_genai_metric_points_total', { outcome: 'duplicate_of_spans' }), 1);
      assert.equal(metricValue(m, 'llmscope_otlp_genai_metric_points_total', { outcome: 'exposed' }), 1);
    }, diagnostics());
  });

  test('a separate OTLP listener (otlp.listen) receives the same way', async () => {
    await withDiagnostics(async () => {
      const m = /"msg":"otlp listening","addr":"([0-9.]+:\d+)"/.exec(gw.output());
      assert.ok(m, 'the log names the OTLP listener');
      const app = await runApp('proto', `http://${m[1]}`);
      await waitFor(async () => {
        await gw.api('/-/flush', { method: 'POST' });
        return (await trace(app.traceId)).span_count >= 6 || undefined;
      }, { timeoutMs: 10_000, intervalMs: 100, what: 'the trace sent to the OTLP listener' });
      const other = await fetch(`http://${m[1]}/v1/chat/completions`, { method: 'POST', body: '{}' });
      assert.equal(other.status, 404);
    }, diagnostics());
  });

  test('bad input: OTLP error responses, partial success keeps the good spans', async () => {
    const post = (body, headers) => fetch(`${gw.baseURL}/v1/traces`, { method: 'POST', headers, body });
    const json = { 'content-type': 'application/json' };

    const wrongType = await post('x', { 'content-type': 'text/plain' });
    assert.equal(wrongType.status, 415);
    assert.match(await wrongType.text(), /Content-Type/);

    const notJson = await post('{"resourceSpans":', json);
    assert.equal(notJson.status, 400);
    const st = await notJson.json();
    assert.equal(st.code, 3);
    assert.match(st.message, /JSON/);

    const corrupt = await post(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]), { 'content-type': 'application/x-protobuf' });
    assert.equal(corrupt.status, 400);
    assert.equal(corrupt.headers.get('content-type'), 'application/x-protobuf');

    const get = await fetch(`${gw.baseURL}/v1/traces`);
    assert.equal(get.status, 405);

    const now = BigInt(Date.now()) * 1_000_000n;
    const span = (traceId, name) => ({
      traceId, spanId: '00f067aa0ba902b7', name, kind: 1,
      startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1_000_000n),
    });
    const good = 'aaaabbbbccccddddeeeeffff00001111';
    const body = JSON.stringify({ resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'bad-input' } }] },
      scopeSpans: [{ spans: [span(good, 'kept'), span('00000000000000000000000000000000', 'zero id')] }],
    }] });
    const partial = await post(gzipSync(body), { ...json, 'content-encoding': 'gzip' });
    assert.equal(partial.status, 200);
    const ps = await partial.json();
    assert.equal(ps.partialSuccess.rejectedSpans, 1);
    assert.match(ps.partialSuccess.errorMessage, /resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[1\]: trace_id is all zero/);
    await gw.api('/-/flush', { method: 'POST' });
    const kept = await trace(good);
    assert.equal(kept.roots[0].name, 'kept');

    const bomb = gzipSync(Buffer.alloc(64 << 20, 0x20));
    const big = await post(bomb, { ...json, 'content-encoding': 'gzip' });
    assert.equal(big.status, 413);

    const m = (await gw.metrics()).body;
    assert.ok(metricValue(m, 'llmscope_otlp_items_total', { signal: 'traces', outcome: 'rejected' }) >= 1);
    assert.ok(metricValue(m, 'llmscope_otlp_requests_total', { signal: 'traces', code: '415' }) >= 1);
  });
});

describe('OTLP under a burst', () => {
  let bgw;
  before(async () => {
    bgw = await startGateway((calls) => ({
      ...defaultConfig(calls), otlp: { threads: 1, max_queued_bytes: 400_000 },
    }));
  });
  after(async () => {
    if (bgw) assert.equal((await bgw.stop()).code, 0, bgw.output());
  });

  test('excess is refused with retryable 503s, counted, and retries lose nothing', async () => {
    await withDiagnostics(async () => {
      const now = BigInt(Date.now()) * 1_000_000n;
      const REQUESTS = 40;
      const SPANS = 400;
      const bodies = Array.from({ length: REQUESTS }, (_, r) => {
        const traceId = (r + 1).toString(16).padStart(32, '0');
        const spans = Array.from({ length: SPANS }, (_, i) => ({
          traceId, spanId: (i + 1).toString(16).padStart(16, '0'), name: `s${i}`, kind: 1,
          startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000n),
          attributes: [{ key: 'payload', value: { stringValue: 'x'.repeat(200) } }],
        }));
        return { traceId, body: JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] }) };
      });
      const post = (body) => fetch(`${bgw.baseURL}/v1/traces`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body,
      });
      // All at once: more bytes than max_queued_bytes.
      const first = await Promise.all(bodies.map((b) => post(b.body)));
      const refused = [];
      for (let i = 0; i < first.length; i++) {
        const r = first[i];
        if (r.status === 503) {
          assert.equal(r.headers.get('retry-after'), '1');
          const st = await r.json();
          assert.equal(st.code, 14);  // UNAVAILABLE: retryable for OTLP exporters
          assert.match(st.message, /retry/);
          refused.push(bodies[i]);
        } else {
          const text = await r.text();
          assert.equal(r.status, 200, text);
        }
      }
      assert.ok(refused.length > 0, 'the burst went over the bound');
      assert.ok(refused.length < REQUESTS, 'some of the burst was taken');
      // An exporter retries: one at a time, everything is taken.
      for (const b of refused) {
        const r = await post(b.body);
        assert.equal(r.status, 200, await r.text());
      }
      await bgw.api('/-/flush', { method: 'POST' });
      for (const b of [bodies[0], bodies[REQUESTS - 1], ...refused.slice(0, 3)]) {
        const t = await bgw.api(`/api/v1/traces/${b.traceId}`);
        assert.equal(t.status, 200, t.text);
        assert.equal(t.body.data.span_count, SPANS);
      }
      const m = (await bgw.metrics()).body;
      assert.equal(metricValue(m, 'llmscope_otlp_requests_total', { signal: 'traces', code: '503' }), refused.length);
      assert.equal(metricValue(m, 'llmscope_otlp_items_total', { signal: 'traces', outcome: 'accepted' }), REQUESTS * SPANS);
    }, { llmscope: () => bgw.output() });
  });
});

describe('start-up failures', () => {
  test('an OTLP port in use stops llmscope cleanly, naming the port', async () => {
    const blocker = net.createServer();
    await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address();
    const { dir, cleanup } = makeTempDir('llmscope-port-');
    try {
      for (const otlp of [{ listen: `127.0.0.1:${port}` }, { grpc_listen: `127.0.0.1:${port}` }]) {
        const configPath = path.join(dir, 'c.yaml');
        const cfg = { ...defaultConfig(path.join(dir, 'calls')), storage: { dir: path.join(dir, 'data') }, otlp };
        fs.writeFileSync(configPath, JSON.stringify(cfg));
        const r = spawnSync(LLMSCOPE_BIN, ['serve', '--config', configPath], { encoding: 'utf8', timeout: 30_000 });
        // The pipeline, store writer and listeners already started are stopped in order: an
        // exit code, not a signal.
        assert.equal(r.signal, null, r.stderr);
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`otlp\\.(grpc_)?listen: .*127\\.0\\.0\\.1:${port}`));
      }
    } finally {
      cleanup();
      blocker.close();
    }
  });
});
