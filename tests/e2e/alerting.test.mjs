// Alerting end to end, with llmscope alone and with a real Alertmanager:
//   - the simulator's error rate rises for three models; the built-in LLMHighErrorRate rule
//     goes pending and fires within its `for` plus one evaluation interval;
//   - llmscope's own notifier sends one grouped notification (group_by alertname) to a
//     webhook; a silence created through the Alertmanager v2 API keeps one model out of it,
//     and once the silence expires that model is notified;
//   - every alert is also pushed to a real Alertmanager, which delivers to its own webhook;
//   - healthy traffic brings the error rate under 1 %: the alerts resolve, and both webhooks
//     get the resolved notification;
//   - rules reload on SIGHUP and POST /-/reload; an invalid rule file is rejected with its
//     errors and the running rules stay.
//
// Times: metrics are sampled every second, the built-in rules run every second, the alert's
// `for` is 3 s (rules.builtin_overrides), so the whole run takes about half a minute.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ALERTMANAGER_MISSING, startAlertmanager, startWebhookReceiver } from './lib/alertmanager.mjs';
import {
  defaultConfig, LLMSCOPE_BIN, makeTempDir, postJson, REPO_ROOT, startGateway, waitFor, withDiagnostics,
} from './lib/harness.mjs';

const FOR_MS = 3000;
const INTERVAL_MS = 1000;
const ALERT = 'LLMHighErrorRate';
const LOUD = ['sim/alpha', 'sim/beta'];
const MUTED = 'sim/muted';
const MODELS = [...LOUD, MUTED];

let gw;
let am;
let hook;    // llmscope's own webhook receiver
let amHook;  // the receiver Alertmanager delivers to
let tmp;

// `n` chat calls to `model`, `concurrency` at a time; every status must be `want`.
async function send(model, n, { headers = {}, want = 200, concurrency = 8 } = {}) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const r = await postJson(`${gw.baseURL}/v1/chat/completions`,
        { model, messages: [{ role: 'user', content: 'ping' }] }, headers);
      assert.equal(r.status, want, r.text);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

async function ruleAlerts() {
  const r = await gw.api('/api/v1/alerts');
  assert.equal(r.status, 200, r.text);
  return r.body.data.alerts.filter((a) => a.labels.alertname === ALERT);
}

// Notifications of the LLMHighErrorRate group received by a webhook.
function groupNotifications(receiver) {
  return receiver.received
    .map((n) => n.body)
    .filter((b) => b && b.groupLabels && b.groupLabels.alertname === ALERT);
}

const modelsOf = (n) => n.alerts.map((a) => a.labels.model).sort();

describe('alerting: built-in rule, notifier, silences, Alertmanager', { skip: ALERTMANAGER_MISSING }, () => {
  before(async () => {
    tmp = makeTempDir('llmscope-alerting-');
    hook = await startWebhookReceiver();
    amHook = await startWebhookReceiver();
    am = await startAlertmanager({
      dir: tmp.dir,
      config: {
        route: {
          receiver: 'hook', group_by: ['alertname'], group_wait: '1s', group_interval: '1s',
          repeat_interval: '1h',
        },
        receivers: [{ name: 'hook', webhook_configs: [{ url: `${amHook.url}/am` }] }],
      },
    });
    const alertingPath = path.join(tmp.dir, 'alerting.yaml');
    fs.writeFileSync(alertingPath, JSON.stringify({
      route: {
        receiver: 'hook', group_by: ['alertname'], group_wait: '3s', group_interval: '2s',
        repeat_interval: '1h',
      },
      receivers: [{ name: 'hook', webhook_configs: [{ url: `${hook.url}/llmscope` }] }],
      alertmanagers: [{ url: am.url }],
    }));
    gw = await startGateway((calls) => ({
      ...defaultConfig(calls),
      tsdb: { scrape_interval: '1s' },
      rules: {
        builtin_interval: '1s',
        builtin_overrides: { [ALERT]: { for: '3s' } },
        external_url: 'http://llmscope.example:8080',
      },
      alerting: { config_file: alertingPath },
    }));
  });

  after(async () => {
    if (gw) assert.equal((await gw.stop()).code, 0, gw.output());
    if (am) await am.stop();
    if (hook) await hook.close();
    if (amHook) await amHook.close();
    tmp?.cleanup();
  });

  const diagnostics = () => ({
    llmscope: () => gw?.output(),
    alertmanager: () => am?.output(),
    'llmscope webhook': () => JSON.stringify(hook?.received, null, 1),
    'alertmanager webhook': () => JSON.stringify(amHook?.received, null, 1),
  });

  test('the built-in pack is loaded and nothing fires on healthy traffic', async () => {
    await withDiagnostics(async () => {
      const rules = await gw.api('/api/v1/rules');
      assert.equal(rules.status, 200);
      const names = rules.body.data.groups.flatMap((g) => g.rules.map((r) => r.name));
      assert.ok(names.includes(ALERT), names.join(','));
      const errorRule = rules.body.data.groups.flatMap((g) => g.rules).find((r) => r.name === ALERT);
      assert.equal(errorRule.duration, FOR_MS / 1000, 'builtin_overrides sets `for`');
      for (const m of MODELS) await send(m, 20);
      // Two scrapes and an evaluation later the error ratio is 0: nothing pending.
      await new Promise((r) => setTimeout(r, 3 * INTERVAL_MS));
      assert.deepEqual(await ruleAlerts(), []);
    }, diagnostics());
  });

  let silenceId;
  test('a silence is created through the Alertmanager v2 API', async () => {
    await withDiagnostics(async () => {
      const now = Date.now();
      const r = await gw.api('/api/v2/silences', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          matchers: [
            { name: 'alertname', value: ALERT, isRegex: false, isEqual: true },
            { name: 'model', value: 'sim/mut.*', isRegex: true, isEqual: true },
          ],
          startsAt: new Date(now - 1000).toISOString(),
          endsAt: new Date(now + 3600_000).toISOString(),
          createdBy: 'e2e', comment: 'maintenance of the muted model',
        }),
      });
      assert.equal(r.status, 200, r.text);
      silenceId = r.body.silenceID;
      assert.ok(silenceId);
      const list = await gw.api('/api/v2/silences');
      const s = list.body.find((x) => x.id === silenceId);
      assert.equal(s.status.state, 'active');
      assert.equal(s.createdBy, 'e2e');
      const bad = await gw.api('/api/v2/silences', { method: 'POST', body: '{"matchers":[]}' });
      assert.equal(bad.status, 400, bad.text);
    }, diagnostics());
  });

  test('errors rise: the rule fires within for + one interval, one grouped notification', async () => {
    await withDiagnostics(async () => {
      // Errors keep coming (half the calls fail) until every model's alert fires: a rate needs
      // the counter to grow between samples.
      let raising = true;
      const traffic = (async () => {
        while (raising) {
          for (const m of MODELS) {
            await send(m, 1, { headers: { 'x-sim-error': 'server_error' }, want: 500 });
            await send(m, 1);
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      let firing;
      const firstSeen = new Map();  // model -> local time first seen firing
      try {
        firing = await waitFor(async () => {
          const alerts = await ruleAlerts();
          for (const a of alerts) {
            if (a.state === 'firing' && !firstSeen.has(a.labels.model)) {
              firstSeen.set(a.labels.model, Date.now());
            }
          }
          const f = alerts.filter((a) => a.state === 'firing');
          return f.length === MODELS.length ? f : undefined;
        }, { timeoutMs: 30_000, intervalMs: 100, what: `${ALERT} firing for ${MODELS}` });
      } finally {
        raising = false;
        await traffic;
      }
      for (const a of firing) {
        const active = Date.parse(a.activeAt);
        const seen = firstSeen.get(a.labels.model);
        // Not before `for` has passed, and at the latest one evaluation after it (plus the
        // poll's own 100 ms and scheduling slack).
        assert.ok(seen - active >= FOR_MS, `${a.labels.model}: fired ${seen - active} ms after active`);
        assert.ok(seen - active <= FOR_MS + INTERVAL_MS + 700,
          `${a.labels.model}: fired ${seen - active} ms after active (for ${FOR_MS} + ${INTERVAL_MS})`);
        assert.equal(a.labels.severity, 'critical');
        assert.match(a.annotations.summary, /% of sim\/\w+ \(sim\) calls fail/);
      }

      // llmscope's notifier: after group_wait, exactly one notification for the group, with
      // both loud models and without the silenced one.
      const first = await waitFor(() => groupNotifications(hook)[0],
        { timeoutMs: 10_000, what: 'the first notification of the group' });
      assert.equal(first.status, 'firing');
      assert.equal(first.version, '4');
      assert.deepEqual(modelsOf(first), LOUD);
      assert.match(first.externalURL, /llmscope\.example/);
      assert.ok(first.alerts.every((a) => a.generatorURL.startsWith('http://llmscope.example:8080/')));
      // Evaluations keep re-sending the alerts; the group is not notified again unless it
      // changes (group_interval 2 s, repeat_interval 1 h).
      await new Promise((r) => setTimeout(r, 2 * 2000 + 500));
      assert.equal(groupNotifications(hook).length, 1, JSON.stringify(groupNotifications(hook)));

      // The notifier's view: the muted alert is suppressed by the silence.
      const v2 = await gw.api('/api/v2/alerts');
      const muted = v2.body.find((a) => a.labels.alertname === ALERT && a.labels.model === MUTED);
      assert.equal(muted.status.state, 'suppressed');
      assert.deepEqual(muted.status.silencedBy, [silenceId]);

      // The real Alertmanager got every alert (its silences, not llmscope's, apply there).
      const amNote = await waitFor(() => groupNotifications(amHook).find((n) => n.status === 'firing'
        && n.alerts.length === MODELS.length), { timeoutMs: 10_000, what: 'Alertmanager notification' });
      assert.deepEqual(modelsOf(amNote), [...MODELS].sort());
      const amAlerts = await (await fetch(`${am.url}/api/v2/alerts?filter=alertname%3D${ALERT}`)).json();
      assert.equal(amAlerts.length, MODELS.length);
      assert.ok(amAlerts.every((a) => a.generatorURL.startsWith('http://llmscope.example:8080/')));
    }, diagnostics());
  });

  test('an expired silence lets the muted alert through', async () => {
    await withDiagnostics(async () => {
      const r = await gw.api(`/api/v2/silence/${silenceId}`, { method: 'DELETE' });
      assert.equal(r.status, 200, r.text);
      const s = await gw.api(`/api/v2/silence/${silenceId}`);
      assert.equal(s.body.status.state, 'expired');
      const note = await waitFor(() => groupNotifications(hook).find((n) => modelsOf(n).includes(MUTED)),
        { timeoutMs: 10_000, what: 'a notification with the unsilenced model' });
      assert.equal(note.status, 'firing');
      assert.deepEqual(modelsOf(note), [...MODELS].sort());
      assert.equal((await gw.api('/api/v2/silence/no-such-id')).status, 404);
    }, diagnostics());
  });

  test('healthy traffic resolves the alerts and both webhooks hear of it', async () => {
    await withDiagnostics(async () => {
      // Under 1 % of the last 5 minutes' calls fail once each model has 2000 more successes.
      await Promise.all(MODELS.map((m) => send(m, 2000, { concurrency: 6 })));
      await waitFor(async () => (await ruleAlerts()).length === 0 || undefined,
        { timeoutMs: 15_000, intervalMs: 100, what: `${ALERT} resolved` });
      // Models may resolve at different evaluations: each is notified as resolved (once
      // notified, a resolved alert leaves its group, as in Alertmanager), and the group's
      // last notification is a resolved one.
      const resolvedModels = (receiver) => new Set(groupNotifications(receiver)
        .flatMap((n) => n.alerts.filter((a) => a.status === 'resolved').map((a) => a.labels.model)));
      for (const [name, receiver] of [['llmscope', hook], ['Alertmanager', amHook]]) {
        await waitFor(() => MODELS.every((m) => resolvedModels(receiver).has(m)) || undefined,
          { timeoutMs: 15_000, what: `${name}: every model notified as resolved` });
        const notes = groupNotifications(receiver);
        const last = notes[notes.length - 1];
        assert.equal(last.status, 'resolved', `${name}: the last notification`);
        assert.ok(last.alerts.every((a) => a.status === 'resolved' && Date.parse(a.endsAt) > 0));
      }
    }, diagnostics());
  });
});

describe('rules reload', () => {
  let rgw;
  let dir;
  let cleanup;
  let rulesPath;
  const group = (name, record) => ({ groups: [{ name, interval: '1s', rules: [{ record, expr: 'sum(llm_requests_total)' }] }] });

  before(async () => {
    ({ dir, cleanup } = makeTempDir('llmscope-reload-'));
    rulesPath = path.join(dir, 'rules.yaml');
    fs.writeFileSync(rulesPath, JSON.stringify(group('mine', 'job:llm_requests:sum')));
    rgw = await startGateway((calls) => ({
      ...defaultConfig(calls),
      tsdb: { scrape_interval: '1s' },
      rules: { builtin: false, files: [rulesPath] },
    }));
  });
  after(async () => {
    if (rgw) assert.equal((await rgw.stop()).code, 0, rgw.output());
    cleanup?.();
  });

  const ruleNames = async () => {
    const r = await rgw.api('/api/v1/rules');
    return r.body.data.groups.flatMap((g) => g.rules.map((x) => x.name)).sort();
  };

  test('a recording rule writes its series back into the metrics history', async () => {
    await withDiagnostics(async () => {
      assert.deepEqual(await ruleNames(), ['job:llm_requests:sum']);
      await postJson(`${rgw.baseURL}/v1/chat/completions`, { model: 'sim/x', messages: [{ role: 'user', content: 'a' }] });
      const v = await waitFor(async () => {
        const r = await rgw.api('/api/v1/query?query=job:llm_requests:sum');
        const s = r.body.data?.result?.[0];
        return s && Number(s.value[1]) >= 1 ? s : undefined;
      }, { timeoutMs: 10_000, intervalMs: 100, what: 'the recorded series' });
      assert.equal(v.metric.__name__, 'job:llm_requests:sum');
    }, { llmscope: () => rgw.output() });
  });

  test('SIGHUP loads a changed file; an invalid file is rejected and the rules keep running', async () => {
    await withDiagnostics(async () => {
      fs.writeFileSync(rulesPath, JSON.stringify(group('mine', 'job:llm_requests:total')));
      process.kill(rgw.pid, 'SIGHUP');
      await waitFor(async () => (await ruleNames()).includes('job:llm_requests:total') || undefined,
        { timeoutMs: 10_000, what: 'the reloaded rule' });

      fs.writeFileSync(rulesPath, 'groups:\n- name: bad\n  rules:\n  - record: "not a name"\n    expr: sum(\n');
      const r = await rgw.api('/-/reload', { method: 'POST' });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.status, 'error');
      assert.match(r.body.error, /rules\.yaml/);
      assert.match(r.body.error, /not a name/);
      assert.match(r.body.error, /expr/);
      assert.deepEqual(await ruleNames(), ['job:llm_requests:total'], 'the previous rules keep running');
      assert.equal((await rgw.api('/-/reload')).status, 405);
    }, { llmscope: () => rgw.output() });
  });
});

describe('llmscope config check covers rule files and the alerting config', () => {
  test('the shipped example passes; a broken alerting file or rule override is named', () => {
    const { dir, cleanup } = makeTempDir('llmscope-check-');
    try {
      const check = (cfg) => {
        const p = path.join(dir, 'c.yaml');
        fs.writeFileSync(p, JSON.stringify({ ...defaultConfig(path.join(dir, 'calls')), ...cfg }));
        return spawnSync(LLMSCOPE_BIN, ['config', 'check', p], { encoding: 'utf8' });
      };
      const example = path.join(REPO_ROOT, 'examples', 'alerting.yaml');
      const ok = check({ alerting: { config_file: example } });
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /14 rules, alerting config/);

      const bad = path.join(dir, 'alerting.yaml');
      fs.writeFileSync(bad, 'route: {receiver: nope}\n');
      const r1 = check({ alerting: { config_file: bad } });
      assert.equal(r1.status, 1);
      assert.match(r1.stderr, /route\.receiver: undefined receiver "nope"/);

      const r2 = check({ rules: { builtin_overrides: { NoSuchAlert: { for: '1m' } } } });
      assert.equal(r2.status, 1);
      assert.match(r2.stderr, /rules\.builtin_overrides\.NoSuchAlert: no built-in alert has this name/);
    } finally {
      cleanup();
    }
  });
});
