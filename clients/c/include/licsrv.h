/* liblicsrv — a C client for the licsrv client API (docs/protocol.md).
 *
 * Every answer is verified before it is believed: Ed25519 over the exact body bytes with a trusted key (or,
 * for a MAC session, HMAC-SHA256 under its MAC key and nothing else), the echoed nonce, and the subject
 * fields of the request. An answer that fails any check is LICSRV_ERR_UNTRUSTED_ANSWER and nothing in it
 * is used. Plain C ABI (callable from C++, C# P/Invoke, Delphi): opaque handles, const char * UTF-8 strings,
 * int/long long numbers. Thread safety: one client may be used from several threads; a session's calls and
 * its keep-alive thread are serialised by the library. */
#ifndef LICSRV_H
#define LICSRV_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define LICSRV_API __declspec(dllexport)
#else
#define LICSRV_API __attribute__((visibility("default")))
#endif

/* Results. 0 is success; client-side failures are 1..99; the server's refusal codes (§8) are 100 and up;
 * offline certificate results are 200 and up. licsrv_err_name() gives the stable string of each. */
typedef enum licsrv_err {
    LICSRV_OK = 0,
    LICSRV_ERR_UNTRUSTED_ANSWER = 1, /* "UNTRUSTED_ANSWER": signature/MAC, nonce or subject failed */
    LICSRV_ERR_NETWORK = 2,          /* "NETWORK_ERROR": no answer (connection, timeout) */
    LICSRV_ERR_INVALID_ARGUMENT = 3, /* "INVALID_ARGUMENT" */
    LICSRV_ERR_NO_MEMORY = 4,        /* "NO_MEMORY" */
    LICSRV_ERR_UNKNOWN_CODE = 5,     /* "UNKNOWN_CODE": a trusted refusal with a code this library does not know
                                        (licsrv_answer_code() has it); treat it as a refusal */
    LICSRV_ERR_IO = 6,               /* "IO_ERROR": a file could not be read or written */

    LICSRV_ERR_INVALID_API_KEY = 100,
    LICSRV_ERR_VALIDATION_ERROR,
    LICSRV_ERR_LICENSE_NOT_FOUND,
    LICSRV_ERR_LICENSE_EXPIRED,
    LICSRV_ERR_LICENSE_SUSPENDED,
    LICSRV_ERR_LICENSE_REVOKED,
    LICSRV_ERR_DEVICE_LIMIT_REACHED,
    LICSRV_ERR_DEVICE_NOT_ACTIVATED,
    LICSRV_ERR_HARDWARE_MISMATCH,
    LICSRV_ERR_CARD_NOT_FOUND,
    LICSRV_ERR_CARD_VOID, /* 110 */
    LICSRV_ERR_CARD_BOUND_ELSEWHERE,
    LICSRV_ERR_SESSION_LIMIT_REACHED,
    LICSRV_ERR_SESSION_EXPIRED,
    LICSRV_ERR_SESSION_TERMINATED,
    LICSRV_ERR_VERSION_TOO_OLD,
    LICSRV_ERR_RATE_LIMITED,
    LICSRV_ERR_SERVICE_UNAVAILABLE,
    LICSRV_ERR_BAD_SIGNATURE,
    LICSRV_ERR_REPLAYED_REQUEST,
    LICSRV_ERR_PAYLOAD_TOO_LARGE, /* 120 */
    LICSRV_ERR_NOT_FOUND,
    LICSRV_ERR_METHOD_NOT_ALLOWED,

    /* Offline request codes, certificates and the clock guard (§10): the names are the vectors' results. */
    LICSRV_ERR_DAMAGED = 200,               /* "damaged" */
    LICSRV_ERR_CERT_BAD_SIGNATURE = 201,    /* "bad_signature" */
    LICSRV_ERR_WRONG_MACHINE = 202,         /* "wrong_machine" */
    LICSRV_ERR_WRONG_REQUEST = 203,         /* "wrong_request" */
    LICSRV_ERR_CLOCK_BEHIND = 204,          /* "clock_behind" */
    LICSRV_ERR_EXPIRED = 205,               /* "expired" */
    LICSRV_ERR_CLOCK_MOVED_BACKWARDS = 206  /* "clock_moved_backwards" */
} licsrv_err;

LICSRV_API const char *licsrv_err_name(int err); /* stable string; "UNKNOWN" for an unknown number */
LICSRV_API int licsrv_err_from_code(const char *code); /* the enum of a server code; UNKNOWN_CODE if unknown */

typedef struct licsrv_client licsrv_client;
typedef struct licsrv_session licsrv_session;
typedef struct licsrv_answer licsrv_answer;

/* A client. `product` is the product's slug (every answer must name it). `pinned_keys` is
 * "keyid=base64key;keyid=base64key" (Ed25519 keys from GET /api/v1/keys, shipped with the program), or NULL
 * or "" to trust on first use (not recommended). Returns NULL on bad arguments or no memory. */
LICSRV_API licsrv_client *licsrv_client_new(const char *base_url, const char *api_key, const char *product,
                                            const char *pinned_keys);
LICSRV_API void licsrv_client_free(licsrv_client *client);
LICSRV_API void licsrv_client_set_timeout_ms(licsrv_client *client, int timeout_ms); /* default 10000 */
/* Products with require_signed_requests (§9): sign every call with the API key. */
LICSRV_API void licsrv_client_set_sign_requests(licsrv_client *client, int on);
/* Seal every call's body to the server's X25519 key and have its answer sealed back (§11). */
LICSRV_API void licsrv_client_set_sealed(licsrv_client *client, int on);
/* The trusted keys ("keyid=base64;..."), to persist keys learned after a rotation. Free with licsrv_free. */
LICSRV_API char *licsrv_client_keys(licsrv_client *client);
/* GET /keys: learn the published keys from an answer signed by a trusted key (§4). */
LICSRV_API int licsrv_fetch_keys(licsrv_client *client);

/* Calls (§6). `out` (may be NULL) receives the verified answer — also for trusted refusals — to be freed with
 * licsrv_answer_free. machine_name, client_version and license_key (of redeem) may be NULL. */
LICSRV_API int licsrv_activate(licsrv_client *client, const char *license_key, const char *hardware_id,
                               const char *machine_name, const char *client_version, licsrv_answer **out);
LICSRV_API int licsrv_validate(licsrv_client *client, const char *license_key, const char *hardware_id,
                               licsrv_answer **out);
LICSRV_API int licsrv_deactivate(licsrv_client *client, const char *license_key, const char *hardware_id,
                                 licsrv_answer **out);
LICSRV_API int licsrv_redeem(licsrv_client *client, const char *card_key, const char *hardware_id,
                             const char *license_key, licsrv_answer **out);
/* POST /offline/activate with a request code (licsrv_request_make); the answer names `certificate`. */
LICSRV_API int licsrv_offline_activate(licsrv_client *client, const char *request_code, licsrv_answer **out);

/* The verified answer. */
LICSRV_API void licsrv_answer_free(licsrv_answer *answer);
LICSRV_API const char *licsrv_answer_json(const licsrv_answer *answer);    /* the exact verified body */
LICSRV_API const char *licsrv_answer_code(const licsrv_answer *answer);    /* "" for a success */
LICSRV_API const char *licsrv_answer_message(const licsrv_answer *answer); /* "" for a success */
LICSRV_API int licsrv_answer_http_status(const licsrv_answer *answer);
LICSRV_API long long licsrv_answer_server_time(const licsrv_answer *answer);
LICSRV_API double licsrv_answer_retry_after(const licsrv_answer *answer); /* seconds, or -1 */
/* Fields of `data`: a string (NULL when absent or not a string), an integer (`fallback` when absent or not an
 * integer), a boolean (1, 0, or -1 when absent or not a boolean). */
LICSRV_API const char *licsrv_answer_string(const licsrv_answer *answer, const char *field);
LICSRV_API long long licsrv_answer_int(const licsrv_answer *answer, const char *field, long long fallback);
LICSRV_API int licsrv_answer_bool(const licsrv_answer *answer, const char *field);

/* Sessions (§5, §7). The start always sends a fresh X25519 one-time public key: the session is a MAC
 * session whose heartbeat and end answers are accepted only with a valid HMAC-SHA256 under its mac_key.
 * `open_program` also asks for the product's content key. */
LICSRV_API int licsrv_session_start(licsrv_client *client, const char *license_key, const char *hardware_id,
                                    const char *client_version, const char *machine_name, int open_program,
                                    licsrv_session **session, licsrv_answer **out);
LICSRV_API int licsrv_session_heartbeat(licsrv_session *session, int *next_heartbeat_s, licsrv_answer **out);
/* Ends the session (stops its keep-alive thread first, unless called from the keep-alive callback). */
LICSRV_API int licsrv_session_end(licsrv_session *session, licsrv_answer **out);
/* Stops the keep-alive thread and frees the session (it does not end it on the server). */
LICSRV_API void licsrv_session_free(licsrv_session *session);
/* Copies the session id (16 characters + NUL) into `buf` (≥ 17 bytes); returns its length or -1. */
LICSRV_API int licsrv_session_id(licsrv_session *session, char *buf, size_t cap);
LICSRV_API int licsrv_session_heartbeat_interval(licsrv_session *session); /* seconds */
LICSRV_API int licsrv_session_timeout(licsrv_session *session);            /* seconds */
LICSRV_API int licsrv_session_restarts(licsrv_session *session); /* new sessions started after SESSION_EXPIRED */
/* The product's 32-byte content key (open_program): 1 when copied to out32, 0 when the product has none. */
LICSRV_API int licsrv_session_content_key(licsrv_session *session, unsigned char *out32);

/* The keep-alive thread (§7). Events passed to the callback (on the keep-alive thread): */
typedef enum licsrv_event {
    LICSRV_EVENT_HEARTBEAT = 1, /* a trusted heartbeat answer */
    LICSRV_EVENT_RESTARTED = 2, /* SESSION_EXPIRED: a new session was started; session_id is the new one */
    LICSRV_EVENT_RETRYING = 3,  /* a network failure or SERVICE_UNAVAILABLE; retried until session_timeout */
    LICSRV_EVENT_STOPPED = 4    /* the thread stopped: err says why (a refusal, UNTRUSTED_ANSWER, or the
                                   network failing for session_timeout); stop the program and tell the user */
} licsrv_event;
typedef void (*licsrv_keepalive_cb)(void *user, int event, int err, const char *code, const char *session_id);
/* Starts the thread. interval_ms 0 follows the server (heartbeat_interval, then next_heartbeat). */
LICSRV_API int licsrv_keepalive_start(licsrv_session *session, licsrv_keepalive_cb callback, void *user,
                                      int interval_ms);
/* Stops and joins the thread (do not call it from the callback). */
LICSRV_API void licsrv_keepalive_stop(licsrv_session *session);

/* Offline activation (§10). Codes are written to `out` (NUL-terminated, `cap` bytes); the functions return
 * LICSRV_ERR_INVALID_ARGUMENT when it does not fit (2048 bytes always do). */
LICSRV_API int licsrv_request_code(const char *license_key, const char *hardware_id, const char *nonce,
                                   long long requested_at, char *out, size_t cap);
/* A new request code with a fresh nonce at `now` (0 = the clock): keep it until the certificate comes. */
LICSRV_API int licsrv_request_make(const char *license_key, const char *hardware_id, long long now, char *out,
                                   size_t cap);
/* Parses a request code (DAMAGED when it is not one); each out buffer may be NULL, else `cap` bytes each. */
LICSRV_API int licsrv_request_parse(const char *code, char *license_key, char *hardware_id, char *nonce,
                                    size_t cap, long long *requested_at);
/* Checks a certificate for the request `request_code` on this machine at `now` (0 = the clock) with the
 * trusted `keys` ("keyid=base64;..."): LICSRV_OK, or DAMAGED, CERT_BAD_SIGNATURE, WRONG_MACHINE,
 * WRONG_REQUEST, CLOCK_BEHIND, EXPIRED. `payload_json` (may be NULL) receives the payload (licsrv_free). */
LICSRV_API int licsrv_certificate_check(const char *certificate, const char *request_code, const char *keys,
                                        long long now, char **payload_json);
/* The same with the client's trusted keys. */
LICSRV_API int licsrv_client_check_certificate(licsrv_client *client, const char *certificate,
                                               const char *request_code, long long now, char **payload_json);
/* Clock guard: refuses (CLOCK_MOVED_BACKWARDS) when now + 300 s < the latest time stored in `path`,
 * otherwise records max(now, stored). now 0 = the clock. `trusted_now` (may be NULL) receives now. */
LICSRV_API int licsrv_clock_guard(const char *path, long long now, long long *trusted_now);

/* Card keys (§6): 1 when `code` (spaces, -, _ and tabs dropped, upper-cased) is a well-formed card key. */
LICSRV_API int licsrv_card_key_well_formed(const char *code);
/* The check character for a 31-symbol payload, or 0 when the payload has a symbol outside the alphabet. */
LICSRV_API char licsrv_card_check_character(const char *payload);
/* Request signing (§9): 64 hex characters + NUL into out65. */
LICSRV_API int licsrv_request_signature(const char *api_key, const char *method, const char *path,
                                        const char *timestamp, const char *nonce, const unsigned char *body,
                                        size_t body_len, char *out65);

/* Hardware fingerprint: hex SHA-256 of "licsrv-hardware-v1\n" product slug "\n" machine id, the same id as
 * the JavaScript client's hardwareId (64 characters + NUL into out65), the
 * machine id being Linux /etc/machine-id (or /var/lib/dbus/machine-id), macOS IOPlatformUUID, Windows
 * HKLM\SOFTWARE\Microsoft\Cryptography\MachineGuid. It survives reboots and updates; it changes when the OS
 * is reinstalled (or the machine id regenerated, e.g. a cloned VM image that runs systemd-machine-id-setup). */
LICSRV_API int licsrv_hardware_id(const char *product, char *out65);
/* The same from a given machine id (for tests and for programs with their own source). */
LICSRV_API int licsrv_hardware_id_from(const char *product, const char *machine_id, char *out65);

LICSRV_API void licsrv_free(void *p); /* frees strings this library returned */

#ifdef __cplusplus
}
#endif
#endif
