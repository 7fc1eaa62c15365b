// OTLP end to end with Traceloop's OpenLLMetry SDK (@traceloop/node-server-sdk) as the sender
// (lib/traceloop_app.cjs): a workflow with two tasks, each an `openai` SDK call the Traceloop
// SDK instruments; one goes through llmscope's gateway, the other straight to a standalone
// simulator that llmscope never sees. The SDK exports OTLP/HTTP protobuf to llmscope's
// /v1/traces. Asserted:
//   - every span is stored, in one trace tree, and the gateway's call hangs under the SDK's
//     LLM span (the traceparent the app sent);
//   - the SDK's span of the gateway call is not counted a second time; the span of the direct
//     call becomes a call with the simulator's exact token counts and models, in the query API
//     and in /metrics;
//   - /api/v1/conformance names the dialect and counts only the model calls.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  defaultConfig, startGateway, startSimulator, waitFor, withDiagnostics, metricValue, runNodeScript, findSpan,
} from './lib/harness.mjs';

const APP = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'traceloop_app.cjs');
const SERVICE = 'support-bot';

let gw;
let sim;

function runApp() {
  return runNodeScript(APP, {
    OTLP_URL: gw.baseURL, GATEWAY_URL: gw.baseURL, DIRECT_URL: sim.baseURL,
    SERVICE, MODEL: 'sim/gpt-4o-mini', DIRECT_MODEL: 'sim/gpt-4o',
  }, 'traceloop app');
}


describe('OTLP receiver with the Traceloop (OpenLLMetry) SDK', () => {
  let app;
  before(async () => {
    gw = await startGateway(defaultConfig);
    // Another seed than the gateway's simulator: its response ids differ, so each side's
    // call is told apart by id below.
    const base = defaultConfig('/dev/null');
    sim = await startSimulator({ config: { ...base, simulator: { ...base.simulator, seed: 8 } } });
  });
  after(async () => {
    if (sim) assert.equal((await sim.stop()).code, 0, sim.output());
    if (gw) assert.equal((await gw.stop()).code, 0, gw.output());
  });
  const diagnostics = () => ({ llmscope: () => gw?.output() });

  test('one trace holds the workflow, both LLM spans and the gateway call', async () => {
    await withDiagnostics(async () => {
      app = await runApp();
      assert.notEqual(app.gatewayResponseId, app.directResponseId);
      const t = await waitFor(async () => {
        await gw.api('/-/flush', { method: 'POST' });
        const r = await gw.api(`/api/v1/traces/${app.traceId}`);
        return r.status === 200 && r.body.data.span_count >= 5 ? r.body.data : undefined;
      }, { timeoutMs: 10_000, intervalMs: 100, what: 'the stored trace' });

      assert.equal(t.span_count, 5);
      assert.equal(t.roots.length, 1);
      const root = t.roots[0];
      assert.equal(root.name, 'answer_ticket.workflow');
      assert.equal(root.service, SERVICE);
      assert.equal(root.scope, '@traceloop/node-server-sdk');
      assert.deepEqual(root.children.map((c) => c.name), ['draft.task', 'review.task']);

      // The SDK's span of the call through the gateway, and under it the gateway's own call.
      const draft = root.children[0];
      assert.equal(draft.children.length, 1);
      const viaGateway = draft.children[0];
      assert.equal(viaGateway.scope, '@traceloop/instrumentation-openai');
      assert.equal(viaGateway.attributes['gen_ai.response.id'], app.gatewayResponseId);
      assert.equal(viaGateway.attributes['traceloop.workflow.name'], 'answer_ticket');
      assert.equal(viaGateway.calls.length, 1, JSON.stringify(viaGateway));
      const gatewayCall = viaGateway.calls[0];
      assert.equal(gatewayCall.trace_id, app.traceId);
      assert.equal(gatewayCall.parent_span_id, viaGateway.span_id);
      assert.equal(gatewayCall.provider, 'sim');
      assert.equal(gatewayCall.model, 'sim/gpt-4o-mini');
      assert.deepEqual(gatewayCall.usage, {
        input: app.gatewayUsage.prompt_tokens, output: app.gatewayUsage.completion_tokens,
        cache_read: 0, cache_write: 0, reasoning: 0,
      });
      assert.deepEqual(gatewayCall.tags, {});

      // The direct call: llmscope knows it only from the SDK's span.
      const review = root.children[1];
      const direct = findSpan([review], (n) => n.name === 'chat sim/gpt-4o');
      assert.ok(direct, JSON.stringify(review));
      assert.equal(direct.attributes['gen_ai.response.id'], app.directResponseId);
    }, diagnostics());
  });

  test('the direct call is mapped from its span; the gateway call is counted once', async () => {
    await withDiagnostics(async () => {
      const r = await gw.api(`/api/v1/calls?trace_id=${app.traceId}`);
      assert.equal(r.status, 200, r.text);
      const calls = r.body.data.calls;
      assert.equal(calls.length, 2, JSON.stringify(calls, null, 1));
      assert.ok(!calls.some((c) => c.request_id === app.gatewayResponseId),
        'the SDK span of the gateway call did not become a call of its own');

      const direct = calls.find((c) => c.request_id === app.directResponseId);
      assert.ok(direct, JSON.stringify(calls));
      assert.equal(direct.model, 'sim/gpt-4o');
      assert.equal(direct.response_model, app.directModel);
      assert.equal(direct.provider_kind, 'openai');
      assert.deepEqual(direct.usage, {
        input: app.directUsage.prompt_tokens, output: app.directUsage.completion_tokens,
        cache_read: 0, cache_write: 0, reasoning: 0,
      });
      assert.ok(direct.usage.input > 0 && direct.usage.output > 0, JSON.stringify(direct.usage));
      assert.equal(direct.usage_source, 'provider');
      assert.deepEqual(direct.finish_reasons, ['length']);  // max_tokens: 12
      // The instrumentation sends no time to first token for a non-streaming call; none is made up.
      assert.equal(direct.ttft_s, null);
      assert.ok(direct.duration_s > 0);
      assert.deepEqual(direct.tags, { source: 'otlp', service: SERVICE });

      const listed = await gw.api(`/api/v1/traces?service=${SERVICE}`);
      assert.equal(listed.status, 200, listed.text);
      assert.ok(JSON.stringify(listed.body.data).includes(app.traceId), listed.text);

      const m = (await gw.metrics()).body;
      assert.equal(metricValue(m, 'llm_requests_total', { model: 'sim/gpt-4o-mini' }), 1);
      assert.equal(metricValue(m, 'llm_requests_total', { model: 'sim/gpt-4o' }), 1);
      assert.equal(metricValue(m, 'llm_tokens_total', { model: 'sim/gpt-4o-mini', type: 'input' }),
        app.gatewayUsage.prompt_tokens);
      assert.equal(metricValue(m, 'llm_tokens_total', { model: 'sim/gpt-4o', type: 'output' }),
        app.directUsage.completion_tokens);
      const spans = (outcome) => metricValue(m, 'llmscope_otlp_llm_spans_total', { outcome });
      assert.equal(spans('gateway_duplicate'), 1);
      assert.equal(spans('mapped'), 1);
    }, diagnostics());
  });

  test('conformance names the OpenLLMetry dialect', async () => {
    const r = await gw.api('/api/v1/conformance');
    assert.equal(r.status, 200, r.text);
    const svc = r.body.data.services.find((s) => s.service === SERVICE);
    assert.ok(svc, r.text);
    // The two model calls only: workflow and task spans are not GenAI spans, so nothing
    // is reported missing from them.
    assert.equal(svc.spans, 2, r.text);
    assert.equal(svc.dialects.openllmetry, 2, r.text);
    assert.deepEqual(svc.missing, {}, r.text);
  });
});
