/**
 * SMTP: the nodemailer transport notices are sent with (from `SMTP_URL`), and an SMTP sink — a
 * real `smtp-server` in this process that captures what it receives. `npm start` runs the sink
 * when no SMTP_URL is given on development defaults (captured mail: `GET /v1/dev/outbox`); tests
 * run it as the real peer, with replies they choose (451, 550…).
 *
 * Never logs an address, a name or a message body: captured messages are held in memory only.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { simpleParser, type AddressObject } from 'mailparser';
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from 'smtp-server';
import type { Logger } from 'pino';

/**
 * Timeouts of one SMTP transaction. They stay well below the sending activity's start-to-close
 * timeout, so an attempt that Temporal has given up on has also stopped talking to the server.
 */
export const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 };

export type SmtpTransport = Transporter<SMTPTransport.SentMessageInfo>;

export function createSmtpTransport(url: string): SmtpTransport {
  return nodemailer.createTransport({ url, pool: false, logger: false, debug: false, ...SMTP_TIMEOUTS } as SMTPTransport.Options);
}

/** A message as the sink received it: the SMTP envelope, the raw MIME source and its decoded parts. */
export interface CapturedMessage {
  id: string;
  receivedAt: string;
  envelope: { mailFrom: string | null; rcptTo: string[] };
  messageId: string | null;
  subject: string | null;
  from: string | null;
  to: string | null;
  cc: string | null;
  date: string | null;
  headers: Record<string, string>;
  text: string | null;
  html: string | null;
  raw: string;
}

/** How the sink answers: accept, or an SMTP error reply at RCPT TO or after DATA. */
export type SinkReply =
  | { accept: true }
  /** `at: 'rcpt'` refuses recipients (`only` these addresses, else all); otherwise the message after DATA. */
  | { code: number; message: string; at?: 'rcpt' | 'data'; only?: string[] };

export interface SmtpSinkOptions {
  host?: string;
  port?: number;
  /** Decide the reply to each transaction (default: accept everything). */
  reply?: (tx: { rcptTo: string[]; attempt: number }) => SinkReply;
  /** Messages kept in memory (oldest dropped first). */
  keep?: number;
  logger?: Logger;
}

export interface SmtpSink {
  url: string;
  port: number;
  /** Messages the sink accepted, oldest first. */
  messages: CapturedMessage[];
  /** Every transaction that reached DATA or was refused, accepted or not (for tests). */
  transactions: Array<{ rcptTo: string[]; reply: SinkReply }>;
  setReply(reply: SmtpSinkOptions['reply']): void;
  clear(): void;
  stop(): Promise<void>;
}

const text = (a: AddressObject | AddressObject[] | undefined) =>
  a ? (Array.isArray(a) ? a.map((x) => x.text).join(', ') : a.text) : null;

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const keep = opts.keep ?? 500;
  const messages: CapturedMessage[] = [];
  const transactions: SmtpSink['transactions'] = [];
  const acceptAll = (): SinkReply => ({ accept: true });
  let reply: NonNullable<SmtpSinkOptions['reply']> = opts.reply ?? acceptAll;
  let attempt = 0;

  const decide = (session: SMTPServerSession, rcpt: SMTPServerAddress[]) => {
    const state = session as SMTPServerSession & { wardenReply?: SinkReply };
    state.wardenReply ??= reply({ rcptTo: rcpt.map((r) => r.address), attempt: ++attempt });
    return state.wardenReply;
  };

  const server = new SMTPServer({
    secure: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    banner: 'Warden SMTP sink',
    logger: false,
    size: 25 * 1024 * 1024,
    onMailFrom(_address, session, callback) {
      Object.assign(session, { wardenReply: undefined, wardenRefused: undefined });
      callback();
    },
    onRcptTo(address, session, callback) {
      // The reply is decided once per transaction; an RCPT-level refusal refuses every recipient.
      const state = session as SMTPServerSession & { wardenRefused?: string[] };
      const r = decide(session, [address]);
      if ('code' in r && r.at === 'rcpt' && (!r.only || r.only.includes(address.address.toLowerCase()))) {
        if (!state.wardenRefused) {
          state.wardenRefused = [];
          transactions.push({ rcptTo: state.wardenRefused, reply: r });
        }
        state.wardenRefused.push(address.address);
        return callback(smtpError(r.code, r.message));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', callback);
      stream.on('end', () => {
        const rcptTo = session.envelope.rcptTo.map((r) => r.address);
        const r = decide(session, session.envelope.rcptTo);
        if ('code' in r && r.at === 'rcpt') {
          // Some recipients were refused at RCPT (recorded then); the others get the message.
        } else {
          transactions.push({ rcptTo, reply: r });
          if ('code' in r) return callback(smtpError(r.code, r.message));
        }
        const raw = Buffer.concat(chunks);
        const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : null;
        simpleParser(raw)
          .then((parsed) => {
            const headers: Record<string, string> = {};
            for (const line of parsed.headerLines) headers[line.key] = line.line.slice(line.line.indexOf(':') + 1).trim();
            messages.push({
              id: randomUUID(),
              receivedAt: new Date().toISOString(),
              envelope: { mailFrom, rcptTo },
              messageId: parsed.messageId ?? null,
              subject: parsed.subject ?? null,
              from: text(parsed.from),
              to: text(parsed.to),
              cc: text(parsed.cc),
              date: parsed.date ? parsed.date.toISOString() : null,
              headers,
              text: parsed.text ?? null,
              html: typeof parsed.html === 'string' ? parsed.html : null,
              raw: raw.toString('utf8'),
            });
            while (messages.length > keep) messages.shift();
            opts.logger?.info({ messageId: parsed.messageId, recipients: rcptTo.length }, 'SMTP sink captured a message');
            callback(null, 'OK: message captured by the Warden SMTP sink');
          })
          .catch((err: Error) => callback(err));
      });
    },
  });
  server.on('error', (err) => opts.logger?.warn({ err }, 'SMTP sink error'));
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://${host}:${port}`,
    port,
    messages,
    transactions,
    setReply(next) {
      reply = next ?? acceptAll;
    },
    clear() {
      messages.length = 0;
      transactions.length = 0;
      attempt = 0;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
