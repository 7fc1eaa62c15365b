// The official `openai` npm SDK against llmscope: what the client gets is exactly what the
// provider (the simulator) sends, and the call log records exactly what the client saw.
//
// A standalone `llmscope simulate` with the same simulator settings as the gateway's
// in-process one answers the same requests directly; with `x-sim-seed` both answers are
// deterministic, so "through the gateway" and "direct" can be compared byte for byte.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';

import { defaultConfig, parseSse, postJson, startGateway, startSimulator } from './lib/harness.mjs';

const MODEL = 'sim/gpt-4o-mini';
// Public list prices of gpt-4o-mini in src/pricing/default_prices.yaml, USD per 1M tokens.
const GPT_4O_MINI = { input: 0.15, output: 0.6 };
const EMBEDDING_3_SMALL = { input: 0.02 };

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        days: { type: 'integer' },
      },
      required: ['city'],
    },
  },
};

let gw;
let sim;
let client;

before(async () => {
  // The same simulator settings on both sides (seeded answers do not depend on the
  // timing ones, which only keep the run fast).
  gw = await startGateway(defaultConfig);
  sim = await startSimulator({ config: defaultConfig('/dev/null') });
  client = new OpenAI({ baseURL: `${gw.baseURL}/v1`, apiKey: 'sk-test', maxRetries: 0, timeout: 20_000 });
});

after(async () => {
  const [gwExit, simExit] = await Promise.allSettled([gw?.stop(), sim?.stop()]);
  if (simExit.status === 'rejected') throw simExit.reason;
  if (gwExit.status === 'rejected') throw gwExit.reason;
  // SIGTERM is a graceful drain: exit code 0.
  if (gw) assert.deepEqual(gwExit.value, { code: 0, signal: null }, `gateway exit:\n${gw.output()}`);
});

function chatBody(extra = {}) {
  return {
    model: MODEL,
    messages: [
      { role: 'system', content: 'You are a concise assistant.' },
      { role: 'user', content: 'Tell me something about observability.' },
    ],
    ...extra,
  };
}

// The simulator's own answer to `body`, bypassing llmscope.
async function direct(path, body, headers) {
  const r = await postJson(`${sim.baseURL}/v1${path}`, body, headers);
  assert.equal(r.status, 200, r.text);
  return r;
}

function sseChunks(text) {
  return parseSse(text)
    .filter((e) => e.data !== '[DONE]')
    .map((e) => JSON.parse(e.data));
}

function assertCost(rec, prices) {
  const expected = (rec.usage.input * prices.input + rec.usage.output * (prices.output ?? 0)) / 1e6;
  assert.ok(rec.cost_usd > 0, `cost_usd ${rec.cost_usd} for a priced model`);
  assert.ok(Math.abs(rec.cost_usd - expected) <= 1e-12 + expected * 1e-9,
    `cost_usd ${rec.cost_usd}, expected ${expected} from usage ${JSON.stringify(rec.usage)}`);
  assert.equal(rec.unpriced, false);
}

describe('chat completions, non-streaming', () => {
  test('the SDK response equals the simulator answer field by field, and the log agrees', async () => {
    const headers = { 'x-sim-seed': '1001' };
    const body = chatBody({ user: 'alice', max_tokens: 200 });
    const { data, response } = await client.chat.completions.create(body, { headers }).withResponse();
    const want = await direct('/chat/completions', body, headers);

    assert.deepStrictEqual(data, want.json);
    assert.equal(data.object, 'chat.completion');
    assert.match(data.model, /^gpt-4o-mini-\d{4}-\d{2}-\d{2}$/, 'a dated response model');
    assert.ok(data.usage.prompt_tokens > 0 && data.usage.completion_tokens > 0);

    const id = response.headers.get('x-llmscope-request-id');
    assert.match(id ?? '', /^req_[0-9a-f]{16}$/);
    assert.match(response.headers.get('x-llmscope-overhead-us') ?? '', /^\d+$/);
    // The provider's own headers pass through.
    assert.equal(response.headers.get('x-request-id'), want.headers.get('x-request-id'));

    const rec = await gw.callById(id);
    assert.equal(rec.endpoint, 'chat_completions');
    assert.equal(rec.provider, 'sim');
    assert.equal(rec.model, MODEL);
    assert.equal(rec.response_model, data.model);
    assert.equal(rec.stream, false);
    assert.equal(rec.status, 200);
    assert.equal(rec.error_type, undefined);
    assert.equal(rec.client_cancelled, false);
    assert.equal(rec.usage_source, 'provider');
    assert.equal(rec.usage.input, data.usage.prompt_tokens);
    assert.equal(rec.usage.output, data.usage.completion_tokens);
    assert.equal(rec.usage.cache_read, 0);
    assert.equal(rec.max_tokens, 200);
    assert.deepEqual(rec.finish_reasons, [data.choices[0].finish_reason]);
    assert.equal(rec.user, 'alice');
    assert.match(rec.trace_id, /^[0-9a-f]{32}$/);
    assertCost(rec, GPT_4O_MINI);
  });

  test('the raw bytes through the gateway equal the raw bytes direct', async () => {
    const headers = { 'x-sim-seed': '1002' };
    const body = chatBody();
    const via = await postJson(`${gw.baseURL}/v1/chat/completions`, body, headers);
    const want = await direct('/chat/completions', body, headers);
    assert.equal(via.status, 200);
    assert.equal(via.text, want.text);
  });

  test('x-llmscope-user overrides the body user', async () => {
    const { response } = await client.chat.completions
      .create(chatBody({ user: 'alice' }), { headers: { 'x-llmscope-user': 'bob' } })
      .withResponse();
    const rec = await gw.callById(response.headers.get('x-llmscope-request-id'));
    assert.equal(rec.user, 'bob');
  });

  test('the user from the body alone is recorded', async () => {
    const { response } = await client.chat.completions
      .create(chatBody({ user: 'carol@example.com' }))
      .withResponse();
    const rec = await gw.callById(response.headers.get('x-llmscope-request-id'));
    assert.equal(rec.user, 'carol@example.com');
  });
});

describe('chat completions, streaming', () => {
  test('without include_usage: the client gets no usage chunk, the log has exact provider usage', async () => {
    const headers = { 'x-sim-seed': '2001' };
    const body = chatBody({ stream: true });
    const { data: stream, response } = await client.chat.completions
      .create(body, { headers })
      .withResponse();
    const got = [];
    for await (const chunk of stream) got.push(chunk);

    const plain = sseChunks((await direct('/chat/completions', body, headers)).text);
    const withUsage = sseChunks((await direct('/chat/completions',
      { ...body, stream_options: { include_usage: true } }, headers)).text);
    const usageChunk = withUsage.at(-1);
    assert.deepEqual(usageChunk.choices, [], 'the simulator sends a usage-only chunk when asked');
    assert.ok(usageChunk.usage.completion_tokens > 0);

    // Same chunks as the simulator sends a client that did not ask for usage, in order.
    // (llmscope asked upstream for usage; any `usage: null` that request added is ignored
    // here; the byte-exact test below is strict about it.)
    const dropNullUsage = (c) => {
      const { usage, ...rest } = c;
      return usage === null ? rest : c;
    };
    assert.deepStrictEqual(got.map(dropNullUsage), plain);
    assert.ok(got.every((c) => c.choices.length > 0), 'no usage-only chunk reached the client');
    assert.ok(got.every((c) => !c.usage), 'no chunk carries usage');
    assert.equal(got.at(-1).choices[0].finish_reason, 'stop');

    const rec = await gw.callById(response.headers.get('x-llmscope-request-id'));
    assert.equal(rec.stream, true);
    assert.equal(rec.status, 200);
    assert.equal(rec.error_type, undefined);
    assert.equal(rec.usage_source, 'provider');
    assert.equal(rec.usage.input, usageChunk.usage.prompt_tokens);
    assert.equal(rec.usage.output, usageChunk.usage.completion_tokens);
    // One content chunk per output token: what the client saw.
    const contentChunks = got.filter((c) => c.choices[0]?.delta?.content).length;
    assert.equal(rec.usage.output, contentChunks);
    assert.equal(rec.response_model, got[0].model);
    assert.deepEqual(rec.finish_reasons, ['stop']);
    assert.ok(rec.ttft_s > 0 && rec.ttft_s <= rec.duration_s);
    assertCost(rec, GPT_4O_MINI);
  });

  // Byte-exact transparency: a client that did not ask for usage must not see any trace of
  // llmscope's injected stream_options: the upstream (asked for include_usage) puts
  // "usage":null on every chunk, and llmscope removes it along with the usage-only chunk.
  test('without include_usage: the stream bytes equal the simulator bytes exactly',
    async () => {
      const headers = { 'x-sim-seed': '2002' };
      const body = chatBody({ stream: true });
      const via = await postJson(`${gw.baseURL}/v1/chat/completions`, body, headers);
      const want = await direct('/chat/completions', body, headers);
      assert.equal(via.status, 200);
      assert.equal(via.headers.get('content-type'), want.headers.get('content-type'));
      assert.equal(via.text, want.text);
    });

  test('with include_usage: the client receives the usage chunk, identical to the simulator', async () => {
    const headers = { 'x-sim-seed': '2003' };
    const body = chatBody({ stream: true, stream_options: { include_usage: true } });
    const { data: stream, response } = await client.chat.completions
      .create(body, { headers })
      .withResponse();
    const got = [];
    for await (const chunk of stream) got.push(chunk);
    const want = sseChunks((await direct('/chat/completions', body, headers)).text);
    assert.deepStrictEqual(got, want);
    const last = got.at(-1);
    assert.deepEqual(last.choices, []);
    assert.ok(last.usage.prompt_tokens > 0 && last.usage.completion_tokens > 0);

    const rec = await gw.callById(response.headers.get('x-llmscope-request-id'));
    assert.equal(rec.usage_source, 'provider');
    assert.equal(rec.usage.input, last.usage.prompt_tokens);
    assert.equal(rec.usage.output, last.usage.completion_tokens);

    const via = await postJson(`${gw.baseURL}/v1/chat/completions`, body, headers);
    const wantRaw = await direct('/chat/completions', body, headers);
    assert.equal(via.text, wantRaw.text, 'byte-identical when the client asked for usage itself');
  });
});

describe('tool calls', () => {
  const toolBody = (extra) => chatBody({
    messages: [{ role: 'user', content: 'Look something up for me.' }],
    tools: [WEATHER_TOOL],
    tool_choice: 'required',
    ...extra,
  });

  function checkArgs(args) {
    assert.equal(typeof args.city, 'string');
    assert.ok(args.city.length > 0);
    assert.equal(args.unit, 'celsius', 'the first enum value');
    assert.ok(Number.isInteger(args.days));
  }

  test('non-streaming: a tool call whose arguments parse as JSON', async () => {
    const headers = { 'x-sim-seed': '3001' };
    const body = toolBody();
    const { data, response } = await client.chat.completions.create(body, { headers }).withResponse();
    assert.deepStrictEqual(data, (await direct('/chat/completions', body, headers)).json);
    const choice = data.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    checkArgs(JSON.parse(call.function.arguments));

    const rec = await gw.callById(response.headers.get('x-llmscope-request-id'));
    assert.deepEqual(rec.finish_reasons, ['tool_calls']);
    assert.equal(rec.usage.input, data.usage.prompt_tokens);
    assert.equal(rec.usage.output, data.usage.completion_tokens);
  });

  test('streaming: argument deltas assemble into JSON; the same call as non-streaming', async () => {
    const headers = { 'x-sim-seed': '3002' };
    const { data: stream, response } = await client.chat.completions
      .create(toolBody({ stream: true, stream_options: { include_usage: true } }), { headers })
      .withResponse();
    const calls = new Map();
    let finish;
    let usage;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        if (choice.finish_reason) finish = choice.finish_reason;
        for (const tc of choice.delta?.tool_calls ?? []) {
          const c = calls.get(tc.index) ?? { id: '', name: '', arguments: '' };
          if (tc.id) c.id = tc.id;
          if (tc.function?.name) c.name += tc.function.name;
          if (tc.function?.arguments) c.arguments += tc.function.arguments;
          calls.set(tc.index, c);
        }
      }
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(calls.size, 1);
    const call = calls.get(0);
    assert.match(call.id, /^call_/);
    assert.equal(call.name, 'get_weather');
    checkArgs(JSON.parse(call.arguments));

    // The same seed without streaming gives the same arguments.
    const whole = await client.chat.completions.create(toolBody(), { headers });
    assert.equal(call.arguments, whole.choices[0].message.tool_calls[0].function.arguments);

    const rec = await gw.callById(response.headers.get('x-llmscope-request-id'));
    assert.deepEqual(rec.finish_reasons, ['tool_calls']);
    assert.equal(rec.usage_source, 'provider');
    assert.equal(rec.usage.input, usage.prompt_tokens);
    assert.equal(rec.usage.output, usage.completion_tokens);
  });

  test('streaming without include_usage: still exact usage in the log', async () => {
    const headers = { 'x-sim-seed': '3003' };
    const { data: stream, response } = await client.chat.completions
      .create(toolBody({ stream: true }), { headers })
      .withResponse();
    let args = '';
    for await (const chunk of stream) {
      assert.ok(chunk.choices.length > 0, 'no usage-only chunk');
      args += chunk.choices[0].delta?.tool_calls?.[0]?.function?.arguments ?? '';
    }
    checkArgs(JSON.parse(args));
    const withUsage = sseChunks((await direct('/chat/completions',
      toolBody({ stream: true, stream_options: { include_usage: true } }), headers)).text).at(-1);
    const rec = await gw.callById(response.headers.get('x-llmscope-request-id'));
    assert.equal(rec.usage_source, 'provider');
    assert.equal(rec.usage.input, withUsage.usage.prompt_tokens);
    assert.equal(rec.usage.output, withUsage.usage.completion_tokens);
  });
});

describe('embeddings', () => {
  test('the SDK (base64 by default) gets the simulator vectors; the log has the tokens and cost', async () => {
    const input = ['llmscope observes every call', 'and records it'];
    const { data, response } = await client.embeddings
      .create({ model: 'sim/text-embedding-3-small', input, dimensions: 64 })
      .withResponse();
    assert.equal(data.data.length, 2);
    const want = await direct('/embeddings',
      { model: 'sim/text-embedding-3-small', input, dimensions: 64, encoding_format: 'float' });
    for (let i = 0; i < 2; i++) {
      const v = data.data[i].embedding;
      assert.equal(v.length, 64);
      // float32 values: base64 decoded by the SDK equals the shortest float text, rounded.
      assert.deepEqual(v, want.json.data[i].embedding.map(Math.fround));
      const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
      assert.ok(Math.abs(norm - 1) < 1e-5, `unit length, got ${norm}`);
    }
    assert.deepEqual(data.usage, want.json.usage);

    const rec = await gw.callById(response.headers.get('x-llmscope-request-id'));
    assert.equal(rec.endpoint, 'embeddings');
    assert.equal(rec.status, 200);
    assert.equal(rec.response_model, data.model);
    assert.equal(rec.usage_source, 'provider');
    assert.equal(rec.usage.input, data.usage.prompt_tokens);
    assert.equal(rec.usage.output, 0);
    assertCost(rec, EMBEDDING_3_SMALL);
  });
});

describe('models', () => {
  test('GET /v1/models through the SDK lists the configured routes', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes('sim/*'), `got ${JSON.stringify(ids)}`);
  });
});
