/**
 * Pseudonyms and the identity vault's encryption.
 *
 * - `externalKey` / `pseudonymFor`: keyed HMAC-SHA256 with PSEUDONYM_KEY (configuration, never a
 *   database row), so the database alone cannot map a pseudonym back to a person.
 * - `sealIdentity` / `openIdentity`: AES-256-GCM with VAULT_KEYS (first key encrypts, any decrypts),
 *   key id stored per row. Only the vault module and the reveal/notice paths may call `openIdentity`.
 */
import { createHmac } from 'node:crypto';
import { decrypt, encrypt, type KeyRingEntry } from './codec';

/** The identity record kept in the vault. */
export interface IdentityRecord {
  externalId: string;
  displayName: string;
  email?: string | null;
  upn?: string | null;
  manager?: string | null;
  department?: string | null;
}

function hmac(key: string, value: string): Buffer {
  return createHmac('sha256', key).update(value).digest();
}

/** How a connector's external id is matched without storing it: hex HMAC. */
export function externalKey(pseudonymKey: string, externalId: string): string {
  return hmac(pseudonymKey, `ext:${externalId}`).toString('hex');
}

const ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ'; // no 0/O, 1/I/L

/** Stable pseudonym in the style `Anon-7KQ2-M4`, derived from the external id with the keyed HMAC. */
export function pseudonymFor(pseudonymKey: string, externalId: string, attempt = 0): string {
  const digest = hmac(pseudonymKey, `pseudonym:${attempt}:${externalId}`);
  const chars = Array.from(digest.subarray(0, 6), (b) => ALPHABET[b % ALPHABET.length]).join('');
  return `Anon-${chars.slice(0, 4)}-${chars.slice(4, 6)}`;
}

export function identityFingerprint(vaultKey: Buffer, record: IdentityRecord): string {
  return createHmac('sha256', vaultKey).update(JSON.stringify(record)).digest('hex');
}

export function sealIdentity(
  ring: KeyRingEntry[],
  record: IdentityRecord,
): { keyId: string; ciphertext: string; fingerprint: string } {
  const active = ring[0]!;
  return {
    keyId: active.id,
    ciphertext: Buffer.from(encrypt(Buffer.from(JSON.stringify(record)), active.key)).toString('base64'),
    fingerprint: identityFingerprint(active.key, record),
  };
}

export function openIdentity(ring: KeyRingEntry[], row: { keyId: string; ciphertext: string }): IdentityRecord {
  const entry = ring.find((k) => k.id === row.keyId);
  if (!entry) throw new Error(`no vault key with id ${row.keyId} is configured`);
  return JSON.parse(Buffer.from(decrypt(Buffer.from(row.ciphertext, 'base64'), entry.key)).toString('utf8')) as IdentityRecord;
}

/**
 * Open a subject's vault row and check that it is this subject's: the record's external id must
 * give the subject's keyed external id. A row copied over from another subject (the table tampered
 * with) is refused, never served or mailed to as this person.
 */
export function openSubjectIdentity(
  keys: { vault: KeyRingEntry[]; pseudonym: string },
  row: { keyId: string; ciphertext: string; subjectId: string },
  subject: { externalKey: string },
): IdentityRecord {
  const identity = openIdentity(keys.vault, row);
  if (externalKey(keys.pseudonym, identity.externalId) !== subject.externalKey) {
    throw new Error(`the vault row of subject ${row.subjectId} holds another subject's identity`);
  }
  return identity;
}
