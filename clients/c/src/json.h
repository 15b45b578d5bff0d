/* A small strict JSON parser (RFC 8259) for the answer shapes liblicsrv reads. Internal. */
#ifndef LICSRV_JSON_H
#define LICSRV_JSON_H
#include <stddef.h>

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
    jtype t;
    int b;             /* J_BOOL */
    double num;        /* J_NUM */
    int is_int;        /* J_NUM written without fraction or exponent, and fits in long long */
    long long i;       /* J_NUM when is_int */
    char *s;           /* J_STR: UTF-8, NUL-terminated */
    size_t slen;       /* J_STR: bytes (may hold \u0000) */
    size_t n;          /* J_ARR/J_OBJ: number of items */
    struct jval **items;
    char **keys;       /* J_OBJ */
} jval;

jval *json_parse(const char *text, size_t len); /* NULL when not exactly one JSON value */
void json_free(jval *v);
const jval *json_get(const jval *obj, const char *key); /* the last member of that name, or NULL */
const char *json_str(const jval *v);                    /* the string, or NULL for another type */
int json_str_eq(const jval *v, const char *s);          /* 1 when v is the string s, byte for byte */

/* A growing buffer for writing JSON. */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} jbuf;
void jb_raw(jbuf *b, const char *s, size_t n);
void jb_str(jbuf *b, const char *s); /* a quoted, escaped JSON string */
void jb_free(jbuf *b);
#endif
