// Test client for Palisade's /graphql/ws endpoint, driven by the Rust test suite.
// It uses the real `graphql-ws` client so the server is checked against the
// protocol as a third party implements it, not as we read the spec.
//
// usage: node client.mjs <ws-url> <credential> <count> [after-cursor]
// stdout, one JSON object per line:
//   {"connected":true}            once the server acked connection_init
//   <data.auditEvents>            one line per event
//   {"done":true}                 after <count> events (exit 0)
//   {"error":...}                 on any failure (exit 2), or on timeout (exit 3)
// env CLIENT_TIMEOUT_MS (default 15000): exit 3 when nothing happens for that long.

// The `/client` entry point, because the package root also loads the server
// half, which needs `graphql` installed.
import { createClient } from 'graphql-ws/client';
import WebSocket from 'ws';

const [url, credential, countArg, after] = process.argv.slice(2);
const count = Number.parseInt(countArg ?? '', 10);
if (!url || !credential || !(count > 0)) {
  console.error('usage: node client.mjs <ws-url> <credential> <count> [after-cursor]');
  process.exit(64);
}
const timeoutMs = Number.parseInt(process.env.CLIENT_TIMEOUT_MS ?? '15000', 10);

let finished = false;
let received = 0;
let client;

// Exit only once stdout has drained, so the Rust side never loses the last line.
function finish(line, code) {
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(line) + '\n', () => {
    // dispose() closes with 1000 and fires `closed`; `finished` keeps that from
    // being reported as a failure.
    Promise.resolve(client?.dispose()).finally(() => process.exit(code));
  });
}

// Close events and errors don't serialise on their own (their fields are getters
// or non-enumerable), so pick out what a test would want to assert on.
function describe(err) {
  if (err && typeof err === 'object' && 'code' in err && 'reason' in err) {
    return { error: 'closed', code: err.code, reason: String(err.reason ?? '') };
  }
  if (Array.isArray(err)) return { error: 'graphql', errors: err };
  if (err instanceof Error) return { error: err.message };
  if (err && typeof err === 'object' && (err.message || err.error)) {
    // ws's ErrorEvent: the socket failed (e.g. connection refused)
    return { error: 'socket', message: err.message || String(err.error) };
  }
  return { error: String(err) };
}
const fail = (err) => finish(describe(err), 2);

// An inactivity timer rather than a total one: a slow replay of many entries is
// fine, a stream that goes silent is not.
let timer;
function touch() {
  clearTimeout(timer);
  timer = setTimeout(() => finish({ error: 'timeout', after_ms: timeoutMs, received }, 3), timeoutMs);
}
touch();

client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { token: credential },
  retryAttempts: 0,
  lazy: false,
  // In non-lazy mode failures with no subscription active land here (default
  // console.error), not in the sink.
  onNonLazyError: fail,
  on: {
    connected: () => {
      touch();
      process.stdout.write('{"connected":true}\n');
    },
    closed: (event) => fail(event),
    error: (err) => fail(err),
  },
});

client.subscribe(
  {
    query:
      'subscription($a: String) { auditEvents(after: $a) { cursor entry { seq action module actor { kind } changes } } }',
    variables: { a: after ?? null },
  },
  {
    next: (result) => {
      if (finished) return;
      if (result.errors?.length) return fail(result.errors);
      touch();
      process.stdout.write(JSON.stringify(result.data?.auditEvents ?? null) + '\n');
      received += 1;
      if (received >= count) finish({ done: true }, 0);
    },
    error: fail,
    // The server ending the stream before <count> events is a failure too.
    complete: () => finish({ error: 'completed', received }, 2),
  },
);
