// Every vector in clients/vectors that applies to a client, checked with this package alone (no server).
// A vector file this test reads that is missing fails it.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

import {
  OfflineError,
  OfflineRequest,
  UntrustedAnswer,
  cardKeyIsWellFormed,
  checkAnswer,
  checkCertificate,
  checkCharacter,
  keyPairFromSecret,
  keysToLearn,
  openSealed,
  openSealedAnswer,
  oneTimeKeyPair,
  parseRequestCode,
  ready,
  requestSignature,
  sealRequest,
  verifyEd25519,
  verifyMac,
} from '../src/index.js';

const VECTORS = process.env.LICSRV_VECTORS ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'vectors');
const sodium = createRequire(import.meta.url)('libsodium-wrappers');

function load(name) {
  return JSON.parse(readFileSync(join(VECTORS, `${name}.json`), 'utf8'));
}

function verdict(check, ...args) {
  try {
    check(...args);
    return true;
  } catch (error) {
    if (error instanceof UntrustedAnswer) return false;
    throw error;
  }
}

const hex = (text) => new Uint8Array(Buffer.from(text, 'hex'));
const b64 = (text) => new Uint8Array(Buffer.from(text, 'base64'));

before(async () => {
  await ready();
});

const READ = [
  'card_keys',
  'certificates',
  'keys_answers',
  'mac_answers',
  'request_codes',
  'request_signing',
  'sealed_boxes',
  'signatures',
  'subjects',
];

test('every vector file is read by this suite, and every file it reads is there', () => {
  const present = readdirSync(VECTORS).filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -5));
  assert.deepEqual(present.sort(), [...READ].sort());
});

test('signatures.json: Ed25519 answers over the exact body bytes', () => {
  const vectors = load('signatures');
  assert.ok(vectors.cases.length >= 4);
  for (const c of vectors.cases) {
    assert.equal(verdict(verifyEd25519, c.body, c.signature, vectors.keys), c.valid, c.name);
  }
});

test('mac_answers.json: a MAC session accepts its MAC only', () => {
  const vectors = load('mac_answers');
  const key = hex(vectors.mac_key_hex);
  for (const c of vectors.cases) {
    assert.equal(verdict(verifyMac, c.body, c.signature, key), c.valid, c.name);
  }
});

test('sealed_boxes.json: sealed MAC and content keys open with the one-time key', () => {
  const vectors = load('sealed_boxes');
  const pair = keyPairFromSecret(hex(vectors.client_secret_key_hex));
  assert.equal(Buffer.from(pair.publicKey).toString('base64'), vectors.client_public_key);
  for (const c of vectors.cases) {
    assert.equal(Buffer.from(openSealed(pair, c.sealed)).toString('hex'), c.plaintext_hex, c.name);
  }
  assert.throws(() => openSealed(oneTimeKeyPair(), vectors.cases[0].sealed), UntrustedAnswer);
});

test('sealed_boxes.json sealed_request: a sealed body and its sealed answer', () => {
  const vector = load('sealed_boxes').sealed_request;
  const server = keyPairFromSecret(hex(vector.server_secret_key_hex));
  assert.equal(Buffer.from(server.publicKey).toString('base64'), vector.server_public_key);
  const oneTime = keyPairFromSecret(hex(vector.one_time_secret_key_hex));
  const opened = sodium.crypto_box_seal_open(b64(vector.sealed_body), server.publicKey, server.privateKey);
  assert.deepEqual(opened.subarray(0, 32), oneTime.publicKey);
  assert.equal(Buffer.from(opened.subarray(32)).toString('utf8'), vector.json);
  const mine = sealRequest(vector.server_public_key, oneTime, vector.json);
  const reopened = sodium.crypto_box_seal_open(mine, server.publicKey, server.privateKey);
  assert.deepEqual(reopened, opened); // what this client seals, the server opens alike
  const [header, body] = openSealedAnswer(oneTime, b64(vector.sealed_answer));
  assert.equal(header, vector.answer_signature);
  assert.equal(Buffer.from(body).toString('utf8'), vector.answer_body);
  verifyEd25519(body, header, vector.keys);
  assert.throws(() => openSealedAnswer(oneTimeKeyPair(), b64(vector.sealed_answer)), UntrustedAnswer);
});

test('subjects.json: nonce and subject rules', () => {
  const vectors = load('subjects');
  const { request } = vectors;
  const subject = { product: request.product, ...request.subject };
  for (const c of vectors.cases) {
    assert.equal(verdict(checkAnswer, c.answer, request.nonce, subject), c.accept, c.name);
  }
});

test('keys_answers.json: keys learned only from an answer signed by a trusted key', () => {
  const vectors = load('keys_answers');
  for (const c of vectors.cases) {
    assert.equal(verdict(keysToLearn, c.body, c.signature, c.key_signatures, vectors.trusted), c.learn, c.name);
  }
});

test('request_codes.json: exact codes, invalid codes refused', () => {
  const vectors = load('request_codes');
  for (const c of vectors.valid) {
    const request = new OfflineRequest(c.license_key, c.hardware_id, c.nonce, c.requested_at);
    assert.equal(request.code(), c.code);
    assert.deepEqual(parseRequestCode(c.code), request);
  }
  for (const code of vectors.invalid) {
    assert.throws(() => parseRequestCode(code), OfflineError, code);
  }
});

test('certificates.json: the result of each certificate at `now`', () => {
  const vectors = load('certificates');
  const wanted = vectors.request;
  const request = new OfflineRequest(wanted.license_key, wanted.hardware_id, wanted.nonce, vectors.now);
  for (const c of vectors.cases) {
    let result = 'ok';
    try {
      checkCertificate(c.certificate, request, vectors.keys, vectors.now);
    } catch (error) {
      if (!(error instanceof OfflineError)) throw error;
      result = error.reason;
    }
    assert.equal(result, c.result, c.name);
  }
});

test('card_keys.json: check characters and well-formed keys', () => {
  const vectors = load('card_keys');
  for (const c of vectors.check_characters) assert.equal(checkCharacter(c.payload), c.check);
  for (const c of vectors.cases) assert.equal(cardKeyIsWellFormed(c.code), c.well_formed, c.code);
});

test('request_signing.json: exact hex signatures', () => {
  const vectors = load('request_signing');
  for (const c of vectors.cases) {
    assert.equal(requestSignature(vectors.api_key, c.method, c.path, c.timestamp, c.nonce, c.body), c.signature);
  }
});
