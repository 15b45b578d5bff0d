// Type declarations of licsrv-client (hand-written; the package is plain ESM JavaScript).

export type Keys = Record<string, string>; // key id → base64 Ed25519 public key

export interface KeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

export interface LicenseView {
  license_key: string;
  status: 'active' | 'suspended' | 'revoked';
  expires_at: string | null;
  features: Record<string, unknown>;
  max_devices: number;
  devices_used: number;
  max_sessions: number | null;
  customer_name: string | null;
  product: string;
  hardware_id: string;
  [field: string]: unknown;
}

export interface UpdateNotice {
  current_version: string;
  download_url: string | null;
  whats_new: string | null;
}

export interface ClientOptions {
  baseUrl: string;
  apiKey: string;
  /** The product's slug: every answer must name it. */
  product: string;
  /** Pinned keys shipped with the program; without them the first keys answer is trusted (TOFU). */
  publicKeys?: Keys;
  /** Per request (default 10 000). */
  timeoutMs?: number;
  /** Seal every call's body to the server's X25519 key (protocol.md §11). */
  sealed?: boolean;
  /** Sign every call with the API key (products with require_signed_requests, protocol.md §9). */
  signRequests?: boolean;
  fetch?: typeof globalThis.fetch;
}

export class LicsrvError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retryAfter: number | null;
  readonly detail: string;
  constructor(code: string, message: string, status?: number, retryAfter?: number | null);
}

export class UntrustedAnswer extends LicsrvError {
  constructor(message: string);
}

export interface StartOptions {
  machineName?: string;
  /** Also ask for the product's content key (function "open"). */
  open?: boolean;
  /** A portal credential standing in for the license key. */
  credential?: string;
}

export interface KeepAliveOptions {
  /** Fixed wait between heartbeats (default: the server's heartbeat_interval / next_heartbeat). */
  intervalMs?: number;
  /** Aborting it stops the loop (the promise resolves). */
  signal?: AbortSignal;
  /** Called after SESSION_EXPIRED made the loop start a new session. */
  onRestart?: (session: Session) => void;
}

export class Session {
  readonly client: LicenseClient;
  token: string;
  sessionId: string;
  heartbeatInterval: number;
  sessionTimeout: number;
  update: UpdateNotice | null;
  macKey: Uint8Array;
  contentKey: Uint8Array | null;
  restarts: number;
  ended: boolean;
  /** Seconds until the next heartbeat is due. */
  heartbeat(): Promise<number>;
  restart(): Promise<void>;
  /** Resolves when stopped; rejects with the refusal (or network error after session_timeout) that ends it. */
  keepAlive(options?: KeepAliveOptions): Promise<void>;
  stop(): void;
  end(): Promise<void>;
}

export class LicenseClient {
  constructor(options: ClientOptions);
  readonly baseUrl: string;
  readonly product: string;
  publicKeys: Keys;
  sealingKey: string | null;
  serverTime: number | null;
  fetchKeys(): Promise<Keys>;
  call(
    path: string,
    body: Record<string, unknown>,
    subject?: Record<string, string>,
    macKey?: Uint8Array | null,
  ): Promise<Record<string, any>>;
  activate(
    licenseKey: string,
    hardwareId: string,
    options?: { machineName?: string; clientVersion?: string },
  ): Promise<LicenseView & { device_id: number }>;
  validate(licenseKey: string, hardwareId: string): Promise<LicenseView & { valid: true }>;
  deactivate(licenseKey: string, hardwareId: string): Promise<LicenseView & { deactivated: true }>;
  redeem(
    cardKey: string,
    hardwareId: string,
    licenseKey?: string,
  ): Promise<LicenseView & { card_key: string; redeemed?: boolean; recharged?: boolean }>;
  offlineActivate(requestCode: string): Promise<{ certificate: string; license: LicenseView; [field: string]: unknown }>;
  renewCertificate(licenseKey: string, hardwareId: string): Promise<{ certificate: string; payload: CertificatePayload }>;
  startSession(licenseKey: string | null, hardwareId: string, clientVersion: string, options?: StartOptions): Promise<Session>;
}

// Verification pieces (call `await ready()` before using them directly).
export const SEALED_CONTENT_TYPE: 'application/x-licsrv-sealed';
export function ready(): Promise<unknown>;
export function signatureFields(header: string): Record<string, string>;
export function verifyEd25519(raw: Uint8Array | string, header: string, keys: Keys): void;
export function verifyMac(raw: Uint8Array | string, header: string, macKey: Uint8Array): void;
export function keysToLearn(raw: Uint8Array | string, header: string, keySignatures: string, trusted: Keys): Keys;
export function sealingKeyOf(raw: Uint8Array | string): string | null;
export function checkAnswer(answer: unknown, nonce: string, subject: Record<string, string>): void;
export function checkSubject(answer: Record<string, unknown>, subject: Record<string, string>): void;
export function oneTimeKeyPair(): KeyPair;
export function keyPairFromSecret(secretKey: Uint8Array): KeyPair;
export function openSealed(keyPair: KeyPair, sealed: string): Uint8Array;
export function sealRequest(serverKey: string, oneTime: KeyPair, payload: Uint8Array | string): Uint8Array;
export function openSealedAnswer(oneTime: KeyPair, raw: Uint8Array): [string, Uint8Array];

// Offline activation.
export const CLOCK_TOLERANCE_S: number;
export type OfflineReason =
  | 'damaged'
  | 'bad_signature'
  | 'wrong_machine'
  | 'wrong_request'
  | 'clock_behind'
  | 'expired'
  | 'clock_moved_backwards';

export class OfflineError extends Error {
  readonly reason: OfflineReason;
  constructor(message: string, reason?: OfflineReason);
}
export class CertificateExpired extends OfflineError {}
export class ClockMovedBackwards extends OfflineError {}

export class OfflineRequest {
  constructor(licenseKey: string, hardwareId: string, nonce: string, requestedAt: number);
  readonly licenseKey: string;
  readonly hardwareId: string;
  readonly nonce: string;
  readonly requestedAt: number;
  code(): string;
}

export interface CertificatePayload {
  v: 1;
  kid: string;
  product: string;
  license_key: string;
  hardware_id: string;
  nonce: string;
  status: string;
  features: Record<string, unknown>;
  expires_at: number | null;
  issued_at: number;
  valid_until: number;
}

export function makeRequest(licenseKey: string, hardwareId: string, now?: number): OfflineRequest;
export function parseRequestCode(code: string): OfflineRequest;
export function readCertificate(code: string, publicKeys: Keys): CertificatePayload;
export function checkCertificate(
  code: string,
  request: Pick<OfflineRequest, 'licenseKey' | 'hardwareId' | 'nonce'>,
  publicKeys: Keys,
  now?: number,
): CertificatePayload;

export class ClockGuard {
  constructor(path: string, toleranceS?: number);
  lastSeen(): number;
  /** The time to trust (unix seconds), after recording it; throws ClockMovedBackwards. */
  check(now?: number): number;
}

// Card keys and request signing.
export const ALPHABET: string;
export function normaliseCardKey(code: string): string;
export function checkCharacter(payload: string): string;
export function cardKeyIsWellFormed(code: string): boolean;
export function requestSignature(
  apiKey: string,
  method: string,
  path: string,
  timestamp: string,
  nonce: string,
  body: Uint8Array | string,
): string;
export function signedRequestHeaders(apiKey: string, method: string, path: string, body: Uint8Array | string): Record<string, string>;

// Hardware fingerprint.
export function machineId(platform?: string): Promise<string>;
export function fingerprint(product: string, machineId: string): string;
export function hardwareId(product: string, platform?: string): Promise<string>;
