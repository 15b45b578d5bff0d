// Offline activation, the client's side (docs/protocol.md §10): request codes, certificates, the clock guard.
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

import { b64decode, getSodium } from './crypto.js';

export const REQUEST_PREFIX = 'LR1.';
export const CERT_PREFIX = 'LC1.';
// Signatures over certificates never verify as signatures over API answers, and the reverse.
export const CERT_CONTEXT = 'licsrv offline certificate v1\n';
export const MAX_CODE_LENGTH = 2000;
export const CLOCK_TOLERANCE_S = 300;

/** A malformed, forged, foreign or out-of-date request code or certificate; `reason` is one of
 * damaged, bad_signature, wrong_machine, wrong_request, clock_behind, expired, clock_moved_backwards. */
export class OfflineError extends Error {
  constructor(message, reason = 'damaged') {
    super(message);
    this.name = 'OfflineError';
    this.reason = reason;
  }
}

/** Past its `valid_until`: ask the server for a new one (LicenseClient.renewCertificate). */
export class CertificateExpired extends OfflineError {
  constructor(message) {
    super(message, 'expired');
    this.name = 'CertificateExpired';
  }
}

export class ClockMovedBackwards extends OfflineError {
  constructor(message) {
    super(message, 'clock_moved_backwards');
    this.name = 'ClockMovedBackwards';
  }
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function unb64url(text) {
  if (!B64URL.test(text) || text.length % 4 === 1) throw new OfflineError('not base64url');
  return new Uint8Array(Buffer.from(text, 'base64url'));
}

function parseJsonBytes(bytes) {
  return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
}

/** JSON as Python's json.dumps(separators=(",", ":")) writes it: non-ASCII as \uXXXX escapes. */
function compactJson(value) {
  return JSON.stringify(value).replace(
    /[\u0080-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

const codePoints = (text) => [...text].length;

/** A request for a certificate: keep it until the certificate comes back (its nonce must match). */
export class OfflineRequest {
  constructor(licenseKey, hardwareId, nonce, requestedAt) {
    this.licenseKey = licenseKey;
    this.hardwareId = hardwareId;
    this.nonce = nonce;
    this.requestedAt = requestedAt; // unix seconds by the offline machine's clock
  }

  /** `LR1.` + base64url(compact JSON {"k","h","n","t"}). */
  code() {
    const document = { k: this.licenseKey, h: this.hardwareId, n: this.nonce, t: this.requestedAt };
    return REQUEST_PREFIX + Buffer.from(compactJson(document), 'utf8').toString('base64url');
  }
}

/** A new request with a fresh 72-bit nonce; `now` in unix seconds (default: the clock). */
export function makeRequest(licenseKey, hardwareId, now) {
  const at = Math.floor(now ?? Date.now() / 1000);
  return new OfflineRequest(licenseKey, hardwareId, randomBytes(9).toString('base64url'), at);
}

export function parseRequestCode(code) {
  code = String(code).trim();
  if (!code.startsWith(REQUEST_PREFIX) || code.length > MAX_CODE_LENGTH) {
    throw new OfflineError('not a licsrv request code');
  }
  let document;
  try {
    document = parseJsonBytes(unb64url(code.slice(REQUEST_PREFIX.length)));
  } catch {
    throw new OfflineError('the request code is damaged');
  }
  if (!document || typeof document !== 'object' || Array.isArray(document)) {
    throw new OfflineError('the request code is damaged');
  }
  const { k, h, n, t } = document;
  const texts = [k, h, n].every((v) => typeof v === 'string' && codePoints(v) >= 1 && codePoints(v) <= 200);
  if (!texts || !Number.isInteger(t) || !(t > 0 && t < 2 ** 40)) {
    throw new OfflineError('the request code is damaged');
  }
  return new OfflineRequest(k, h, n, t);
}

/** The signed payload of a certificate, once its signature verifies with one of `publicKeys`. */
export function readCertificate(code, publicKeys) {
  code = String(code).replace(/\s+/g, ''); // typed or pasted with line breaks
  if (!code.startsWith(CERT_PREFIX) || code.length > MAX_CODE_LENGTH || code.split('.').length !== 3) {
    throw new OfflineError('not a licsrv certificate');
  }
  const [bodyText, signatureText] = code.slice(CERT_PREFIX.length).split('.');
  const body = unb64url(bodyText);
  const signature = unb64url(signatureText);
  let payload;
  try {
    payload = parseJsonBytes(body);
  } catch {
    throw new OfflineError('the certificate is damaged');
  }
  const keys = publicKeys ?? {};
  if (
    !payload || typeof payload !== 'object' || Array.isArray(payload) ||
    typeof payload.kid !== 'string' || !Object.prototype.hasOwnProperty.call(keys, payload.kid)
  ) {
    throw new OfflineError('the certificate is signed with an unknown key', 'bad_signature');
  }
  const key = b64decode(keys[payload.kid]);
  const context = Buffer.from(CERT_CONTEXT, 'utf8');
  const message = new Uint8Array(context.length + body.length);
  message.set(context, 0);
  message.set(body, context.length);
  let good = false;
  if (key && key.length === 32 && signature.length === 64) {
    try {
      good = getSodium().crypto_sign_verify_detached(signature, message, key);
    } catch {
      good = false;
    }
  }
  if (!good) throw new OfflineError("the certificate's signature does not verify", 'bad_signature');
  return payload;
}

/** A certificate that answers `request` on this machine and is valid `now` (unix seconds); else OfflineError. */
export function checkCertificate(code, request, publicKeys, now) {
  const payload = readCertificate(code, publicKeys);
  now = now ?? Date.now() / 1000;
  if (payload.hardware_id !== request.hardwareId) {
    throw new OfflineError('the certificate is for another machine', 'wrong_machine');
  }
  if (payload.nonce !== request.nonce || payload.license_key !== request.licenseKey) {
    throw new OfflineError('the certificate answers another request', 'wrong_request');
  }
  if ((payload.issued_at ?? 0) > now + CLOCK_TOLERANCE_S) {
    throw new OfflineError("this machine's clock is behind the certificate's issue time", 'clock_behind');
  }
  const expiresAt = payload.expires_at;
  if (expiresAt !== null && expiresAt !== undefined && expiresAt <= now) {
    throw new OfflineError('the license has expired', 'expired');
  }
  if (!Number.isInteger(payload.valid_until) || payload.valid_until <= now) {
    throw new CertificateExpired('the certificate has expired: renew it online');
  }
  return payload;
}

/** Remembers the latest time this client has seen (in a file it owns) and refuses a clock set back behind
 * it, so an expired offline certificate cannot be revived by turning the clock back. */
export class ClockGuard {
  constructor(path, toleranceS = CLOCK_TOLERANCE_S) {
    this.path = String(path);
    this.toleranceS = toleranceS;
  }

  lastSeen() {
    try {
      const value = Number(readFileSync(this.path, 'utf8').trim() || 0);
      return Number.isFinite(value) ? value : 0;
    } catch {
      return 0;
    }
  }

  /** The time to trust (now, unix seconds), after recording it; throws ClockMovedBackwards. */
  check(now) {
    now = now ?? Date.now() / 1000;
    const last = this.lastSeen();
    if (now + this.toleranceS < last) {
      throw new ClockMovedBackwards(
        `the clock is ${Math.round(last - now)} s behind a time this machine has already seen`,
      );
    }
    if (now > last) {
      const temporary = `${this.path}.tmp`;
      writeFileSync(temporary, `${Math.round(now)}\n`);
      renameSync(temporary, this.path);
    }
    return now;
  }
}
