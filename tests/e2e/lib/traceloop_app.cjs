// An LLM application instrumented with Traceloop's OpenLLMetry SDK (@traceloop/node-server-sdk),
// as its README has users write it: `traceloop.initialize` with the base URL of the OTLP/HTTP
// receiver (here llmscope's; the SDK posts protobuf to `${baseUrl}/v1/traces`), the `openai`
// module handed over for instrumentation, and workflows/tasks around the calls.
//
// The SDK instruments no HTTP client, so no traceparent goes out with the openai SDK's requests.
// The app injects it in the `fetch` it gives the openai client, from the context the SDK's LLM
// span is active in: the call through llmscope's gateway then joins the application's trace as
// a child of that span. The injection uses the @opentelemetry/api instance the Traceloop SDK
// registered its context manager and propagator with (it ships its own 1.9 copy, whose globals
// a newer API copy elsewhere in node_modules refuses), which is also why
// @opentelemetry/instrumentation-undici from the top level cannot do it here.
//
// Two LLM calls: one through the gateway (GATEWAY_URL), which llmscope records itself and must
// not count again from the SDK's span, and one straight to a simulator (DIRECT_URL), which
// llmscope only learns of from the SDK's span.
//
// CommonJS on purpose: instrumentation patches `openai` when it is require()d.
//
// Non-streaming calls: for a stream the instrumentation counts tokens itself with tiktoken,
// which knows no `sim/*` model, and the span carries no usage.
//
// Environment: OTLP_URL, GATEWAY_URL, DIRECT_URL, SERVICE, MODEL (through the gateway),
// DIRECT_MODEL. Prints one JSON line: {traceId, gatewayResponseId, gatewayUsage,
// directResponseId, directModel, directUsage}. Exits once every span is exported.

const path = require('node:path');

const traceloop = require('@traceloop/node-server-sdk');
const { OpenAI } = require('openai');

const {
  OTLP_URL, GATEWAY_URL, DIRECT_URL, SERVICE = 'support-bot', MODEL = 'sim/gpt-4o-mini',
  DIRECT_MODEL = 'sim/gpt-4o',
} = process.env;

traceloop.initialize({
  appName: SERVICE,
  baseUrl: OTLP_URL,
  apiKey: 'unused',  // sent as a bearer token; llmscope does not check it
  // Export each span as it ends (SimpleSpanProcessor) rather than batching.
  disableBatch: true,
  // Prompt sync polls Traceloop's service; it is only attempted for a traceloop.com base URL,
  // and off here regardless.
  traceloopSyncEnabled: false,
  silenceInitializationMessage: true,
  instrumentModules: { openAI: OpenAI },
});
const { context, propagation, trace } = require(require.resolve('@opentelemetry/api', {
  paths: [path.dirname(require.resolve('@traceloop/node-server-sdk'))],
}));

function tracedFetch(url, init = {}) {
  const headers = new Headers(init.headers);
  propagation.inject(context.active(), headers, { set: (h, k, v) => h.set(k, v) });
  return fetch(url, { ...init, headers });
}

async function main() {
  const client = (url) =>
    new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, fetch: tracedFetch });
  const gateway = client(GATEWAY_URL);
  const direct = client(DIRECT_URL);
  const messages = [{ role: 'user', content: 'How do I reset my password?' }];
  const out = {};
  await traceloop.withWorkflow({ name: 'answer_ticket' }, async () => {
    out.traceId = trace.getActiveSpan().spanContext().traceId;
    const g = await traceloop.withTask({ name: 'draft' }, () =>
      gateway.chat.completions.create({ model: MODEL, messages, max_tokens: 12 }));
    out.gatewayResponseId = g.id;
    out.gatewayUsage = g.usage;
    const d = await traceloop.withTask({ name: 'review' }, () =>
      direct.chat.completions.create({ model: DIRECT_MODEL, messages, max_tokens: 12 }));
    out.directResponseId = d.id;
    out.directModel = d.model;
    out.directUsage = d.usage;
  });
  await traceloop.forceFlush();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
