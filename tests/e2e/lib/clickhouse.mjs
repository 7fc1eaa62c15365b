// A throwaway ClickHouse server for the end-to-end tests: Debian's clickhouse-server,
// configured in a temp directory, listening on 127.0.0.1 only, on ports chosen free at
// start. Stopped by its PID. The same data directory can be started again (a restart), so
// tests can take ClickHouse down and bring it back.

import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { freePort, makeTempDir, waitFor } from './harness.mjs';

const CLICKHOUSE_SERVER = process.env.CLICKHOUSE_SERVER ?? '/usr/sbin/clickhouse-server';

function writeConfig(dir, httpPort, tcpPort) {
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'user_files'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'format_schemas'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.xml'), `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${dir}/server.log</log>
    <errorlog>${dir}/server.err.log</errorlog>
    <console>0</console>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
</yandex>
`);
  fs.writeFileSync(path.join(dir, 'users.xml'), `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage><min_compress_block_size>4096</min_compress_block_size></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default></default></quotas>
</yandex>
`);
}

// Starts ClickHouse; resolves with {url, httpPort, dir, start(), stop(), cleanup()}.
// stop() SIGTERMs by PID (SIGKILL after 20 s) and waits; start() starts it again on the same
// ports and data. cleanup() stops it and removes the directory.
export async function startClickHouse() {
  if (!fs.existsSync(CLICKHOUSE_SERVER)) {
    throw new Error(`${CLICKHOUSE_SERVER} is missing: scripts/setup.sh installs clickhouse-server`);
  }
  const { dir, cleanup: removeDir } = makeTempDir('llmscope-ch-');
  const httpPort = await freePort();
  const tcpPort = await freePort();
  writeConfig(dir, httpPort, tcpPort);
  const url = `http://127.0.0.1:${httpPort}`;
  let child = null;
  let exited = null;

  const start = async () => {
    child = spawn(CLICKHOUSE_SERVER, [`--config-file=${path.join(dir, 'config.xml')}`], {
      stdio: ['ignore', 'ignore', 'ignore'],
      cwd: dir,
    });
    exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    let gone = null;
    exited.then((info) => { gone = info; });
    await waitFor(async () => {
      if (gone) {
        const err = fs.existsSync(path.join(dir, 'server.err.log'))
          ? fs.readFileSync(path.join(dir, 'server.err.log'), 'utf8').slice(-2000) : '';
        throw Object.assign(new Error(`clickhouse-server exited (${JSON.stringify(gone)}):\n${err}`),
          { fatal: true });
      }
      try {
        const r = await fetch(`${url}/ping`);
        return r.ok ? true : undefined;
      } catch {
        return undefined;
      }
    }, { timeoutMs: 60_000, what: `clickhouse-server on ${url}` });
  };

  const stop = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }, 20_000);
    await exited;
    clearTimeout(timer);
  };

  // Runs one SQL statement over HTTP; resolves with the response text.
  const query = async (sql) => {
    const r = await fetch(`${url}/`, { method: 'POST', body: sql });
    const text = await r.text();
    if (!r.ok) throw new Error(`clickhouse: ${r.status} ${text}`);
    return text;
  };

  await start();
  return {
    url,
    httpPort,
    dir,
    start,
    stop,
    query,
    // The server's error log, for failure messages.
    errorLog: () => {
      const f = path.join(dir, 'server.err.log');
      return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : undefined;
    },
    cleanup: async () => {
      await stop();
      removeDir();
    },
  };
}
