/**
 * Payload encryption for everything Temporal stores: workflow inputs and results, activity
 * arguments, Update arguments, memos. AES-256-GCM with a key id in the payload metadata, so keys
 * can rotate: the first key of the ring encrypts, any key of the ring decrypts.
 *
 * Runs outside the workflow sandbox (client, worker, codec endpoint).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';

const { temporal } = proto;

export const ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

export interface KeyRingEntry {
  id: string;
  key: Buffer;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class EncryptionCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;
  private readonly active: KeyRingEntry;

  constructor(keys: KeyRingEntry[]) {
    if (keys.length === 0) throw new Error('EncryptionCodec needs at least one key');
    this.active = keys[0]!;
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => ({
      metadata: {
        [METADATA_ENCODING_KEY]: encoder.encode(ENCODING),
        [KEY_ID_METADATA]: encoder.encode(this.active.id),
      },
      data: encrypt(temporal.api.common.v1.Payload.encode(payload).finish(), this.active.key),
    }));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
      if (!encoding || decoder.decode(encoding) !== ENCODING) return payload;
      const keyIdBytes = payload.metadata?.[KEY_ID_METADATA];
      if (!keyIdBytes || !payload.data) throw new Error('encrypted payload without key id or data');
      const keyId = decoder.decode(keyIdBytes);
      const key = this.byId.get(keyId);
      if (!key) throw new Error(`no payload key with id ${keyId} is configured`);
      return temporal.api.common.v1.Payload.decode(decrypt(payload.data, key));
    });
  }
}

const IV_LENGTH = 12;
const TAG_LENGTH = 16;

export function encrypt(plain: Uint8Array, key: Buffer): Uint8Array {
  const iv = randomBytes(IV_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

export function decrypt(sealed: Uint8Array, key: Buffer): Uint8Array {
  const buf = Buffer.from(sealed);
  const iv = buf.subarray(0, IV_LENGTH);
  const tag = buf.subarray(buf.length - TAG_LENGTH);
  const body = buf.subarray(IV_LENGTH, buf.length - TAG_LENGTH);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(body), decipher.final()]);
}
