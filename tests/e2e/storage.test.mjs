// Every call kept and answerable: the official `openai` SDK sends calls through the gateway,
// and the query API (/api/v1/) answers them from the event store: SQLite by default, and a
// real ClickHouse (Debian's clickhouse-server, started here on loopback).
//
// Also the durability promises: a kill -9 loses nothing that was flushed, and a ClickHouse
// that is down for a whole load gets every call once it is back.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import OpenAI from 'openai';

import { defaultConfig, startGateway, waitFor, withDiagnostics } from './lib/harness.mjs';
import { startClickHouse } from './lib/clickhouse.mjs';

const MODELS = ['sim/gpt-4o-mini', 'sim/claude-haiku-4-5'];
const USERS = ['alice', 'bob', 'carol'];

function client(gw, headers = {}) {
  return new OpenAI({
    baseURL: `${gw.baseURL}/v1`,
    apiKey: 'sk-test',
    maxRetries: 0,
    timeout: 20_000,
    defaultHeaders: headers,
  });
}

// Sends `n` chat calls (every 5th streamed), spread over models, users and a tag.
// Resolves with one {id, model, user, tagged, usage} per call, usage as the SDK saw it.
async function sendCalls(gw, n, { concurrency = 4, offset = 0 } = {}) {
  const out = [];
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const k = i + offset;
      const model = MODELS[k % MODELS.length];
      const user = USERS[k % USERS.length];
      const tagged = k % 2 === 0;
      const c = client(gw, tagged ? { 'x-llmscope-tags': 'feature=search' } : {});
      const body = {
        model,
        user,
        messages: [{ role: 'user', content: `question ${k}` }],
        max_tokens: 32,
      };
      if (k % 5 === 0) {
        const { data: stream, response } = await c.chat.completions
          .create({ ...body, stream: true, stream_options: { include_usage: true } })
          .withResponse();
        let usage;
        for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
        out[i] = { id: response.headers.get('x-llmscope-request-id'), model, user, tagged, usage };
      } else {
        const { data, response } = await c.chat.completions.create(body).withResponse();
        out[i] = { id: response.headers.get('x-llmscope-request-id'), model, user, tagged,
          usage: data.usage };
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

async function flush(gw) {
  const r = await gw.api('/-/flush', { method: 'POST' });
  assert.equal(r.status, 200, `flush: ${r.text}`);
}

// Every call in the store, through cursor paging of /api/v1/calls.
async function allCalls(gw, query = '') {
  const calls = [];
  let cursor = null;
  for (let page = 0; page < 1000; page++) {
    const q = `limit=7${query ? `&${query}` : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const r = await gw.api(`/api/v1/calls?${q}`);
    assert.equal(r.status, 200, r.text);
    calls.push(...r.body.data.calls);
    cursor = r.body.data.next_cursor;
    if (!cursor) return calls;
  }
  throw new Error('paging did not end');
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

// The query API contract, run against whichever backend `storage` configures.
async function checkQueryApi(gw) {
  const sent = await sendCalls(gw, 30);
  assert.ok(sent.every((s) => s.id), 'every response carries x-llmscope-request-id');
  await flush(gw);

  // Paging newest first yields every call exactly once, in order.
  const calls = await allCalls(gw);
  assert.deepEqual(calls.map((c) => c.request_id).sort(), sent.map((s) => s.id).sort());
  for (let i = 1; i < calls.length; i++) assert.ok(calls[i - 1].ts >= calls[i].ts, 'newest first');
  assert.ok(calls.every((c) => !('request_body' in c)), 'pages carry no content');

  // Token counts in the store are exactly what the client was told.
  const byId = new Map(calls.map((c) => [c.request_id, c]));
  for (const s of sent) {
    assert.equal(byId.get(s.id).usage.input, s.usage.prompt_tokens, `input tokens of ${s.id}`);
    assert.equal(byId.get(s.id).usage.output, s.usage.completion_tokens, `output of ${s.id}`);
  }

  // Filters.
  const alice = await allCalls(gw, 'user=alice');
  assert.deepEqual(alice.map((c) => c.request_id).sort(),
    sent.filter((s) => s.user === 'alice').map((s) => s.id).sort());
  const tagged = await allCalls(gw, `tag=${encodeURIComponent('feature:search')}&model=${encodeURIComponent(MODELS[1])}`);
  assert.deepEqual(tagged.map((c) => c.request_id).sort(),
    sent.filter((s) => s.tagged && s.model === MODELS[1]).map((s) => s.id).sort());

  // One call by id; an unknown id is 404.
  const one = await gw.api(`/api/v1/calls/${encodeURIComponent(sent[3].id)}`);
  assert.equal(one.status, 200, one.text);
  assert.equal(one.body.data.request_id, sent[3].id);
  assert.equal((await gw.api('/api/v1/calls/no-such-call')).status, 404);

  // Aggregates by model: counts and token sums exact.
  const agg = await gw.api('/api/v1/aggregates?group_by=model');
  assert.equal(agg.status, 200, agg.text);
  for (const model of MODELS) {
    const mine = sent.filter((s) => s.model === model);
    const row = agg.body.data.rows.find((r) => r.group === model);
    assert.ok(row, `a row for ${model}: ${agg.text}`);
    assert.equal(row.requests, mine.length);
    assert.equal(row.errors, 0);
    assert.equal(row.tokens.input, sum(mine.map((s) => s.usage.prompt_tokens)));
    assert.equal(row.tokens.output, sum(mine.map((s) => s.usage.completion_tokens)));
    assert.ok(row.latency_seconds.p95 > 0 && row.latency_seconds.p50 <= row.latency_seconds.p95);
  }

  // Top users by tokens, in order.
  const top = await gw.api('/api/v1/top?by=tokens&dimension=user&limit=2');
  assert.equal(top.status, 200, top.text);
  const expected = USERS.map((u) => ({
    u,
    t: sum(sent.filter((s) => s.user === u).map((s) => s.usage.prompt_tokens + s.usage.completion_tokens)),
  })).sort((a, b) => b.t - a.t || (a.u < b.u ? -1 : 1)).slice(0, 2);
  assert.deepEqual(top.body.data.rows.map((r) => [r.group, r.total_tokens]),
    expected.map((e) => [e.u, e.t]));

  // Exports stream every call.
  const jsonl = await gw.api('/api/v1/export/calls?format=jsonl');
  assert.equal(jsonl.status, 200);
  const lines = jsonl.text.split('\n').filter((l) => l);
  assert.equal(lines.length, sent.length);
  assert.deepEqual(lines.map((l) => JSON.parse(l).request_id).sort(), sent.map((s) => s.id).sort());
  const csv = await gw.api('/api/v1/export/calls?format=csv&user=bob');
  assert.equal(csv.status, 200);
  assert.match(csv.headers.get('content-type'), /text\/csv/);
  assert.equal(csv.text.split('\r\n').filter((l) => l).length,
    1 + sent.filter((s) => s.user === 'bob').length);

  // Stats count the rows.
  const stats = await gw.api('/api/v1/storage');
  assert.equal(stats.status, 200, stats.text);
  assert.equal(stats.body.data.calls, sent.length);

  // Bad parameters are named.
  const bad = await gw.api('/api/v1/calls?limit=0');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.errorType, 'bad_data');
  assert.match(bad.body.error, /^limit: /);
  const typo = await gw.api('/api/v1/calls?modle=x');
  assert.equal(typo.status, 400);
  assert.match(typo.body.error, /^modle: unknown parameter/);
  return sent;
}

describe('SQLite (the default)', () => {
  let gw;
  const sqliteDiag = { 'llmscope output': () => gw?.output() };
  after(async () => gw?.stop());

  test('the query API answers from the store', () => withDiagnostics(async () => {
    gw = await startGateway(defaultConfig);
    await checkQueryApi(gw);
  }, sqliteDiag));

  test('a call sent with a traceparent is found under its trace', () => withDiagnostics(async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const c = client(gw, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    const { response } = await c.chat.completions
      .create({ model: MODELS[0], messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    await flush(gw);
    const t = await gw.api(`/api/v1/traces/${traceId}`);
    assert.equal(t.status, 200, t.text);
    assert.equal(t.body.data.call_count, 1);
    assert.equal(t.body.data.calls[0].request_id, response.headers.get('x-llmscope-request-id'));
    assert.equal(t.body.data.calls[0].parent_span_id, '00f067aa0ba902b7');
    const list = await gw.api('/api/v1/traces?limit=50');
    assert.ok(list.body.data.traces.some((x) => x.trace_id === traceId), list.text);
    assert.equal((await gw.api(`/api/v1/traces/${'0'.repeat(31)}1`)).status, 404);
  }, sqliteDiag));
});

describe('read your writes', () => {
  let gw;
  const diag = { 'llmscope output': () => gw?.output() };
  after(async () => gw?.stop());

  // The record of a call is handed to the pipeline only after its last byte was written, and
  // a client can read that byte before the gateway's event loop gets back to the call. A flush
  // still covers the call: a client that has its response, flushes and queries finds it.
  test('a call is in the store once a flush after its response returns', () => withDiagnostics(async () => {
    gw = await startGateway(defaultConfig);
    const misses = [];
    for (let i = 0; i < 150; i++) {
      const c = client(gw);
      const body = { model: MODELS[i % 2], messages: [{ role: 'user', content: `ryw ${i}` }] };
      let id;
      if (i % 2 === 0) {
        const { data: stream, response } = await c.chat.completions
          .create({ ...body, stream: true }).withResponse();
        for await (const chunk of stream) void chunk;
        id = response.headers.get('x-llmscope-request-id');
      } else {
        id = (await c.chat.completions.create(body).withResponse()).response.headers
          .get('x-llmscope-request-id');
      }
      await flush(gw);
      const r = await gw.api(`/api/v1/calls/${encodeURIComponent(id)}`);
      if (r.status !== 200) misses.push(`${i}: ${id} ${r.status}`);
    }
    assert.deepEqual(misses, [], 'calls missing right after a flush');
  }, diag));
});

describe('kill -9', () => {
  let gw;
  const killDiag = { 'llmscope output': () => gw?.output() };
  test('every call acknowledged before the last flush survives', () => withDiagnostics(async () => {
    gw = await startGateway(defaultConfig);
    const dir = gw.dir;
    try {
      const before = await sendCalls(gw, 120, { concurrency: 8 });
      await flush(gw);
      // More load after the flush, then a crash with it still in flight.
      const during = sendCalls(gw, 400, { concurrency: 8, offset: 120 }).catch(() => []);
      await waitFor(async () => (await gw.api('/api/v1/storage')).body.data?.calls > 150,
        { timeoutMs: 20_000, what: 'more calls stored after the flush' });
      const exit = await gw.kill9();
      assert.equal(exit.signal, 'SIGKILL');
      await during;

      gw = await startGateway(defaultConfig, { reuseDir: dir });
      const stored = new Set((await allCalls(gw)).map((c) => c.request_id));
      const lost = before.filter((s) => !stored.has(s.id));
      assert.deepEqual(lost, [], 'calls flushed before the crash are all in the store');
    } finally {
      await gw.stop();
      gw.cleanup?.();
    }
  }, killDiag));
});

describe('ClickHouse', () => {
  let ch;
  let gw;
  const chDiag = {
    'llmscope output': () => gw?.output(),
    'clickhouse-server error log': () => ch?.errorLog(),
  };
  after(async () => {
    await gw?.stop();
    await ch?.cleanup();
  });

  const config = (url) => (callsPath) => ({
    ...defaultConfig(callsPath),
    storage: { backend: 'clickhouse', clickhouse: { url, database: 'llmscope_e2e' } },
  });

  test('the query API answers from ClickHouse', () => withDiagnostics(async () => {
    ch = await startClickHouse();
    gw = await startGateway(config(ch.url));
    await checkQueryApi(gw);
    // The rows are really in ClickHouse.
    const n = await ch.query('SELECT count() FROM llmscope_e2e.calls_v2 FINAL');
    assert.equal(Number(n.trim()), 30);
  }, chDiag));

  test('a ClickHouse down for the whole load gets every call when it is back', () => withDiagnostics(async () => {
    const before = Number((await gw.api('/api/v1/storage')).body.data.calls);
    await ch.stop();
    const sent = await sendCalls(gw, 200, { concurrency: 8, offset: 1000 });
    assert.ok(sent.every((s) => s.id), 'the gateway kept answering with its store down');
    await flush(gw);  // durable in the spill queue
    const m = (await gw.metrics()).body;
    assert.match(m, /^llmscope_storage_backend_up 0$/m);
    const spilled = Number(/^llmscope_storage_spill_records (\d+)/m.exec(m)?.[1] ?? 0);
    assert.ok(spilled > 0, `calls wait in the spill queue:\n${m.split('\n').filter((l) => l.startsWith('llmscope_storage')).join('\n')}`);

    await ch.start();
    await waitFor(async () => {
      const r = await gw.api('/api/v1/storage');
      if (r.status === 200 && r.body.data.calls === before + sent.length) return true;
      throw new Error(`the store answers ${r.status} with ${r.body.data?.calls} calls, ` +
        `expecting ${before + sent.length}`);
    }, { timeoutMs: 60_000, what: 'every spilled call written to ClickHouse' });
    const stored = new Set((await allCalls(gw)).map((c) => c.request_id));
    assert.deepEqual(sent.filter((s) => !stored.has(s.id)), []);
    const after = (await gw.metrics()).body;
    assert.match(after, /^llmscope_storage_backend_up 1$/m);
    assert.match(after, /^llmscope_storage_spill_records 0$/m);
  }, chDiag));
});
