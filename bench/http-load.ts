/**
 * An HTTP load generator on its own thread, so a benchmark does not measure its client competing
 * with the API for the same event loop. Open loop (`paced`: request i leaves at i/rate s) or
 * closed loop (`closed`: `concurrency` callers back to back).
 */
import { Worker } from 'node:worker_threads';

export interface LoadRequest {
  method: string;
  path: string;
  token: string;
  body?: unknown;
}
export interface LoadResult {
  status: number;
  ms: number;
  body: string;
}

const CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { base, requests, mode, rate, concurrency, bodies } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const url = new URL(base);
function call(r) {
  return new Promise((resolve) => {
    const payload = r.body === undefined ? undefined : JSON.stringify(r.body);
    const headers = { authorization: r.token };
    if (payload !== undefined) { headers['content-type'] = 'application/json'; headers['content-length'] = Buffer.byteLength(payload); }
    const t0 = performance.now();
    const req = http.request({ agent, host: url.hostname, port: url.port, method: r.method, path: r.path, headers }, (res) => {
      // Bodies of successful answers are kept only when asked for: copying them is the client's
      // largest cost, and it runs on the same cores as the API it measures.
      const keep = bodies === 'all' || res.statusCode >= 300;
      const chunks = [];
      res.on('data', (c) => { if (keep) chunks.push(c); });
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0, body: keep ? Buffer.concat(chunks).toString('utf8') : '' }));
    });
    req.on('error', (e) => resolve({ status: 0, ms: performance.now() - t0, body: String(e) }));
    req.end(payload);
  });
}
(async () => {
  const results = new Array(requests.length);
  const start = performance.now();
  if (mode === 'paced') {
    const running = [];
    for (let i = 0; i < requests.length; i++) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      running.push(call(requests[i]).then((x) => { results[i] = x; }));
    }
    await Promise.all(running);
  } else {
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < requests.length) { const i = next++; results[i] = await call(requests[i]); }
    }));
  }
  parentPort.postMessage({ results, elapsedMs: performance.now() - start });
})();
`;

export function runLoad(opts: {
  base: string;
  requests: LoadRequest[];
  mode: 'paced' | 'closed';
  rate?: number;
  concurrency?: number;
  /** Keep every answer's body (default), or only those of answers that are not 2xx. */
  bodies?: 'all' | 'failures';
}): Promise<{ results: LoadResult[]; elapsedMs: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(CODE, { eval: true, workerData: { bodies: 'all', ...opts } });
    w.once('message', (m: { results: LoadResult[]; elapsedMs: number }) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
  });
}
