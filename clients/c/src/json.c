#include "json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct {
    const char *p, *end;
    int depth;
} parser;

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static jval *new_val(jtype t) {
    jval *v = calloc(1, sizeof *v);
    if (v) v->t = t;
    return v;
}

static jval *parse_value(parser *ps);

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Checks one UTF-8 sequence at p (strict: no overlongs, no surrogates); returns its length or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t n;
    unsigned cp;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; }
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return n;
}

static char *parse_string(parser *ps, size_t *out_len) {
    /* ps->p at the opening quote */
    ps->p++;
    const char *start = ps->p;
    size_t cap = 0;
    /* a decoded string is never longer than its source */
    while (ps->p < ps->end && *ps->p != '"') {
        if (*ps->p == '\\') ps->p++;
        ps->p++;
    }
    if (ps->p >= ps->end) return NULL;
    cap = (size_t)(ps->p - start) + 1;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t o = 0;
    const char *q = start;
    while (q < ps->p) {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20) goto bad;
        if (c == '\\') {
            q++;
            switch (*q) {
            case '"': out[o++] = '"'; q++; break;
            case '\\': out[o++] = '\\'; q++; break;
            case '/': out[o++] = '/'; q++; break;
            case 'b': out[o++] = '\b'; q++; break;
            case 'f': out[o++] = '\f'; q++; break;
            case 'n': out[o++] = '\n'; q++; break;
            case 'r': out[o++] = '\r'; q++; break;
            case 't': out[o++] = '\t'; q++; break;
            case 'u': {
                unsigned cp, lo;
                if (ps->p - q < 5 || !hex4(q + 1, &cp)) goto bad;
                q += 5;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (ps->p - q < 6 || q[0] != '\\' || q[1] != 'u' || !hex4(q + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        goto bad;
                    q += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    goto bad;
                }
                o += put_utf8(out + o, cp); /* \uXXXX is 6 bytes, its UTF-8 at most 4 */
                break;
            }
            default: goto bad;
            }
        } else {
            size_t n = utf8_len((const unsigned char *)q, (const unsigned char *)ps->p);
            if (!n) goto bad;
            memcpy(out + o, q, n);
            o += n;
            q += n;
        }
    }
    out[o] = 0;
    ps->p++; /* closing quote */
    *out_len = o;
    return out;
bad:
    free(out);
    return NULL;
}

static jval *parse_number(parser *ps) {
    const char *s = ps->p, *q = ps->p;
    int integral = 1;
    if (q < ps->end && *q == '-') q++;
    if (q >= ps->end) return NULL;
    if (*q == '0') q++;
    else if (*q >= '1' && *q <= '9') while (q < ps->end && *q >= '0' && *q <= '9') q++;
    else return NULL;
    if (q < ps->end && *q == '.') {
        integral = 0;
        q++;
        if (q >= ps->end || *q < '0' || *q > '9') return NULL;
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        integral = 0;
        q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (q >= ps->end || *q < '0' || *q > '9') return NULL;
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    size_t n = (size_t)(q - s);
    if (n > 400) return NULL;
    char tmp[401];
    memcpy(tmp, s, n);
    tmp[n] = 0;
    jval *v = new_val(J_NUM);
    if (!v) return NULL;
    v->num = strtod(tmp, NULL);
    if (integral) {
        errno = 0;
        long long i = strtoll(tmp, NULL, 10);
        if (errno == 0) { v->is_int = 1; v->i = i; }
    }
    ps->p = q;
    return v;
}

static int push(jval *c, jval *item, char *key) {
    jval **items = realloc(c->items, (c->n + 1) * sizeof *items);
    if (!items) return 0;
    c->items = items;
    if (c->t == J_OBJ) {
        char **keys = realloc(c->keys, (c->n + 1) * sizeof *keys);
        if (!keys) return 0;
        c->keys = keys;
        c->keys[c->n] = key;
    }
    c->items[c->n++] = item;
    return 1;
}

static int literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return 0;
    ps->p += n;
    return 1;
}

static jval *parse_container(parser *ps, int object) {
    jval *c = new_val(object ? J_OBJ : J_ARR);
    if (!c) return NULL;
    if (++ps->depth > MAX_DEPTH) goto bad;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == (object ? '}' : ']')) {
        ps->p++;
        ps->depth--;
        return c;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(ps);
        if (object) {
            size_t klen;
            if (ps->p >= ps->end || *ps->p != '"' || !(key = parse_string(ps, &klen))) goto bad;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') { free(key); goto bad; }
            ps->p++;
        }
        jval *item = parse_value(ps);
        if (!item) { free(key); goto bad; }
        if (!push(c, item, key)) { free(key); json_free(item); goto bad; }
        skip_ws(ps);
        if (ps->p >= ps->end) goto bad;
        if (*ps->p == ',') { ps->p++; continue; }
        if (*ps->p == (object ? '}' : ']')) { ps->p++; break; }
        goto bad;
    }
    ps->depth--;
    return c;
bad:
    json_free(c);
    return NULL;
}

static jval *parse_value(parser *ps) {
    skip_ws(ps);
    if (ps->p >= ps->end) return NULL;
    switch (*ps->p) {
    case '{': return parse_container(ps, 1);
    case '[': return parse_container(ps, 0);
    case '"': {
        size_t len;
        char *s = parse_string(ps, &len);
        if (!s) return NULL;
        jval *v = new_val(J_STR);
        if (!v) { free(s); return NULL; }
        v->s = s;
        v->slen = len;
        return v;
    }
    case 't': if (literal(ps, "true")) { jval *v = new_val(J_BOOL); if (v) v->b = 1; return v; } return NULL;
    case 'f': if (literal(ps, "false")) return new_val(J_BOOL); return NULL;
    case 'n': if (literal(ps, "null")) return new_val(J_NULL); return NULL;
    default: return parse_number(ps);
    }
}

jval *json_parse(const char *text, size_t len) {
    if (!text) return NULL;
    parser ps = {text, text + len, 0};
    jval *v = parse_value(&ps);
    if (!v) return NULL;
    skip_ws(&ps);
    if (ps.p != ps.end) { json_free(v); return NULL; }
    return v;
}

void json_free(jval *v) {
    if (!v) return;
    for (size_t k = 0; k < v->n; k++) {
        json_free(v->items[k]);
        if (v->keys) free(v->keys[k]);
    }
    free(v->items);
    free(v->keys);
    free(v->s);
    free(v);
}

const jval *json_get(const jval *obj, const char *key) {
    if (!obj || obj->t != J_OBJ) return NULL;
    for (size_t k = obj->n; k-- > 0;)
        if (strcmp(obj->keys[k], key) == 0) return obj->items[k];
    return NULL;
}

const char *json_str(const jval *v) { return v && v->t == J_STR ? v->s : NULL; }

int json_str_eq(const jval *v, const char *s) {
    return v && v->t == J_STR && s && v->slen == strlen(s) && memcmp(v->s, s, v->slen) == 0;
}

void jb_raw(jbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256);
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->failed = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

/* Written as Python's json.dumps writes it (ensure_ascii): the request code's bytes are exact. */
void jb_str(jbuf *b, const char *s) {
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *q = (const unsigned char *)s, *end = q + strlen(s);
    jb_raw(b, "\"", 1);
    while (q < end) {
        char esc[13];
        unsigned c = *q;
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; jb_raw(b, esc, 2); q++; continue; }
        if (c >= 0x20 && c < 0x7f) { jb_raw(b, (const char *)q, 1); q++; continue; }
        const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (named) { jb_raw(b, named, 2); q++; continue; }
        size_t n = utf8_len(q, end);
        if (!n) { b->failed = 1; return; }
        unsigned cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
        for (size_t k = 1; k < n; k++) cp = (cp << 6) | (q[k] & 0x3F);
        q += n;
        unsigned units[2];
        int count = 1;
        units[0] = cp;
        if (cp >= 0x10000) { cp -= 0x10000; units[0] = 0xD800 + (cp >> 10); units[1] = 0xDC00 + (cp & 0x3FF); count = 2; }
        for (int u = 0; u < count; u++) {
            esc[0] = '\\'; esc[1] = 'u';
            for (int k = 0; k < 4; k++) esc[2 + k] = hexd[(units[u] >> (12 - 4 * k)) & 15];
            jb_raw(b, esc, 6);
        }
    }
    jb_raw(b, "\"", 1);
}

void jb_free(jbuf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
