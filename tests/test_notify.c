/* Delivery of the notifications outbox (actors/notify) and the /users/me/notifications API,
 * against real PostgreSQL (DATABASE_URL), local stand-ins for SendGrid, Twilio and a webhook
 * receiver (tests/support/fake_upstream.h), and a tiny SMTP responder thread.
 *
 * The actor runs in-process on the test's own event loop. It claims every due row of the
 * outbox, so each test first clears pending rows: the suite owns the outbox while it runs. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actors/notify/channels.h"
#include "actors/notify/notify.h"
#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/http_client.h"
#include "runtime/threadpool.h"
#include "storage/migrate.h"
#include "storage/pg.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/harness.h"
#include "tests/support/refdata_fixture.h"

#define SG_PATH     "/v3/mail/send"
#define TWILIO_SID  "AC0123456789abcdef"
#define TWILIO_PATH "/2010-04-01/Accounts/" TWILIO_SID "/Messages.json"
#define HOOK_PATH   "/hooks/flightshark"
#define HOOK_SECRET "whsec-test-0123456789"
#define SG_KEY      "SG.test-key"
#define FROM        "alerts@flightshark.test"

static struct event_base *base;
static struct event *tick;
static fs_actor_system_t *sys;
static fs_pg_pool_t *pg;
static fs_http_client_t *http;
static fs_threadpool_t *pool;
static fs_notify_t *notify;
static fs_fake_upstream_t *fake;
static PGconn *db;
static fs_test_server_t srv;

/* ---- the loop ----------------------------------------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
}

static void spin_ms(int ms)
{
    double end = fs_test_now_ms() + ms;
    while (fs_test_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
}

static char *scalar(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *scalar(const char *fmt, ...)
{
    static char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    char sql[2048];
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *r = PQexec(db, sql);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql,
              PQresultErrorMessage(r));
    snprintf(buf, sizeof buf, "%s",
             PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) && !PQgetisnull(r, 0, 0)
                 ? PQgetvalue(r, 0, 0)
                 : "");
    PQclear(r);
    return buf;
}

static const char *status_of(const char *id)
{
    return scalar("SELECT status FROM notifications WHERE id = '%s'", id);
}

/* Spins the loop until the notification leaves 'pending' (or the timeout); returns its status. */
static const char *wait_settled(const char *id, int timeout_ms)
{
    double end = fs_test_now_ms() + timeout_ms;
    while (fs_test_now_ms() < end) {
        spin_ms(15);
        if (strcmp(status_of(id), "pending") != 0)
            break;
    }
    return status_of(id);
}

static void wait_requests(const char *path, int n, int timeout_ms)
{
    double end = fs_test_now_ms() + timeout_ms;
    while (fs_fake_upstream_count(fake, path) < n && fs_test_now_ms() < end)
        spin_ms(5);
    cr_assert_geq(fs_fake_upstream_count(fake, path), n, "expected %d requests to %s", n, path);
}

static void setup(void)
{
    db = fs_test_db();
    PQclear(PQexec(db, "SET client_min_messages = warning"));
    char *err = NULL;
    cr_assert_eq(fs_migrate_run(db, fs_migrate_default_dir(), NULL, &err), 0, "migrate: %s", err);
    scalar("DELETE FROM notifications WHERE status = 'pending'");
    base = event_base_new();
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    event_add(tick, &(struct timeval){0, 10000});
    sys = fs_actor_system_new(base, NULL);
    pg = fs_pg_pool_new(base, &(fs_pg_pool_opts_t){.url = fs_test_env("DATABASE_URL"), .size = 2});
    http = fs_http_client_new(base);
    pool = fs_threadpool_new(base, 2);
    fake = fs_fake_upstream_start();
    cr_assert_not_null(fake);
}

static void teardown(void)
{
    if (srv.pid > 0)
        fs_test_server_stop(&srv);
    fs_notify_free(notify);
    notify = NULL;
    fs_actor_system_free(sys);
    fs_http_client_free(http);
    fs_threadpool_free(pool);
    fs_pg_pool_free(pg);
    event_free(tick);
    event_base_free(base);
    fs_fake_upstream_stop(fake);
    PQfinish(db);
}

/* Options with fast polling and short backoff; channels are added by each test. */
static fs_notify_opts_t fast_opts(void)
{
    return (fs_notify_opts_t){.pg = pg,
                              .http = http,
                              .pool = pool,
                              .poll_ms = 20,
                              .backoff_base_ms = 40,
                              .backoff_cap_ms = 320,
                              .send_timeout_ms = 3000};
}

static void with_sendgrid(fs_notify_opts_t *o)
{
    o->ch.email_from = FROM;
    o->ch.sendgrid_api_key = SG_KEY;
    o->ch.sendgrid_base_url = fs_fake_upstream_url(fake);
}

static void with_webhook(fs_notify_opts_t *o, char *url, size_t size)
{
    snprintf(url, size, "%s%s", fs_fake_upstream_url(fake), HOOK_PATH);
    o->ch.webhook_url = url;
    o->ch.webhook_secret = HOOK_SECRET;
}

static void start(const fs_notify_opts_t *o)
{
    notify = fs_notify_start(sys, o);
    cr_assert_not_null(notify);
}

/* ---- rows --------------------------------------------------------------------------------- */

typedef struct {
    char id[40], email[128];
} user_t;

static user_t make_user(const char *tag, const char *prefs)
{
    user_t u;
    snprintf(u.email, sizeof u.email, "notify-%s-%d@example.com", tag, (int)getpid());
    snprintf(u.id, sizeof u.id, "%s",
             scalar("INSERT INTO users (email, password_hash, preferences) VALUES ('%s', 'x', '%s') "
                    "ON CONFLICT (email) DO UPDATE SET preferences = excluded.preferences, is_active = true "
                    "RETURNING id",
                    u.email, prefs ? prefs : "{}"));
    scalar("DELETE FROM notifications WHERE user_id = '%s'", u.id);
    return u;
}

static char *make_notification(const user_t *u, const char *title)
{
    static char id[40];
    snprintf(id, sizeof id, "%s",
             scalar("INSERT INTO notifications (user_id, title, body, payload, idempotency_key) VALUES "
                    "('%s', '%s', 'LHR to JFK is now 199.00 EUR', '{\"origin\":\"LHR\",\"price\":199}', "
                    "gen_random_uuid()::text) RETURNING id",
                    u->id, title));
    return fs_strdup(id);
}

static long delivery_attempts(const char *id, const char *channel, char *status, size_t size)
{
    PGresult *r =
        PQexecParams(db,
                     "SELECT status, attempts FROM notification_deliveries WHERE notification_id = $1 "
                     "AND channel = $2",
                     2, NULL, (const char *[]){id, channel}, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    long n = -1;
    snprintf(status, size, "(none)");
    if (PQntuples(r)) {
        snprintf(status, size, "%s", PQgetvalue(r, 0, 0));
        n = atol(PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return n;
}

static char *header(const fs_fake_request_t *r, const char *name)
{
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ % 4];
    return (char *)fs_fake_request_header(r, name, b, 512);
}

/* ---- SendGrid ----------------------------------------------------------------------------- */

Test(notify, sendgrid_sends_the_documented_request, .init = setup, .fini = teardown, .timeout = 30)
{
    fs_fake_upstream_json(fake, "POST", SG_PATH, 202, "");
    user_t u = make_user("sg", NULL);
    char *id = make_notification(&u, "Price drop: LHR-JFK");
    fs_notify_opts_t o = fast_opts();
    with_sendgrid(&o);
    start(&o);
    cr_assert_str_eq(wait_settled(id, 5000), "sent");

    fs_fake_request_t *r = fs_fake_upstream_last(fake, SG_PATH);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->method, "POST");
    cr_assert_str_eq(header(r, "Authorization"), "Bearer " SG_KEY);
    cr_assert(strstr(header(r, "Content-Type"), "application/json"));
    char key[128];
    snprintf(key, sizeof key, "%s:email", id);
    cr_assert_str_eq(header(r, "Idempotency-Key"), key);
    json_t *b = json_loads(r->body, 0, NULL);
    cr_assert_not_null(b, "body: %s", r->body);
    json_t *to =
        json_array_get(json_object_get(json_array_get(json_object_get(b, "personalizations"), 0), "to"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(to, "email")), u.email);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "from"), "email")), FROM);
    cr_assert_str_eq(json_string_value(json_object_get(b, "subject")), "Price drop: LHR-JFK");
    json_t *content = json_array_get(json_object_get(b, "content"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(content, "type")), "text/plain");
    cr_assert_str_eq(json_string_value(json_object_get(content, "value")), "LHR to JFK is now 199.00 EUR");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "custom_args"), "notification_id")),
                     id);
    json_decref(b);
    fs_fake_request_free(r);

    cr_assert_eq(fs_fake_upstream_count(fake, SG_PATH), 1);
    cr_assert_str_eq(
        scalar("SELECT attempts || ' ' || (sent_at IS NOT NULL) FROM notifications WHERE id = '%s'", id),
        "1 true");
    char st[32];
    cr_assert_eq(delivery_attempts(id, "email", st, sizeof st), 1);
    cr_assert_str_eq(st, "sent");
    free(id);
}

Test(notify, server_error_is_retried_then_sent, .init = setup, .fini = teardown, .timeout = 30)
{
    fs_fake_upstream_push(fake, "POST", SG_PATH,
                          &(fs_fake_answer_t){.status = 500, .body = "{\"errors\":[]}"});
    fs_fake_upstream_json(fake, "POST", SG_PATH, 202, "");
    user_t u = make_user("retry", NULL);
    char *id = make_notification(&u, "Retry me");
    fs_notify_opts_t o = fast_opts();
    with_sendgrid(&o);
    start(&o);

    wait_requests(SG_PATH, 1, 5000);
    fs_fake_request_t *first = fs_fake_upstream_last(fake, SG_PATH);
    char key1[128];
    snprintf(key1, sizeof key1, "%s", header(first, "Idempotency-Key"));
    fs_fake_request_free(first);

    cr_assert_str_eq(wait_settled(id, 5000), "sent");
    fs_fake_request_t *second = fs_fake_upstream_last(fake, SG_PATH);
    cr_assert_str_eq(header(second, "Idempotency-Key"), key1, "the key must not change across retries");
    fs_fake_request_free(second);
    cr_assert_eq(fs_fake_upstream_count(fake, SG_PATH), 2);
    cr_assert_str_eq(scalar("SELECT attempts FROM notifications WHERE id = '%s'", id), "2");
    cr_assert(strstr(scalar("SELECT last_error FROM notifications WHERE id = '%s'", id), "HTTP 500"));
    char st[32];
    cr_assert_eq(delivery_attempts(id, "email", st, sizeof st), 2);
    cr_assert_str_eq(st, "sent");
    free(id);
}

/* Always 503: eight attempts (the default), each after a longer wait up to the cap, then dead. */
Test(notify, failing_channel_is_dead_after_max_attempts_with_growing_backoff, .init = setup, .fini = teardown,
     .timeout = 60)
{
    fs_fake_upstream_json(fake, "POST", SG_PATH, 503, "{\"errors\":[{\"message\":\"unavailable\"}]}");
    user_t u = make_user("dead", NULL);
    char *id = make_notification(&u, "Never arrives");
    fs_notify_opts_t o = fast_opts();
    with_sendgrid(&o);
    start(&o);

    double at[8];
    int seen = 0;
    double end = fs_test_now_ms() + 20000;
    while (seen < 8 && fs_test_now_ms() < end) {
        event_base_loop(base, EVLOOP_ONCE);
        int n = fs_fake_upstream_count(fake, SG_PATH);
        while (seen < n && seen < 8)
            at[seen++] = fs_test_now_ms();
    }
    cr_assert_eq(seen, 8, "only %d attempts", seen);
    cr_assert_str_eq(wait_settled(id, 5000), "dead");
    spin_ms(400); /* a ninth attempt would come within the cap */
    cr_assert_eq(fs_fake_upstream_count(fake, SG_PATH), 8);

    /* base 40 ms doubling to the 320 ms cap: 40, 80, 160, 320, 320, 320, 320 */
    for (int i = 1; i < 8; i++) {
        double expected = 40 << (i - 1 < 3 ? i - 1 : 3);
        double gap = at[i] - at[i - 1];
        cr_assert_geq(gap, expected - 15, "gap %d: %.0f ms, expected at least %.0f", i, gap, expected);
        cr_assert_leq(gap, expected + 250, "gap %d: %.0f ms, expected about %.0f (cap)", i, gap, expected);
    }
    cr_assert_gt(at[4] - at[3], 2 * (at[1] - at[0]), "backoff must grow");
    cr_assert_str_eq(scalar("SELECT attempts FROM notifications WHERE id = '%s'", id), "8");
    cr_assert(strstr(scalar("SELECT last_error FROM notifications WHERE id = '%s'", id), "HTTP 503"));
    cr_assert_str_eq(scalar("SELECT sent_at IS NULL FROM notifications WHERE id = '%s'", id), "t");
    char st[32];
    cr_assert_eq(delivery_attempts(id, "email", st, sizeof st), 8);
    cr_assert_str_eq(st, "dead");
    free(id);
}

Test(notify, client_error_is_dead_at_once, .init = setup, .fini = teardown, .timeout = 30)
{
    fs_fake_upstream_json(fake, "POST", SG_PATH, 400, "{\"errors\":[{\"message\":\"bad to\"}]}");
    user_t u = make_user("bad", NULL);
    char *id = make_notification(&u, "Refused");
    fs_notify_opts_t o = fast_opts();
    with_sendgrid(&o);
    start(&o);
    cr_assert_str_eq(wait_settled(id, 5000), "dead");
    spin_ms(300);
    cr_assert_eq(fs_fake_upstream_count(fake, SG_PATH), 1);
    cr_assert_str_eq(scalar("SELECT attempts FROM notifications WHERE id = '%s'", id), "1");
    cr_assert(strstr(scalar("SELECT last_error FROM notifications WHERE id = '%s'", id), "HTTP 400"));
    free(id);
}

Test(notify, too_many_requests_is_retried, .init = setup, .fini = teardown, .timeout = 30)
{
    fs_fake_upstream_push(fake, "POST", SG_PATH, &(fs_fake_answer_t){.status = 429});
    fs_fake_upstream_json(fake, "POST", SG_PATH, 202, "");
    user_t u = make_user("429", NULL);
    char *id = make_notification(&u, "Slow down");
    fs_notify_opts_t o = fast_opts();
    with_sendgrid(&o);
    start(&o);
    cr_assert_str_eq(wait_settled(id, 5000), "sent");
    cr_assert_str_eq(scalar("SELECT attempts FROM notifications WHERE id = '%s'", id), "2");
    free(id);
}

/* ---- Twilio ------------------------------------------------------------------------------- */

/* A form field, decoded; caller frees. */
static char *form_field(const char *body, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = body; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            const char *v = p + n + 1, *e = strchr(v, '&');
            int len = 0;
            char *raw = curl_easy_unescape(NULL, v, e ? (int)(e - v) : 0, &len);
            char *out = fs_strndup(raw, (size_t)len);
            curl_free(raw);
            return out;
        }
    }
    return NULL;
}

Test(notify, twilio_sends_the_documented_request, .init = setup, .fini = teardown, .timeout = 30)
{
    fs_fake_upstream_json(fake, "POST", TWILIO_PATH, 201, "{\"sid\":\"SM1\",\"status\":\"queued\"}");
    user_t u = make_user("sms", "{\"phone\":\"+15551234567\"}");
    char *id = make_notification(&u, "Fare alert");
    fs_notify_opts_t o = fast_opts();
    o.ch.twilio_account_sid = TWILIO_SID;
    o.ch.twilio_auth_token = "tw-token";
    o.ch.twilio_from_number = "+15550000000";
    o.ch.twilio_base_url = fs_fake_upstream_url(fake);
    start(&o);
    cr_assert_str_eq(wait_settled(id, 5000), "sent");

    fs_fake_request_t *r = fs_fake_upstream_last(fake, TWILIO_PATH);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->method, "POST");
    unsigned char expect[128];
    EVP_EncodeBlock(expect, (const unsigned char *)TWILIO_SID ":tw-token",
                    (int)strlen(TWILIO_SID ":tw-token"));
    char auth[160];
    snprintf(auth, sizeof auth, "Basic %s", expect);
    cr_assert_str_eq(header(r, "Authorization"), auth);
    cr_assert(strstr(header(r, "Content-Type"), "application/x-www-form-urlencoded"));
    char key[128];
    snprintf(key, sizeof key, "%s:sms", id);
    cr_assert_str_eq(header(r, "Idempotency-Key"), key);
    char *to = form_field(r->body, "To"), *from = form_field(r->body, "From"),
         *text = form_field(r->body, "Body");
    cr_assert_str_eq(to, "+15551234567", "body: %s", r->body);
    cr_assert_str_eq(from, "+15550000000");
    cr_assert_str_eq(text, "Fare alert\nLHR to JFK is now 199.00 EUR");
    free(to), free(from), free(text);
    fs_fake_request_free(r);
    char st[32];
    cr_assert_eq(delivery_attempts(id, "sms", st, sizeof st), 1);
    cr_assert_str_eq(st, "sent");
    free(id);
}

Test(notify, sms_needs_a_phone_number, .init = setup, .fini = teardown, .timeout = 30)
{
    fs_fake_upstream_json(fake, "POST", TWILIO_PATH, 201, "{}");
    user_t u = make_user("nophone", NULL);
    char *id = make_notification(&u, "No phone");
    fs_notify_opts_t o = fast_opts();
    o.ch.twilio_account_sid = TWILIO_SID;
    o.ch.twilio_auth_token = "tw-token";
    o.ch.twilio_from_number = "+15550000000";
    o.ch.twilio_base_url = fs_fake_upstream_url(fake);
    start(&o);
    cr_assert_str_eq(wait_settled(id, 5000), "none");
    cr_assert_eq(fs_fake_upstream_count(fake, NULL), 0);
    free(id);
}

/* ---- webhook ------------------------------------------------------------------------------ */

Test(notify, webhook_is_signed, .init = setup, .fini = teardown, .timeout = 30)
{
    fs_fake_upstream_json(fake, "POST", HOOK_PATH, 200, "{\"ok\":true}");
    user_t u = make_user("hook", NULL);
    char *id = make_notification(&u, "Hooked");
    fs_notify_opts_t o = fast_opts();
    char url[256];
    with_webhook(&o, url, sizeof url);
    start(&o);
    cr_assert_str_eq(wait_settled(id, 5000), "sent");

    fs_fake_request_t *r = fs_fake_upstream_last(fake, HOOK_PATH);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->method, "POST");
    const char *ts = header(r, "X-Flightshark-Timestamp"), *sig = header(r, "X-Flightshark-Signature");
    cr_assert_not_null(ts);
    cr_assert_not_null(sig);
    cr_assert_lt(labs(atol(ts) - (long)time(NULL)), 60);
    /* the receiver's check, written independently of the sender */
    char *signed_part = fs_sprintf("%s.%s", ts, r->body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), HOOK_SECRET, (int)strlen(HOOK_SECRET), (unsigned char *)signed_part,
         strlen(signed_part), mac, &mac_len);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < mac_len; i++)
        sprintf(hex + 2 * i, "%02x", mac[i]);
    char expect[160];
    snprintf(expect, sizeof expect, "sha256=%s", hex);
    cr_assert_str_eq(sig, expect);
    free(signed_part);
    char *wrong = fsint_webhook_signature("another-secret", ts, r->body, r->body_len);
    cr_assert_str_neq(wrong, sig);
    free(wrong);

    char key[128];
    snprintf(key, sizeof key, "%s:webhook", id);
    cr_assert_str_eq(header(r, "Idempotency-Key"), key);
    json_t *b = json_loads(r->body, 0, NULL);
    cr_assert_not_null(b);
    cr_assert_str_eq(json_string_value(json_object_get(b, "id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(b, "user_id")), u.id);
    cr_assert_str_eq(json_string_value(json_object_get(b, "title")), "Hooked");
    cr_assert_str_eq(json_string_value(json_object_get(b, "kind")), "price_alert");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(b, "payload"), "price")), 199);
    cr_assert_str_eq(json_string_value(json_object_get(b, "idempotency_key")), key);
    json_decref(b);
    fs_fake_request_free(r);
    free(id);
}

/* E-mail goes out once; the failing webhook is retried alone until it is dead. */
Test(notify, channels_keep_their_own_state, .init = setup, .fini = teardown, .timeout = 30)
{
    fs_fake_upstream_json(fake, "POST", SG_PATH, 202, "");
    fs_fake_upstream_json(fake, "POST", HOOK_PATH, 500, "down");
    user_t u = make_user("mixed", NULL);
    char *id = make_notification(&u, "Two channels");
    fs_notify_opts_t o = fast_opts();
    o.max_attempts = 3;
    with_sendgrid(&o);
    char url[256];
    with_webhook(&o, url, sizeof url);
    start(&o);
    cr_assert_str_eq(wait_settled(id, 10000), "sent");
    cr_assert_eq(fs_fake_upstream_count(fake, SG_PATH), 1);
    cr_assert_eq(fs_fake_upstream_count(fake, HOOK_PATH), 3);
    char st[32];
    cr_assert_eq(delivery_attempts(id, "email", st, sizeof st), 1);
    cr_assert_str_eq(st, "sent");
    cr_assert_eq(delivery_attempts(id, "webhook", st, sizeof st), 3);
    cr_assert_str_eq(st, "dead");
    free(id);
}

Test(notify, email_opt_out_is_respected, .init = setup, .fini = teardown, .timeout = 30)
{
    fs_fake_upstream_json(fake, "POST", SG_PATH, 202, "");
    fs_fake_upstream_json(fake, "POST", HOOK_PATH, 200, "");
    user_t u = make_user("optout", "{\"notifications\":{\"email\":false}}");
    char *id = make_notification(&u, "Not by mail");
    fs_notify_opts_t o = fast_opts();
    with_sendgrid(&o);
    char url[256];
    with_webhook(&o, url, sizeof url);
    start(&o);
    cr_assert_str_eq(wait_settled(id, 5000), "sent");
    cr_assert_eq(fs_fake_upstream_count(fake, SG_PATH), 0);
    cr_assert_eq(fs_fake_upstream_count(fake, HOOK_PATH), 1);
    char st[32];
    cr_assert_eq(delivery_attempts(id, "email", st, sizeof st), -1);
    free(id);
}

/* A send in flight when the actor stops is not recorded: the row stays pending. */
Test(notify, send_in_flight_at_stop_stays_pending, .init = setup, .fini = teardown, .timeout = 30)
{
    fs_fake_upstream_set(fake, "POST", SG_PATH, &(fs_fake_answer_t){.status = 202, .delay_ms = 3000});
    user_t u = make_user("drain", NULL);
    char *id = make_notification(&u, "Interrupted");
    fs_notify_opts_t o = fast_opts();
    with_sendgrid(&o);
    start(&o);
    wait_requests(SG_PATH, 1, 5000);
    fs_notify_drain(notify);
    cr_assert_not(fs_notify_idle(notify));
    fs_notify_free(notify);
    notify = NULL;
    fs_http_client_free(http); /* cancels the send */
    http = fs_http_client_new(base);
    spin_ms(100);
    cr_assert_str_eq(status_of(id), "pending");
    cr_assert_str_eq(
        scalar("SELECT attempts || ' ' || (sent_at IS NULL) FROM notifications WHERE id = '%s'", id),
        "0 true");
    /* leased: not due again until the lease runs out */
    cr_assert_str_eq(scalar("SELECT next_attempt_at > now() FROM notifications WHERE id = '%s'", id), "t");
    free(id);
}

/* ---- SMTP --------------------------------------------------------------------------------- */

typedef struct {
    int fd, port, rcpt_code;
    volatile int stop;
    pthread_t thread;
    pthread_mutex_t mu;
    char mail[256], rcpt[256];
    char data[8192];
    int messages;
} smtp_srv_t;

static void smtp_say(int c, const char *s)
{
    ssize_t n = write(c, s, strlen(s));
    (void)n;
}

static void smtp_data(smtp_srv_t *s, FILE *in, int c)
{
    char line[1024], buf[8192] = "";
    while (fgets(line, sizeof line, in) && strcmp(line, ".\r\n") != 0)
        strncat(buf, line, sizeof buf - strlen(buf) - 1);
    pthread_mutex_lock(&s->mu);
    snprintf(s->data, sizeof s->data, "%s", buf);
    s->messages++;
    pthread_mutex_unlock(&s->mu);
    smtp_say(c, "250 2.0.0 queued\r\n");
}

/* Just enough SMTP for libcurl: 220, EHLO, MAIL, RCPT, DATA, QUIT. */
static void smtp_session(smtp_srv_t *s, int c)
{
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){5, 0}, sizeof(struct timeval));
    FILE *in = fdopen(dup(c), "r");
    smtp_say(c, "220 localhost ESMTP test\r\n");
    char line[1024], reply[64];
    while (fgets(line, sizeof line, in)) {
        if (strncasecmp(line, "EHLO", 4) == 0 || strncasecmp(line, "HELO", 4) == 0)
            smtp_say(c, "250-localhost\r\n250 8BITMIME\r\n");
        else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
            pthread_mutex_lock(&s->mu);
            snprintf(s->mail, sizeof s->mail, "%.*s", (int)strcspn(line + 10, "\r\n"), line + 10);
            pthread_mutex_unlock(&s->mu);
            smtp_say(c, "250 OK\r\n");
        } else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
            pthread_mutex_lock(&s->mu);
            snprintf(s->rcpt, sizeof s->rcpt, "%.*s", (int)strcspn(line + 8, "\r\n"), line + 8);
            pthread_mutex_unlock(&s->mu);
            snprintf(reply, sizeof reply, "%d %s\r\n", s->rcpt_code,
                     s->rcpt_code == 250 ? "OK" : "no such user");
            smtp_say(c, reply);
        } else if (strncasecmp(line, "DATA", 4) == 0) {
            smtp_say(c, "354 go ahead\r\n");
            smtp_data(s, in, c);
        } else if (strncasecmp(line, "QUIT", 4) == 0) {
            smtp_say(c, "221 bye\r\n");
            break;
        } else if (strncasecmp(line, "RSET", 4) == 0 || strncasecmp(line, "NOOP", 4) == 0)
            smtp_say(c, "250 OK\r\n");
        else
            smtp_say(c, "502 not implemented\r\n");
    }
    fclose(in);
    close(c);
}

static void *smtp_main(void *arg)
{
    smtp_srv_t *s = arg;
    while (!s->stop) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 50) == 1) {
            int c = accept(s->fd, NULL, NULL);
            if (c >= 0)
                smtp_session(s, c);
        }
    }
    return NULL;
}

static void smtp_start(smtp_srv_t *s, int rcpt_code)
{
    memset(s, 0, sizeof *s);
    s->rcpt_code = rcpt_code;
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(s->fd, 8), 0);
    socklen_t len = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, smtp_main, s);
}

static void smtp_stop(smtp_srv_t *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
}

static void with_smtp(fs_notify_opts_t *o, const smtp_srv_t *s, char *url, size_t size)
{
    snprintf(url, size, "smtp://127.0.0.1:%d", s->port);
    o->ch.smtp_url = url;
    o->ch.email_from = FROM;
}

Test(notify, smtp_delivers_the_message, .init = setup, .fini = teardown, .timeout = 30)
{
    smtp_srv_t s;
    smtp_start(&s, 250);
    user_t u = make_user("smtp", NULL);
    char *id = make_notification(&u, "Mail via SMTP");
    fs_notify_opts_t o = fast_opts();
    char url[64];
    with_smtp(&o, &s, url, sizeof url);
    start(&o);
    const char *st = wait_settled(id, 8000);
    pthread_mutex_lock(&s.mu);
    char mail[256], rcpt[256], data[8192];
    int messages = s.messages;
    snprintf(mail, sizeof mail, "%s", s.mail);
    snprintf(rcpt, sizeof rcpt, "%s", s.rcpt);
    snprintf(data, sizeof data, "%s", s.data);
    pthread_mutex_unlock(&s.mu);
    smtp_stop(&s);
    cr_assert_str_eq(st, "sent", "last_error: %s",
                     scalar("SELECT last_error FROM notifications WHERE id = '%s'", id));
    cr_assert_eq(messages, 1);
    cr_assert(strstr(mail, "<" FROM ">"), "MAIL FROM:%s", mail);
    char expect[256];
    snprintf(expect, sizeof expect, "<%s>", u.email);
    cr_assert(strstr(rcpt, expect), "RCPT TO:%s", rcpt);
    cr_assert(strstr(data, "Subject: Mail via SMTP\r\n"), "%s", data);
    snprintf(expect, sizeof expect, "To: <%s>\r\n", u.email);
    cr_assert(strstr(data, expect), "%s", data);
    snprintf(expect, sizeof expect, "X-Idempotency-Key: %s:email\r\n", id);
    cr_assert(strstr(data, expect), "%s", data);
    snprintf(expect, sizeof expect, "Message-ID: <%s.email@flightshark>", id);
    cr_assert(strstr(data, expect), "%s", data);
    cr_assert(strstr(data, "\r\n\r\nLHR to JFK is now 199.00 EUR\r\n"), "%s", data);
    free(id);
}

Test(notify, smtp_permanent_refusal_is_dead, .init = setup, .fini = teardown, .timeout = 30)
{
    smtp_srv_t s;
    smtp_start(&s, 550);
    user_t u = make_user("smtp550", NULL);
    char *id = make_notification(&u, "Nobody home");
    fs_notify_opts_t o = fast_opts();
    char url[64];
    with_smtp(&o, &s, url, sizeof url);
    start(&o);
    const char *st = wait_settled(id, 8000);
    smtp_stop(&s);
    cr_assert_str_eq(st, "dead");
    cr_assert_str_eq(scalar("SELECT attempts FROM notifications WHERE id = '%s'", id), "1");
    cr_assert(strstr(scalar("SELECT last_error FROM notifications WHERE id = '%s'", id), "SMTP 550"), "%s",
              scalar("SELECT last_error FROM notifications WHERE id = '%s'", id));
    free(id);
}

Test(notify, smtp_unreachable_is_retried, .init = setup, .fini = teardown, .timeout = 30)
{
    user_t u = make_user("smtpdown", NULL);
    char *id = make_notification(&u, "Server down");
    fs_notify_opts_t o = fast_opts();
    o.max_attempts = 2;
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", fs_test_free_port());
    o.ch.smtp_url = url;
    o.ch.email_from = FROM;
    start(&o);
    cr_assert_str_eq(wait_settled(id, 8000), "dead");
    cr_assert_str_eq(scalar("SELECT attempts FROM notifications WHERE id = '%s'", id), "2");
    free(id);
}

/* ---- no channel, and the API -------------------------------------------------------------- */

static long api(const char *method, const char *path, const char *token, json_t **out)
{
    char url[512], auth[1024];
    snprintf(url, sizeof url, "%s%s", srv.url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    const char *h[] = {auth, NULL};
    fs_test_resp_t r;
    fs_test_http(method, url, method[0] == 'P' ? "" : NULL, token ? h : NULL, &r);
    if (out)
        *out = fs_test_resp_json(&r);
    long status = r.status;
    fs_test_resp_free(&r);
    return status;
}

static char *user_id_of(const char *email)
{
    return fs_strdup(scalar("SELECT id FROM users WHERE email = '%s'", email));
}

Test(notify, no_channel_means_none_and_the_api_shows_it, .init = setup, .fini = teardown, .timeout = 60)
{
    const char *secret = fs_test_env("SECRET_KEY");
    char mine[128], theirs[128];
    snprintf(mine, sizeof mine, "notify-api-a-%d@example.com", (int)getpid());
    snprintf(theirs, sizeof theirs, "notify-api-b-%d@example.com", (int)getpid());
    char *tok = fs_test_token(mine, false, secret), *tok_b = fs_test_token(theirs, false, secret);
    user_t a = {0}, b = {0};
    char *ida = user_id_of(mine), *idb = user_id_of(theirs);
    snprintf(a.id, sizeof a.id, "%s", ida);
    snprintf(b.id, sizeof b.id, "%s", idb);
    free(ida), free(idb);
    scalar("DELETE FROM notifications WHERE user_id IN ('%s', '%s')", a.id, b.id);
    char *n1 = make_notification(&a, "First");
    scalar("UPDATE notifications SET created_at = now() - interval '1 minute' WHERE id = '%s'", n1);
    char *n2 = make_notification(&a, "Second");
    char *other = make_notification(&b, "Not yours");

    fs_notify_opts_t o = fast_opts();
    start(&o);
    cr_assert_str_eq(wait_settled(n1, 5000), "none");
    cr_assert_str_eq(wait_settled(n2, 5000), "none");
    cr_assert_str_eq(wait_settled(other, 5000), "none");
    fs_notify_stats_t st;
    fs_notify_get_stats(notify, &st);
    cr_assert_not(st.email || st.sms || st.webhook);
    cr_assert_geq(st.none, 3);

    cr_assert_eq(fs_test_server_start(&srv, 1, NULL), 0, "server did not start; see %s", srv.log_path);
    json_t *list;
    cr_assert_eq(api("GET", "/users/me/notifications", NULL, NULL), 401);
    cr_assert_eq(api("GET", "/users/me/notifications", tok, &list), 200);
    cr_assert_eq(json_array_size(list), 2, "only the caller's own");
    json_t *first = json_array_get(list, 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "id")), n2, "newest first");
    cr_assert_str_eq(json_string_value(json_object_get(first, "status")), "none");
    cr_assert_str_eq(json_string_value(json_object_get(first, "title")), "Second");
    cr_assert_str_eq(json_string_value(json_object_get(first, "kind")), "price_alert");
    cr_assert_str_eq(json_string_value(json_object_get(first, "body")), "LHR to JFK is now 199.00 EUR");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(first, "payload"), "price")), 199);
    cr_assert(json_is_string(json_object_get(first, "created_at")));
    cr_assert(json_is_null(json_object_get(first, "sent_at")));
    cr_assert(json_is_null(json_object_get(first, "read_at")));
    json_decref(list);

    /* paging: limit, offset and the before cursor */
    cr_assert_eq(api("GET", "/users/me/notifications?limit=1&offset=1", tok, &list), 200);
    cr_assert_eq(json_array_size(list), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "id")), n1);
    json_decref(list);
    char path[256];
    snprintf(path, sizeof path, "/users/me/notifications?before=%s", n2);
    cr_assert_eq(api("GET", path, tok, &list), 200);
    cr_assert_eq(json_array_size(list), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "id")), n1);
    json_decref(list);
    cr_assert_eq(api("GET", "/users/me/notifications?limit=0", tok, NULL), 422);
    cr_assert_eq(api("GET", "/users/me/notifications?before=nope", tok, NULL), 422);

    /* mark read: own only, idempotent, 404 for another's, 422 for a non-UUID */
    json_t *n;
    snprintf(path, sizeof path, "/users/me/notifications/%s/read", n1);
    cr_assert_eq(api("POST", path, NULL, NULL), 401);
    cr_assert_eq(api("POST", path, tok, &n), 200);
    cr_assert(json_is_string(json_object_get(n, "read_at")));
    char read_at[64];
    snprintf(read_at, sizeof read_at, "%s", json_string_value(json_object_get(n, "read_at")));
    json_decref(n);
    cr_assert_eq(api("POST", path, tok, &n), 200);
    cr_assert_str_eq(json_string_value(json_object_get(n, "read_at")), read_at, "the first read_at is kept");
    json_decref(n);
    snprintf(path, sizeof path, "/users/me/notifications/%s/read", other);
    cr_assert_eq(api("POST", path, tok, &n), 404);
    cr_assert_str_eq(json_string_value(json_object_get(n, "detail")), "Notification not found");
    json_decref(n);
    cr_assert_str_eq(scalar("SELECT read_at IS NULL FROM notifications WHERE id = '%s'", other), "t");
    cr_assert_eq(api("POST", "/users/me/notifications/00000000-0000-4000-8000-000000000000/read", tok, NULL),
                 404);
    cr_assert_eq(api("POST", "/users/me/notifications/not-a-uuid/read", tok, NULL), 422);
    cr_assert_eq(api("GET", "/users/me/notifications?unread=true", tok, &list), 200);
    cr_assert_eq(json_array_size(list), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "id")), n2);
    json_decref(list);
    cr_assert_eq(api("GET", "/users/me/notifications", tok_b, &list), 200);
    cr_assert_eq(json_array_size(list), 1);
    json_decref(list);

    cr_assert_neq(fs_test_sh("grep -E -q 'restarting in|runtime error|Sanitizer' %s", srv.log_path), 0,
                  "a worker crashed; see %s", srv.log_path);
    free(n1), free(n2), free(other), free(tok), free(tok_b);
}
