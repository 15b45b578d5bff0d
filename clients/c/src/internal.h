/* Internal pieces of liblicsrv, exposed to its tests. */
#ifndef LICSRV_INTERNAL_H
#define LICSRV_INTERNAL_H
#include <stddef.h>

#include "json.h"
#include "licsrv.h"

typedef struct {
    char id[65];
    unsigned char pk[32];
} lsv_key;

typedef struct {
    lsv_key *keys;
    size_t n;
} lsv_keys;

int lsv_keys_parse(const char *text, lsv_keys *out); /* "id=base64;..." → 1 ok, 0 bad */
int lsv_keys_add(lsv_keys *ks, const char *id, const unsigned char pk[32]);
const lsv_key *lsv_keys_find(const lsv_keys *ks, const char *id);
void lsv_keys_free(lsv_keys *ks);

/* Splits an X-Licsrv-Signature value; fields are copied into the given buffers ("" when absent). */
void lsv_signature_fields(const char *header, char *keyid, size_t kcap, char *alg, size_t acap, char *sig,
                          size_t scap);
int lsv_verify_ed25519(const unsigned char *body, size_t len, const char *header, const lsv_keys *keys);
int lsv_verify_mac(const unsigned char *body, size_t len, const char *header, const unsigned char key[32]);
/* 1 when `answer` echoes `nonce` and names the subject (names/values, n) as §3 says. */
int lsv_check_answer(const jval *answer, const char *nonce, const char *const *names, const char *const *values,
                     size_t n);
/* Keys a keys answer teaches: 1 and `learned` filled when its signature or a key signature verifies with
 * `trusted` (or, with none trusted, with a listed key); x25519 (≥ 64 bytes) gets the sealing key or "". */
int lsv_keys_to_learn(const unsigned char *body, size_t len, const char *header, const char *key_signatures,
                      const lsv_keys *trusted, lsv_keys *learned, char *x25519, size_t xcap);
/* Opens base64 `sealed` with the one-time secret key; 1 and out (cap bytes) / out_len on success. */
int lsv_open_sealed_b64(const unsigned char sk[32], const char *sealed, unsigned char *out, size_t cap,
                        size_t *out_len);
/* A sealed answer (§11): 1 and malloc'd header (NUL-terminated) and body (NUL-terminated, body_len). */
int lsv_open_sealed_answer(const unsigned char sk[32], const unsigned char *raw, size_t len, char **header,
                           unsigned char **body, size_t *body_len);
/* A sealed request body: malloc'd seal(server_pk, one_time_pk || json). */
unsigned char *lsv_seal_request(const unsigned char server_pk[32], const unsigned char one_time_pk[32],
                                const char *json, size_t json_len, size_t *out_len);
int lsv_b64_decode(const char *text, int urlsafe, unsigned char *out, size_t cap, size_t *out_len);
#endif
