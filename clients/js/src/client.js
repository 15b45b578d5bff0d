// The online client (docs/protocol.md): activation, validation, card redemption, run sessions with a
// background heartbeat. Every answer is verified before it is believed: its Ed25519 signature with a trusted
// key (or, for a MAC session, its HMAC and nothing else), the echoed nonce, and the subject it names.
import { randomBytes } from 'node:crypto';

import {
  LicsrvError,
  SEALED_CONTENT_TYPE,
  UntrustedAnswer,
  b64encode,
  checkAnswer,
  keysToLearn,
  oneTimeKeyPair,
  openSealed,
  openSealedAnswer,
  parseAnswer,
  ready,
  sealRequest,
  sealingKeyOf,
  signatureFields,
  verifyEd25519,
  verifyMac,
} from './crypto.js';
import { OfflineError, checkCertificate, makeRequest, parseRequestCode } from './offline.js';
import { signedRequestHeaders } from './wire.js';

const newNonce = () => randomBytes(12).toString('base64url');

function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A run session; `keepAlive()` heartbeats it in the background following protocol.md §7. */
export class Session {
  constructor(client, data, keys, startArgs) {
    this.client = client;
    this.startArgs = startArgs; // to start again after SESSION_EXPIRED
    this.restarts = 0;
    this.ended = false;
    this._controller = null;
    this._take(data, keys);
  }

  _take(data, keys) {
    this.token = data.session_token;
    this.sessionId = data.session_id;
    this.heartbeatInterval = Number(data.heartbeat_interval);
    this.sessionTimeout = Number(data.session_timeout);
    this.update = data.update ?? null;
    this.macKey = keys.macKey;
    this.contentKey = keys.contentKey;
  }

  /** One heartbeat; resolves to the seconds until the next one is due. */
  async heartbeat() {
    const data = await this.client.call(
      '/api/v1/sessions/heartbeat',
      { session_token: this.token },
      { session_id: this.sessionId },
      this.macKey,
    );
    return Number(data.next_heartbeat);
  }

  /** A new session with the same arguments, taken over by this object (new token, id and keys). */
  async restart() {
    const fresh = await this.client.startSession(...this.startArgs);
    this._take(
      {
        session_token: fresh.token,
        session_id: fresh.sessionId,
        heartbeat_interval: fresh.heartbeatInterval,
        session_timeout: fresh.sessionTimeout,
        update: fresh.update,
      },
      { macKey: fresh.macKey, contentKey: fresh.contentKey },
    );
    this.restarts += 1;
  }

  /** Heartbeats until stop() or end(), then resolves. SESSION_EXPIRED starts a new session at once (onRestart
   * is called); network failures and SERVICE_UNAVAILABLE are retried until the session timeout; any other
   * refusal, an untrusted answer or a session timeout without an answer rejects (stop the program). */
  async keepAlive({ intervalMs, signal, onRestart } = {}) {
    if (this._controller) throw new Error('keepAlive is already running for this session');
    const controller = new AbortController();
    this._controller = controller;
    const stop = () => controller.abort();
    signal?.addEventListener('abort', stop, { once: true });
    if (signal?.aborted) stop();
    try {
      let wait = intervalMs ?? this.heartbeatInterval * 1000;
      while (await sleep(wait, controller.signal)) {
        const next = await this._beatOrRecover(controller.signal, onRestart);
        if (next === null) break;
        wait = intervalMs ?? next * 1000;
      }
    } finally {
      signal?.removeEventListener('abort', stop);
      this._controller = null;
    }
  }

  /** Stops a running keepAlive (it resolves). */
  stop() {
    this._controller?.abort();
  }

  async _beatOrRecover(signal, onRestart) {
    const failingSince = Date.now();
    let expired = false; // the session is gone: (re)try to start a new one
    for (;;) {
      let error;
      let retryAfter = null;
      try {
        if (!expired) return await this.heartbeat();
        if (signal.aborted || this.ended) return null; // stopped meanwhile: start nothing new
        await this.restart();
        onRestart?.(this);
        return this.heartbeatInterval;
      } catch (caught) {
        if (caught instanceof LicsrvError) {
          if (caught.code === 'SESSION_EXPIRED' && !expired) {
            expired = true; // start a new session at once
            continue;
          }
          if (caught.code !== 'SERVICE_UNAVAILABLE') throw caught;
          retryAfter = caught.retryAfter;
        }
        error = caught; // a network failure, a timeout, SERVICE_UNAVAILABLE
      }
      if (Date.now() - failingSince > this.sessionTimeout * 1000) throw error;
      const pause =
        retryAfter != null ? retryAfter * 1000 : Math.min(5000, Math.max((this.heartbeatInterval * 1000) / 4, 50));
      if (!(await sleep(pause, signal))) return null;
    }
  }

  /** Ends the session (stops keepAlive first). */
  async end() {
    this.stop();
    if (this.ended) return;
    await this.client.call('/api/v1/sessions/end', { session_token: this.token }, { session_id: this.sessionId }, this.macKey);
    this.ended = true;
  }
}

export class LicenseClient {
  /**
   * `product` is the product's slug: every answer must name it. `publicKeys` (key id → base64 Ed25519 key)
   * pins the server's keys; without them the keys are fetched once from GET /api/v1/keys (trust on first
   * use: pin them in production). Keys published later are learned only from a keys answer signed by a key
   * already trusted. `sealed` seals every call's body to the server's X25519 key (protocol.md §11).
   * `signRequests` signs every call with the API key (products with require_signed_requests, §9).
   */
  constructor({
    baseUrl,
    apiKey,
    product,
    publicKeys,
    timeoutMs = 10000,
    sealed = false,
    signRequests = false,
    fetch: fetchImpl,
  } = {}) {
    if (!baseUrl || !apiKey || !product) throw new TypeError('baseUrl, apiKey and product are required');
    this.baseUrl = String(baseUrl).replace(/\/+$/, '');
    this.apiKey = apiKey;
    this.product = product;
    this.publicKeys = { ...(publicKeys ?? {}) };
    this.timeoutMs = timeoutMs;
    this.sealed = sealed;
    this.signRequests = signRequests;
    this.sealingKey = null; // learned with the keys, from a trusted keys answer
    this.serverTime = null; // from the last trusted answer
    this._fetch = fetchImpl ?? globalThis.fetch;
  }

  async _request(url, init) {
    const response = await this._fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    const raw = new Uint8Array(await response.arrayBuffer());
    return { response, raw };
  }

  /** Learns the published keys from a keys answer signed by a key this client trusts (with none trusted
   * yet: by one of the keys it lists); resolves to the keys learned. */
  async fetchKeys() {
    await ready();
    const nonce = newNonce();
    const { response, raw } = await this._request(`${this.baseUrl}/api/v1/keys?nonce=${encodeURIComponent(nonce)}`, {
      method: 'GET',
    });
    const header = response.headers.get('X-Licsrv-Signature') ?? '';
    const vouching = response.headers.get('X-Licsrv-Key-Signatures') ?? '';
    const keys = keysToLearn(raw, header, vouching, this.publicKeys);
    if (parseAnswer(raw, 'the keys answer').nonce !== nonce) {
      throw new UntrustedAnswer("the keys answer does not echo this request's nonce");
    }
    this.sealingKey = sealingKeyOf(raw);
    Object.assign(this.publicKeys, keys);
    return keys;
  }

  async _verify(raw, header, macKey) {
    if (macKey) {
      verifyMac(raw, header, macKey); // a MAC session: its MAC or nothing
      return;
    }
    const keyid = signatureFields(header).keyid;
    if (!Object.prototype.hasOwnProperty.call(this.publicKeys, keyid ?? '')) {
      await this.fetchKeys(); // first use, or the server activated a key published since
    }
    verifyEd25519(raw, header, this.publicKeys);
  }

  /** POSTs `body` with a fresh nonce; resolves to `data` of a trusted answer about `subject` (and this
   * client's product), or rejects with LicsrvError (UntrustedAnswer for an answer not to be believed). */
  async call(path, body, subject = {}, macKey = null) {
    await ready();
    const nonce = newNonce();
    const headers = { 'X-API-Key': this.apiKey, 'Content-Type': 'application/json' };
    let payload = new TextEncoder().encode(JSON.stringify({ ...body, nonce }));
    let oneTime = null;
    if (this.sealed) {
      if (!this.sealingKey) await this.fetchKeys();
      if (!this.sealingKey) throw new UntrustedAnswer('the server publishes no key to seal requests to');
      oneTime = oneTimeKeyPair();
      payload = sealRequest(this.sealingKey, oneTime, payload);
      headers['Content-Type'] = SEALED_CONTENT_TYPE;
    }
    if (this.signRequests) {
      const urlPath = new URL(`${this.baseUrl}${path}`).pathname; // the HMAC is over the bytes as sent
      Object.assign(headers, signedRequestHeaders(this.apiKey, 'POST', urlPath, payload));
    }
    const { response, raw: received } = await this._request(`${this.baseUrl}${path}`, {
      method: 'POST',
      headers,
      body: payload,
    });
    let raw = received;
    let header = response.headers.get('X-Licsrv-Signature') ?? '';
    const sealedAnswer = (response.headers.get('Content-Type') ?? '').startsWith(SEALED_CONTENT_TYPE);
    if (oneTime && sealedAnswer) [header, raw] = openSealedAnswer(oneTime, raw);
    await this._verify(raw, header, macKey);
    const answer = parseAnswer(raw, 'the answer');
    checkAnswer(answer, nonce, { product: this.product, ...subject });
    this.serverTime = answer.server_time ?? null;
    if (answer.status !== 'ok') {
      const error = answer.error && typeof answer.error === 'object' ? answer.error : {};
      const retryAfter = Number(response.headers.get('Retry-After') ?? NaN); // seconds (a date is ignored)
      throw new LicsrvError(
        typeof error.code === 'string' ? error.code : 'UNKNOWN',
        typeof error.message === 'string' ? error.message : '',
        response.status,
        Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : null,
      );
    }
    return answer.data;
  }

  /** Binds this device to the license; resolves to the license view and `device_id`. */
  activate(licenseKey, hardwareId, { machineName, clientVersion } = {}) {
    const subject = { license_key: licenseKey, hardware_id: hardwareId };
    const body = { ...subject };
    if (machineName) body.machine_name = machineName;
    if (clientVersion) body.client_version = clientVersion;
    return this.call('/api/v1/licenses/activate', body, subject);
  }

  validate(licenseKey, hardwareId) {
    const body = { license_key: licenseKey, hardware_id: hardwareId };
    return this.call('/api/v1/licenses/validate', body, body);
  }

  deactivate(licenseKey, hardwareId) {
    const body = { license_key: licenseKey, hardware_id: hardwareId };
    return this.call('/api/v1/licenses/deactivate', body, body);
  }

  /** Redeems a card key (a new license, or recharges `licenseKey`); the answer's license_key is the license. */
  redeem(cardKey, hardwareId, licenseKey) {
    const body = { card_key: cardKey, hardware_id: hardwareId };
    if (licenseKey) body.license_key = licenseKey;
    return this.call('/api/v1/cards/redeem', body, body);
  }

  /** The certificate answer ({certificate, license}) for a request code made by makeRequest(). */
  offlineActivate(requestCode) {
    const request = parseRequestCode(requestCode);
    const subject = { license_key: request.licenseKey, hardware_id: request.hardwareId };
    return this.call('/api/v1/offline/activate', { request_code: requestCode }, subject);
  }

  /** An offline certificate fetched online: {certificate, payload} (payload checked against the request). */
  async renewCertificate(licenseKey, hardwareId) {
    const request = makeRequest(licenseKey, hardwareId);
    const { certificate } = await this.offlineActivate(request.code());
    try {
      return { certificate, payload: checkCertificate(certificate, request, this.publicKeys) };
    } catch (error) {
      if (!(error instanceof OfflineError)) throw error;
      await this.fetchKeys(); // signed with a key published since this client last looked
    }
    try {
      return { certificate, payload: checkCertificate(certificate, request, this.publicKeys) };
    } catch (error) {
      throw new UntrustedAnswer(`the certificate does not check: ${error.message}`);
    }
  }

  /** A run session with a MAC key (a one-time X25519 key pair per start); `open` also asks for the
   * product's content key; `credential` (a portal credential) stands in for the license key. */
  async startSession(licenseKey, hardwareId, clientVersion, { machineName, open = false, credential } = {}) {
    await ready();
    const keyPair = oneTimeKeyPair();
    const body = {
      hardware_id: hardwareId,
      client_version: clientVersion,
      client_public_key: b64encode(keyPair.publicKey),
    };
    const subject = { hardware_id: hardwareId };
    if (licenseKey != null) body.license_key = subject.license_key = licenseKey;
    if (credential != null) body.credential = subject.credential = credential;
    if (machineName) body.machine_name = machineName;
    if (open) body.function = 'open';
    const data = await this.call('/api/v1/sessions/start', body, subject);
    // Sealed to this start's one-time key: the keys of an answer to another start cannot be opened.
    const macKey = openSealed(keyPair, data.mac_key ?? '');
    const contentKey = data.content_key ? openSealed(keyPair, data.content_key) : null;
    const args = [licenseKey, hardwareId, clientVersion, { machineName, open, credential }];
    return new Session(this, data, { macKey, contentKey }, args);
  }
}
