import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = path.resolve(__dirname, '../../workflows');
const FORBIDDEN = /from\s+['"](node:[^'"]+|fs|path|crypto|pg|express|drizzle-orm[^'"]*|pino|\.\.\/(db|api|infra)(\/[^'"]*)?)['"]/;
const VALUE_IMPORT_OF_ACTIVITIES = /^import\s+(?!type\b)[^;]*from\s+['"]\.\.\/activities[^'"]*['"]/m;

describe('workflows/ stays deterministic', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  it('has workflow files to check', () => expect(files.length).toBeGreaterThan(0));
  for (const f of files) {
    it(`${f} imports no node:*, db/, api/, infra/ or I/O library, and activities only as a type`, () => {
      const src = readFileSync(path.join(dir, f), 'utf8');
      expect(src.match(FORBIDDEN)?.[0] ?? null).toBeNull();
      expect(src.match(VALUE_IMPORT_OF_ACTIVITIES)?.[0] ?? null).toBeNull();
    });
  }
});
