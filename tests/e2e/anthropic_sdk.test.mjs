// The official `@anthropic-ai/sdk` against llmscope's /v1/messages: the SDK works unchanged
// with baseURL = the gateway's root, gets exactly what the provider (the simulator) sends,
// and the call log records the SDK's usage with OpenTelemetry semantics:
//   input = input_tokens + cache_read_input_tokens + cache_creation_input_tokens.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';

import { defaultConfig, parseSse, postJson, startGateway, startSimulator } from './lib/harness.mjs';

const MODEL = 'sim/claude-sonnet-4-5';
// claude-sonnet-4-5 list prices in src/pricing/default_prices.yaml, USD per 1M tokens.
const SONNET = { input: 3.0, output: 15.0, cached_input: 0.3, cache_write: 3.75 };

let gw;
let sim;
let client;

before(async () => {
  gw = await startGateway(defaultConfig);
  sim = await startSimulator({ config: defaultConfig('/dev/null') });
  client = new Anthropic({ baseURL: gw.baseURL, apiKey: 'sk-ant-test', maxRetries: 0, timeout: 20_000 });
});

after(async () => {
  const [gwExit, simExit] = await Promise.allSettled([gw?.stop(), sim?.stop()]);
  if (simExit.status === 'rejected') throw simExit.reason;
  if (gwExit.status === 'rejected') throw gwExit.reason;
  // SIGTERM is a graceful drain: exit code 0.
  if (gw) assert.deepEqual(gwExit.value, { code: 0, signal: null }, `gateway exit:\n${gw.output()}`);
});

const SYSTEM = [
  {
    type: 'text',
    text: 'You are a careful assistant who answers in one short paragraph.',
    cache_control: { type: 'ephemeral' },
  },
];

function firstTurn(extra = {}) {
  return {
    model: MODEL,
    max_tokens: 256,
    system: SYSTEM,
    messages: [{ role: 'user', content: 'What does an LLM gateway do?' }],
    ...extra,
  };
}

function laterTurn(extra = {}) {
  return firstTurn({
    messages: [
      { role: 'user', content: 'What does an LLM gateway do?' },
      { role: 'assistant', content: 'It sits between your app and the provider.' },
      { role: 'user', content: 'And why would I record every call?' },
    ],
    ...extra,
  });
}

async function direct(body, headers) {
  const r = await postJson(`${sim.baseURL}/v1/messages`, body,
    { 'anthropic-version': '2023-06-01', ...headers });
  assert.equal(r.status, 200, r.text);
  return r;
}

// OpenTelemetry usage from an Anthropic usage object.
function otelUsage(u) {
  const read = u.cache_read_input_tokens ?? 0;
  const write = u.cache_creation_input_tokens ?? 0;
  return { input: u.input_tokens + read + write, output: u.output_tokens, cache_read: read, cache_write: write };
}

function assertLoggedUsage(rec, sdkUsage) {
  const want = otelUsage(sdkUsage);
  assert.equal(rec.usage_source, 'provider');
  assert.equal(rec.usage.input, want.input, 'input includes cache reads and writes');
  assert.equal(rec.usage.output, want.output);
  assert.equal(rec.usage.cache_read, want.cache_read);
  assert.equal(rec.usage.cache_write, want.cache_write);
  const expected = ((want.input - want.cache_read - want.cache_write) * SONNET.input +
    want.cache_read * SONNET.cached_input + want.cache_write * SONNET.cache_write +
    want.output * SONNET.output) / 1e6;
  assert.ok(Math.abs(rec.cost_usd - expected) <= 1e-12 + expected * 1e-9,
    `cost_usd ${rec.cost_usd}, expected ${expected}`);
}

describe('messages, non-streaming', () => {
  test('first turn (cache write): the SDK message equals the simulator answer; log usage matches', async () => {
    const headers = { 'x-sim-seed': '4001' };
    const body = firstTurn();
    const { data: msg, response } = await client.messages.create(body, { headers }).withResponse();
    const want = await direct(body, headers);
    assert.deepStrictEqual(msg, want.json);
    assert.equal(msg.type, 'message');
    assert.equal(msg.stop_reason, 'end_turn');
    assert.ok(msg.usage.cache_creation_input_tokens > 0, 'the marked system prompt is written');
    assert.equal(msg.usage.cache_read_input_tokens, 0);

    const id = response.headers.get('x-llmscope-request-id');
    const rec = await gw.callById(id);
    assert.equal(rec.endpoint, 'messages');
    assert.equal(rec.model, MODEL);
    assert.equal(rec.response_model, msg.model);
    assert.equal(rec.stream, false);
    assert.equal(rec.status, 200);
    assert.equal(rec.error_type, undefined);
    assert.equal(rec.max_tokens, 256);
    assert.deepEqual(rec.finish_reasons, ['end_turn']);
    assertLoggedUsage(rec, msg.usage);
  });

  test('later turn (cache read): input counts the cached prefix', async () => {
    const { data: msg, response } = await client.messages
      .create(laterTurn(), { headers: { 'x-sim-seed': '4002' } })
      .withResponse();
    assert.ok(msg.usage.cache_read_input_tokens > 0);
    assert.equal(msg.usage.cache_creation_input_tokens, 0);
    const rec = await gw.callById(response.headers.get('x-llmscope-request-id'));
    assertLoggedUsage(rec, msg.usage);
    assert.ok(rec.usage.input > msg.usage.input_tokens);
  });

  test('max_tokens cap: stop_reason max_tokens is recorded', async () => {
    const { data: msg, response } = await client.messages
      .create(firstTurn({ max_tokens: 5 }), { headers: { 'x-sim-output-tokens': '40' } })
      .withResponse();
    assert.equal(msg.stop_reason, 'max_tokens');
    assert.equal(msg.usage.output_tokens, 5);
    const rec = await gw.callById(response.headers.get('x-llmscope-request-id'));
    assert.deepEqual(rec.finish_reasons, ['max_tokens']);
    assertLoggedUsage(rec, msg.usage);
  });
});

describe('messages, streaming', () => {
  test('messages.stream(): the final message usage equals the log; finish reason recorded', async () => {
    const headers = { 'x-sim-seed': '5001' };
    const stream = client.messages.stream(laterTurn(), { headers });
    const types = [];
    let text = '';
    stream.on('text', (t) => { text += t; });
    for await (const ev of stream) types.push(ev.type);
    const msg = await stream.finalMessage();
    const { response } = await stream.withResponse();

    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.ok(types.includes('message_delta'));
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(text, msg.content[0].text);
    // The same seed, not streamed, gives the same message.
    const whole = (await direct(laterTurn(), headers)).json;
    assert.equal(msg.content[0].text, whole.content[0].text);
    assert.deepEqual(msg.usage, whole.usage);

    const rec = await gw.callById(response.headers.get('x-llmscope-request-id'));
    assert.equal(rec.stream, true);
    assert.equal(rec.status, 200);
    assert.equal(rec.error_type, undefined);
    assert.equal(rec.response_model, msg.model);
    assert.deepEqual(rec.finish_reasons, ['end_turn']);
    assertLoggedUsage(rec, msg.usage);
    assert.ok(rec.ttft_s > 0 && rec.ttft_s <= rec.duration_s);
  });

  test('create({stream: true}): every event equals the simulator event, in order', async () => {
    const headers = { 'x-sim-seed': '5002' };
    const body = firstTurn({ stream: true });
    const { data: stream, response } = await client.messages.create(body, { headers }).withResponse();
    const got = [];
    for await (const ev of stream) got.push(ev);
    const wantRaw = await direct(body, headers);
    const want = parseSse(wantRaw.text).map((e) => JSON.parse(e.data));
    assert.ok(want.some((e) => e.type === 'ping'));
    // The SDK itself swallows `ping` events; everything else reaches the application.
    assert.deepStrictEqual(got, want.filter((e) => e.type !== 'ping'));

    const start = got[0].message.usage;
    const delta = got.find((e) => e.type === 'message_delta');
    const rec = await gw.callById(response.headers.get('x-llmscope-request-id'));
    assertLoggedUsage(rec, { ...start, output_tokens: delta.usage.output_tokens });
    assert.deepEqual(rec.finish_reasons, [delta.delta.stop_reason]);

    // The wire bytes are untouched for /v1/messages.
    const via = await postJson(`${gw.baseURL}/v1/messages`, body,
      { 'anthropic-version': '2023-06-01', ...headers });
    assert.equal(via.text, wantRaw.text);
  });

  test('tool use (tool_choice any): input_json_delta assembles into the tool input', async () => {
    const stream = client.messages.stream(firstTurn({
      tools: [{
        name: 'get_weather',
        description: 'Weather for a city',
        input_schema: {
          type: 'object',
          properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
          required: ['city'],
        },
      }],
      tool_choice: { type: 'any' },
    }), { headers: { 'x-sim-seed': '5003' } });
    const msg = await stream.finalMessage();
    const { response } = await stream.withResponse();
    assert.equal(msg.stop_reason, 'tool_use');
    const block = msg.content.find((b) => b.type === 'tool_use');
    assert.equal(block.name, 'get_weather');
    assert.equal(typeof block.input.city, 'string');
    assert.equal(block.input.unit, 'c');
    const rec = await gw.callById(response.headers.get('x-llmscope-request-id'));
    assert.deepEqual(rec.finish_reasons, ['tool_use']);
    assertLoggedUsage(rec, msg.usage);
  });
});
