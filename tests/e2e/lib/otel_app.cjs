// A small RAG application instrumented with the OpenTelemetry JS SDK, as a user would write
// it: `@opentelemetry/sdk-node`'s NodeSDK with the official OTLP exporter (protobuf or JSON over
// HTTP, or gRPC) sends its spans to llmscope, @opentelemetry/instrumentation-openai wraps the
// official `openai` SDK, and @opentelemetry/instrumentation-undici propagates the W3C
// traceparent on fetch, so the call the SDK makes through llmscope's gateway joins the
// application's trace.
//
// CommonJS on purpose: the instrumentations patch `openai` when it is require()d.
//
// Environment: OTLP_URL (llmscope base URL), EXPORTER (proto | json | grpc), OTLP_GRPC_URL
// (http://host:port of otlp.grpc_listen, for grpc), GATEWAY_URL, SERVICE, MODEL. Prints one
// JSON line: {traceId, directSpanId}. Exits once every span is exported.

const { trace, SpanKind, SpanStatusCode } = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { SimpleSpanProcessor } = require('@opentelemetry/sdk-trace');
const { OpenAIInstrumentation } = require('@opentelemetry/instrumentation-openai');
const { UndiciInstrumentation } = require('@opentelemetry/instrumentation-undici');

const {
  OTLP_URL, OTLP_GRPC_URL, EXPORTER = 'proto', GATEWAY_URL, SERVICE = 'rag-app', MODEL = 'sim/gpt-4o-mini',
} = process.env;

const EXPORTERS = {
  proto: () => require('@opentelemetry/exporter-trace-otlp-proto'),
  json: () => require('@opentelemetry/exporter-trace-otlp-http'),
  grpc: () => require('@opentelemetry/exporter-trace-otlp-grpc'),
};
const { OTLPTraceExporter } = EXPORTERS[EXPORTER]();

// The gRPC exporter takes the server's address (plaintext for http://); the HTTP ones the
// signal's full URL.
const exporter = new OTLPTraceExporter(
  EXPORTER === 'grpc' ? { url: OTLP_GRPC_URL } : { url: `${OTLP_URL}/v1/traces` },
);
// One span per export request, so the test can count requests per transport.
const processor = new SimpleSpanProcessor({ exporter });
// No resource detectors: service.name is the only resource attribute the test relies on.
// Empty metric readers and log processors: left unset, NodeSDK would start OTLP metric and log
// exporters aimed at the default localhost:4318, which this test does not run.
const sdk = new NodeSDK({
  resource: resourceFromAttributes({ 'service.name': SERVICE }),
  autoDetectResources: false,
  contextManager: new AsyncLocalStorageContextManager(),
  textMapPropagator: new W3CTraceContextPropagator(),
  spanProcessors: [processor],
  metricReaders: [],
  logRecordProcessors: [],
  instrumentations: [new OpenAIInstrumentation(), new UndiciInstrumentation()],
});
sdk.start();

const OpenAI = require('openai');

async function main() {
  const tracer = trace.getTracer('rag-app');
  const client = new OpenAI({ baseURL: `${GATEWAY_URL}/v1`, apiKey: 'unused', maxRetries: 0 });
  const out = {};
  await tracer.startActiveSpan('rag-query', { kind: SpanKind.SERVER }, async (root) => {
    out.traceId = root.spanContext().traceId;
    await tracer.startActiveSpan('retrieval', async (s) => {
      s.setAttribute('db.system.name', 'qdrant');
      s.setAttribute('retrieval.documents', 4);
      s.end();
    });
    await tracer.startActiveSpan('rerank', async (s) => {
      s.setAttribute('rerank.top_n', 2);
      s.end();
    });
    // Through the gateway: instrumentation-openai's span is the app's view of this call.
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'What does the context say?' }],
      max_tokens: 12,
    });
    out.gatewayResponseId = r.id;
    // A call the gateway never sees (another provider SDK, say), described by hand with
    // the GenAI conventions: llmscope turns it into an LLM call.
    const start = Date.now() - 900;
    const direct = tracer.startSpan('chat gpt-4o-mini', {
      kind: SpanKind.CLIENT,
      startTime: start,
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
        'gen_ai.response.id': `direct-${out.traceId}`,
        'gen_ai.usage.input_tokens': 100,
        'gen_ai.usage.output_tokens': 20,
        'gen_ai.response.time_to_first_chunk': 0.25,
        'gen_ai.response.finish_reasons': ['stop'],
      },
    });
    out.directSpanId = direct.spanContext().spanId;
    direct.setStatus({ code: SpanStatusCode.OK });
    direct.end(start + 800);
    root.end();
  });
  await processor.forceFlush();
  await sdk.shutdown();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
