/**
 * Where personal data could leak, read back for the canary tests: every Temporal history of a
 * test system (raw bytes and decrypted payloads), its log lines, and every table but the vault.
 */
import { sql } from 'drizzle-orm';
import { EncryptionCodec } from '../../infra/codec';
import type { TestSystem } from './system';

/** Every string in a Temporal history: raw bytes as text, and every payload decrypted with the codec. */
export async function historyText(
  sys: TestSystem,
  workflowId: string,
  runId?: string,
): Promise<{ raw: string; decoded: string }> {
  const history = await sys.client.workflow.getHandle(workflowId, runId).fetchHistory();
  const codec = new EncryptionCodec(sys.config.keys.payload);
  const raw: string[] = [];
  const decoded: string[] = [];
  const walk = async (v: unknown): Promise<void> => {
    if (v instanceof Uint8Array) {
      raw.push(Buffer.from(v).toString('utf8'), Buffer.from(v).toString('latin1'));
      return;
    }
    if (typeof v === 'string') {
      raw.push(v);
      return;
    }
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (o.metadata && o.data instanceof Uint8Array) {
      const [plain] = await codec.decode([o as never]);
      decoded.push(Buffer.from((plain as { data?: Uint8Array }).data ?? new Uint8Array()).toString('utf8'));
    }
    for (const x of Object.values(o)) await walk(x);
  };
  await walk(history);
  return { raw: raw.join('\n'), decoded: decoded.join('\n') };
}

/** Every workflow execution (all runs) this system's task queue ran. */
export async function executionsOf(sys: TestSystem): Promise<Array<{ workflowId: string; runId: string; type: string }>> {
  const out: Array<{ workflowId: string; runId: string; type: string }> = [];
  for await (const w of sys.client.workflow.list({ query: `TaskQueue = '${sys.taskQueue}'` })) {
    out.push({ workflowId: w.workflowId, runId: w.runId, type: w.type });
  }
  return out;
}

/** The text of every row of every table except the identity vault. */
export async function tablesText(sys: TestSystem): Promise<Map<string, string>> {
  const tables = await sys.db.execute<{ table_name: string }>(
    sql`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' and table_name <> 'identity_vault'`,
  );
  const out = new Map<string, string>();
  for (const { table_name } of tables.rows) {
    const dump = await sys.db.execute<{ row: string }>(sql.raw(`select t::text as row from "${table_name}" t`));
    out.set(table_name, dump.rows.map((r) => r.row).join('\n'));
  }
  return out;
}
