// Sending on (otlp.export) end to end: llmscope A exports to llmscope B (the downstream
// collector) with sampling ratio 0, so only traces worth keeping leave A. Asserted:
//   - a failing gateway call's trace arrives at B as one GenAI client span from service
//     "llmscope", with the call's trace id, model and error;
//   - a successful call's trace (ordinary, ratio 0) does not;
//   - B stores A's gateway span but does not count it as an LLM call of its own
//     (llmscope.gateway = true: the double-counting rule);
//   - A's export metrics count what was sampled and sent.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { defaultConfig, postJson, startGateway, waitFor, withDiagnostics, metricValue } from './lib/harness.mjs';

let a;
let b;


async function flush(gw) {
  const r = await gw.api('/-/flush', { method: 'POST' });
  assert.equal(r.status, 200, r.text);
}

function chat(headers = {}) {
  return postJson(`${a.baseURL}/v1/chat/completions`, {
    model: 'sim/x',
    messages: [{ role: 'user', content: 'hello' }],
  }, headers);
}

describe('OTLP export from one llmscope to another', () => {
  before(async () => {
    b = await startGateway((calls) => defaultConfig(calls));
    a = await startGateway((calls) => ({
      ...defaultConfig(calls),
      otlp: { export: { endpoint: b.baseURL, sampling: { ratio: 0, decision_wait: '1s' } } },
    }));
  });
  after(async () => {
    if (a) assert.equal((await a.stop()).code, 0, a.output());
    if (b) assert.equal((await b.stop()).code, 0, b.output());
  });
  const diagnostics = () => ({ 'llmscope A': () => a?.output(), 'llmscope B': () => b?.output() });

  test('the failing call reaches B as a gateway span; the ordinary one is sampled out', async () => {
    await withDiagnostics(async () => {
      const failed = await chat({ 'x-sim-error': 'server_error' });
      assert.equal(failed.status, 500, failed.text);
      const ok = await chat();
      assert.equal(ok.status, 200, ok.text);
      const failedCall = await a.callById(failed.headers.get('x-llmscope-request-id'));
      const okCall = await a.callById(ok.headers.get('x-llmscope-request-id'));
      assert.equal(failedCall.error_type, 'server_error', JSON.stringify(failedCall));
      assert.notEqual(failedCall.trace_id, okCall.trace_id);

      // A's flush waits until the decided traces are sent; B's makes them durable.
      await flush(a);
      const t = await waitFor(async () => {
        await flush(b);
        const r = await b.api(`/api/v1/traces/${failedCall.trace_id}`);
        return r.status === 200 && r.body.data?.span_count >= 1 ? r.body.data : undefined;
      }, { timeoutMs: 10_000, intervalMs: 100, what: "the failing call's trace at B" });

      assert.equal(t.span_count, 1);
      assert.equal(t.roots.length, 1);
      const span = t.roots[0];
      assert.equal(span.name, 'chat sim/x');
      assert.equal(span.service, 'llmscope');
      assert.equal(span.span_id, failedCall.span_id);
      assert.equal(span.attributes['llmscope.gateway'], true);
      assert.equal(span.attributes['gen_ai.request.model'], 'sim/x');
      assert.equal(span.attributes['gen_ai.operation.name'], 'chat');
      assert.equal(span.attributes['error.type'], 'server_error');
      assert.equal(span.attributes['gen_ai.response.id'], failedCall.request_id);
      // B stored the span but recorded no call of its own for it.
      assert.equal(t.call_count, 0, JSON.stringify(t));
      assert.deepEqual(span.calls ?? [], []);

      const okTrace = await b.api(`/api/v1/traces/${okCall.trace_id}`);
      assert.ok(okTrace.status === 404 || okTrace.body.data?.span_count === 0, okTrace.text);

      const bm = (await b.metrics()).body;
      assert.equal(metricValue(bm, 'llm_requests_total', { model: 'sim/x' }), 0, 'B counts no call');
      assert.equal(metricValue(bm, 'llmscope_otlp_items_total', { signal: 'traces', outcome: 'accepted' }), 1);

      const am = (await a.metrics()).body;
      assert.equal(metricValue(am, 'llmscope_otlp_sampled_traces_total', { decision: 'kept', reason: 'error' }), 1);
      assert.equal(metricValue(am, 'llmscope_otlp_sampled_traces_total', { decision: 'dropped', reason: 'not_sampled' }), 1);
      assert.equal(metricValue(am, 'llmscope_otlp_export_spans_total', { outcome: 'sent' }), 1);
      assert.equal(metricValue(am, 'llmscope_otlp_export_requests_total', { code: '200' }), 1);
    }, diagnostics());
  });
});
