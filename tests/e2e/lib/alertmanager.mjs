// A real Alertmanager for the end-to-end tests (Debian's prometheus-alertmanager), on a free
// loopback port with clustering off, stopped by PID; and a webhook receiver (a Node HTTP
// server) that records every notification it gets.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { freePort, waitFor } from './harness.mjs';
import { which } from './prometheus.mjs';

export const ALERTMANAGER = which('prometheus-alertmanager') ?? which('alertmanager');
export const ALERTMANAGER_MISSING = ALERTMANAGER
  ? false
  : 'Alertmanager is not installed (Debian: apt-get install prometheus-alertmanager)';

// Starts a webhook receiver on 127.0.0.1. Resolves with {url, received (array of parsed
// bodies, in arrival order), close()}.
export async function startWebhookReceiver() {
  const received = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      try {
        received.push({ path: req.url, body: JSON.parse(body) });
      } catch {
        received.push({ path: req.url, raw: body });
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// Starts Alertmanager with `config` (an object, written as JSON, which is YAML) in `dir`.
// Resolves with {url, stop(), output()} once /-/ready answers.
export async function startAlertmanager({ dir, config }) {
  const configPath = path.join(dir, 'alertmanager.yml');
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    let out = '';
    const child = spawn(ALERTMANAGER, [
      `--config.file=${configPath}`,
      `--storage.path=${path.join(dir, `am-data${attempt}`)}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=warn',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
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
        if (exited) throw Object.assign(new Error(`alertmanager exited (${JSON.stringify(exited)}):\n${out}`), { fatal: true });
        const r = await fetch(`${url}/-/ready`);
        return r.status === 200;
      }, { timeoutMs: 30_000, intervalMs: 100, what: 'Alertmanager /-/ready' });
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
