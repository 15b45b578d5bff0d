/* Runs every vector in every clients/vectors file through liblicsrv's checks; fails when a file is missing. */
#define _POSIX_C_SOURCE 200809L
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "licsrv.h"

static int failures, checks;
static const char *dir = "../vectors";

#define CHECK(cond, ...)                                   \
    do {                                                   \
        checks++;                                          \
        if (!(cond)) {                                     \
            failures++;                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                  \
            fprintf(stderr, "\n");                         \
        }                                                  \
    } while (0)

static jval *load(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "FAIL: vector file %s is missing\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) exit(1);
    fclose(f);
    jval *v = json_parse(text, (size_t)n);
    free(text);
    if (!v) {
        fprintf(stderr, "FAIL: %s is not JSON\n", path);
        exit(1);
    }
    return v;
}

static const char *S(const jval *obj, const char *key) {
    const char *s = json_str(json_get(obj, key));
    if (!s) {
        fprintf(stderr, "FAIL: vector field %s missing\n", key);
        exit(1);
    }
    return s;
}

static int B(const jval *obj, const char *key) {
    const jval *v = json_get(obj, key);
    return v && v->t == J_BOOL && v->b;
}

static const jval *A(const jval *obj, const char *key) {
    const jval *v = json_get(obj, key);
    if (!v || (v->t != J_ARR && v->t != J_OBJ)) {
        fprintf(stderr, "FAIL: vector field %s missing\n", key);
        exit(1);
    }
    return v;
}

static void keys_of(const jval *obj, lsv_keys *ks) {
    ks->keys = NULL;
    ks->n = 0;
    for (size_t k = 0; k < obj->n; k++) {
        unsigned char pk[32];
        size_t n;
        if (!lsv_b64_decode(json_str(obj->items[k]), 0, pk, 32, &n) || n != 32) exit(1);
        lsv_keys_add(ks, obj->keys[k], pk);
    }
}

static char *keys_text(const jval *obj) {
    jbuf b = {0};
    for (size_t k = 0; k < obj->n; k++) {
        if (k) jb_raw(&b, ";", 1);
        jb_raw(&b, obj->keys[k], strlen(obj->keys[k]));
        jb_raw(&b, "=", 1);
        jb_raw(&b, obj->items[k]->s, obj->items[k]->slen);
    }
    return b.p;
}

static void hex_to(const char *hex, unsigned char *out, size_t cap, size_t *n) {
    if (sodium_hex2bin(out, cap, hex, strlen(hex), NULL, n, NULL) != 0) exit(1);
}

static void signatures(void) {
    jval *v = load("signatures");
    lsv_keys ks;
    keys_of(A(v, "keys"), &ks);
    const jval *cases = A(v, "cases");
    for (size_t k = 0; k < cases->n; k++) {
        const jval *c = cases->items[k];
        const char *body = S(c, "body");
        int ok = lsv_verify_ed25519((const unsigned char *)body, strlen(body), S(c, "signature"), &ks);
        CHECK(ok == B(c, "valid"), "signatures: %s", S(c, "name"));
    }
    /* one changed byte anywhere in the signed body is refused */
    const char *body = S(cases->items[0], "body");
    char *copy = strdup(body);
    copy[strlen(copy) - 3] ^= 1;
    CHECK(!lsv_verify_ed25519((unsigned char *)copy, strlen(copy), S(cases->items[0], "signature"), &ks),
          "a tampered body");
    free(copy);
    lsv_keys_free(&ks);
    json_free(v);
}

static void mac_answers(void) {
    jval *v = load("mac_answers");
    unsigned char key[32];
    size_t n;
    hex_to(S(v, "mac_key_hex"), key, sizeof key, &n);
    const jval *cases = A(v, "cases");
    for (size_t k = 0; k < cases->n; k++) {
        const jval *c = cases->items[k];
        const char *body = S(c, "body");
        int ok = lsv_verify_mac((const unsigned char *)body, strlen(body), S(c, "signature"), key);
        CHECK(ok == B(c, "valid"), "mac_answers: %s", S(c, "name"));
    }
    json_free(v);
}

static void sealed_boxes(void) {
    jval *v = load("sealed_boxes");
    unsigned char sk[32], pk[32], out[256], other[32];
    size_t n;
    char pk64[64];
    hex_to(S(v, "client_secret_key_hex"), sk, 32, &n);
    crypto_scalarmult_base(pk, sk);
    sodium_bin2base64(pk64, sizeof pk64, pk, 32, sodium_base64_VARIANT_ORIGINAL);
    CHECK(strcmp(pk64, S(v, "client_public_key")) == 0, "sealed_boxes: public key");
    const jval *cases = A(v, "cases");
    for (size_t k = 0; k < cases->n; k++) {
        const jval *c = cases->items[k];
        unsigned char want[256];
        size_t wn;
        hex_to(S(c, "plaintext_hex"), want, sizeof want, &wn);
        int ok = lsv_open_sealed_b64(sk, S(c, "sealed"), out, sizeof out, &n);
        CHECK(ok && n == wn && memcmp(out, want, n) == 0, "sealed_boxes: %s", S(c, "name"));
    }
    randombytes_buf(other, 32);
    CHECK(!lsv_open_sealed_b64(other, S(cases->items[0], "sealed"), out, sizeof out, &n), "sealed to another key");

    /* sealed requests and answers (§11) */
    const jval *r = json_get(v, "sealed_request");
    unsigned char server_sk[32], server_pk[32], one_sk[32], one_pk[32];
    hex_to(S(r, "server_secret_key_hex"), server_sk, 32, &n);
    hex_to(S(r, "one_time_secret_key_hex"), one_sk, 32, &n);
    crypto_scalarmult_base(server_pk, server_sk);
    crypto_scalarmult_base(one_pk, one_sk);
    unsigned char raw[1024], opened[1024];
    size_t raw_n;
    CHECK(lsv_b64_decode(S(r, "sealed_body"), 0, raw, sizeof raw, &raw_n), "sealed_request: base64");
    CHECK(crypto_box_seal_open(opened, raw, raw_n, server_pk, server_sk) == 0, "sealed_request opens");
    const char *json = S(r, "json");
    CHECK(raw_n - crypto_box_SEALBYTES == 32 + strlen(json) && memcmp(opened, one_pk, 32) == 0 &&
              memcmp(opened + 32, json, strlen(json)) == 0,
          "sealed_request: one-time key and JSON");
    size_t mine_n;
    unsigned char *mine = lsv_seal_request(server_pk, one_pk, json, strlen(json), &mine_n);
    CHECK(mine && crypto_box_seal_open(opened, mine, mine_n, server_pk, server_sk) == 0 &&
              memcmp(opened + 32, json, strlen(json)) == 0,
          "what this client seals, the server opens");
    free(mine);
    CHECK(lsv_b64_decode(S(r, "sealed_answer"), 0, raw, sizeof raw, &raw_n), "sealed_answer: base64");
    char *header = NULL;
    unsigned char *body = NULL;
    size_t body_n = 0;
    int ok = lsv_open_sealed_answer(one_sk, raw, raw_n, &header, &body, &body_n);
    CHECK(ok && strcmp(header, S(r, "answer_signature")) == 0 && strcmp((char *)body, S(r, "answer_body")) == 0,
          "sealed answer opens to its header and body");
    lsv_keys ks;
    keys_of(A(r, "keys"), &ks);
    CHECK(ok && lsv_verify_ed25519(body, body_n, header, &ks), "sealed answer verifies");
    CHECK(!lsv_open_sealed_answer(other, raw, raw_n, &header, &body, &body_n) || 0, "sealed answer, wrong key");
    free(header);
    free(body);
    lsv_keys_free(&ks);
    json_free(v);
}

static void subjects(void) {
    jval *v = load("subjects");
    const jval *req = json_get(v, "request"), *subject = A(req, "subject");
    const char *names[8], *values[8];
    size_t n = 0;
    names[n] = "product";
    values[n++] = S(req, "product");
    for (size_t k = 0; k < subject->n && n < 8; k++) {
        names[n] = subject->keys[k];
        values[n++] = subject->items[k]->s;
    }
    const jval *cases = A(v, "cases");
    for (size_t k = 0; k < cases->n; k++) {
        const jval *c = cases->items[k];
        int ok = lsv_check_answer(json_get(c, "answer"), S(req, "nonce"), names, values, n);
        CHECK(ok == B(c, "accept"), "subjects: %s", S(c, "name"));
    }
    json_free(v);
}

static void keys_answers(void) {
    jval *v = load("keys_answers");
    lsv_keys trusted, learned;
    keys_of(A(v, "trusted"), &trusted);
    const jval *cases = A(v, "cases");
    for (size_t k = 0; k < cases->n; k++) {
        const jval *c = cases->items[k];
        const char *body = S(c, "body");
        char x[64];
        int ok = lsv_keys_to_learn((const unsigned char *)body, strlen(body), S(c, "signature"),
                                   S(c, "key_signatures"), &trusted, &learned, x, sizeof x);
        CHECK(ok == B(c, "learn"), "keys_answers: %s", S(c, "name"));
        if (ok) CHECK(learned.n == 2 && lsv_keys_find(&learned, "ec55b0016eb690f8"), "keys learned");
        lsv_keys_free(&learned);
    }
    lsv_keys_free(&trusted);
    json_free(v);
}

static void request_codes(void) {
    jval *v = load("request_codes");
    const jval *valid = A(v, "valid"), *invalid = A(v, "invalid");
    for (size_t k = 0; k < valid->n; k++) {
        const jval *c = valid->items[k];
        char code[2048], lk[256], hw[256], nonce[256];
        long long at = 0;
        const jval *t = json_get(c, "requested_at");
        int err = licsrv_request_code(S(c, "license_key"), S(c, "hardware_id"), S(c, "nonce"), t->i, code, sizeof code);
        CHECK(err == LICSRV_OK && strcmp(code, S(c, "code")) == 0, "request code %s", code);
        err = licsrv_request_parse(S(c, "code"), lk, hw, nonce, sizeof lk, &at);
        CHECK(err == LICSRV_OK && strcmp(lk, S(c, "license_key")) == 0 && strcmp(hw, S(c, "hardware_id")) == 0 &&
                  strcmp(nonce, S(c, "nonce")) == 0 && at == t->i,
              "request code parses back");
    }
    for (size_t k = 0; k < invalid->n; k++) {
        const char *code = invalid->items[k]->s;
        CHECK(licsrv_request_parse(code, NULL, NULL, NULL, 0, NULL) == LICSRV_ERR_DAMAGED, "invalid code %s", code);
    }
    char made[2048], nonce[64];
    CHECK(licsrv_request_make("K-1", "hw-ü", 1800000000, made, sizeof made) == LICSRV_OK &&
              licsrv_request_parse(made, NULL, NULL, nonce, sizeof nonce, NULL) == LICSRV_OK && strlen(nonce) == 12,
          "a made request carries a 72-bit nonce");
    json_free(v);
}

static void certificates(void) {
    jval *v = load("certificates");
    char *keys = keys_text(A(v, "keys"));
    const jval *req = json_get(v, "request"), *now = json_get(v, "now");
    char code[2048];
    licsrv_request_code(S(req, "license_key"), S(req, "hardware_id"), S(req, "nonce"), now->i, code, sizeof code);
    const jval *cases = A(v, "cases");
    for (size_t k = 0; k < cases->n; k++) {
        const jval *c = cases->items[k];
        char *payload = NULL;
        int err = licsrv_certificate_check(S(c, "certificate"), code, keys, now->i, &payload);
        const char *result = err == LICSRV_OK ? "ok" : licsrv_err_name(err);
        CHECK(strcmp(result, S(c, "result")) == 0, "certificates: %s (got %s)", S(c, "name"), result);
        if (err == LICSRV_OK) CHECK(payload && strstr(payload, "\"kid\""), "payload returned");
        licsrv_free(payload);
    }
    /* pasted with line breaks: still good; damaged: refused */
    const char *good = S(cases->items[0], "certificate");
    char *broken = malloc(strlen(good) + 8);
    sprintf(broken, "%.20s\n  %s", good, good + 20);
    CHECK(licsrv_certificate_check(broken, code, keys, now->i, NULL) == LICSRV_OK, "whitespace ignored");
    CHECK(licsrv_certificate_check("LC1.abc", code, keys, now->i, NULL) == LICSRV_ERR_DAMAGED, "damaged");
    CHECK(licsrv_certificate_check(good, code, "", now->i, NULL) == LICSRV_ERR_CERT_BAD_SIGNATURE, "no keys");
    free(broken);
    free(keys);
    json_free(v);
}

static void card_keys(void) {
    jval *v = load("card_keys");
    const jval *checks_ = A(v, "check_characters"), *cases = A(v, "cases");
    for (size_t k = 0; k < checks_->n; k++) {
        const jval *c = checks_->items[k];
        char got = licsrv_card_check_character(S(c, "payload"));
        CHECK(got == S(c, "check")[0], "check character of %s", S(c, "payload"));
    }
    for (size_t k = 0; k < cases->n; k++) {
        const jval *c = cases->items[k];
        CHECK(licsrv_card_key_well_formed(S(c, "code")) == B(c, "well_formed"), "card key %s", S(c, "code"));
    }
    json_free(v);
}

static void request_signing(void) {
    jval *v = load("request_signing");
    const jval *cases = A(v, "cases");
    for (size_t k = 0; k < cases->n; k++) {
        const jval *c = cases->items[k];
        char out[65];
        const char *body = S(c, "body");
        licsrv_request_signature(S(v, "api_key"), S(c, "method"), S(c, "path"), S(c, "timestamp"), S(c, "nonce"),
                                 (const unsigned char *)body, strlen(body), out);
        CHECK(strcmp(out, S(c, "signature")) == 0, "request signature %zu", k);
    }
    json_free(v);
}

static void parser(void) {
    const char *bad[] = {"", "{", "{\"a\":}", "[1,]", "01", "\"\\x\"", "\"a", "tru", "{\"a\":1}x", "\"\\ud800\"",
                         "\"\x01\"", "1.", "-", "{1:2}", "\"\xc0\xaf\""};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        jval *v = json_parse(bad[k], strlen(bad[k]));
        CHECK(v == NULL, "parser refuses %s", bad[k]);
        json_free(v);
    }
    const char *text = "{\"a\":\"\\u00fc\\ud83d\\ude00\\n\",\"b\":[1,-2.5e3,true,false,null],\"c\":{},\"a2\":\"x\\u0000y\"}";
    jval *v = json_parse(text, strlen(text));
    CHECK(v && json_str_eq(json_get(v, "a"), "\xc3\xbc\xf0\x9f\x98\x80\n"), "unicode escapes");
    const jval *b = json_get(v, "b");
    CHECK(b && b->n == 5 && b->items[0]->is_int && b->items[0]->i == 1 && b->items[1]->num == -2500 &&
              !b->items[1]->is_int && b->items[2]->b == 1 && b->items[4]->t == J_NULL,
          "arrays and numbers");
    CHECK(!json_str_eq(json_get(v, "a2"), "x"), "an embedded NUL is not a shorter string");
    json_free(v);
    char deep[200];
    memset(deep, '[', sizeof deep);
    CHECK(json_parse(deep, sizeof deep) == NULL, "depth limit");
    jbuf out = {0};
    jb_str(&out, "a\"\\\n\x7f\xc3\xbc\xf0\x9f\x98\x80");
    CHECK(out.p && strcmp(out.p, "\"a\\\"\\\\\\n\\u007f\\u00fc\\ud83d\\ude00\"") == 0, "writer escapes like Python: %s", out.p);
    jb_free(&out);
    char h[65];
    CHECK(licsrv_hardware_id_from("desk-app", "0123456789abcdef", h) == LICSRV_OK &&
              strcmp(h, "50e34f376e3cf0a5f4b4aa08e1636eac476058cfb0e5345b49155188ec2a5283") == 0,
          "fingerprint: the JavaScript client's fingerprint()");
    char h2[65];
    licsrv_hardware_id_from("other-app", "0123456789abcdef", h2);
    CHECK(strcmp(h, h2) != 0, "fingerprint differs per product");
    CHECK(strcmp(licsrv_err_name(LICSRV_ERR_SESSION_EXPIRED), "SESSION_EXPIRED") == 0 &&
              licsrv_err_from_code("METHOD_NOT_ALLOWED") == LICSRV_ERR_METHOD_NOT_ALLOWED &&
              licsrv_err_from_code("NEW_CODE") == LICSRV_ERR_UNKNOWN_CODE,
          "error names");
}

static void clock_guard(void) {
    char path[] = "/tmp/licsrv-clock-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temp file");
    long long t = 0;
    CHECK(licsrv_clock_guard(path, 1800000000, &t) == LICSRV_OK && t == 1800000000, "first run");
    CHECK(licsrv_clock_guard(path, 1800000000 - 200, NULL) == LICSRV_OK, "within 300 s");
    CHECK(licsrv_clock_guard(path, 1800000000 - 301, NULL) == LICSRV_ERR_CLOCK_MOVED_BACKWARDS, "set back");
    CHECK(licsrv_clock_guard(path, 1800000100, NULL) == LICSRV_OK, "forward");
    CHECK(licsrv_clock_guard(path, 1800000000 - 250, NULL) == LICSRV_ERR_CLOCK_MOVED_BACKWARDS, "records the latest");
    remove(path);
}

int main(int argc, char **argv) {
    if (argc > 1) dir = argv[1];
    if (sodium_init() < 0) return 1;
    signatures();
    mac_answers();
    sealed_boxes();
    subjects();
    keys_answers();
    request_codes();
    certificates();
    card_keys();
    request_signing();
    parser();
    clock_guard();
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
