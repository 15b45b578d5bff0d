// The heartbeat loop's rules (protocol.md §7) against a scripted server inside this process: answers are
// genuinely signed (Ed25519) or MACed (HMAC under the sealed session key), so only the scripted outcome varies.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { before, test } from 'node:test';

import { LicenseClient, LicsrvError, UntrustedAnswer, ready } from '../src/index.js';

const sodium = createRequire(import.meta.url)('libsodium-wrappers');
let signer;

before(async () => {
  await ready();
  signer = sodium.crypto_sign_keypair();
});

/** A fetch that answers like licsrv; `script(path, body)` returns an outcome for each call:
 * {data} | {code, http, retryAfter} | {network: true} | {forge: 'ed25519'}. */
function scripted(script) {
  const calls = [];
  const macKeys = new Map(); // token → MAC key
  let sessions = 0;
  const fetch = async (url, init) => {
    const path = new URL(url).pathname;
    const body = init.body ? JSON.parse(Buffer.from(init.body).toString('utf8')) : {};
    calls.push(path);
    const outcome = script(path, body, calls) ?? {};
    if (outcome.network) throw new TypeError('fetch failed');
    let data = { product: 'desk-app' };
    let mac = null;
    if (path.endsWith('/sessions/start')) {
      sessions += 1;
      const key = sodium.randombytes_buf(32);
      const token = `t${sessions}`;
      macKeys.set(token, key);
      const sealed = sodium.crypto_box_seal(key, Buffer.from(body.client_public_key, 'base64'));
      data = {
        ...data,
        license_key: body.license_key,
        hardware_id: body.hardware_id,
        session_token: token,
        session_id: `session-id-${String(sessions).padStart(5, '0')}`,
        heartbeat_interval: 1,
        session_timeout: 2,
        update: null,
        mac_key: Buffer.from(sealed).toString('base64'),
        content_key: null,
      };
    } else if (path.endsWith('/sessions/heartbeat') || path.endsWith('/sessions/end')) {
      const n = Number(body.session_token.slice(1));
      data = { ...data, session_id: `session-id-${String(n).padStart(5, '0')}`, next_heartbeat: 1 };
      mac = macKeys.get(body.session_token);
    }
    const answer = outcome.code
      ? { status: 'error', error: { code: outcome.code, message: '' }, data: { product: 'desk-app' } }
      : { status: 'ok', data };
    const raw = Buffer.from(JSON.stringify({ ...answer, server_time: 1800000000, nonce: body.nonce }));
    let signature;
    if (mac && outcome.forge !== 'ed25519') {
      signature = `keyid=session, alg=hmac-sha256, sig=${createHmac('sha256', mac).update(raw).digest('base64')}`;
    } else {
      const sig = Buffer.from(sodium.crypto_sign_detached(raw, signer.privateKey)).toString('base64');
      signature = `keyid=k1, alg=ed25519, sig=${sig}`;
    }
    const headers = new Headers({ 'Content-Type': 'application/json', 'X-Licsrv-Signature': signature });
    if (outcome.retryAfter != null) headers.set('Retry-After', String(outcome.retryAfter));
    return new Response(raw, { status: outcome.http ?? (outcome.code ? 400 : 200), headers });
  };
  return { fetch, calls };
}

function clientFor(fake) {
  return new LicenseClient({
    baseUrl: 'http://licsrv.test',
    apiKey: 'lk_test',
    product: 'desk-app',
    publicKeys: { k1: Buffer.from(signer.publicKey).toString('base64') },
    fetch: fake.fetch,
  });
}

const beats = (calls) => calls.filter((path) => path.endsWith('/heartbeat')).length;

test('SERVICE_UNAVAILABLE and network failures are retried; the loop goes on', async () => {
  let failures = 0;
  const fake = scripted((path) => {
    if (!path.endsWith('/heartbeat') || failures >= 3) return null;
    failures += 1;
    return failures === 2 ? { network: true } : { code: 'SERVICE_UNAVAILABLE', http: 503, retryAfter: 0.01 };
  });
  const session = await clientFor(fake).startSession('KEY', 'hw', '2.0.0');
  const loop = session.keepAlive({ intervalMs: 10 });
  while (beats(fake.calls) < 6) await new Promise((resolve) => setTimeout(resolve, 10));
  session.stop();
  await loop; // resolves when stopped
  assert.equal(failures, 3);
  assert.equal(session.restarts, 0);
});

test('failures past the session timeout stop the loop with the last error', async () => {
  const fake = scripted((path) => (path.endsWith('/heartbeat') ? { code: 'SERVICE_UNAVAILABLE', http: 503, retryAfter: 0.1 } : null));
  const session = await clientFor(fake).startSession('KEY', 'hw', '2.0.0');
  const started = Date.now();
  await assert.rejects(session.keepAlive({ intervalMs: 10 }), { code: 'SERVICE_UNAVAILABLE' });
  assert.ok(Date.now() - started >= 2000);
});

test('SESSION_EXPIRED starts a new session at once (retried through a network failure)', async () => {
  let step = 0;
  const fake = scripted((path) => {
    if (path.endsWith('/heartbeat') && step === 0) return (step = 1), { code: 'SESSION_EXPIRED', http: 404 };
    if (path.endsWith('/start') && step === 1) return (step = 2), { network: true };
    return null;
  });
  const session = await clientFor(fake).startSession('KEY', 'hw', '2.0.0');
  const first = session.sessionId;
  const restarted = [];
  const loop = session.keepAlive({ intervalMs: 10, onRestart: (s) => restarted.push(s.sessionId) });
  while (beats(fake.calls) < 3) await new Promise((resolve) => setTimeout(resolve, 10));
  await session.end();
  await loop;
  assert.equal(session.restarts, 1);
  assert.notEqual(session.sessionId, first);
  assert.deepEqual(restarted, [session.sessionId]);
  assert.equal(fake.calls.filter((path) => path.endsWith('/start')).length, 3); // first, failed, new
});

test('other refusals and untrusted answers stop the loop', async () => {
  for (const [outcome, expected] of [
    [{ code: 'LICENSE_REVOKED', http: 403 }, { code: 'LICENSE_REVOKED', status: 403 }],
    [{ code: 'SESSION_TERMINATED', http: 410 }, { code: 'SESSION_TERMINATED' }],
    [{ forge: 'ed25519' }, UntrustedAnswer], // a validly signed Ed25519 answer, but a MAC session takes MAC only
  ]) {
    const fake = scripted((path) => (path.endsWith('/heartbeat') ? outcome : null));
    const session = await clientFor(fake).startSession('KEY', 'hw', '2.0.0');
    await assert.rejects(session.keepAlive({ intervalMs: 10 }), expected);
    assert.equal(beats(fake.calls), 1);
  }
});

test('refusals carry code, HTTP status and Retry-After', async () => {
  const fake = scripted(() => ({ code: 'RATE_LIMITED', http: 429, retryAfter: 7 }));
  const error = await clientFor(fake).validate('KEY', 'hw').catch((caught) => caught);
  assert.ok(error instanceof LicsrvError && !(error instanceof UntrustedAnswer));
  assert.deepEqual([error.code, error.status, error.retryAfter], ['RATE_LIMITED', 429, 7]);
});
