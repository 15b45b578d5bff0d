/* End to end against a real licsrv (driven by tests/test_c_client.py). Environment: LICSRV_URL, LICSRV_API_KEY,
 * LICSRV_PRODUCT, LICSRV_LICENSE_KEY, LICSRV_CARD_KEY, LICSRV_KEYS (pinned "id=base64;..."), LICSRV_TAMPER_URL
 * (a relay that changes answer bytes), LICSRV_CLOCK_FILE, and LICSRV_SIGNED_API_KEY, LICSRV_SIGNED_PRODUCT,
 * LICSRV_SIGNED_LICENSE_KEY (a product that requires signed requests). Prints "ok <step>" per step and "ALL OK"; at
 * "SESSION <id>" and "TERMINATE <id>" it waits for a line on stdin (the test acts on the server meanwhile). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "licsrv.h"

static void fail(const char *what, int err, licsrv_answer *a) {
    printf("FAIL %s: %s %s\n", what, licsrv_err_name(err), a ? licsrv_answer_json(a) : "");
    fflush(stdout);
    exit(1);
}

#define EXPECT(call, want, what)                          \
    do {                                                  \
        int err_ = (call);                                \
        if (err_ != (want)) fail(what, err_, answer);     \
    } while (0)

static const char *env(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) {
        printf("FAIL missing %s\n", name);
        exit(1);
    }
    return v;
}

static void say(const char *fmt, const char *arg) {
    printf(fmt, arg);
    printf("\n");
    fflush(stdout);
}

static void wait_for_go(void) {
    char line[64];
    if (!fgets(line, sizeof line, stdin)) exit(1);
}

typedef struct {
    pthread_mutex_t mu;
    int heartbeats, restarts, stopped, stop_err;
    char stop_code[64], last_id[64];
} events;

static void on_event(void *user, int event, int err, const char *code, const char *session_id) {
    events *e = user;
    pthread_mutex_lock(&e->mu);
    if (event == LICSRV_EVENT_HEARTBEAT) e->heartbeats++;
    if (event == LICSRV_EVENT_RESTARTED) e->restarts++;
    if (event == LICSRV_EVENT_STOPPED) {
        e->stopped = 1;
        e->stop_err = err;
        snprintf(e->stop_code, sizeof e->stop_code, "%s", code);
    }
    snprintf(e->last_id, sizeof e->last_id, "%s", session_id);
    pthread_mutex_unlock(&e->mu);
}

static int wait_until(events *e, int (*holds)(events *)) {
    for (int k = 0; k < 300; k++) {
        pthread_mutex_lock(&e->mu);
        int ok = holds(e);
        pthread_mutex_unlock(&e->mu);
        if (ok) return 1;
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}
static int restarted(events *e) { return e->restarts >= 1 && e->heartbeats >= 1; }
static int stopped(events *e) { return e->stopped; }
static int beating(events *e) { return e->heartbeats >= 2; }

int main(void) {
    const char *url = env("LICSRV_URL"), *api_key = env("LICSRV_API_KEY"), *product = env("LICSRV_PRODUCT");
    const char *lk = env("LICSRV_LICENSE_KEY"), *card = env("LICSRV_CARD_KEY"), *keys = env("LICSRV_KEYS");
    const char *tamper_url = env("LICSRV_TAMPER_URL"), *clock_file = env("LICSRV_CLOCK_FILE");
    licsrv_answer *answer = NULL;
    char hw[65];
    if (licsrv_hardware_id(product, hw) != LICSRV_OK) licsrv_hardware_id_from(product, "e2e-machine", hw);

    licsrv_client *c = licsrv_client_new(url, api_key, product, keys);
    if (!c) fail("client", 0, NULL);

    EXPECT(licsrv_activate(c, lk, hw, "C test machine", "2.0.0", &answer), LICSRV_OK, "activate");
    if (licsrv_answer_int(answer, "devices_used", -1) != 1 || strcmp(licsrv_answer_string(answer, "license_key"), lk))
        fail("activate answer", 0, answer);
    licsrv_answer_free(answer);
    say("ok activate", "");

    EXPECT(licsrv_validate(c, lk, hw, &answer), LICSRV_OK, "validate");
    if (licsrv_answer_bool(answer, "valid") != 1 || licsrv_answer_server_time(answer) <= 0) fail("validate answer", 0, answer);
    licsrv_answer_free(answer);
    say("ok validate", "");

    EXPECT(licsrv_validate(c, lk, "hw-not-activated", &answer), LICSRV_ERR_DEVICE_NOT_ACTIVATED, "refusal");
    if (strcmp(licsrv_answer_code(answer), "DEVICE_NOT_ACTIVATED") || licsrv_answer_http_status(answer) != 403)
        fail("refusal answer", 0, answer);
    licsrv_answer_free(answer);
    say("ok refusal DEVICE_NOT_ACTIVATED", "");

    EXPECT(licsrv_redeem(c, card, "hw-card", NULL, &answer), LICSRV_OK, "redeem");
    const char *made = licsrv_answer_string(answer, "license_key");
    if (!made || !*made || licsrv_answer_bool(answer, "redeemed") != 1) fail("redeem answer", 0, answer);
    say("ok redeem %s", made);
    licsrv_answer_free(answer);

    /* a MAC session: start, heartbeat (HMAC-verified), the licence's one seat taken */
    licsrv_session *s = NULL, *second = NULL;
    EXPECT(licsrv_session_start(c, lk, hw, "2.0.0", "C test machine", 1, &s, &answer), LICSRV_OK, "start");
    licsrv_answer_free(answer);
    int next = 0;
    EXPECT(licsrv_session_heartbeat(s, &next, &answer), LICSRV_OK, "heartbeat");
    licsrv_answer_free(answer);
    if (next <= 0 || licsrv_session_heartbeat_interval(s) <= 0) fail("heartbeat answer", 0, NULL);
    say("ok session start heartbeat", "");
    EXPECT(licsrv_session_start(c, lk, hw, "2.0.0", NULL, 0, &second, &answer), LICSRV_ERR_SESSION_LIMIT_REACHED,
           "second start");
    licsrv_answer_free(answer);
    say("ok SESSION_LIMIT_REACHED", "");

    /* the keep-alive thread: the session vanishes (Redis lost it) → a new one at once */
    events e;
    memset(&e, 0, sizeof e);
    pthread_mutex_init(&e.mu, NULL);
    char first_id[32], id[32];
    licsrv_session_id(s, first_id, sizeof first_id);
    EXPECT(licsrv_keepalive_start(s, on_event, &e, 200), LICSRV_OK, "keepalive");
    if (!wait_until(&e, beating)) fail("keepalive heartbeats", 0, NULL);
    say("SESSION %s", first_id);
    wait_for_go();
    if (!wait_until(&e, restarted)) fail("keepalive restart", e.stop_err, NULL);
    licsrv_session_id(s, id, sizeof id);
    if (strcmp(id, first_id) == 0 || licsrv_session_restarts(s) != 1) fail("restarted session id", 0, NULL);
    say("ok restarted", "");
    /* an admin terminates it → the thread stops and says why */
    say("TERMINATE %s", id);
    wait_for_go();
    if (!wait_until(&e, stopped)) fail("keepalive stop", 0, NULL);
    if (e.stop_err != LICSRV_ERR_SESSION_TERMINATED || strcmp(e.stop_code, "SESSION_TERMINATED"))
        fail("keepalive stop reason", e.stop_err, NULL);
    say("ok terminated %s", e.stop_code);
    licsrv_session_free(s);

    /* end: the MACed answer, then the session is gone (a MACed refusal) */
    EXPECT(licsrv_session_start(c, lk, hw, "2.0.0", NULL, 0, &s, &answer), LICSRV_OK, "start again");
    licsrv_answer_free(answer);
    EXPECT(licsrv_session_end(s, &answer), LICSRV_OK, "end");
    if (licsrv_answer_bool(answer, "ended") != 1) fail("end answer", 0, answer);
    licsrv_answer_free(answer);
    EXPECT(licsrv_session_heartbeat(s, &next, &answer), LICSRV_ERR_SESSION_EXPIRED, "heartbeat after end");
    licsrv_answer_free(answer);
    licsrv_session_free(s);
    say("ok end", "");

    /* an answer changed on the way is refused; so is one signed by a key nobody pinned */
    licsrv_client *t = licsrv_client_new(tamper_url, api_key, product, keys);
    EXPECT(licsrv_validate(t, lk, hw, &answer), LICSRV_ERR_UNTRUSTED_ANSWER, "tampered answer");
    licsrv_client_free(t);
    say("ok tampered answer refused", "");
    char forged[256], *eq = strchr(keys, '=');
    snprintf(forged, sizeof forged, "%.*s=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", (int)(eq - keys), keys);
    licsrv_client *f = licsrv_client_new(url, api_key, product, forged);
    EXPECT(licsrv_validate(f, lk, hw, &answer), LICSRV_ERR_UNTRUSTED_ANSWER, "forged key");
    licsrv_client_free(f);
    licsrv_client *other = licsrv_client_new(url, api_key, "another-product", keys);
    EXPECT(licsrv_validate(other, lk, hw, &answer), LICSRV_ERR_UNTRUSTED_ANSWER, "another product's subject");
    licsrv_client_free(other);
    say("ok untrusted keys and subjects refused", "");

    /* offline: a request code, its certificate (online here), checked; the clock guard */
    char code[2048], code2[2048], *payload = NULL;
    long long now = 0;
    EXPECT(licsrv_clock_guard(clock_file, 0, &now), LICSRV_OK, "clock guard");
    EXPECT(licsrv_request_make(lk, hw, 0, code, sizeof code), LICSRV_OK, "request code");
    EXPECT(licsrv_offline_activate(c, code, &answer), LICSRV_OK, "offline activate");
    const char *certificate = licsrv_answer_string(answer, "certificate");
    if (!certificate) fail("certificate", 0, answer);
    EXPECT(licsrv_client_check_certificate(c, certificate, code, now, &payload), LICSRV_OK, "certificate check");
    if (!strstr(payload, hw)) fail("certificate payload", 0, NULL);
    licsrv_free(payload);
    EXPECT(licsrv_request_make(lk, hw, 0, code2, sizeof code2), LICSRV_OK, "request code 2");
    EXPECT(licsrv_client_check_certificate(c, certificate, code2, now, NULL), LICSRV_ERR_WRONG_REQUEST, "other request");
    EXPECT(licsrv_client_check_certificate(c, certificate, code, now + 400 * 86400LL, NULL), LICSRV_ERR_EXPIRED, "later");
    EXPECT(licsrv_clock_guard(clock_file, now - 3600, NULL), LICSRV_ERR_CLOCK_MOVED_BACKWARDS, "clock set back");
    licsrv_answer_free(answer);
    say("ok offline certificate", "");

    EXPECT(licsrv_deactivate(c, lk, hw, &answer), LICSRV_OK, "deactivate");
    if (licsrv_answer_bool(answer, "deactivated") != 1) fail("deactivate answer", 0, answer);
    licsrv_answer_free(answer);
    EXPECT(licsrv_validate(c, lk, hw, &answer), LICSRV_ERR_DEVICE_NOT_ACTIVATED, "validate after deactivate");
    licsrv_answer_free(answer);
    say("ok deactivate", "");

    /* sealed requests (§11): the same call, its body and answer sealed */
    licsrv_client *sealed = licsrv_client_new(url, api_key, product, keys);
    licsrv_client_set_sealed(sealed, 1);
    EXPECT(licsrv_activate(sealed, lk, hw, NULL, NULL, &answer), LICSRV_OK, "sealed activate");
    licsrv_answer_free(answer);
    licsrv_client_free(sealed);
    say("ok sealed", "");

    /* a product that requires signed requests (§9): unsigned calls are refused, signed ones answered */
    licsrv_client *sc = licsrv_client_new(url, env("LICSRV_SIGNED_API_KEY"), env("LICSRV_SIGNED_PRODUCT"), keys);
    const char *slk = env("LICSRV_SIGNED_LICENSE_KEY");
    /* refused before the body (and its nonce) was read: BAD_SIGNATURE without the nonce, so untrusted (§3) */
    EXPECT(licsrv_activate(sc, slk, hw, NULL, NULL, &answer), LICSRV_ERR_UNTRUSTED_ANSWER, "unsigned request");
    licsrv_client_set_sign_requests(sc, 1);
    EXPECT(licsrv_activate(sc, slk, hw, NULL, NULL, &answer), LICSRV_OK, "signed request");
    licsrv_answer_free(answer);
    licsrv_client_free(sc);
    say("ok signed requests", "");

    licsrv_client_free(c);
    pthread_mutex_destroy(&e.mu);
    say("ALL OK", "");
    return 0;
}
