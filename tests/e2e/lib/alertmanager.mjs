// A real Alertmanager for the end-to-end tests (Debian's prometheus-alertmanager), on a free
// loopback port with clustering off, stopped by PID; and a webhook receiver (a Node HTTP
// server) that records every notification it gets.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { startReadyServer, which } from './prometheus.mjs';

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
  return startReadyServer('alertmanager', ALERTMANAGER, (port, attempt) => [
    `--config.file=${configPath}`,
    `--storage.path=${path.join(dir, `am-data${attempt}`)}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--cluster.listen-address=',
    '--log.level=warn',
  ]);
}
