// Bad input and failing upstreams: every one gets a clear HTTP error in the client's own
// dialect, is recorded in the call log with the right error_type, and nothing crashes.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

import { closedPort, defaultConfig, postJson, startGateway } from './lib/harness.mjs';

const MAX_BODY = 4096;
const FIRST_BYTE_TIMEOUT_MS = 300;
const MESSAGES = [{ role: 'user', content: 'Hello there' }];

let gw;
let deadPort;

before(async () => {
  deadPort = await closedPort();
  gw = await startGateway((calls) => ({
    ...defaultConfig(calls),
    max_body_bytes: MAX_BODY,
    upstreams: [
      { name: 'sim', kind: 'simulator' },
      { name: 'slow', kind: 'simulator', first_byte_timeout_ms: FIRST_BYTE_TIMEOUT_MS },
      { name: 'dead', kind: 'openai_compatible', base_url: `http://127.0.0.1:${deadPort}/v1` },
    ],
    routes: [
      { prefix: 'sim/', upstream: 'sim' },
      { prefix: 'slow/', upstream: 'slow' },
      { prefix: 'dead/', upstream: 'dead' },
    ],
  }));
});

after(async () => {
  if (!gw) return;
  const exit = await gw.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, `gateway exit after the abuse:\n${gw.output()}`);
});

const chatURL = () => `${gw.baseURL}/v1/chat/completions`;
const messagesURL = () => `${gw.baseURL}/v1/messages`;

function assertOpenAiError(r, status, messagePattern) {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  assert.equal(typeof r.json?.error, 'object', `an OpenAI-shaped error body: ${r.text}`);
  assert.equal(typeof r.json.error.message, 'string');
  assert.ok('type' in r.json.error && 'param' in r.json.error && 'code' in r.json.error, r.text);
  if (messagePattern) assert.match(r.json.error.message, messagePattern);
}

function assertAnthropicError(r, status, type, messagePattern) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.type, 'error', `an Anthropic-shaped error body: ${r.text}`);
  assert.equal(r.json.error.type, type);
  if (messagePattern) assert.match(r.json.error.message, messagePattern);
}

// The log record of a response that carries x-llmscope-request-id.
const logged = (r) => gw.callById(r.headers.get('x-llmscope-request-id'));

describe('malformed requests (OpenAI dialect)', () => {
  test('malformed JSON: 400 naming the problem, logged as invalid_request', async () => {
    const r = await postJson(chatURL(), '{"model": "sim/gpt-4o-mini", "messages": [');
    assertOpenAiError(r, 400, /not valid JSON/);
    assert.equal(r.json.error.type, 'invalid_request_error');
    const rec = await logged(r);
    assert.equal(rec.status, 400);
    assert.equal(rec.error_type, 'invalid_request');
  });

  test('empty body: 400', async () => {
    const r = await postJson(chatURL(), '');
    assertOpenAiError(r, 400, /empty/);
  });

  test('missing model: 400 naming the field', async () => {
    const r = await postJson(chatURL(), { messages: MESSAGES });
    assertOpenAiError(r, 400, /'model'/);
    assert.equal((await logged(r)).error_type, 'invalid_request');
  });

  test('unknown model: 404 whose message lists the configured routes', async () => {
    const r = await postJson(chatURL(), { model: 'nope/gpt-9', messages: MESSAGES });
    assertOpenAiError(r, 404, /nope\/gpt-9/);
    for (const route of ['sim/*', 'slow/*', 'dead/*']) assert.ok(r.json.error.message.includes(route), r.text);
    assert.equal(r.json.error.code, 'model_not_found');
    const rec = await logged(r);
    assert.equal(rec.status, 404);
    assert.equal(rec.model, 'nope/gpt-9');
    assert.equal(rec.error_type, 'invalid_request');
  });

  test('body over max_body_bytes: 413', async () => {
    const r = await postJson(chatURL(), {
      model: 'sim/gpt-4o-mini',
      messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY + 100) }],
    });
    assertOpenAiError(r, 413, /limit/);
  });

  test('a body just under the limit is served', async () => {
    const body = { model: 'sim/gpt-4o-mini', messages: [{ role: 'user', content: '' }] };
    body.messages[0].content = 'y'.repeat(MAX_BODY - JSON.stringify(body).length - 1);
    const r = await postJson(chatURL(), body);
    assert.equal(r.status, 200, r.text);
  });

  test('GET on a POST endpoint: 405', async () => {
    const r = await fetch(chatURL());
    assert.equal(r.status, 405);
    assert.equal(typeof (await r.json()).error.message, 'string');
  });

  test('the openai SDK surfaces a gateway 404 as NotFoundError', async () => {
    const client = new OpenAI({ baseURL: `${gw.baseURL}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    await assert.rejects(
      client.chat.completions.create({ model: 'nope/gpt-9', messages: MESSAGES }),
      (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found',
    );
  });
});

describe('malformed requests (Anthropic dialect: /v1/messages)', () => {
  test('malformed JSON: 400 in Anthropic shape', async () => {
    const r = await postJson(messagesURL(), '{"model":');
    assertAnthropicError(r, 400, 'invalid_request_error', /not valid JSON/);
    assert.equal((await logged(r)).endpoint, 'messages');
  });

  test('missing model: 400 in Anthropic shape', async () => {
    const r = await postJson(messagesURL(), { max_tokens: 10, messages: MESSAGES });
    assertAnthropicError(r, 400, 'invalid_request_error', /'model'/);
  });

  test('unknown model: 404 not_found_error listing the routes', async () => {
    const r = await postJson(messagesURL(), { model: 'nope/claude', max_tokens: 10, messages: MESSAGES });
    assertAnthropicError(r, 404, 'not_found_error', /sim\/\*/);
  });

  test('the Anthropic SDK surfaces them as its typed errors', async () => {
    const client = new Anthropic({ baseURL: gw.baseURL, apiKey: 'sk-ant-test', maxRetries: 0 });
    await assert.rejects(
      client.messages.create({ model: 'nope/claude', max_tokens: 10, messages: MESSAGES }),
      (e) => e instanceof Anthropic.NotFoundError && e.error?.error?.type === 'not_found_error',
    );
    await assert.rejects(
      client.messages.create({ model: 'sim/claude-sonnet-4-5', max_tokens: 10, messages: MESSAGES },
        { headers: { 'x-sim-error': 'rate_limit' } }),
      (e) => e instanceof Anthropic.RateLimitError && e.error?.error?.type === 'rate_limit_error',
    );
  });

  // The HTTP layer hands an oversized request to the gateway, which answers in the
  // caller's dialect and records the call.
  test('body over max_body_bytes: 413 in Anthropic shape',
    async () => {
      const r = await postJson(messagesURL(), {
        model: 'sim/claude-sonnet-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY + 100) }],
      });
      assertAnthropicError(r, 413, 'request_too_large');
      assert.ok(r.headers.get('x-llmscope-request-id'), 'the rejected call is recorded');
    });

  test('an upstream 429 on /v1/messages passes through unchanged', async () => {
    const r = await postJson(messagesURL(),
      { model: 'sim/claude-sonnet-4-5', max_tokens: 10, messages: MESSAGES },
      { 'x-sim-error': 'rate_limit' });
    assertAnthropicError(r, 429, 'rate_limit_error');
    assert.equal(r.headers.get('retry-after'), '1');
    const rec = await logged(r);
    assert.equal(rec.error_type, 'rate_limit');
    assert.equal(rec.status, 429);
  });
});

describe('failing upstreams', () => {
  test('unreachable upstream (closed port): 502, error_type upstream_unreachable', async () => {
    const r = await postJson(chatURL(), { model: 'dead/gpt-4o-mini', messages: MESSAGES });
    assertOpenAiError(r, 502, /unreachable/);
    assert.equal(r.json.error.code, 'upstream_unreachable');
    const rec = await logged(r);
    assert.equal(rec.status, 502);
    assert.equal(rec.provider, 'dead');
    assert.equal(rec.error_type, 'upstream_unreachable');
    const { body } = await gw.metrics();
    assert.match(body, /llmscope_upstream_connection_errors_total\{provider="dead"\} [1-9]/);
  });

  test('upstream timeout (x-sim-error: timeout, the upstream hangs): 504, error_type timeout', async () => {
    const r = await postJson(chatURL(), { model: 'slow/gpt-4o-mini', messages: MESSAGES },
      { 'x-sim-error': 'timeout' });
    assertOpenAiError(r, 504, /timed out/);
    const rec = await logged(r);
    assert.equal(rec.status, 504);
    assert.equal(rec.error_type, 'timeout');
    assert.ok(rec.duration_s >= FIRST_BYTE_TIMEOUT_MS / 1000 - 0.005 && rec.duration_s < 2,
      `gave up after first_byte_timeout_ms: ${rec.duration_s}s`);
 
    // The wait on the upstream is not llmscope's own time: overhead stays far below it.
    const overheadUs = Number(r.headers.get('x-llmscope-overhead-us'));
    assert.ok(overheadUs < (FIRST_BYTE_TIMEOUT_MS * 1000) / 10,
      `overhead ${overheadUs} us must exclude the ${FIRST_BYTE_TIMEOUT_MS} ms upstream wait`);
    assert.ok(rec.overhead_us < (FIRST_BYTE_TIMEOUT_MS * 1000) / 10);
  });

  test('upstream timeout (latency over first_byte_timeout_ms), streaming: 504', async () => {
    const r = await postJson(chatURL(), { model: 'slow/gpt-4o-mini', messages: MESSAGES, stream: true },
      { 'x-sim-latency-ms': '3000' });
    assertOpenAiError(r, 504);
    const rec = await logged(r);
    assert.equal(rec.error_type, 'timeout');
    assert.equal(rec.stream, true);
  });

  for (const stream of [false, true]) {
    test(`x-sim-error: rate_limit${stream ? ' (streaming)' : ''}: the 429 passes through; error_type rate_limit`, async () => {
      const body = { model: 'sim/gpt-4o-mini', messages: MESSAGES, stream };
      const r = await postJson(chatURL(), body, { 'x-sim-error': 'rate_limit' });
      assertOpenAiError(r, 429, /[Rr]ate limit/);
      assert.equal(r.json.error.code, 'rate_limit_exceeded', 'the provider body, unchanged');
      assert.equal(r.headers.get('retry-after'), '1', 'the provider headers, unchanged');
      const rec = await logged(r);
      assert.equal(rec.status, 429);
      assert.equal(rec.error_type, 'rate_limit');
      assert.equal(rec.stream, stream);
    });
  }

  test('the openai SDK sees a RateLimitError', async () => {
    const client = new OpenAI({ baseURL: `${gw.baseURL}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    await assert.rejects(
      client.chat.completions.create({ model: 'sim/gpt-4o-mini', messages: MESSAGES },
        { headers: { 'x-sim-error': 'rate_limit' } }),
      (e) => e instanceof OpenAI.RateLimitError && e.status === 429,
    );
  });

  test('x-sim-error: server_error: 500 passes through; error_type server_error', async () => {
    const r = await postJson(chatURL(), { model: 'sim/gpt-4o-mini', messages: MESSAGES },
      { 'x-sim-error': 'server_error' });
    assertOpenAiError(r, 500);
    const rec = await logged(r);
    assert.equal(rec.status, 500);
    assert.equal(rec.error_type, 'server_error');
  });

  test('x-sim-error: truncated (streaming): the client sees the stream cut; error_type server_error', async () => {
    const res = await rawRequest(chatURL(), { model: 'sim/gpt-4o-mini', messages: MESSAGES, stream: true },
      { 'x-sim-error': 'truncated', 'x-sim-output-tokens': '20' });
    assert.equal(res.status, 200, 'the stream had started');
    assert.equal(res.complete, false, 'the response ended without its terminating chunk');
    assert.ok(res.body.includes('data: {'), 'some events arrived');
    assert.ok(!res.body.includes('[DONE]'), 'no end-of-stream marker');
    const rec = await gw.callById(res.headers['x-llmscope-request-id']);
    assert.equal(rec.error_type, 'server_error');
    assert.equal(rec.stream, true);
    assert.equal(rec.client_cancelled, false);
  });

  test('x-sim-error: truncated (non-streaming): 502, error_type server_error', async () => {
    const r = await postJson(chatURL(), { model: 'sim/gpt-4o-mini', messages: MESSAGES },
      { 'x-sim-error': 'truncated' });
    assertOpenAiError(r, 502, /truncated/);
    assert.equal((await logged(r)).error_type, 'server_error');
  });
});

describe('clients that leave', () => {
  test('a client that disconnects mid-stream: client_cancelled true, error_type cancelled', async () => {
    // 50 tokens at 10/s: the stream would last 5 s; the client leaves after its first chunk.
    const t0 = Date.now();
    const { id, chunk } = await new Promise((resolve, reject) => {
      const req = http.request(chatURL(), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-sim-output-tokens': '50',
          'x-sim-tokens-per-second': '10',
        },
      }, (res) => {
        res.once('data', (d) => {
          req.destroy();  // closes the socket
          resolve({ id: res.headers['x-llmscope-request-id'], chunk: d.toString() });
        });
        res.on('error', () => {});
      });
      req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
      req.end(JSON.stringify({ model: 'sim/gpt-4o-mini', messages: MESSAGES, stream: true }));
    });
    assert.match(chunk, /^data: /);
    const rec = await gw.callById(id, 8000);
    assert.equal(rec.client_cancelled, true);
    assert.equal(rec.error_type, 'cancelled');
    assert.equal(rec.stream, true);
    assert.ok(rec.duration_s < 3, `the gateway noticed promptly (${rec.duration_s}s of a 5 s stream)`);
    assert.ok(Date.now() - t0 < 4500);
  });

  test('a client that gives up before the response: client_cancelled true', async () => {
    const ac = new AbortController();
    const started = fetch(chatURL(), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sim-latency-ms': '3000', 'x-llmscope-user': 'quitter' },
      body: JSON.stringify({ model: 'sim/gpt-4o-mini', messages: MESSAGES }),
      signal: ac.signal,
    });
    setTimeout(() => ac.abort(), 200);
    await assert.rejects(started, { name: 'AbortError' });
    // No response headers, so no request id: find the record by its user.
    const [rec] = await gw.readCalls((r) => r.user === 'quitter', 8000);
    assert.equal(rec.client_cancelled, true);
    assert.equal(rec.error_type, 'cancelled');
    assert.ok(rec.duration_s < 2.5, `cancelled at ${rec.duration_s}s, not after the 3 s upstream latency`);
  });
});

describe('after all of that', () => {
  test('the gateway still serves normal requests, streaming and not', async () => {
    const r = await postJson(chatURL(), { model: 'sim/gpt-4o-mini', messages: MESSAGES });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'chat.completion');
    const s = await postJson(chatURL(), { model: 'sim/gpt-4o-mini', messages: MESSAGES, stream: true });
    assert.equal(s.status, 200);
    assert.ok(s.text.endsWith('data: [DONE]\n\n'));
    const rec = await logged(s);
    assert.equal(rec.status, 200);
    assert.equal(rec.error_type, undefined);
    const health = await fetch(`${gw.baseURL}/healthz`);
    assert.equal(health.status, 200);
    process.kill(gw.pid, 0);  // still the same process
  });
});

// A POST with node:http that reports whether the response completed (chunked terminator
// received) instead of throwing; resolves when the connection ends either way.
function rawRequest(url, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('error', () => {});
      res.on('close', () => resolve({ status: res.statusCode, headers: res.headers, body: text, complete: res.complete }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
