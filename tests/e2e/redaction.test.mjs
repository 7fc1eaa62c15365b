// Redaction of captured content: with content capture on, secrets and personal data in a
// prompt sent through the gateway (the official openai SDK) and in a GenAI span received
// over OTLP are replaced before anything is logged or stored, and counted by kind.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import OpenAI from 'openai';

import { defaultConfig, startGateway, waitFor, withDiagnostics } from './lib/harness.mjs';

const SECRET_PROMPT = 'Email jane.doe@example.com, key sk-proj-abcdefghijklmnopqrstuvwxyz0123, '
  + 'card 4111 1111 1111 1111, ticket TICKET-9876. What is 2+2?';

describe('redaction of captured content', () => {
  let gw;
  before(async () => {
    gw = await startGateway((calls) => ({
      ...defaultConfig(calls),
      gateway: { capture_content: true },
      redaction: { patterns: [{ name: 'ticket', regex: 'TICKET-[0-9]+' }] },
    }));
  });
  after(async () => {
    if (gw) assert.equal((await gw.stop()).code, 0, gw.output());
  });

  test('a prompt through the gateway is redacted in the call log and the store', async () => {
    await withDiagnostics(async () => {
      const client = new OpenAI({ baseURL: `${gw.baseURL}/v1`, apiKey: 'unused', maxRetries: 0 });
      const { data, response } = await client.chat.completions.create({
        model: 'sim/gpt-4o-mini', messages: [{ role: 'user', content: SECRET_PROMPT }],
      }).withResponse();
      assert.ok(data.choices[0].message.content.length > 0);
      const id = response.headers.get('x-llmscope-request-id');
      const logged = await gw.callById(id);
      for (const rec of [logged, (await (async () => {
        await gw.api('/-/flush', { method: 'POST' });
        return (await gw.api(`/api/v1/calls/${id}`)).body.data;
      })())]) {
        const body = rec.request_body ?? rec.content?.request_body;
        assert.ok(body, JSON.stringify(rec));
        assert.doesNotMatch(body, /jane\.doe|sk-proj|4111 1111|TICKET-9876/);
        assert.match(body, /\[REDACTED:email\]/);
        assert.match(body, /\[REDACTED:api_key\]/);
        assert.match(body, /\[REDACTED:card_number\]/);
        assert.match(body, /\[REDACTED:ticket\]/);
        assert.match(body, /What is 2\+2\?/);
      }
      const m = (await gw.metrics()).body;
      assert.match(m, /llmscope_redactions_total\{kind="email"\} [1-9]/);
      assert.match(m, /llmscope_redactions_total\{kind="ticket"\} [1-9]/);
    }, { llmscope: () => gw.output() });
  });

  test('content attributes of an OTLP span are redacted before they are stored', async () => {
    await withDiagnostics(async () => {
      const traceId = 'abcdefabcdefabcdefabcdefabcdef01';
      const now = BigInt(Date.now()) * 1_000_000n;
      const span = {
        traceId, spanId: '1111222233334444', name: 'chat gpt-4o', kind: 3,
        startTimeUnixNano: String(now), endTimeUnixNano: String(now + 500_000_000n),
        attributes: [
          { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } },
          { key: 'gen_ai.provider.name', value: { stringValue: 'openai' } },
          { key: 'gen_ai.request.model', value: { stringValue: 'gpt-4o' } },
          { key: 'gen_ai.input.messages', value: { stringValue: JSON.stringify([{ role: 'user', content: SECRET_PROMPT }]) } },
          { key: 'app.owner', value: { stringValue: 'owner@example.com' } },
        ],
      };
      const r = await fetch(`${gw.baseURL}/v1/traces`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] }),
      });
      assert.equal(r.status, 200, await r.text());
      const t = await waitFor(async () => {
        await gw.api('/-/flush', { method: 'POST' });
        const x = await gw.api(`/api/v1/traces/${traceId}`);
        return x.status === 200 && x.body.data.roots.length ? x.body.data : undefined;
      }, { timeoutMs: 10_000, intervalMs: 100, what: 'the stored span' });
      const attrs = t.roots[0].attributes;
      const input = JSON.stringify(attrs['gen_ai.input.messages']);
      assert.doesNotMatch(input, /jane\.doe|sk-proj|TICKET-9876/);
      assert.match(input, /\[REDACTED:email\]/);
      // Only content attributes are content: other attributes are kept as sent.
      assert.equal(attrs['app.owner'], 'owner@example.com');
      // The call mapped from the span carries the redacted prompt too.
      const call = t.calls.concat(t.roots[0].calls ?? []).find((c) => c.model === 'gpt-4o');
      assert.ok(call, JSON.stringify(t));
    }, { llmscope: () => gw.output() });
  });
});
