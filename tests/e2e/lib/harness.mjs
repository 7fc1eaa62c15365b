// Start/stop helpers for llmscope's end-to-end tests.
//
// Every process runs on 127.0.0.1 with a port chosen by the OS (port 0) and reports it
// through --ready-file. Every wait has a deadline; nothing sleeps a fixed time to "let
// things settle". Processes are stopped by PID with SIGTERM (llmscope drains and exits 0);
// anything still alive when the test process exits is killed.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

// The binary under test: $LLMSCOPE_BIN (absolute, or relative to the repository root).
export const LLMSCOPE_BIN = path.resolve(
  REPO_ROOT,
  process.env.LLMSCOPE_BIN || 'build/release/llmscope',
);

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const POLL_MS = 15;

// Children still running, killed if the test process exits without stopping them.
const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

// A fresh temporary directory, removed by the returned cleanup function.
export function makeTempDir(prefix = 'llmscope-e2e-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

// Polls `fn` (sync or async) until it returns a value other than undefined/false/null,
// or throws after `timeoutMs` with `what` and the last error in the message. An error
// with `fatal: true` ends the wait at once.
export async function waitFor(fn, { timeoutMs = 5000, intervalMs = POLL_MS, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false && v !== null) return v;
    } catch (e) {
      if (e?.fatal) throw e;
      lastError = e;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}` +
          (lastError ? `: ${lastError.message ?? lastError}` : ''),
      );
    }
    await delay(intervalMs);
  }
}

// Runs `fn`; when it throws, appends the tail of each diagnostic source to the error's
// message, so that a failure in CI shows what the processes said. `sources` maps a label to
// a function returning text (or undefined when there is nothing to show).
export async function withDiagnostics(fn, sources) {
  try {
    return await fn();
  } catch (e) {
    let extra = '';
    for (const [label, get] of Object.entries(sources)) {
      let text;
      try {
        text = get();
      } catch (err) {
        text = `(unavailable: ${err.message})`;
      }
      if (text) extra += `\n--- ${label} (last 4000 characters) ---\n${String(text).slice(-4000)}`;
    }
    if (extra && e instanceof Error) e.message += extra;
    throw e;
  }
}

// Spawns `bin args...` that writes {"port":N,"pid":P} to `readyFile` once listening.
// Resolves with {child, port, pid, stderr(), stop()}; rejects (with the process's stderr)
// if it exits first or the ready file does not appear in time.
export async function spawnReady(bin, args, readyFile, { env = {}, name = path.basename(bin) } = {}) {
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  live.add(child);
  let out = '';
  const keep = (chunk) => {
    out += chunk.toString('utf8');
    if (out.length > 64 * 1024) out = out.slice(-32 * 1024);  // the tail is what matters
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      live.delete(child);
      resolve(exitInfo);
    });
    child.on('error', (err) => {
      exitInfo = { code: null, signal: null, error: err };
      live.delete(child);
      resolve(exitInfo);
    });
  });

  let ready;
  try {
    ready = await waitFor(
      () => {
        if (exitInfo) {
          throw Object.assign(new Error(
            `${name} (${bin}) exited before it was ready (code ${exitInfo.code}, signal ` +
              `${exitInfo.signal}${exitInfo.error ? `, ${exitInfo.error.message}` : ''}):\n${out}`,
          ), { fatal: true });
        }
        if (!fs.existsSync(readyFile)) return undefined;
        return JSON.parse(fs.readFileSync(readyFile, 'utf8'));
      },
      { timeoutMs: READY_TIMEOUT_MS, what: `${name} ready file ${readyFile}` },
    );
  } catch (e) {
    if (!exitInfo) child.kill('SIGKILL');
    await exited;
    if (e.fatal) throw e;
    throw new Error(`${e.message}\n${name} output:\n${out}`);
  }
  if (!Number.isInteger(ready.port) || ready.port <= 0 || ready.pid !== child.pid) {
    child.kill('SIGKILL');
    throw new Error(`${name} wrote a bad ready file: ${JSON.stringify(ready)} (pid ${child.pid})`);
  }

  let stopping = null;
  // SIGTERM by PID, then waits for the exit; SIGKILL after STOP_TIMEOUT_MS. Resolves with
  // {code, signal}. Idempotent.
  const stop = () => {
    if (stopping) return stopping;
    stopping = (async () => {
      if (exitInfo) return exitInfo;
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        // raced with its exit
      }
      const timer = setTimeout(() => {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }, STOP_TIMEOUT_MS);
      const info = await exited;
      clearTimeout(timer);
      return info;
    })();
    return stopping;
  };
  return { child, port: ready.port, pid: child.pid, output: () => out, exited, stop };
}

// The default gateway configuration: the in-process simulator answers `sim/*`, fast.
// JSON is YAML, so a config is written as JSON.
export function defaultConfig(callsPath) {
  return {
    listen: '127.0.0.1:0',
    threads: 2,
    logs: { calls: callsPath, level: 'warn' },
    simulator: {
      latency_ms: 2,
      ttft_ms: 5,
      tokens_per_second: 2000,
      min_output_tokens: 8,
      max_output_tokens: 24,
      seed: 7,
    },
    upstreams: [{ name: 'sim', kind: 'simulator' }],
    routes: [{ prefix: 'sim/', upstream: 'sim' }],
  };
}

// Reads the call log: every complete line parsed (a torn last line is ignored).
export function readCallLog(callsPath) {
  if (!fs.existsSync(callsPath)) return [];
  const text = fs.readFileSync(callsPath, 'utf8');
  const lines = text.split('\n');
  lines.pop();  // after the last '\n': empty, or a line still being written
  return lines.filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
}

// Polls the call log until at least `min` records satisfy `pred`; returns them all.
export async function readCalls(callsPath, pred = () => true, timeoutMs = 5000, min = 1) {
  try {
    return await waitFor(
      () => {
        const hits = readCallLog(callsPath).filter(pred);
        return hits.length >= min ? hits : undefined;
      },
      { timeoutMs, what: `${min} matching call log record(s) in ${callsPath}` },
    );
  } catch (e) {
    const all = readCallLog(callsPath);
    throw new Error(`${e.message}; the log has ${all.length} record(s):\n` +
      all.slice(-10).map((r) => JSON.stringify(r)).join('\n'));
  }
}

// Starts `llmscope serve` with `config` (an object, written as JSON; `config(callsPath)`
// when a function). Returns {port, pid, baseURL, callsPath, dir, readCalls, callById,
// metrics, stop}. stop() SIGTERMs by PID, waits for the exit, removes the temp dir and
// resolves with {code, signal}.
//
// Storage goes to <dir>/data unless the config names a storage dir. `reuseDir` starts in
// an existing directory of an earlier gateway (a restart over the same data); that
// directory is then left for its first owner to remove.
export async function startGateway(config = defaultConfig, { env = {}, reuseDir } = {}) {
  const made = reuseDir ? { dir: reuseDir, cleanup: () => {} } : makeTempDir('llmscope-gw-');
  const { dir, cleanup } = made;
  const callsPath = path.join(dir, 'calls.jsonl');
  const cfg = structuredClone(typeof config === 'function' ? config(callsPath) : config);
  cfg.storage = { ...(cfg.storage ?? {}) };
  if (!cfg.storage.dir) cfg.storage.dir = path.join(dir, 'data');
  const configPath = path.join(dir, 'llmscope.yaml');
  fs.writeFileSync(configPath, JSON.stringify(cfg, null, 2));
  const readyFile = path.join(dir, 'ready.json');
  fs.rmSync(readyFile, { force: true });  // a restart in the same dir must not read the old one
  let proc;
  try {
    proc = await spawnReady(
      LLMSCOPE_BIN,
      ['serve', '--config', configPath, '--listen', '127.0.0.1:0', '--ready-file', readyFile],
      readyFile,
      { env, name: 'llmscope serve' },
    );
  } catch (e) {
    cleanup();
    throw e;
  }
  const baseURL = `http://127.0.0.1:${proc.port}`;
  return {
    port: proc.port,
    pid: proc.pid,
    baseURL,
    callsPath,
    configPath,
    dir,
    output: proc.output,
    exited: proc.exited,
    readCalls: (pred, timeoutMs, min) => readCalls(callsPath, pred, timeoutMs, min),
    // The log record of one request, by the x-llmscope-request-id the gateway answered with.
    callById: async (id, timeoutMs = 5000) => {
      if (!id) throw new Error('callById: no request id (missing x-llmscope-request-id?)');
      return (await readCalls(callsPath, (r) => r.request_id === id, timeoutMs))[0];
    },
    metrics: async (accept) => {
      const r = await fetch(`${baseURL}/metrics`, accept ? { headers: { accept } } : {});
      return { status: r.status, contentType: r.headers.get('content-type'), body: await r.text() };
    },
    stop: async () => {
      const info = await proc.stop();
      cleanup();
      return info;
    },
    // SIGKILL by PID (a crash: no drain, no flush) and wait for the exit. The directory is
    // kept so that a gateway started with {reuseDir: gw.dir} sees what survived.
    kill9: async () => {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      return proc.exited;
    },
    cleanup,
    // GET/POST helpers for the query API: resolve with {status, body (parsed JSON)}.
    api: async (pathAndQuery, init) => {
      const r = await fetch(`${baseURL}${pathAndQuery}`, init);
      const text = await r.text();
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      return { status: r.status, headers: r.headers, body, text };
    },
  };
}

// Starts a standalone `llmscope simulate`. `args` are extra flags (e.g. ['--ttft-ms', '5']);
// `config`, when given, is written to a file and passed with --config (its `simulator`
// section then matches a gateway started with the same object).
export async function startSimulator({ args = [], config } = {}) {
  const { dir, cleanup } = makeTempDir('llmscope-sim-');
  const readyFile = path.join(dir, 'ready.json');
  const full = ['simulate', '--listen', '127.0.0.1:0', '--ready-file', readyFile, '--threads', '1'];
  if (config) {
    const configPath = path.join(dir, 'sim.yaml');
    fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
    full.push('--config', configPath);
  }
  full.push(...args);
  let proc;
  try {
    proc = await spawnReady(LLMSCOPE_BIN, full, readyFile, { name: 'llmscope simulate' });
  } catch (e) {
    cleanup();
    throw e;
  }
  return {
    port: proc.port,
    pid: proc.pid,
    baseURL: `http://127.0.0.1:${proc.port}`,
    output: proc.output,
    stop: async () => {
      const info = await proc.stop();
      cleanup();
      return info;
    },
  };
}

// A TCP port that was free a moment ago and now has nothing listening: an unreachable
// upstream. (The OS may hand it out again, but not within a test's few seconds in practice.)
export async function closedPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// A free port for a third-party server that cannot report the one it got (Prometheus).
export const freePort = closedPort;

// POSTs JSON (or a raw string) and returns {status, headers, text, json}.
export async function postJson(url, body, headers = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, headers: r.headers, text, json };
}

// Splits an SSE body into events: [{event, data}] (data lines joined with '\n').
export function parseSse(text) {
  const events = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (block.trim() === '') continue;
    let event = null;
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    events.push({ event, data: data.join('\n') });
  }
  return events;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// The sum of a Prometheus text exposition's samples of metric `name` whose labels include
// every pair of `labels` (unlabelled samples count when `labels` is empty).
export function metricValue(text, name, labels = {}) {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

// The first span, depth first, of a trace tree (`/api/v1/traces/<id>` roots, each with its
// `children`) for which `pred` holds; undefined when none does.
export function findSpan(nodes, pred) {
  for (const n of nodes) {
    if (pred(n)) return n;
    const hit = findSpan(n.children ?? [], pred);
    if (hit) return hit;
  }
  return undefined;
}

// Runs a Node script once with `env` added to this process' environment, killed after 30 s;
// resolves with the JSON of the last line it printed (its result), rejects naming `name`
// when it exits non-zero or prints no JSON.
export function runNodeScript(file, env, name) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${name} exited ${code}:\n${err}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch (e) {
        reject(new Error(`${name} printed no result: ${out}\n${err}`));
      }
    });
  });
}
