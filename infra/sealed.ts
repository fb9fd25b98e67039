/**
 * Sealed free text (HR remarks): AES-256-GCM with the vault key ring, stored as `keyId:base64`.
 * Free text about a person may name people, so it is never stored in clear.
 */
import { decrypt, encrypt, type KeyRingEntry } from './codec';

export function sealText(ring: KeyRingEntry[], value: Record<string, string>): string {
  const active = ring[0]!;
  return `${active.id}:${Buffer.from(encrypt(Buffer.from(JSON.stringify(value)), active.key)).toString('base64')}`;
}

export function openText(ring: KeyRingEntry[], sealed: string): Record<string, string> {
  const i = sealed.indexOf(':');
  const entry = ring.find((k) => k.id === sealed.slice(0, i));
  if (!entry) throw new Error('no vault key with the sealed value’s key id is configured');
  return JSON.parse(Buffer.from(decrypt(Buffer.from(sealed.slice(i + 1), 'base64'), entry.key)).toString('utf8')) as Record<
    string,
    string
  >;
}
