// Answer verification (docs/protocol.md §2–§5, §11): signatures, MACs, key lists, subjects, sealed boxes.
// Pure functions; call `await ready()` once before using them directly (the client does it for you).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';

// The CommonJS build of libsodium-wrappers: its ESM build misses a file in several 0.7.x releases.
const require = createRequire(import.meta.url);
const sodium = require('libsodium-wrappers');

export const SEALED_CONTENT_TYPE = 'application/x-licsrv-sealed';

/** A refusal from the server (`code` is one of the stable error codes of protocol.md §8). */
export class LicsrvError extends Error {
  constructor(code, message, status = 0, retryAfter = null) {
    super(`${code}: ${message}`);
    this.name = 'LicsrvError';
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
    this.detail = message;
  }
}

/** An answer not to be believed: bad signature or MAC, another request's nonce, another subject. */
export class UntrustedAnswer extends LicsrvError {
  constructor(message) {
    super('UNTRUSTED_ANSWER', message);
    this.name = 'UntrustedAnswer';
  }
}

export async function ready() {
  await sodium.ready;
  return sodium;
}

export function getSodium() {
  return sodium;
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict standard base64 (RFC 4648 §4, padded); null when the text is not that. */
export function b64decode(text) {
  if (typeof text !== 'string' || !B64.test(text)) return null;
  return new Uint8Array(Buffer.from(text, 'base64'));
}

export function b64encode(bytes) {
  return Buffer.from(bytes).toString('base64');
}

export function toBytes(data) {
  if (typeof data === 'string') return new Uint8Array(Buffer.from(data, 'utf8'));
  return data instanceof Uint8Array ? data : new Uint8Array(data);
}

/** The parts of an X-Licsrv-Signature value: split on `,`, trim, split each at its first `=`. */
export function signatureFields(header) {
  const fields = {};
  for (const part of String(header ?? '').split(',')) {
    const at = part.indexOf('=');
    if (at < 0) continue;
    fields[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return fields;
}

const has = (object, key) => typeof key === 'string' && Object.prototype.hasOwnProperty.call(object, key);

/** Throws UntrustedAnswer unless `header` is an Ed25519 signature over `raw` by one of `keys` (id → base64). */
export function verifyEd25519(raw, header, keys) {
  const fields = signatureFields(header);
  if (fields.alg !== 'ed25519' || !has(keys, fields.keyid)) {
    throw new UntrustedAnswer('the answer is not signed with a trusted key');
  }
  const key = b64decode(keys[fields.keyid]);
  const sig = b64decode(fields.sig ?? '');
  let good = false;
  if (key && sig && key.length === 32 && sig.length === 64) {
    try {
      good = sodium.crypto_sign_verify_detached(sig, toBytes(raw), key);
    } catch {
      good = false;
    }
  }
  if (!good) throw new UntrustedAnswer("the answer's signature does not verify");
}

/** A MAC session's answer: `alg=hmac-sha256` and HMAC-SHA256(macKey, raw), nothing else. */
export function verifyMac(raw, header, macKey) {
  const fields = signatureFields(header);
  if (fields.alg !== 'hmac-sha256') throw new UntrustedAnswer("a MAC session's answer is not MACed");
  const expected = createHmac('sha256', Buffer.from(macKey)).update(toBytes(raw)).digest();
  const got = b64decode(fields.sig ?? '');
  if (!got) throw new UntrustedAnswer('the answer carries bad base64');
  if (got.length !== expected.length || !timingSafeEqual(expected, Buffer.from(got))) {
    throw new UntrustedAnswer("the answer's MAC does not verify");
  }
}

function parseJson(raw, what) {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(toBytes(raw));
    return JSON.parse(text);
  } catch {
    throw new UntrustedAnswer(`${what} is not JSON`);
  }
}

export { parseJson as parseAnswer };

/** The Ed25519 keys a GET /keys answer lists, if its signature or one of its key signatures verifies with
 * a trusted key (with none trusted yet: with one of the keys it lists). Throws UntrustedAnswer otherwise. */
export function keysToLearn(raw, header, keySignatures, trusted) {
  const answer = parseJson(raw, 'the keys answer');
  const listed = answer && answer.data;
  if (!Array.isArray(listed)) throw new UntrustedAnswer('the keys answer is damaged');
  const keys = {};
  for (const key of listed) {
    if (!key || typeof key !== 'object' || typeof key.id !== 'string' || typeof key.public_key !== 'string') {
      throw new UntrustedAnswer('the keys answer is damaged');
    }
    if ((key.alg ?? 'ed25519') === 'ed25519') keys[key.id] = key.public_key;
  }
  const vouching = Object.keys(trusted ?? {}).length ? trusted : keys;
  for (const signature of [header ?? '', ...String(keySignatures ?? '').split(';')]) {
    try {
      verifyEd25519(raw, signature.trim(), vouching);
      return keys;
    } catch (error) {
      if (!(error instanceof UntrustedAnswer)) throw error;
    }
  }
  throw new UntrustedAnswer('the keys answer is not signed with a trusted key');
}

/** The server's X25519 key for sealed requests, from a keys answer already checked (keysToLearn). */
export function sealingKeyOf(raw) {
  const listed = parseJson(raw, 'the keys answer').data;
  const entry = listed.find((key) => key && key.alg === 'x25519');
  return entry ? entry.public_key : null;
}

/** A fresh X25519 key pair ({publicKey, privateKey}, Uint8Array). */
export function oneTimeKeyPair() {
  return sodium.crypto_box_keypair();
}

/** The key pair of a given X25519 secret key. */
export function keyPairFromSecret(secretKey) {
  return { publicKey: sodium.crypto_scalarmult_base(secretKey), privateKey: secretKey };
}

/** A secret sealed to this client's one-time key (mac_key, content_key), given as base64. */
export function openSealed(keyPair, sealed) {
  const box = b64decode(sealed ?? '');
  if (box) {
    try {
      return sodium.crypto_box_seal_open(box, keyPair.publicKey, keyPair.privateKey);
    } catch {
      // falls through
    }
  }
  throw new UntrustedAnswer('the session keys are not sealed to this start');
}

/** A sealed request body: the one-time public key and the JSON bytes, sealed to the server's X25519 key. */
export function sealRequest(serverKey, oneTime, payload) {
  const key = b64decode(serverKey);
  if (!key || key.length !== 32) throw new UntrustedAnswer("the server's sealing key is damaged");
  const body = toBytes(payload);
  const plain = new Uint8Array(32 + body.length);
  plain.set(oneTime.publicKey, 0);
  plain.set(body, 32);
  return sodium.crypto_box_seal(plain, key);
}

/** [signature header, body bytes] of a sealed answer. */
export function openSealedAnswer(oneTime, raw) {
  let opened;
  try {
    opened = sodium.crypto_box_seal_open(toBytes(raw), oneTime.publicKey, oneTime.privateKey);
  } catch {
    throw new UntrustedAnswer("the sealed answer does not open with this request's key");
  }
  const newline = opened.indexOf(10);
  if (newline < 0) return [Buffer.from(opened).toString('latin1'), new Uint8Array(0)];
  return [Buffer.from(opened.subarray(0, newline)).toString('latin1'), opened.subarray(newline + 1)];
}

/** A verified answer is about this request: it echoes `nonce` and names `subject` (checkSubject). */
export function checkAnswer(answer, nonce, subject) {
  if (!answer || typeof answer !== 'object' || Array.isArray(answer) || answer.nonce !== nonce) {
    throw new UntrustedAnswer("the answer does not echo this request's nonce");
  }
  checkSubject(answer, subject);
}

/** A success must name every field of `subject` with the same value; a refusal every field it names. */
export function checkSubject(answer, subject) {
  const data = answer.data;
  const named = data && typeof data === 'object' && !Array.isArray(data) ? data : {};
  const success = answer.status === 'ok';
  for (const [name, expected] of Object.entries(subject)) {
    if (!has(named, name) && !success) continue;
    if (!has(named, name) || named[name] !== expected) {
      throw new UntrustedAnswer(`the answer is about another ${name.replaceAll('_', ' ')}`);
    }
  }
}
