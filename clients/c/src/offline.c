/* liblicsrv: offline request codes and certificates, the clock guard, card keys, request signing and the
 * hardware fingerprint. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#ifdef _WIN32
#include <windows.h>
#endif

#define REQUEST_PREFIX "LR1."
#define CERT_PREFIX "LC1."
#define CERT_CONTEXT "licsrv offline certificate v1\n"
#define MAX_CODE 2000
#define TOLERANCE_S 300

static int put(char *out, size_t cap, const char *s, size_t n) {
    if (!out || n + 1 > cap) return LICSRV_ERR_INVALID_ARGUMENT;
    memcpy(out, s, n);
    out[n] = 0;
    return LICSRV_OK;
}

int licsrv_request_code(const char *lk, const char *hw, const char *nonce, long long at, char *out, size_t cap) {
    if (!lk || !hw || !nonce) return LICSRV_ERR_INVALID_ARGUMENT;
    char t[32];
    jbuf b = {0};
    jb_raw(&b, "{\"k\":", 5);
    jb_str(&b, lk);
    jb_raw(&b, ",\"h\":", 5);
    jb_str(&b, hw);
    jb_raw(&b, ",\"n\":", 5);
    jb_str(&b, nonce);
    snprintf(t, sizeof t, ",\"t\":%lld}", at);
    jb_raw(&b, t, strlen(t));
    if (b.failed) { jb_free(&b); return LICSRV_ERR_INVALID_ARGUMENT; }
    size_t need = sodium_base64_ENCODED_LEN(b.len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *enc = malloc(need);
    if (!enc) { jb_free(&b); return LICSRV_ERR_NO_MEMORY; }
    sodium_bin2base64(enc, need, (const unsigned char *)b.p, b.len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    jb_free(&b);
    size_t n = strlen(enc);
    int err = LICSRV_ERR_INVALID_ARGUMENT;
    if (out && 4 + n + 1 <= cap) {
        memcpy(out, REQUEST_PREFIX, 4);
        memcpy(out + 4, enc, n + 1);
        err = LICSRV_OK;
    }
    free(enc);
    return err;
}

int licsrv_request_make(const char *lk, const char *hw, long long now, char *out, size_t cap) {
    if (sodium_init() < 0) return LICSRV_ERR_NO_MEMORY;
    unsigned char rnd[9];
    char nonce[16];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2base64(nonce, sizeof nonce, rnd, sizeof rnd, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return licsrv_request_code(lk, hw, nonce, now ? now : (long long)time(NULL), out, cap);
}

/* Decodes base64url with or without padding into a malloc'd NUL-terminated buffer. */
static unsigned char *unb64url(const char *text, size_t n, size_t *out_len) {
    char *copy = malloc(n + 1);
    unsigned char *out = malloc(n + 1);
    if (!copy || !out) goto bad;
    memcpy(copy, text, n);
    copy[n] = 0;
    while (n && copy[n - 1] == '=') copy[--n] = 0;
    size_t len = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, n + 1, copy, n, NULL, &len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != copy + n)
        goto bad;
    out[len] = 0;
    *out_len = len;
    free(copy);
    return out;
bad:
    free(copy);
    free(out);
    return NULL;
}

static size_t utf8_chars(const char *s, size_t n) {
    size_t count = 0;
    for (size_t k = 0; k < n; k++)
        if (((unsigned char)s[k] & 0xC0) != 0x80) count++;
    return count;
}

static int text_field(const jval *v) {
    return v && v->t == J_STR && v->slen == strlen(v->s) && utf8_chars(v->s, v->slen) >= 1 &&
           utf8_chars(v->s, v->slen) <= 200;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

int licsrv_request_parse(const char *code, char *lk, char *hw, char *nonce, size_t cap, long long *at) {
    if (!code) return LICSRV_ERR_INVALID_ARGUMENT;
    while (is_space(*code)) code++;
    size_t n = strlen(code);
    while (n && is_space(code[n - 1])) n--;
    if (n > MAX_CODE || n < 4 || memcmp(code, REQUEST_PREFIX, 4) != 0) return LICSRV_ERR_DAMAGED;
    size_t len;
    unsigned char *raw = unb64url(code + 4, n - 4, &len);
    if (!raw) return LICSRV_ERR_DAMAGED;
    jval *doc = json_parse((const char *)raw, len);
    free(raw);
    int err = LICSRV_ERR_DAMAGED;
    const jval *k = json_get(doc, "k"), *h = json_get(doc, "h"), *nn = json_get(doc, "n"), *t = json_get(doc, "t");
    if (doc && doc->t == J_OBJ && text_field(k) && text_field(h) && text_field(nn) && t && t->t == J_NUM &&
        t->is_int && t->i > 0 && t->i < (1LL << 40)) {
        err = LICSRV_OK;
        if (lk && put(lk, cap, k->s, k->slen)) err = LICSRV_ERR_INVALID_ARGUMENT;
        if (hw && put(hw, cap, h->s, h->slen)) err = LICSRV_ERR_INVALID_ARGUMENT;
        if (nonce && put(nonce, cap, nn->s, nn->slen)) err = LICSRV_ERR_INVALID_ARGUMENT;
        if (at) *at = t->i;
    }
    json_free(doc);
    return err;
}

int licsrv_certificate_check(const char *certificate, const char *request_code, const char *keys_text,
                             long long now, char **payload_json) {
    if (payload_json) *payload_json = NULL;
    if (!certificate || !request_code) return LICSRV_ERR_INVALID_ARGUMENT;
    if (sodium_init() < 0) return LICSRV_ERR_NO_MEMORY;
    char lk[1024], hw[1024], nonce[1024];
    int err = licsrv_request_parse(request_code, lk, hw, nonce, sizeof lk, NULL);
    if (err) return err == LICSRV_ERR_DAMAGED ? LICSRV_ERR_INVALID_ARGUMENT : err;
    lsv_keys keys;
    if (!lsv_keys_parse(keys_text, &keys)) return LICSRV_ERR_INVALID_ARGUMENT;
    if (!now) now = (long long)time(NULL);

    /* whitespace inside is ignored (typed or pasted with line breaks) */
    size_t total = strlen(certificate), n = 0;
    char *code = malloc(total + 1);
    unsigned char *body = NULL, *sig = NULL;
    jval *payload = NULL;
    if (!code) { lsv_keys_free(&keys); return LICSRV_ERR_NO_MEMORY; }
    for (size_t k = 0; k < total; k++)
        if (!is_space(certificate[k])) code[n++] = certificate[k];
    code[n] = 0;
    err = LICSRV_ERR_DAMAGED;
    char *dot1 = n >= 4 ? strchr(code + 4, '.') : NULL;
    if (n > MAX_CODE || n < 4 || memcmp(code, CERT_PREFIX, 4) != 0 || !dot1 || strchr(dot1 + 1, '.')) goto done;
    size_t body_len, sig_len;
    body = unb64url(code + 4, (size_t)(dot1 - code - 4), &body_len);
    sig = unb64url(dot1 + 1, strlen(dot1 + 1), &sig_len);
    if (!body || !sig) goto done;
    payload = json_parse((const char *)body, body_len);
    if (!payload || payload->t != J_OBJ) goto done;
    err = LICSRV_ERR_CERT_BAD_SIGNATURE;
    const char *kid = json_str(json_get(payload, "kid"));
    const lsv_key *key = kid ? lsv_keys_find(&keys, kid) : NULL;
    if (!key || sig_len != 64) goto done;
    size_t clen = strlen(CERT_CONTEXT);
    unsigned char *signed_bytes = malloc(clen + body_len);
    if (!signed_bytes) { err = LICSRV_ERR_NO_MEMORY; goto done; }
    memcpy(signed_bytes, CERT_CONTEXT, clen);
    memcpy(signed_bytes + clen, body, body_len);
    int good = crypto_sign_verify_detached(sig, signed_bytes, clen + body_len, key->pk) == 0;
    free(signed_bytes);
    if (!good) goto done;
    err = LICSRV_ERR_WRONG_MACHINE;
    if (!json_str_eq(json_get(payload, "hardware_id"), hw)) goto done;
    err = LICSRV_ERR_WRONG_REQUEST;
    if (!json_str_eq(json_get(payload, "nonce"), nonce) || !json_str_eq(json_get(payload, "license_key"), lk))
        goto done;
    err = LICSRV_ERR_CLOCK_BEHIND;
    const jval *issued = json_get(payload, "issued_at");
    if (issued && (issued->t != J_NUM || issued->num > (double)(now + TOLERANCE_S))) goto done;
    err = LICSRV_ERR_EXPIRED;
    const jval *expires = json_get(payload, "expires_at"), *until = json_get(payload, "valid_until");
    if (expires && expires->t != J_NULL && (expires->t != J_NUM || expires->num <= (double)now)) goto done;
    if (!until || until->t != J_NUM || !until->is_int || until->i <= now) goto done;
    err = LICSRV_OK;
    if (payload_json) {
        *payload_json = malloc(body_len + 1);
        if (!*payload_json) err = LICSRV_ERR_NO_MEMORY;
        else { memcpy(*payload_json, body, body_len); (*payload_json)[body_len] = 0; }
    }
done:
    json_free(payload);
    free(body);
    free(sig);
    free(code);
    lsv_keys_free(&keys);
    return err;
}

int licsrv_clock_guard(const char *path, long long now, long long *trusted_now) {
    if (!path) return LICSRV_ERR_INVALID_ARGUMENT;
    if (!now) now = (long long)time(NULL);
    double last = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        char line[64] = {0};
        if (fgets(line, sizeof line, f)) {
            char *end;
            double v = strtod(line, &end);
            if (end != line) last = v;
        }
        fclose(f);
    }
    if ((double)now + TOLERANCE_S < last) return LICSRV_ERR_CLOCK_MOVED_BACKWARDS;
    if ((double)now > last) {
        size_t n = strlen(path) + 5;
        char *tmp = malloc(n);
        if (!tmp) return LICSRV_ERR_NO_MEMORY;
        snprintf(tmp, n, "%s.tmp", path);
        FILE *w = fopen(tmp, "w");
        int ok = w && fprintf(w, "%lld\n", now) > 0;
        if (w && fclose(w) != 0) ok = 0;
        if (ok && rename(tmp, path) != 0) ok = 0;
        if (!ok) remove(tmp);
        free(tmp);
        if (!ok) return LICSRV_ERR_IO;
    }
    if (trusted_now) *trusted_now = now;
    return LICSRV_OK;
}

/* ---------- card keys ---------- */

static const char ALPHABET[] = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
#define NSYM 31

static int symbol(char c) {
    const char *p = c ? strchr(ALPHABET, c) : NULL;
    return p ? (int)(p - ALPHABET) : -1;
}

char licsrv_card_check_character(const char *payload) {
    if (!payload) return 0;
    long total = 0;
    size_t n = strlen(payload);
    for (size_t i = 0; i < n; i++) {
        int v = symbol(payload[i]);
        if (v < 0) return 0;
        total += (long)((i % (NSYM - 1)) + 1) * v;
    }
    long weight = (long)(n % (NSYM - 1)) + 1, inverse = 1;
    while ((weight * inverse) % NSYM != 1) inverse++;
    long value = ((-total % NSYM + NSYM) % NSYM) * inverse % NSYM;
    return ALPHABET[value];
}

int licsrv_card_key_well_formed(const char *code) {
    char key[33];
    size_t n = 0;
    if (!code) return 0;
    for (; *code; code++) {
        char c = *code;
        if (c == ' ' || c == '-' || c == '_' || c == '\t') continue;
        if (n == 32) return 0;
        key[n++] = (char)toupper((unsigned char)c);
    }
    key[n] = 0;
    if (n != 32) return 0;
    for (size_t i = 0; i < n; i++)
        if (symbol(key[i]) < 0) return 0;
    char last = key[31];
    key[31] = 0;
    return licsrv_card_check_character(key) == last;
}

/* ---------- request signing ---------- */

int licsrv_request_signature(const char *api_key, const char *method, const char *path, const char *timestamp,
                             const char *nonce, const unsigned char *body, size_t body_len, char *out65) {
    if (!api_key || !method || !path || !timestamp || !nonce || !out65 || (!body && body_len)) return LICSRV_ERR_INVALID_ARGUMENT;
    if (sodium_init() < 0) return LICSRV_ERR_NO_MEMORY;
    crypto_auth_hmacsha256_state st;
    unsigned char mac[32];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)api_key, strlen(api_key));
    char m[16];
    size_t ml = strlen(method);
    if (ml >= sizeof m) return LICSRV_ERR_INVALID_ARGUMENT;
    for (size_t k = 0; k <= ml; k++) m[k] = (char)toupper((unsigned char)method[k]);
    const char *parts[] = {m, path, timestamp, nonce};
    for (size_t k = 0; k < 4; k++) {
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)parts[k], strlen(parts[k]));
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)"\n", 1);
    }
    if (body_len) crypto_auth_hmacsha256_update(&st, body, body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out65, 65, mac, sizeof mac);
    return LICSRV_OK;
}

/* ---------- hardware fingerprint ---------- */

int licsrv_hardware_id_from(const char *product, const char *machine_id, char *out65) {
    if (!product || !*product || !machine_id || !*machine_id || !out65) return LICSRV_ERR_INVALID_ARGUMENT;
    if (sodium_init() < 0) return LICSRV_ERR_NO_MEMORY;
    crypto_hash_sha256_state st;
    unsigned char digest[32];
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)"licsrv-hardware-v1\n", 19); /* as clients/js */
    crypto_hash_sha256_update(&st, (const unsigned char *)product, strlen(product));
    crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)machine_id, strlen(machine_id));
    crypto_hash_sha256_final(&st, digest);
    sodium_bin2hex(out65, 65, digest, sizeof digest);
    return LICSRV_OK;
}

static void trim(char *s) {
    size_t n = strlen(s);
    while (n && is_space(s[n - 1])) s[--n] = 0;
    size_t k = 0;
    while (is_space(s[k])) k++;
    memmove(s, s + k, n - k + 1);
}

static int machine_id(char *out, size_t cap) {
    out[0] = 0;
#if defined(_WIN32)
    DWORD size = (DWORD)cap;
    if (RegGetValueA(HKEY_LOCAL_MACHINE, "SOFTWARE\\Microsoft\\Cryptography", "MachineGuid",
                     RRF_RT_REG_SZ | RRF_SUBKEY_WOW6464KEY, NULL, out, &size) != ERROR_SUCCESS)
        return 0;
#elif defined(__APPLE__)
    FILE *p = popen("/usr/sbin/ioreg -rd1 -c IOPlatformExpertDevice", "r");
    char line[512];
    if (!p) return 0;
    while (fgets(line, sizeof line, p)) {
        char *at = strstr(line, "\"IOPlatformUUID\"");
        char *q1 = at ? strchr(at + 16, '"') : NULL, *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
        if (q2 && (size_t)(q2 - q1 - 1) < cap) {
            memcpy(out, q1 + 1, (size_t)(q2 - q1 - 1));
            out[q2 - q1 - 1] = 0;
        }
    }
    pclose(p);
#else
    const char *paths[] = {"/etc/machine-id", "/var/lib/dbus/machine-id"};
    for (size_t k = 0; k < 2 && !out[0]; k++) {
        FILE *f = fopen(paths[k], "r");
        if (!f) continue;
        if (!fgets(out, (int)cap, f)) out[0] = 0;
        fclose(f);
    }
#endif
    trim(out);
    return out[0] != 0;
}

int licsrv_hardware_id(const char *product, char *out65) {
    char id[256];
    if (!machine_id(id, sizeof id)) return LICSRV_ERR_IO;
    return licsrv_hardware_id_from(product, id, out65);
}
