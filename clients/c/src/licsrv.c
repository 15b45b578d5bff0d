/* liblicsrv: the client calls, answer verification, sessions and the keep-alive thread. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"

#define SEALED_TYPE "application/x-licsrv-sealed"
#define MAX_ANSWER (1u << 20)

/* ---------- error names ---------- */

static const char *const SERVER_CODES[] = {
    "INVALID_API_KEY", "VALIDATION_ERROR", "LICENSE_NOT_FOUND", "LICENSE_EXPIRED", "LICENSE_SUSPENDED",
    "LICENSE_REVOKED", "DEVICE_LIMIT_REACHED", "DEVICE_NOT_ACTIVATED", "HARDWARE_MISMATCH", "CARD_NOT_FOUND",
    "CARD_VOID", "CARD_BOUND_ELSEWHERE", "SESSION_LIMIT_REACHED", "SESSION_EXPIRED", "SESSION_TERMINATED",
    "VERSION_TOO_OLD", "RATE_LIMITED", "SERVICE_UNAVAILABLE", "BAD_SIGNATURE", "REPLAYED_REQUEST",
    "PAYLOAD_TOO_LARGE", "NOT_FOUND", "METHOD_NOT_ALLOWED"};
#define N_SERVER_CODES (sizeof SERVER_CODES / sizeof SERVER_CODES[0])
static const char *const CLIENT_CODES[] = {"OK", "UNTRUSTED_ANSWER", "NETWORK_ERROR", "INVALID_ARGUMENT",
                                           "NO_MEMORY", "UNKNOWN_CODE", "IO_ERROR"};
static const char *const OFFLINE_CODES[] = {"damaged", "bad_signature", "wrong_machine", "wrong_request",
                                            "clock_behind", "expired", "clock_moved_backwards"};

const char *licsrv_err_name(int err) {
    if (err >= 0 && err < (int)(sizeof CLIENT_CODES / sizeof CLIENT_CODES[0])) return CLIENT_CODES[err];
    if (err >= 100 && err < 100 + (int)N_SERVER_CODES) return SERVER_CODES[err - 100];
    if (err >= 200 && err < 200 + (int)(sizeof OFFLINE_CODES / sizeof OFFLINE_CODES[0])) return OFFLINE_CODES[err - 200];
    return "UNKNOWN";
}

int licsrv_err_from_code(const char *code) {
    for (size_t k = 0; code && k < N_SERVER_CODES; k++)
        if (strcmp(code, SERVER_CODES[k]) == 0) return 100 + (int)k;
    return LICSRV_ERR_UNKNOWN_CODE;
}

void licsrv_free(void *p) { free(p); }

/* ---------- keys ---------- */

int lsv_b64_decode(const char *text, int urlsafe, unsigned char *out, size_t cap, size_t *out_len) {
    size_t len = 0;
    const char *end = NULL;
    if (!text) return 0;
    int variant = urlsafe ? sodium_base64_VARIANT_URLSAFE_NO_PADDING : sodium_base64_VARIANT_ORIGINAL;
    if (sodium_base642bin(out, cap, text, strlen(text), NULL, &len, &end, variant) != 0) return 0;
    if (end != text + strlen(text)) return 0;
    if (out_len) *out_len = len;
    return 1;
}

int lsv_keys_add(lsv_keys *ks, const char *id, const unsigned char pk[32]) {
    if (strlen(id) >= sizeof ks->keys[0].id) return 0;
    for (size_t k = 0; k < ks->n; k++)
        if (strcmp(ks->keys[k].id, id) == 0) {
            memcpy(ks->keys[k].pk, pk, 32);
            return 1;
        }
    lsv_key *keys = realloc(ks->keys, (ks->n + 1) * sizeof *keys);
    if (!keys) return 0;
    ks->keys = keys;
    strcpy(keys[ks->n].id, id);
    memcpy(keys[ks->n].pk, pk, 32);
    ks->n++;
    return 1;
}

const lsv_key *lsv_keys_find(const lsv_keys *ks, const char *id) {
    for (size_t k = 0; ks && k < ks->n; k++)
        if (strcmp(ks->keys[k].id, id) == 0) return &ks->keys[k];
    return NULL;
}

void lsv_keys_free(lsv_keys *ks) {
    free(ks->keys);
    ks->keys = NULL;
    ks->n = 0;
}

int lsv_keys_parse(const char *text, lsv_keys *out) {
    out->keys = NULL;
    out->n = 0;
    if (!text) return 1;
    char *copy = strdup(text), *save = NULL;
    if (!copy) return 0;
    for (char *part = strtok_r(copy, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
        while (*part == ' ') part++;
        if (!*part) continue;
        char *eq = strchr(part, '=');
        unsigned char pk[32];
        size_t len;
        if (!eq) goto bad;
        *eq = 0;
        char *value = eq + 1;
        size_t vl = strlen(value);
        while (vl && value[vl - 1] == ' ') value[--vl] = 0;
        if (!lsv_b64_decode(value, 0, pk, sizeof pk, &len) || len != 32 || !lsv_keys_add(out, part, pk)) goto bad;
    }
    free(copy);
    return 1;
bad:
    free(copy);
    lsv_keys_free(out);
    return 0;
}

static void copy_trimmed(char *dst, size_t cap, const char *s, size_t n) {
    while (n && (*s == ' ' || *s == '\t')) { s++; n--; }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) n--;
    if (n >= cap) n = cap - 1; /* a field longer than its buffer fails verification later */
    memcpy(dst, s, n);
    dst[n] = 0;
}

void lsv_signature_fields(const char *header, char *keyid, size_t kcap, char *alg, size_t acap, char *sig,
                          size_t scap) {
    keyid[0] = alg[0] = sig[0] = 0;
    const char *p = header ? header : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char part[512];
        copy_trimmed(part, sizeof part, p, n);
        char *eq = strchr(part, '=');
        if (eq) {
            *eq = 0;
            char name[64];
            copy_trimmed(name, sizeof name, part, strlen(part));
            const char *value = eq + 1;
            if (strcmp(name, "keyid") == 0) copy_trimmed(keyid, kcap, value, strlen(value));
            else if (strcmp(name, "alg") == 0) copy_trimmed(alg, acap, value, strlen(value));
            else if (strcmp(name, "sig") == 0) copy_trimmed(sig, scap, value, strlen(value));
        }
        if (!comma) break;
        p = comma + 1;
    }
}

int lsv_verify_ed25519(const unsigned char *body, size_t len, const char *header, const lsv_keys *keys) {
    char keyid[80], alg[32], sig[256];
    unsigned char raw[64];
    size_t n;
    lsv_signature_fields(header, keyid, sizeof keyid, alg, sizeof alg, sig, sizeof sig);
    if (strcmp(alg, "ed25519") != 0) return 0;
    const lsv_key *key = lsv_keys_find(keys, keyid);
    if (!key || !lsv_b64_decode(sig, 0, raw, sizeof raw, &n) || n != 64) return 0;
    return crypto_sign_verify_detached(raw, body, len, key->pk) == 0;
}

int lsv_verify_mac(const unsigned char *body, size_t len, const char *header, const unsigned char key[32]) {
    char keyid[80], alg[32], sig[256];
    unsigned char raw[32], expected[32];
    size_t n;
    lsv_signature_fields(header, keyid, sizeof keyid, alg, sizeof alg, sig, sizeof sig);
    if (strcmp(alg, "hmac-sha256") != 0) return 0; /* a MAC session's answer: its MAC or nothing */
    if (!lsv_b64_decode(sig, 0, raw, sizeof raw, &n) || n != 32) return 0;
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, 32);
    crypto_auth_hmacsha256_update(&st, body, len);
    crypto_auth_hmacsha256_final(&st, expected);
    return crypto_verify_32(expected, raw) == 0;
}

int lsv_check_answer(const jval *answer, const char *nonce, const char *const *names, const char *const *values,
                     size_t n) {
    if (!answer || answer->t != J_OBJ || !json_str_eq(json_get(answer, "nonce"), nonce)) return 0;
    const jval *data = json_get(answer, "data");
    if (data && data->t != J_OBJ) data = NULL;
    int success = json_str_eq(json_get(answer, "status"), "ok");
    for (size_t k = 0; k < n; k++) {
        const jval *named = json_get(data, names[k]);
        if (!named && !success) continue; /* a refusal need not name what it did not read */
        if (!json_str_eq(named, values[k])) return 0;
    }
    return 1;
}

int lsv_keys_to_learn(const unsigned char *body, size_t len, const char *header, const char *key_signatures,
                      const lsv_keys *trusted, lsv_keys *learned, char *x25519, size_t xcap) {
    learned->keys = NULL;
    learned->n = 0;
    if (x25519 && xcap) x25519[0] = 0;
    jval *root = json_parse((const char *)body, len);
    const jval *data = json_get(root, "data");
    if (!data || data->t != J_ARR) goto bad;
    for (size_t k = 0; k < data->n; k++) {
        const jval *entry = data->items[k];
        const char *id = json_str(json_get(entry, "id")), *pk64 = json_str(json_get(entry, "public_key"));
        const jval *alg = json_get(entry, "alg");
        unsigned char pk[32];
        size_t n;
        if (!id || !pk64) goto bad;
        if (json_str_eq(alg, "x25519")) {
            if (x25519 && strlen(pk64) < xcap) strcpy(x25519, pk64);
            continue;
        }
        if (alg && !json_str_eq(alg, "ed25519")) continue;
        if (!lsv_b64_decode(pk64, 0, pk, sizeof pk, &n) || n != 32 || !lsv_keys_add(learned, id, pk)) goto bad;
    }
    const lsv_keys *with = trusted && trusted->n ? trusted : learned;
    int ok = lsv_verify_ed25519(body, len, header, with);
    const char *p = key_signatures ? key_signatures : "";
    while (!ok && *p) {
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        char *one = strndup(p, n);
        if (!one) goto bad;
        ok = lsv_verify_ed25519(body, len, one, with);
        free(one);
        if (!semi) break;
        p = semi + 1;
    }
    json_free(root);
    if (!ok) lsv_keys_free(learned);
    return ok;
bad:
    json_free(root);
    lsv_keys_free(learned);
    return 0;
}

int lsv_open_sealed_b64(const unsigned char sk[32], const char *sealed, unsigned char *out, size_t cap,
                        size_t *out_len) {
    unsigned char raw[512], pk[32];
    size_t n;
    if (!lsv_b64_decode(sealed, 0, raw, sizeof raw, &n) || n < crypto_box_SEALBYTES) return 0;
    if (n - crypto_box_SEALBYTES > cap) return 0;
    crypto_scalarmult_base(pk, sk);
    if (crypto_box_seal_open(out, raw, n, pk, sk) != 0) return 0;
    *out_len = n - crypto_box_SEALBYTES;
    return 1;
}

int lsv_open_sealed_answer(const unsigned char sk[32], const unsigned char *raw, size_t len, char **header,
                           unsigned char **body, size_t *body_len) {
    unsigned char pk[32];
    if (len < crypto_box_SEALBYTES) return 0;
    size_t n = len - crypto_box_SEALBYTES;
    unsigned char *opened = malloc(n + 1);
    if (!opened) return 0;
    crypto_scalarmult_base(pk, sk);
    if (crypto_box_seal_open(opened, raw, len, pk, sk) != 0) { free(opened); return 0; }
    opened[n] = 0;
    unsigned char *nl = memchr(opened, '\n', n);
    size_t hl = nl ? (size_t)(nl - opened) : n;
    *header = strndup((const char *)opened, hl);
    size_t bl = nl ? n - hl - 1 : 0;
    *body = malloc(bl + 1);
    if (!*header || !*body) { free(*header); free(*body); free(opened); return 0; }
    if (bl) memcpy(*body, nl + 1, bl);
    (*body)[bl] = 0;
    *body_len = bl;
    free(opened);
    return 1;
}

unsigned char *lsv_seal_request(const unsigned char server_pk[32], const unsigned char one_time_pk[32],
                                const char *json, size_t json_len, size_t *out_len) {
    size_t n = 32 + json_len;
    unsigned char *plain = malloc(n), *sealed = malloc(n + crypto_box_SEALBYTES);
    if (!plain || !sealed) { free(plain); free(sealed); return NULL; }
    memcpy(plain, one_time_pk, 32);
    memcpy(plain + 32, json, json_len);
    crypto_box_seal(sealed, plain, n, server_pk);
    free(plain);
    *out_len = n + crypto_box_SEALBYTES;
    return sealed;
}

/* ---------- the client ---------- */

struct licsrv_client {
    char *base_url, *api_key, *product;
    long timeout_ms;
    int sign_requests, sealed;
    pthread_mutex_t mu; /* guards keys and sealing_key */
    lsv_keys keys;
    unsigned char sealing_key[32];
    int has_sealing_key;
};

struct licsrv_answer {
    char *json;
    jval *root;
    const char *code, *message;
    int http_status;
    long long server_time;
    double retry_after;
};

licsrv_client *licsrv_client_new(const char *base_url, const char *api_key, const char *product,
                                  const char *pinned_keys) {
    if (!base_url || !api_key || !product || !*product) return NULL;
    if (sodium_init() < 0) return NULL;
    curl_global_init(CURL_GLOBAL_DEFAULT); /* reference counted by libcurl */
    licsrv_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->base_url = strdup(base_url);
    c->api_key = strdup(api_key);
    c->product = strdup(product);
    c->timeout_ms = 10000;
    pthread_mutex_init(&c->mu, NULL);
    if (!c->base_url || !c->api_key || !c->product || !lsv_keys_parse(pinned_keys, &c->keys)) {
        licsrv_client_free(c);
        return NULL;
    }
    size_t n = strlen(c->base_url);
    while (n && c->base_url[n - 1] == '/') c->base_url[--n] = 0;
    return c;
}

void licsrv_client_free(licsrv_client *c) {
    if (!c) return;
    free(c->base_url);
    free(c->api_key);
    free(c->product);
    lsv_keys_free(&c->keys);
    pthread_mutex_destroy(&c->mu);
    free(c);
    curl_global_cleanup();
}

void licsrv_client_set_timeout_ms(licsrv_client *c, int ms) { if (c && ms > 0) c->timeout_ms = ms; }
void licsrv_client_set_sign_requests(licsrv_client *c, int on) { if (c) c->sign_requests = on; }
void licsrv_client_set_sealed(licsrv_client *c, int on) { if (c) c->sealed = on; }

char *licsrv_client_keys(licsrv_client *c) {
    jbuf b = {0};
    if (!c) return NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t k = 0; k < c->keys.n; k++) {
        char b64[64];
        sodium_bin2base64(b64, sizeof b64, c->keys.keys[k].pk, 32, sodium_base64_VARIANT_ORIGINAL);
        if (k) jb_raw(&b, ";", 1);
        jb_raw(&b, c->keys.keys[k].id, strlen(c->keys.keys[k].id));
        jb_raw(&b, "=", 1);
        jb_raw(&b, b64, strlen(b64));
    }
    pthread_mutex_unlock(&c->mu);
    if (b.failed) { jb_free(&b); return NULL; }
    return b.p ? b.p : strdup("");
}

/* ---------- HTTP ---------- */

typedef struct {
    unsigned char *body;
    size_t len;
    int too_big;
    char sig[2048], keysigs[16384], retry_after[32], ctype[128];
    long status;
} http_resp;

static size_t on_body(char *p, size_t size, size_t n, void *user) {
    http_resp *r = user;
    size_t add = size * n;
    if (r->len + add > MAX_ANSWER) { r->too_big = 1; return 0; }
    unsigned char *body = realloc(r->body, r->len + add + 1);
    if (!body) return 0;
    r->body = body;
    memcpy(r->body + r->len, p, add);
    r->len += add;
    r->body[r->len] = 0;
    return add;
}

static int header_is(const char *line, size_t n, const char *name, char *dst, size_t cap) {
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':') return 0;
    copy_trimmed(dst, cap, line + nl + 1, n - nl - 1);
    return 1;
}

static size_t on_header(char *p, size_t size, size_t n, void *user) {
    http_resp *r = user;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new response (after 100 Continue): start over */
        r->sig[0] = r->keysigs[0] = r->retry_after[0] = r->ctype[0] = 0;
        return len;
    }
    (void)(header_is(p, len, "X-Licsrv-Signature", r->sig, sizeof r->sig) ||
        header_is(p, len, "X-Licsrv-Key-Signatures", r->keysigs, sizeof r->keysigs) ||
        header_is(p, len, "Retry-After", r->retry_after, sizeof r->retry_after) ||
           header_is(p, len, "Content-Type", r->ctype, sizeof r->ctype));
    return len;
}

static int http(licsrv_client *c, const char *method, const char *path, const char *query,
                const unsigned char *body, size_t body_len, const char *ctype, http_resp *r) {
    memset(r, 0, sizeof *r);
    CURL *h = curl_easy_init();
    if (!h) return LICSRV_ERR_NO_MEMORY;
    jbuf url = {0};
    jb_raw(&url, c->base_url, strlen(c->base_url));
    jb_raw(&url, path, strlen(path));
    if (query) jb_raw(&url, query, strlen(query));
    struct curl_slist *hdrs = NULL;
    char line[512];
    int err = LICSRV_OK;
    if (url.failed) { err = LICSRV_ERR_NO_MEMORY; goto done; }
    if (strcmp(method, "POST") == 0) {
        snprintf(line, sizeof line, "X-API-Key: %s", c->api_key);
        hdrs = curl_slist_append(hdrs, line);
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        hdrs = curl_slist_append(hdrs, line);
        hdrs = curl_slist_append(hdrs, "Expect:");
        if (c->sign_requests) {
            unsigned char rnd[16];
            char nonce[32], ts[24], sig[65];
            randombytes_buf(rnd, sizeof rnd);
            sodium_bin2base64(nonce, sizeof nonce, rnd, sizeof rnd, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
            snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
            licsrv_request_signature(c->api_key, method, path, ts, nonce, body, body_len, sig);
            snprintf(line, sizeof line, "X-Licsrv-Timestamp: %s", ts);
            hdrs = curl_slist_append(hdrs, line);
            snprintf(line, sizeof line, "X-Licsrv-Nonce: %s", nonce);
            hdrs = curl_slist_append(hdrs, line);
            snprintf(line, sizeof line, "X-Licsrv-Request-Signature: %s", sig);
            hdrs = curl_slist_append(hdrs, line);
        }
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    curl_easy_setopt(h, CURLOPT_URL, url.p);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* safe in threads */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (curl_easy_perform(h) != CURLE_OK) {
        err = r->too_big ? LICSRV_ERR_UNTRUSTED_ANSWER : LICSRV_ERR_NETWORK;
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        if (!r->body) r->body = calloc(1, 1);
        if (!r->body) err = LICSRV_ERR_NO_MEMORY;
    }
done:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    jb_free(&url);
    if (err != LICSRV_OK) { free(r->body); r->body = NULL; }
    return err;
}

static void fresh_nonce(char out[24]) {
    unsigned char rnd[12];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2base64(out, 24, rnd, sizeof rnd, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int licsrv_fetch_keys(licsrv_client *c) {
    char nonce[24], query[40];
    http_resp r;
    if (!c) return LICSRV_ERR_INVALID_ARGUMENT;
    fresh_nonce(nonce);
    snprintf(query, sizeof query, "?nonce=%s", nonce);
    int err = http(c, "GET", "/api/v1/keys", query, NULL, 0, NULL, &r);
    if (err) return err;
    lsv_keys learned;
    char x25519[64];
    pthread_mutex_lock(&c->mu);
    int ok = lsv_keys_to_learn(r.body, r.len, r.sig, r.keysigs, &c->keys, &learned, x25519, sizeof x25519);
    pthread_mutex_unlock(&c->mu);
    jval *root = ok ? json_parse((const char *)r.body, r.len) : NULL;
    if (ok && !json_str_eq(json_get(root, "nonce"), nonce)) ok = 0;
    json_free(root);
    free(r.body);
    if (!ok) { lsv_keys_free(&learned); return LICSRV_ERR_UNTRUSTED_ANSWER; }
    pthread_mutex_lock(&c->mu);
    for (size_t k = 0; k < learned.n; k++) lsv_keys_add(&c->keys, learned.keys[k].id, learned.keys[k].pk);
    size_t n = 0;
    if (x25519[0] && lsv_b64_decode(x25519, 0, c->sealing_key, 32, &n) && n == 32) c->has_sealing_key = 1;
    pthread_mutex_unlock(&c->mu);
    lsv_keys_free(&learned);
    return LICSRV_OK;
}

static int verify_signed(licsrv_client *c, const unsigned char *body, size_t len, const char *header) {
    char keyid[80], alg[32], sig[256];
    lsv_signature_fields(header, keyid, sizeof keyid, alg, sizeof alg, sig, sizeof sig);
    pthread_mutex_lock(&c->mu);
    int known = lsv_keys_find(&c->keys, keyid) != NULL;
    pthread_mutex_unlock(&c->mu);
    if (!known && strcmp(alg, "ed25519") == 0) {
        int err = licsrv_fetch_keys(c); /* first use, or a key activated since: once */
        if (err == LICSRV_ERR_NETWORK) return err;
    }
    pthread_mutex_lock(&c->mu);
    int ok = lsv_verify_ed25519(body, len, header, &c->keys);
    pthread_mutex_unlock(&c->mu);
    return ok ? LICSRV_OK : LICSRV_ERR_UNTRUSTED_ANSWER;
}

void licsrv_answer_free(licsrv_answer *a) {
    if (!a) return;
    free(a->json);
    json_free(a->root);
    free(a);
}

/* POSTs the fields (names/values, n; NULL values left out) with a fresh nonce and returns the verified
 * answer's result. The subject is the product and the (names, values, ns) given. */
static int call(licsrv_client *c, const char *path, const char *const *names, const char *const *values, size_t n,
                const char *const *snames, const char *const *svalues, size_t ns, const unsigned char *mac_key,
                licsrv_answer **out) {
    if (out) *out = NULL;
    if (!c) return LICSRV_ERR_INVALID_ARGUMENT;
    char nonce[24];
    fresh_nonce(nonce);
    jbuf b = {0};
    jb_raw(&b, "{", 1);
    for (size_t k = 0; k < n; k++) {
        if (!values[k]) continue;
        jb_str(&b, names[k]);
        jb_raw(&b, ":", 1);
        jb_str(&b, values[k]);
        jb_raw(&b, ",", 1);
    }
    jb_raw(&b, "\"nonce\":", 8);
    jb_str(&b, nonce);
    jb_raw(&b, "}", 1);
    if (b.failed) { jb_free(&b); return LICSRV_ERR_INVALID_ARGUMENT; }

    const unsigned char *payload = (const unsigned char *)b.p;
    size_t payload_len = b.len;
    unsigned char *sealed = NULL, one_pk[32], one_sk[32];
    const char *ctype = "application/json";
    if (c->sealed) {
        pthread_mutex_lock(&c->mu);
        int has = c->has_sealing_key;
        pthread_mutex_unlock(&c->mu);
        if (!has) {
            int err = licsrv_fetch_keys(c);
            if (err) { jb_free(&b); return err; }
        }
        pthread_mutex_lock(&c->mu);
        unsigned char server_pk[32];
        has = c->has_sealing_key;
        memcpy(server_pk, c->sealing_key, 32);
        pthread_mutex_unlock(&c->mu);
        if (!has) { jb_free(&b); return LICSRV_ERR_UNTRUSTED_ANSWER; }
        crypto_box_keypair(one_pk, one_sk);
        sealed = lsv_seal_request(server_pk, one_pk, b.p, b.len, &payload_len);
        if (!sealed) { jb_free(&b); return LICSRV_ERR_NO_MEMORY; }
        payload = sealed;
        ctype = SEALED_TYPE;
    }
    http_resp r;
    int err = http(c, "POST", path, NULL, payload, payload_len, ctype, &r);
    jb_free(&b);
    free(sealed);
    if (err) { sodium_memzero(one_sk, sizeof one_sk); return err; }

    unsigned char *body = r.body;
    size_t body_len = r.len;
    char *header = NULL;
    if (c->sealed && strncasecmp(r.ctype, SEALED_TYPE, strlen(SEALED_TYPE)) == 0) {
        unsigned char *opened;
        if (!lsv_open_sealed_answer(one_sk, r.body, r.len, &header, &opened, &body_len)) {
            free(r.body);
            sodium_memzero(one_sk, sizeof one_sk);
            return LICSRV_ERR_UNTRUSTED_ANSWER;
        }
        free(r.body);
        body = opened;
    }
    sodium_memzero(one_sk, sizeof one_sk);
    const char *sig = header ? header : r.sig;

    /* 1. authenticity */
    if (mac_key) err = lsv_verify_mac(body, body_len, sig, mac_key) ? LICSRV_OK : LICSRV_ERR_UNTRUSTED_ANSWER;
    else err = verify_signed(c, body, body_len, sig);
    free(header);
    if (err) { free(body); return err; }
    /* 2. freshness and 3. subject */
    jval *root = json_parse((const char *)body, body_len);
    const char *allnames[8], *allvalues[8];
    allnames[0] = "product";
    allvalues[0] = c->product;
    for (size_t k = 0; k < ns && k < 7; k++) { allnames[k + 1] = snames[k]; allvalues[k + 1] = svalues[k]; }
    if (!root || !lsv_check_answer(root, nonce, allnames, allvalues, ns + 1)) {
        json_free(root);
        free(body);
        return LICSRV_ERR_UNTRUSTED_ANSWER;
    }
    licsrv_answer *a = calloc(1, sizeof *a);
    if (!a) { json_free(root); free(body); return LICSRV_ERR_NO_MEMORY; }
    a->json = (char *)body;
    a->root = root;
    a->http_status = (int)r.status;
    a->retry_after = r.retry_after[0] ? strtod(r.retry_after, NULL) : -1;
    const jval *st = json_get(root, "server_time");
    a->server_time = st && st->t == J_NUM ? (long long)st->num : 0;
    a->code = a->message = "";
    if (json_str_eq(json_get(root, "status"), "ok")) {
        err = LICSRV_OK;
    } else {
        const jval *e = json_get(root, "error");
        const char *code = json_str(json_get(e, "code")), *message = json_str(json_get(e, "message"));
        a->code = code ? code : "UNKNOWN";
        a->message = message ? message : "";
        err = licsrv_err_from_code(a->code);
    }
    if (out) *out = a;
    else licsrv_answer_free(a);
    return err;
}

const char *licsrv_answer_json(const licsrv_answer *a) { return a ? a->json : NULL; }
const char *licsrv_answer_code(const licsrv_answer *a) { return a ? a->code : ""; }
const char *licsrv_answer_message(const licsrv_answer *a) { return a ? a->message : ""; }
int licsrv_answer_http_status(const licsrv_answer *a) { return a ? a->http_status : 0; }
long long licsrv_answer_server_time(const licsrv_answer *a) { return a ? a->server_time : 0; }
double licsrv_answer_retry_after(const licsrv_answer *a) { return a ? a->retry_after : -1; }

static const jval *data_field(const licsrv_answer *a, const char *field) {
    return a && field ? json_get(json_get(a->root, "data"), field) : NULL;
}
const char *licsrv_answer_string(const licsrv_answer *a, const char *field) { return json_str(data_field(a, field)); }
long long licsrv_answer_int(const licsrv_answer *a, const char *field, long long fallback) {
    const jval *v = data_field(a, field);
    return v && v->t == J_NUM && v->is_int ? v->i : fallback;
}
int licsrv_answer_bool(const licsrv_answer *a, const char *field) {
    const jval *v = data_field(a, field);
    return v && v->t == J_BOOL ? v->b : -1;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

int licsrv_activate(licsrv_client *c, const char *lk, const char *hw, const char *machine_name,
                    const char *client_version, licsrv_answer **out) {
    if (!lk || !hw) return LICSRV_ERR_INVALID_ARGUMENT;
    const char *names[] = {"license_key", "hardware_id", "machine_name", "client_version"};
    const char *values[] = {lk, hw, machine_name && *machine_name ? machine_name : NULL,
                            client_version && *client_version ? client_version : NULL};
    return call(c, "/api/v1/licenses/activate", names, values, N(names), names, values, 2, NULL, out);
}

int licsrv_validate(licsrv_client *c, const char *lk, const char *hw, licsrv_answer **out) {
    if (!lk || !hw) return LICSRV_ERR_INVALID_ARGUMENT;
    const char *names[] = {"license_key", "hardware_id"}, *values[] = {lk, hw};
    return call(c, "/api/v1/licenses/validate", names, values, 2, names, values, 2, NULL, out);
}

int licsrv_deactivate(licsrv_client *c, const char *lk, const char *hw, licsrv_answer **out) {
    if (!lk || !hw) return LICSRV_ERR_INVALID_ARGUMENT;
    const char *names[] = {"license_key", "hardware_id"}, *values[] = {lk, hw};
    return call(c, "/api/v1/licenses/deactivate", names, values, 2, names, values, 2, NULL, out);
}

int licsrv_redeem(licsrv_client *c, const char *card, const char *hw, const char *lk, licsrv_answer **out) {
    if (!card || !hw) return LICSRV_ERR_INVALID_ARGUMENT;
    const char *names[] = {"card_key", "hardware_id", "license_key"};
    const char *values[] = {card, hw, lk && *lk ? lk : NULL};
    return call(c, "/api/v1/cards/redeem", names, values, 3, names, values, values[2] ? 3 : 2, NULL, out);
}

int licsrv_offline_activate(licsrv_client *c, const char *code, licsrv_answer **out) {
    char lk[1024], hw[1024];
    if (!code) return LICSRV_ERR_INVALID_ARGUMENT;
    int err = licsrv_request_parse(code, lk, hw, NULL, sizeof lk, NULL);
    if (err) return err;
    const char *names[] = {"request_code"}, *values[] = {code};
    const char *snames[] = {"license_key", "hardware_id"}, *svalues[] = {lk, hw};
    return call(c, "/api/v1/offline/activate", names, values, 1, snames, svalues, 2, NULL, out);
}

int licsrv_client_check_certificate(licsrv_client *c, const char *certificate, const char *request_code,
                                    long long now, char **payload_json) {
    char *keys = licsrv_client_keys(c);
    if (!keys) return LICSRV_ERR_NO_MEMORY;
    int err = licsrv_certificate_check(certificate, request_code, keys, now, payload_json);
    free(keys);
    return err;
}

/* ---------- sessions ---------- */

struct licsrv_session {
    licsrv_client *c;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    char *token;
    char id[64];
    unsigned char mac_key[32], content_key[32];
    int has_content_key, hb_interval, timeout, restarts;
    char *lk, *hw, *version, *machine;
    int open_program;
    pthread_t thread;
    int running, stop;
    licsrv_keepalive_cb cb;
    void *user;
    long interval_ms;
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* A start; on success fills a fresh session (not yet handed out). */
static int start(licsrv_client *c, const char *lk, const char *hw, const char *version, const char *machine,
                 int open_program, licsrv_session *s, licsrv_answer **out) {
    unsigned char pk[32], sk[32];
    char pk64[64];
    crypto_box_keypair(pk, sk);
    sodium_bin2base64(pk64, sizeof pk64, pk, 32, sodium_base64_VARIANT_ORIGINAL);
    const char *names[] = {"license_key", "hardware_id", "client_version", "client_public_key", "machine_name",
                           "function"};
    const char *values[] = {lk, hw, version, pk64, machine && *machine ? machine : NULL, open_program ? "open" : NULL};
    licsrv_answer *a = NULL;
    int err = call(c, "/api/v1/sessions/start", names, values, N(names), names, values, 2, NULL, &a);
    if (err == LICSRV_OK) {
        /* sealed to this start's one-time key: an answer to another start does not open */
        const char *token = licsrv_answer_string(a, "session_token"), *id = licsrv_answer_string(a, "session_id");
        const jval *content = data_field(a, "content_key");
        size_t n = 0, m = 0;
        long long hb = licsrv_answer_int(a, "heartbeat_interval", -1), to = licsrv_answer_int(a, "session_timeout", -1);
        if (!token || !id || strlen(id) >= sizeof s->id || hb <= 0 || to <= 0 ||
            !lsv_open_sealed_b64(sk, licsrv_answer_string(a, "mac_key"), s->mac_key, 32, &n) || n != 32 ||
            (content && content->t != J_NULL &&
             (!lsv_open_sealed_b64(sk, json_str(content), s->content_key, 32, &m) || m != 32))) {
            err = LICSRV_ERR_UNTRUSTED_ANSWER;
        } else {
            s->token = strdup(token);
            if (!s->token) err = LICSRV_ERR_NO_MEMORY;
            strcpy(s->id, id);
            s->has_content_key = content && content->t != J_NULL;
            s->hb_interval = (int)hb;
            s->timeout = (int)to;
        }
    }
    sodium_memzero(sk, sizeof sk);
    if (err == LICSRV_ERR_UNTRUSTED_ANSWER || err == LICSRV_ERR_NO_MEMORY) { licsrv_answer_free(a); a = NULL; }
    if (out) *out = a;
    else licsrv_answer_free(a);
    return err;
}

int licsrv_session_start(licsrv_client *c, const char *lk, const char *hw, const char *version,
                         const char *machine, int open_program, licsrv_session **session, licsrv_answer **out) {
    if (out) *out = NULL;
    if (!c || !lk || !hw || !version || !session) return LICSRV_ERR_INVALID_ARGUMENT;
    *session = NULL;
    licsrv_session *s = calloc(1, sizeof *s);
    if (!s) return LICSRV_ERR_NO_MEMORY;
    s->c = c;
    int err = start(c, lk, hw, version, machine, open_program, s, out);
    if (err) { free(s->token); free(s); return err; }
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &attr);
    pthread_condattr_destroy(&attr);
    s->lk = strdup(lk);
    s->hw = strdup(hw);
    s->version = strdup(version);
    s->machine = dup_or_null(machine);
    s->open_program = open_program;
    if (!s->lk || !s->hw || !s->version || (machine && !s->machine)) {
        licsrv_session_free(s);
        return LICSRV_ERR_NO_MEMORY;
    }
    *session = s;
    return LICSRV_OK;
}

/* A heartbeat or end with the session's current token, id and MAC key. */
static int session_call(licsrv_session *s, const char *path, licsrv_answer **out) {
    pthread_mutex_lock(&s->mu);
    char *token = strdup(s->token), id[64];
    unsigned char mac[32];
    strcpy(id, s->id);
    memcpy(mac, s->mac_key, 32);
    pthread_mutex_unlock(&s->mu);
    if (!token) return LICSRV_ERR_NO_MEMORY;
    const char *names[] = {"session_token"}, *values[] = {token};
    const char *snames[] = {"session_id"}, *svalues[] = {id};
    int err = call(s->c, path, names, values, 1, snames, svalues, 1, mac, out);
    free(token);
    sodium_memzero(mac, sizeof mac);
    return err;
}

int licsrv_session_heartbeat(licsrv_session *s, int *next, licsrv_answer **out) {
    if (out) *out = NULL;
    if (!s) return LICSRV_ERR_INVALID_ARGUMENT;
    licsrv_answer *a = NULL;
    int err = session_call(s, "/api/v1/sessions/heartbeat", &a);
    if (err == LICSRV_OK) {
        long long n = licsrv_answer_int(a, "next_heartbeat", -1);
        if (n <= 0) { licsrv_answer_free(a); a = NULL; err = LICSRV_ERR_UNTRUSTED_ANSWER; }
        else if (next) *next = (int)n;
    }
    if (out) *out = a;
    else licsrv_answer_free(a);
    return err;
}

int licsrv_session_end(licsrv_session *s, licsrv_answer **out) {
    if (out) *out = NULL;
    if (!s) return LICSRV_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->mu);
    int own = s->running && pthread_equal(s->thread, pthread_self());
    pthread_mutex_unlock(&s->mu);
    if (!own) licsrv_keepalive_stop(s);
    return session_call(s, "/api/v1/sessions/end", out);
}

void licsrv_session_free(licsrv_session *s) {
    if (!s) return;
    licsrv_keepalive_stop(s);
    sodium_memzero(s->mac_key, 32);
    sodium_memzero(s->content_key, 32);
    free(s->token);
    free(s->lk);
    free(s->hw);
    free(s->version);
    free(s->machine);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

int licsrv_session_id(licsrv_session *s, char *buf, size_t cap) {
    if (!s || !buf) return -1;
    pthread_mutex_lock(&s->mu);
    size_t n = strlen(s->id);
    int ok = n < cap;
    if (ok) memcpy(buf, s->id, n + 1);
    pthread_mutex_unlock(&s->mu);
    return ok ? (int)n : -1;
}

#define LOCKED_INT(name, field)                     \
    int name(licsrv_session *s) {                   \
        if (!s) return -1;                          \
        pthread_mutex_lock(&s->mu);                 \
        int v = s->field;                           \
        pthread_mutex_unlock(&s->mu);               \
        return v;                                   \
    }
LOCKED_INT(licsrv_session_heartbeat_interval, hb_interval)
LOCKED_INT(licsrv_session_timeout, timeout)
LOCKED_INT(licsrv_session_restarts, restarts)

int licsrv_session_content_key(licsrv_session *s, unsigned char *out32) {
    if (!s || !out32) return 0;
    pthread_mutex_lock(&s->mu);
    int has = s->has_content_key;
    if (has) memcpy(out32, s->content_key, 32);
    pthread_mutex_unlock(&s->mu);
    return has;
}

/* SESSION_EXPIRED: a new session with the same arguments (a new key pair, hence a new MAC key). */
static int restart(licsrv_session *s) {
    licsrv_session fresh;
    memset(&fresh, 0, sizeof fresh);
    int err = start(s->c, s->lk, s->hw, s->version, s->machine, s->open_program, &fresh, NULL);
    if (err) { free(fresh.token); return err; }
    pthread_mutex_lock(&s->mu);
    free(s->token);
    s->token = fresh.token;
    strcpy(s->id, fresh.id);
    memcpy(s->mac_key, fresh.mac_key, 32);
    memcpy(s->content_key, fresh.content_key, 32);
    s->has_content_key = fresh.has_content_key;
    s->hb_interval = fresh.hb_interval;
    s->timeout = fresh.timeout;
    s->restarts++;
    pthread_mutex_unlock(&s->mu);
    sodium_memzero(&fresh, sizeof fresh);
    return LICSRV_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits `ms` unless asked to stop; returns 1 when asked to stop. */
static int pause_ms(licsrv_session *s, long ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&s->mu);
    while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT) {}
    int stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static void report(licsrv_session *s, int event, int err, const char *code) {
    char id[64];
    licsrv_session_id(s, id, sizeof id);
    if (s->cb) s->cb(s->user, event, err, code ? code : licsrv_err_name(err), id);
}

static void *keepalive(void *arg) {
    licsrv_session *s = arg;
    long wait = s->interval_ms ? s->interval_ms : 1000L * licsrv_session_heartbeat_interval(s);
    for (;;) {
        if (pause_ms(s, wait)) return NULL;
        double failing_since = now_s();
        for (;;) {
            int next = 0;
            licsrv_answer *a = NULL;
            int err = licsrv_session_heartbeat(s, &next, &a);
            char code[64];
            snprintf(code, sizeof code, "%s", a ? licsrv_answer_code(a) : "");
            double retry_after = a ? licsrv_answer_retry_after(a) : -1;
            licsrv_answer_free(a);
            if (err == LICSRV_OK) {
                report(s, LICSRV_EVENT_HEARTBEAT, err, "");
                wait = s->interval_ms ? s->interval_ms : 1000L * next;
                break;
            }
            if (err == LICSRV_ERR_SESSION_EXPIRED) {
                int again = restart(s);
                if (again != LICSRV_OK) {
                    report(s, LICSRV_EVENT_STOPPED, again, NULL);
                    return NULL;
                }
                report(s, LICSRV_EVENT_RESTARTED, LICSRV_OK, "");
                wait = s->interval_ms ? s->interval_ms : 1000L * licsrv_session_heartbeat_interval(s);
                break;
            }
            if (err != LICSRV_ERR_NETWORK && err != LICSRV_ERR_SERVICE_UNAVAILABLE) {
                report(s, LICSRV_EVENT_STOPPED, err, code[0] ? code : NULL);
                return NULL;
            }
            if (now_s() - failing_since > licsrv_session_timeout(s)) {
                report(s, LICSRV_EVENT_STOPPED, err, code[0] ? code : NULL);
                return NULL;
            }
            report(s, LICSRV_EVENT_RETRYING, err, code[0] ? code : NULL);
            long retry = 250L * licsrv_session_heartbeat_interval(s); /* interval / 4 */
            if (retry > 5000) retry = 5000;
            if (retry < 50) retry = 50;
            if (retry_after > 0) retry = (long)(retry_after * 1000);
            if (pause_ms(s, retry)) return NULL;
        }
    }
}

int licsrv_keepalive_start(licsrv_session *s, licsrv_keepalive_cb cb, void *user, int interval_ms) {
    if (!s || interval_ms < 0) return LICSRV_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&s->mu);
    if (s->running) { pthread_mutex_unlock(&s->mu); return LICSRV_ERR_INVALID_ARGUMENT; }
    s->cb = cb;
    s->user = user;
    s->interval_ms = interval_ms;
    s->stop = 0;
    s->running = 1;
    int rc = pthread_create(&s->thread, NULL, keepalive, s);
    if (rc) s->running = 0;
    pthread_mutex_unlock(&s->mu);
    return rc ? LICSRV_ERR_NO_MEMORY : LICSRV_OK;
}

void licsrv_keepalive_stop(licsrv_session *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    int running = s->running;
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (running) {
        pthread_join(s->thread, NULL);
        pthread_mutex_lock(&s->mu);
        s->running = 0;
        pthread_mutex_unlock(&s->mu);
    }
}
