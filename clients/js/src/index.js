// licsrv-client: the JavaScript client of a licsrv license server (docs/protocol.md is the contract).
export { LicenseClient, Session } from './client.js';
export {
  LicsrvError,
  SEALED_CONTENT_TYPE,
  UntrustedAnswer,
  checkAnswer,
  checkSubject,
  keyPairFromSecret,
  keysToLearn,
  oneTimeKeyPair,
  openSealed,
  openSealedAnswer,
  ready,
  sealRequest,
  sealingKeyOf,
  signatureFields,
  verifyEd25519,
  verifyMac,
} from './crypto.js';
export {
  CLOCK_TOLERANCE_S,
  CertificateExpired,
  ClockGuard,
  ClockMovedBackwards,
  OfflineError,
  OfflineRequest,
  checkCertificate,
  makeRequest,
  parseRequestCode,
  readCertificate,
} from './offline.js';
export {
  ALPHABET,
  cardKeyIsWellFormed,
  checkCharacter,
  normaliseCardKey,
  requestSignature,
  signedRequestHeaders,
} from './wire.js';
export { fingerprint, hardwareId, machineId } from './hardware.js';
