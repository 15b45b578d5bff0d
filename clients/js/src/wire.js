// Small pieces of the wire contract (docs/protocol.md §6, §9): the card-key check character and request signing.
import { createHmac, randomBytes } from 'node:crypto';

export const ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
export const CARD_LENGTH = 32;

export function normaliseCardKey(code) {
  return [...String(code).toUpperCase()].filter((ch) => !' -_\t'.includes(ch)).join('');
}

const mod = (a, n) => ((a % n) + n) % n;

function inverse(a, n) {
  for (let x = 1; x < n; x += 1) if (mod(a * x, n) === 1) return x;
  throw new RangeError('no inverse');
}

/** The check character that completes `payload` (31 symbols of ALPHABET). */
export function checkCharacter(payload) {
  const n = ALPHABET.length;
  let total = 0;
  [...payload].forEach((ch, i) => {
    const value = ALPHABET.indexOf(ch);
    if (value < 0) throw new RangeError(`not a card-key symbol: ${ch}`);
    total += ((i % (n - 1)) + 1) * value;
  });
  const weight = (payload.length % (n - 1)) + 1;
  return ALPHABET[mod(-total * inverse(weight, n), n)];
}

/** A typed card key is complete and has no typo the check character catches (check it before sending). */
export function cardKeyIsWellFormed(code) {
  const key = normaliseCardKey(code);
  return (
    key.length === CARD_LENGTH &&
    [...key].every((ch) => ALPHABET.includes(ch)) &&
    checkCharacter(key.slice(0, -1)) === key.at(-1)
  );
}

/** hex HMAC-SHA256(apiKey, METHOD \n PATH \n TIMESTAMP \n NONCE \n BODY). */
export function requestSignature(apiKey, method, path, timestamp, nonce, body) {
  const head = Buffer.from(`${method.toUpperCase()}\n${path}\n${timestamp}\n${nonce}\n`, 'utf8');
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body ?? []);
  return createHmac('sha256', apiKey).update(head).update(bytes).digest('hex');
}

/** The three headers of a signed request (products with require_signed_requests). */
export function signedRequestHeaders(apiKey, method, path, body) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(16).toString('base64url');
  return {
    'X-Licsrv-Timestamp': timestamp,
    'X-Licsrv-Nonce': nonce,
    'X-Licsrv-Request-Signature': requestSignature(apiKey, method, path, timestamp, nonce, body),
  };
}
