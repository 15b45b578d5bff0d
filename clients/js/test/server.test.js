// End to end against a real licsrv, started by the Python test tests/test_js_client.py, which passes:
//   LICSRV_URL, LICSRV_API_KEY, LICSRV_PRODUCT (slug), LICSRV_PRODUCT_ID, LICSRV_LICENSE_KEYS (comma-separated,
//   each max_devices ≥ 2, product max_sessions 1, heartbeat_interval 1 s, session_timeout 2 s),
//   LICSRV_CARD_KEY, LICSRV_ADMIN_TOKEN (owner, for the management API), LICSRV_CONTENT_KEY (base64).
// Without LICSRV_URL every test here skips.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  ClockGuard,
  ClockMovedBackwards,
  LicenseClient,
  LicsrvError,
  OfflineError,
  UntrustedAnswer,
  cardKeyIsWellFormed,
  checkCertificate,
  checkCharacter,
  fingerprint,
  hardwareId,
  machineId,
  makeRequest,
} from '../src/index.js';

const env = process.env;
const skip = env.LICSRV_URL ? false : 'LICSRV_URL is not set (tests/test_js_client.py starts a server)';
const licenses = (env.LICSRV_LICENSE_KEYS ?? '').split(',');

const newClient = (options = {}) =>
  new LicenseClient({ baseUrl: env.LICSRV_URL, apiKey: env.LICSRV_API_KEY, product: env.LICSRV_PRODUCT, ...options });

async function until(check, what, ms = 10000) {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A relay on 127.0.0.1 in front of the server: `rewriteRequest` may change the request's JSON body,
 * `rewriteAnswer` the answer's bytes; every byte it carries is recorded. */
class Relay {
  constructor(upstream) {
    this.upstream = upstream.replace(/\/+$/, '');
    this.rewriteRequest = null;
    this.rewriteAnswer = null;
    this.down = false; // connections cut without an answer (a network failure)
    this.captured = [];
  }

  async start() {
    this.server = createServer((request, response) => {
      const chunks = [];
      request.on('data', (chunk) => chunks.push(chunk));
      request.on('end', () => this.forward(request, Buffer.concat(chunks), response).catch((error) => {
        response.writeHead(502);
        response.end(String(error));
      }));
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  async forward(request, body, response) {
    if (this.down) {
      request.socket.destroy();
      return;
    }
    this.captured.push(body);
    if (this.rewriteRequest && request.method === 'POST') {
      body = Buffer.from(JSON.stringify(this.rewriteRequest(JSON.parse(body.toString('utf8')))));
    }
    const headers = {};
    const sent = ['x-api-key', 'content-type', 'x-licsrv-timestamp', 'x-licsrv-nonce', 'x-licsrv-request-signature'];
    for (const name of sent) if (request.headers[name]) headers[name] = request.headers[name];
    const answer = await fetch(this.upstream + request.url, {
      method: request.method,
      headers,
      body: request.method === 'POST' ? body : undefined,
    });
    let raw = Buffer.from(await answer.arrayBuffer());
    this.captured.push(raw);
    if (this.rewriteAnswer && request.method === 'POST') raw = this.rewriteAnswer(raw);
    const kept = {};
    for (const name of ['content-type', 'x-licsrv-signature', 'x-licsrv-key-signatures', 'retry-after']) {
      const value = answer.headers.get(name);
      if (value !== null) kept[name] = value;
    }
    response.writeHead(answer.status, kept);
    response.end(raw);
  }

  close() {
    return new Promise((resolve) => this.server.close(resolve));
  }
}

describe('against a real licsrv', { skip }, () => {
  let relay;
  before(async () => {
    relay = await new Relay(env.LICSRV_URL).start();
  });
  after(async () => {
    await relay?.close();
  });

  test('activate, validate, deactivate; refusals carry their code and status', async () => {
    const client = newClient();
    const [key] = licenses;
    const view = await client.activate(key, 'hw-js-1', { machineName: 'Büro-PC', clientVersion: '2.0.0' });
    assert.equal(view.license_key, key);
    assert.deepEqual(view.features, { pro: true });
    assert.equal(view.devices_used, 1);
    assert.ok(view.device_id);
    assert.equal((await client.validate(key, 'hw-js-1')).valid, true);
    assert.equal((await client.deactivate(key, 'hw-js-1')).deactivated, true);
    await assert.rejects(client.validate(key, 'hw-js-1'), (error) => {
      assert.ok(error instanceof LicsrvError && !(error instanceof UntrustedAnswer));
      assert.equal(error.code, 'DEVICE_NOT_ACTIVATED');
      assert.equal(error.status, 403);
      return true;
    });
    await assert.rejects(client.validate('NOPE-NOPE-NOPE', 'hw'), { code: 'LICENSE_NOT_FOUND', status: 404 });
    assert.equal(typeof client.serverTime, 'number');
  });

  test('keys: pinned genuine keys work, pinned forged keys are not trusted', async () => {
    const first = newClient();
    const keys = await first.fetchKeys(); // trust on first use
    assert.ok(Object.keys(keys).length >= 1);
    const pinned = newClient({ publicKeys: keys });
    assert.equal((await pinned.activate(licenses[0], 'hw-js-pin')).license_key, licenses[0]);
    const sodium = (await import('../src/crypto.js')).getSodium();
    const forged = Object.fromEntries(
      Object.keys(keys).map((id) => [id, Buffer.from(sodium.crypto_sign_keypair().publicKey).toString('base64')]),
    );
    const fooled = newClient({ publicKeys: forged });
    await assert.rejects(fooled.validate(licenses[0], 'hw-js-pin'), UntrustedAnswer);
    await pinned.deactivate(licenses[0], 'hw-js-pin');
  });

  test('redeem a card key', async () => {
    const client = newClient();
    assert.ok(cardKeyIsWellFormed(env.LICSRV_CARD_KEY));
    const data = await client.redeem(env.LICSRV_CARD_KEY, 'hw-js-card');
    assert.equal(data.card_key, env.LICSRV_CARD_KEY);
    assert.equal(typeof data.license_key, 'string');
    assert.equal((await client.validate(data.license_key, 'hw-js-card')).valid, true);
    const again = await client.redeem(env.LICSRV_CARD_KEY.toLowerCase(), 'hw-js-card'); // typed again
    assert.equal(again.license_key, data.license_key);
    const payload = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
    const unknown = payload + checkCharacter(payload);
    assert.ok(cardKeyIsWellFormed(unknown));
    await assert.rejects(client.redeem(unknown, 'hw-js-card'), { code: 'CARD_NOT_FOUND', status: 404 });
  });

  test('start (MAC session, content key), heartbeat, end', async () => {
    const client = newClient();
    const key = licenses[1];
    const session = await client.startSession(key, 'hw-js-s', '2.0.0', { open: true });
    assert.equal(session.macKey.length, 32);
    assert.equal(session.sessionId.length, 16);
    assert.equal(Buffer.from(session.contentKey).toString('base64'), env.LICSRV_CONTENT_KEY);
    assert.equal(session.heartbeatInterval, 1);
    assert.equal(session.sessionTimeout, 2);
    assert.equal(await session.heartbeat(), 1); // a MACed answer, checked with the unsealed key
    await assert.rejects(client.startSession(key, 'hw-js-s', '2.0.0'), { code: 'SESSION_LIMIT_REACHED', status: 409 });
    await session.end();
    assert.ok(session.ended);
    await assert.rejects(session.heartbeat(), { code: 'SESSION_EXPIRED' }); // a MACed refusal
  });

  test('keepAlive starts a new session at once when the old one is gone (SESSION_EXPIRED)', async () => {
    const client = newClient();
    const session = await client.startSession(licenses[2], 'hw-js-k', '2.0.0');
    const firstId = session.sessionId;
    // The session disappears behind the program's back (timed out, or the server's live store lost it).
    await client.call('/api/v1/sessions/end', { session_token: session.token }, { session_id: firstId }, session.macKey);
    let restarted = 0;
    const keeper = session.keepAlive({ intervalMs: 20, onRestart: () => (restarted += 1) });
    await until(() => session.restarts === 1, 'a restart');
    assert.equal(restarted, 1);
    assert.notEqual(session.sessionId, firstId);
    assert.equal(session.macKey.length, 32);
    assert.equal(await session.heartbeat(), 1); // the new session heartbeats
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(session.restarts, 1); // and goes on with it
    await session.end(); // stops the loop
    await keeper;
  });

  test('keepAlive stops with SESSION_TERMINATED when an admin terminates the session', async () => {
    const client = newClient();
    const session = await client.startSession(licenses[3], 'hw-js-t', '2.0.0');
    const keeper = session.keepAlive({ intervalMs: 20 });
    // Expect the refusal before causing it: the loop may hear it while the DELETE's answer is still read.
    const stopped = assert.rejects(keeper, { code: 'SESSION_TERMINATED' });
    await new Promise((resolve) => setTimeout(resolve, 150));
    const answer = await fetch(`${env.LICSRV_URL}/api/v1/admin/sessions/${session.sessionId}`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${env.LICSRV_ADMIN_TOKEN}` },
    });
    assert.equal(answer.status, 200, await answer.text());
    await stopped;
    assert.equal(session.restarts, 0);
  });

  test('keepAlive retries network failures and gives up after the session timeout', async () => {
    const client = newClient({ baseUrl: relay.url });
    const session = await client.startSession(licenses[4], 'hw-js-n', '2.0.0');
    relay.down = true;
    const started = Date.now();
    await assert.rejects(session.keepAlive({ intervalMs: 20 }), (error) => !(error instanceof LicsrvError));
    const took = Date.now() - started;
    assert.ok(took >= 2000 && took < 6000, `gave up after ${took} ms`); // session_timeout is 2 s
    relay.down = false;
  });

  test('tampered or substituted answers are refused', async () => {
    const client = newClient({ baseUrl: relay.url });
    const key = licenses[0];
    await client.activate(key, 'hw-js-r');
    try {
      relay.rewriteAnswer = (raw) => {
        const copy = Buffer.from(raw);
        copy[copy.length >> 1] ^= 1; // one bit of the body flipped
        return copy;
      };
      await assert.rejects(client.validate(key, 'hw-js-r'), UntrustedAnswer);
      relay.rewriteAnswer = null;
      // A genuine, signed answer about another device (the relay rewrote the request).
      await client.activate(key, 'hw-js-other');
      relay.rewriteRequest = (body) => ({ ...body, hardware_id: 'hw-js-other' });
      await assert.rejects(client.validate(key, 'hw-js-r'), UntrustedAnswer);
      // A MAC session's heartbeat answered for another session (the relay swapped the token).
      relay.rewriteRequest = null;
      const session = await client.startSession(licenses[5], 'hw-js-r', '2.0.0');
      const donorClient = newClient();
      const donor = await donorClient.startSession(licenses[6], 'hw-js-d', '2.0.0');
      relay.rewriteRequest = (body) => ({ ...body, session_token: donor.token });
      await assert.rejects(session.heartbeat(), UntrustedAnswer);
      relay.rewriteRequest = null;
      assert.equal(await session.heartbeat(), 1); // the real session is untouched
      await session.end();
      await donor.end();
    } finally {
      relay.rewriteAnswer = null;
      relay.rewriteRequest = null;
    }
    assert.equal((await client.validate(key, 'hw-js-r')).valid, true);
    await client.deactivate(key, 'hw-js-r');
    await client.deactivate(key, 'hw-js-other');
  });

  test('sealed requests: nothing secret on the wire, answers verified inside', async () => {
    const client = newClient({ baseUrl: relay.url, sealed: true });
    const key = licenses[0];
    relay.captured = [];
    assert.equal((await client.activate(key, 'hw-js-sealed-9f3')).license_key, key);
    assert.equal((await client.validate(key, 'hw-js-sealed-9f3')).valid, true);
    await assert.rejects(client.validate(key, 'hw-js-sealed-unknown'), { code: 'DEVICE_NOT_ACTIVATED' });
    const wire = Buffer.concat(relay.captured).toString('latin1');
    assert.ok(relay.captured.length >= 6);
    for (const secret of [key, 'hw-js-sealed']) assert.ok(!wire.includes(secret), `${secret} on the wire`);
    relay.rewriteAnswer = (raw) => {
      const copy = Buffer.from(raw);
      copy[copy.length - 1] ^= 1;
      return copy;
    };
    await assert.rejects(client.validate(key, 'hw-js-sealed-9f3'), UntrustedAnswer);
    relay.rewriteAnswer = null;
    await client.deactivate(key, 'hw-js-sealed-9f3');
  });

  test('signed requests: a product that requires them answers only signed calls', async () => {
    const options = { apiKey: env.LICSRV_SIGNED_API_KEY, product: env.LICSRV_SIGNED_PRODUCT };
    const key = env.LICSRV_SIGNED_LICENSE_KEY;
    // Refused (BAD_SIGNATURE) before the server read the body, so without the nonce: untrusted (§3).
    await assert.rejects(newClient(options).activate(key, 'hw-js-signed'), UntrustedAnswer);
    const signing = newClient({ ...options, signRequests: true });
    assert.equal((await signing.activate(key, 'hw-js-signed')).license_key, key);
    const session = await signing.startSession(key, 'hw-js-signed', '2.0.0');
    assert.equal(await session.heartbeat(), 1);
    await session.end();
    const sealedToo = newClient({ ...options, signRequests: true, sealed: true, baseUrl: relay.url });
    assert.equal((await sealedToo.validate(key, 'hw-js-signed')).valid, true);
  });

  test('offline: request code, certificate checked, renewal, clock guard', async () => {
    const client = newClient();
    const key = licenses[0];
    const request = makeRequest(key, 'hw-js-offline');
    const answer = await client.offlineActivate(request.code());
    assert.ok(answer.certificate.startsWith('LC1.'));
    const payload = checkCertificate(answer.certificate, request, client.publicKeys);
    assert.equal(payload.license_key, key);
    assert.equal(payload.product, env.LICSRV_PRODUCT);
    assert.deepEqual(payload.features, { pro: true });
    const other = makeRequest(key, 'hw-js-offline');
    assert.throws(() => checkCertificate(answer.certificate, other, client.publicKeys), { reason: 'wrong_request' });
    const elsewhere = makeRequest(key, 'hw-js-elsewhere');
    assert.throws(() => checkCertificate(answer.certificate, { ...elsewhere, nonce: request.nonce }, client.publicKeys), {
      reason: 'wrong_machine',
    });
    assert.throws(
      () => checkCertificate(answer.certificate, request, client.publicKeys, payload.valid_until + 1),
      (error) => error instanceof OfflineError && error.reason === 'expired',
    );
    const renewed = await client.renewCertificate(key, 'hw-js-offline');
    assert.equal(renewed.payload.hardware_id, 'hw-js-offline');
    const dir = mkdtempSync(join(tmpdir(), 'licsrv-js-clock-'));
    try {
      const guard = new ClockGuard(join(dir, 'clock'));
      const now = Date.now() / 1000;
      assert.equal(guard.check(now), now);
      guard.check(now - 100); // within the tolerance
      assert.throws(() => guard.check(now - 3600), ClockMovedBackwards);
      assert.equal(Math.round(guard.lastSeen()), Math.round(now));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await client.deactivate(key, 'hw-js-offline');
  });
});

test('hardware fingerprint: stable, per product, never the raw machine id', async () => {
  assert.equal(fingerprint('desk-app', 'abc'), fingerprint('desk-app', 'abc'));
  assert.notEqual(fingerprint('desk-app', 'abc'), fingerprint('desk-app', 'abd'));
  assert.notEqual(fingerprint('desk-app', 'abc'), fingerprint('other-app', 'abc'));
  let raw;
  try {
    raw = await machineId();
  } catch {
    // A machine without an id (a bare container): the helper says so instead of inventing one.
    await assert.rejects(hardwareId('desk-app'), Error);
    return;
  }
  const id = await hardwareId('desk-app');
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.ok(!id.includes(raw.toLowerCase()));
  assert.equal(id, fingerprint('desk-app', raw));
  assert.equal(await hardwareId('desk-app'), id);
  assert.notEqual(await hardwareId('other-app'), id);
});
