// A real Prometheus for the end-to-end tests: Debian's `prometheus` and `promtool`, started
// on a free loopback port and stopped by PID.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { freePort, waitFor } from './harness.mjs';

export function which(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir || '.', name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

export const PROMETHEUS = which('prometheus');
export const PROMTOOL = which('promtool');
// A reason to skip when Prometheus is missing, else false.
export const PROMETHEUS_MISSING = !PROMETHEUS || !PROMTOOL
  ? `Prometheus is not installed (need both \`prometheus\` and \`promtool\` on PATH; ` +
    `Debian: apt-get install prometheus); found prometheus=${PROMETHEUS}, promtool=${PROMTOOL}`
  : false;

// Starts a Prometheus-family server (`bin`, run with `argsFor(port, attempt)`) on a free
// loopback port and waits for its /-/ready. A port taken between the check and the bind is
// retried (3 attempts). Resolves with {url, pid, stop() (SIGTERM by PID, SIGKILL after
// 10 s), output()}. Shared by Prometheus and Alertmanager.
export async function startReadyServer(name, bin, argsFor) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    let out = '';
    const child = spawn(bin, argsFor(port, attempt), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    let exited = null;
    const exit = new Promise((resolve) => child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    }));
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(async () => {
        if (exited) throw Object.assign(new Error(`${name} exited (${JSON.stringify(exited)}):\n${out}`), { fatal: true });
        const r = await fetch(`${url}/-/ready`);
        return r.status === 200;
      }, { timeoutMs: 30_000, intervalMs: 100, what: `${name} /-/ready` });
    } catch (e) {
      if (!exited) child.kill('SIGKILL');
      await exit;
      if (attempt < 3 && /address already in use/.test(out)) continue;
      throw new Error(`${e.message}\n${out}`);
    }
    const stop = async () => {
      if (!exited) {
        process.kill(child.pid, 'SIGTERM');
        const timer = setTimeout(() => { if (!exited) process.kill(child.pid, 'SIGKILL'); }, 10_000);
        await exit;
        clearTimeout(timer);
      }
      return exited;
    };
    process.on('exit', () => { if (!exited) child.kill('SIGKILL'); });
    return { url, pid: child.pid, stop, output: () => out };
  }
}

// Starts Prometheus with `config` (an object, written as YAML-compatible JSON into `dir`)
// and its TSDB in `dataDir` (default: a fresh directory under `dir` per attempt). Resolves
// with {url, pid, stop(), output()} once /-/ready answers. Prometheus cannot report the port
// it got, so a free one is taken and the start retried on a lost race.
export async function startPrometheus({ dir, config, dataDir, args = [] }) {
  const configPath = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  return startReadyServer('prometheus', PROMETHEUS, (port, attempt) => [
    `--config.file=${configPath}`,
    `--storage.tsdb.path=${dataDir ?? path.join(dir, `data${attempt}`)}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
    ...args,
  ]);
}
