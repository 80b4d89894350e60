/* The notify actor (notify.h): claims due rows of the outbox, sends each over its channels
 * concurrently, and records the round in one statement. docs/NOTIFICATIONS.md. */
#include "actors/notify/notify.h"

#include "actors/notify/channels.h"
#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "storage/pg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_POLL_MS         500
#define DEFAULT_BATCH           32
#define DEFAULT_MAX_ATTEMPTS    8
#define DEFAULT_BACKOFF_BASE_MS 30000
#define DEFAULT_BACKOFF_CAP_MS  3600000
#define DEFAULT_SEND_TIMEOUT_MS 15000
#define MAX_ERROR_CHARS         1000

struct fs_notify {
    fs_actor_t *actor;
    fs_pg_pool_t *pg;
    fs_http_client_t *http;
    fs_threadpool_t *pool;
    int poll_ms, batch, max_attempts, base_ms, cap_ms, timeout_ms, lease_ms;
    fs_notify_channels_t ch; /* owned copies */
    bool enabled[FSINT_CH_COUNT];
    bool email_by_smtp;
    bool draining, freed, claiming;
    int refs; /* the owner, a claim in flight, each job: freed at 0 */
    fs_notify_stats_t st;
};

/* One channel of one notification in this round. */
typedef struct {
    bool active;        /* attempted this round */
    const char *before; /* its notification_deliveries.status before the round, NULL if none */
    int attempts;       /* before this round */
    fsint_outcome_t out;
    char *error;
    char *key; /* idempotency key */
} job_channel_t;

typedef struct {
    fs_notify_t *n;
    fsint_message_t msg;
    char *owned[9]; /* the message's strings */
    char id[40];
    int rounds;         /* notifications.attempts before this round */
    json_t *deliveries; /* {"email": ["sent", 1], ...} before the round */
    job_channel_t ch[FSINT_CH_COUNT];
    int waiting; /* sends not answered yet, +1 while they are being started */
} job_t;

typedef struct {
    job_t *job;
    int channel;
} send_ctx_t;

/* ---- lifetime ----------------------------------------------------------------------------- */

static void channels_free(fs_notify_channels_t *c)
{
    const char **all[] = {&c->email_from,         &c->sendgrid_api_key,  &c->sendgrid_base_url,
                          &c->smtp_url,           &c->smtp_username,     &c->smtp_password,
                          &c->twilio_account_sid, &c->twilio_auth_token, &c->twilio_from_number,
                          &c->twilio_base_url,    &c->webhook_url,       &c->webhook_secret};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free((char *)*all[i]);
}

static void release(fs_notify_t *n)
{
    if (--n->refs > 0)
        return;
    channels_free(&n->ch);
    free(n);
}

static void job_free(job_t *j)
{
    for (size_t i = 0; i < sizeof j->owned / sizeof j->owned[0]; i++)
        free(j->owned[i]);
    for (int c = 0; c < FSINT_CH_COUNT; c++)
        free(j->ch[c].error), free(j->ch[c].key);
    json_decref(j->deliveries);
    fs_notify_t *n = j->n;
    n->st.inflight--;
    free(j);
    release(n);
}

/* ---- recording a round -------------------------------------------------------------------- */

static const char *channel_status(const fs_notify_t *n, const job_channel_t *c)
{
    if (c->out == FSINT_SENT)
        return "sent";
    if (c->out == FSINT_DEAD || c->attempts + 1 >= n->max_attempts)
        return "dead";
    return "pending";
}

/* The notification's status after the round: pending while an attempted channel will be
 * retried; else sent when any channel ever got through; dead when channels were tried and
 * all gave up; none when there was nothing to deliver on. */
static const char *round_status(const fs_notify_t *n, const job_t *j)
{
    bool pending = false, sent = false, dead = false;
    for (int c = 0; c < FSINT_CH_COUNT; c++) {
        const job_channel_t *ch = &j->ch[c];
        const char *s = ch->active ? channel_status(n, ch) : ch->before;
        if (!s)
            continue;
        pending |= ch->active && strcmp(s, "pending") == 0;
        sent |= strcmp(s, "sent") == 0;
        dead |= strcmp(s, "dead") == 0;
    }
    return pending ? "pending" : sent ? "sent" : dead ? "dead" : "none";
}

/* Delay before round `rounds` + 1: base, 2 x base, 4 x base ... up to the cap. */
static int backoff_ms(const fs_notify_t *n, int rounds)
{
    long long d = n->base_ms;
    for (int i = 1; i < rounds && d < n->cap_ms; i++)
        d *= 2;
    return (int)(d < n->cap_ms ? d : n->cap_ms);
}

static void count_outcome(fs_notify_t *n, const char *status)
{
    if (strcmp(status, "sent") == 0)
        n->st.sent++;
    else if (strcmp(status, "dead") == 0)
        n->st.dead++;
    else
        n->st.retried++;
}

/* The deliveries of the round as a JSON array, the joined errors in *errors. */
static char *round_deliveries(fs_notify_t *n, job_t *j, char **errors, bool *attempted)
{
    json_t *arr = json_array();
    char *err = NULL;
    for (int c = 0; c < FSINT_CH_COUNT; c++) {
        job_channel_t *ch = &j->ch[c];
        if (!ch->active)
            continue;
        const char *status = channel_status(n, ch);
        count_outcome(n, status);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:o}", "channel", fsint_channel_names[c],
                                             "status", status, "attempts", ch->attempts + 1, "error",
                                             ch->error ? json_string(ch->error) : json_null()));
        if (ch->error) {
            char *next =
                fs_sprintf("%s%s%s: %s", err ? err : "", err ? "; " : "", fsint_channel_names[c], ch->error);
            free(err);
            err = next;
        }
        *attempted = true;
    }
    if (err && strlen(err) > MAX_ERROR_CHARS)
        err[MAX_ERROR_CHARS] = '\0';
    *errors = err;
    char *out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return out;
}

static void record_on_done(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    job_t *j = arg;
    if (status != FS_PG_OK) {
        /* the row keeps its lease and is claimed again when it expires: channels already sent
         * are sent again with the same idempotency key */
        j->n->st.db_errors++;
        fs_warn("notify: cannot record notification %s: %s", j->id, error ? error : "database error");
    }
    job_free(j);
}

/* One statement, so the deliveries and the notification change together. Only a pending row
 * is touched: a row that changed meanwhile is left as it is. */
static const char RECORD_SQL[] =
    "WITH d AS (INSERT INTO notification_deliveries (notification_id, channel, status, attempts, last_error, "
    "updated_at) SELECT $1::uuid, x.channel, x.status, x.attempts, x.error, now() "
    "FROM jsonb_to_recordset($2::jsonb) AS x(channel text, status text, attempts int, error text) "
    "ON CONFLICT (notification_id, channel) DO UPDATE SET status = excluded.status, attempts = "
    "excluded.attempts, "
    "last_error = excluded.last_error, updated_at = now()) "
    "UPDATE notifications SET status = $3::text, attempts = attempts + $6::int, "
    "next_attempt_at = CASE WHEN $3::text = 'pending' THEN now() + $4::int * interval '1 millisecond' "
    "ELSE next_attempt_at END, last_error = coalesce($5::text, last_error), "
    "sent_at = CASE WHEN $3::text = 'sent' THEN coalesce(sent_at, now()) ELSE sent_at END "
    "WHERE id = $1::uuid AND status = 'pending'";

static void job_record(job_t *j)
{
    fs_notify_t *n = j->n;
    if (n->freed) { /* abandoned at shutdown: the lease brings it back */
        job_free(j);
        return;
    }
    char *errors = NULL;
    bool attempted = false;
    char *deliveries = round_deliveries(n, j, &errors, &attempted);
    const char *status = round_status(n, j);
    if (strcmp(status, "none") == 0)
        n->st.none++;
    char delay[16];
    snprintf(delay, sizeof delay, "%d", backoff_ms(n, j->rounds + 1));
    const char *params[] = {j->id, deliveries, status, delay, errors, attempted ? "1" : "0"};
    fs_pg_query(n->pg, "notify_record", RECORD_SQL, 6, params, record_on_done, j);
    free(deliveries);
    free(errors);
}

/* ---- sending ------------------------------------------------------------------------------ */

static void job_settle(job_t *j)
{
    if (--j->waiting == 0)
        job_record(j);
}

static void send_on_done(fsint_outcome_t out, const char *error, void *arg)
{
    send_ctx_t *s = arg;
    job_channel_t *ch = &s->job->ch[s->channel];
    ch->out = out;
    ch->error = error ? fs_strdup(error) : NULL;
    job_t *j = s->job;
    free(s);
    job_settle(j);
}

static void send_channel(fs_notify_t *n, job_t *j, int c)
{
    job_channel_t *ch = &j->ch[c];
    ch->key = fs_sprintf("%s:%s", j->id, fsint_channel_names[c]);
    fsint_send_t s = {.ch = &n->ch,
                      .http = n->http,
                      .pool = n->pool,
                      .timeout_ms = n->timeout_ms,
                      .msg = &j->msg,
                      .idempotency_key = ch->key};
    send_ctx_t *ctx = FS_NEW(send_ctx_t);
    ctx->job = j;
    ctx->channel = c;
    j->waiting++;
    if (c == FSINT_CH_SMS)
        fsint_send_twilio(&s, send_on_done, ctx);
    else if (c == FSINT_CH_WEBHOOK)
        fsint_send_webhook(&s, send_on_done, ctx);
    else if (!n->email_by_smtp)
        fsint_send_sendgrid(&s, send_on_done, ctx);
    else if (!fsint_send_smtp(&s, send_on_done, ctx))
        send_on_done(FSINT_RETRY, "thread pool busy", ctx);
}

/* preferences.notifications.{email,sms,push} = false opts the user out (api/users.c); the
 * webhook counts as "push". SMS needs preferences.phone. */
static bool user_wants(json_t *prefs, int c, const fsint_message_t *m)
{
    static const char *const pref_key[FSINT_CH_COUNT] = {"email", "sms", "push"};
    json_t *flag = json_object_get(json_object_get(prefs, "notifications"), pref_key[c]);
    if (json_is_false(flag))
        return false;
    if (c == FSINT_CH_SMS)
        return m->phone && *m->phone;
    if (c == FSINT_CH_EMAIL)
        return m->email && *m->email;
    return true;
}

static void job_plan(fs_notify_t *n, job_t *j, json_t *prefs, bool user_active)
{
    for (int c = 0; c < FSINT_CH_COUNT; c++) {
        job_channel_t *ch = &j->ch[c];
        json_t *prev = json_object_get(j->deliveries, fsint_channel_names[c]);
        ch->before = json_string_value(json_array_get(prev, 0));
        ch->attempts = (int)json_integer_value(json_array_get(prev, 1));
        bool terminal = ch->before && strcmp(ch->before, "pending") != 0;
        ch->active = n->enabled[c] && user_active && !terminal && user_wants(prefs, c, &j->msg);
    }
}

static char *keep(job_t *j, int slot, const PGresult *res, int row, int col)
{
    j->owned[slot] = PQgetisnull(res, row, col) ? NULL : fs_strdup(PQgetvalue(res, row, col));
    return j->owned[slot];
}

/* Columns of CLAIM_SQL: id, user_id, kind, title, body, payload, attempts, created_at, email,
 * preferences, is_active, deliveries. */
static job_t *job_from_row(fs_notify_t *n, const PGresult *res, int row, json_t **prefs)
{
    job_t *j = FS_NEW(job_t);
    j->n = n;
    n->refs++;
    n->st.inflight++;
    fsint_message_t *m = &j->msg;
    m->id = keep(j, 0, res, row, 0);
    snprintf(j->id, sizeof j->id, "%s", m->id);
    m->user_id = keep(j, 1, res, row, 1);
    m->kind = keep(j, 2, res, row, 2);
    m->title = keep(j, 3, res, row, 3);
    m->body = keep(j, 4, res, row, 4);
    m->payload = keep(j, 5, res, row, 5);
    j->rounds = atoi(PQgetvalue(res, row, 6));
    m->created_at = keep(j, 6, res, row, 7);
    m->email = keep(j, 7, res, row, 8);
    *prefs = json_loads(PQgetvalue(res, row, 9), 0, NULL);
    const char *phone = json_string_value(json_object_get(*prefs, "phone"));
    m->phone = j->owned[8] = phone ? fs_strdup(phone) : NULL;
    j->deliveries = json_loads(PQgetvalue(res, row, 11), 0, NULL);
    return j;
}

static void job_start(fs_notify_t *n, const PGresult *res, int row)
{
    json_t *prefs = NULL;
    job_t *j = job_from_row(n, res, row, &prefs);
    job_plan(n, j, prefs, PQgetvalue(res, row, 10)[0] == 't');
    json_decref(prefs);
    j->waiting = 1; /* held until every send is started, so none can record early */
    for (int c = 0; c < FSINT_CH_COUNT; c++)
        if (j->ch[c].active)
            send_channel(n, j, c);
    job_settle(j);
}

/* ---- claiming ----------------------------------------------------------------------------- */

/* Due rows, oldest first, skipping rows another claimer holds; the lease (next_attempt_at in
 * the future) keeps them from being claimed again while they are being sent. */
static const char CLAIM_SQL[] =
    "WITH due AS (SELECT id FROM notifications WHERE status = 'pending' AND next_attempt_at <= now() "
    "ORDER BY next_attempt_at LIMIT $1::int FOR UPDATE SKIP LOCKED), "
    "claimed AS (UPDATE notifications n SET next_attempt_at = now() + $2::int * interval '1 millisecond' "
    "FROM due WHERE n.id = due.id RETURNING n.*) "
    "SELECT c.id::text, c.user_id::text, c.kind, c.title, c.body, c.payload::text, c.attempts, "
    "to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), u.email, "
    "u.preferences::text, u.is_active, "
    "coalesce((SELECT json_object_agg(d.channel, json_build_array(d.status, d.attempts)) "
    "FROM notification_deliveries d WHERE d.notification_id = c.id), '{}')::text "
    "FROM claimed c JOIN users u ON u.id = c.user_id ORDER BY c.next_attempt_at";

static void claim_on_rows(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    fs_notify_t *n = arg;
    n->claiming = false;
    if (n->freed) {
        release(n);
        return;
    }
    if (status != FS_PG_OK) {
        n->st.db_errors++;
        fs_warn("notify: cannot claim notifications: %s", error ? error : "database error");
        release(n);
        return;
    }
    int rows = PQntuples(res);
    n->st.claimed += (uint64_t)rows;
    for (int i = 0; i < rows; i++)
        job_start(n, res, i);
    /* rows were due, so more may be: look again at once rather than after a poll interval */
    if (rows > 0 && !n->draining)
        fs_actor_timer_start(n->actor, FS_MSG_NOTIFY_TICK, 0, 0);
    release(n);
}

static void poll_outbox(fs_notify_t *n)
{
    int room = n->batch - (int)n->st.inflight;
    if (n->claiming || n->draining || n->freed || room <= 0)
        return;
    char limit[16], lease[16];
    snprintf(limit, sizeof limit, "%d", room);
    snprintf(lease, sizeof lease, "%d", n->lease_ms);
    const char *params[] = {limit, lease};
    n->claiming = true;
    n->refs++;
    fs_pg_query(n->pg, "notify_claim", CLAIM_SQL, 2, params, claim_on_rows, n);
}

/* ---- the actor ---------------------------------------------------------------------------- */

static int notify_behaviour(fs_actor_t *self, void *state, fs_msg_t *msg)
{
    if (msg->type == FS_MSG_NOTIFY_TICK)
        poll_outbox(state);
    return FS_OK;
}

static void *notify_init(fs_actor_t *self, void *arg)
{
    fs_notify_t *n = arg;
    fs_actor_timer_start(self, FS_MSG_NOTIFY_TICK, n->poll_ms, n->poll_ms);
    return n;
}

/* ---- configuration ------------------------------------------------------------------------ */

static const char *setting(const fs_config_t *cfg, const char *name)
{
    const char *v = fs_config_extra(cfg, name);
    return v && *v ? v : NULL;
}

static int setting_int(const fs_config_t *cfg, const char *name)
{
    const char *v = setting(cfg, name);
    return v ? atoi(v) : 0;
}

void fs_notify_opts_from_config(fs_notify_opts_t *o, const fs_config_t *cfg)
{
    memset(o, 0, sizeof *o);
    o->poll_ms = setting_int(cfg, "NOTIFY_POLL_MS");
    o->batch = setting_int(cfg, "NOTIFY_BATCH");
    o->max_attempts = setting_int(cfg, "NOTIFY_MAX_ATTEMPTS");
    o->backoff_base_ms = setting_int(cfg, "NOTIFY_BACKOFF_BASE_MS");
    o->backoff_cap_ms = setting_int(cfg, "NOTIFY_BACKOFF_CAP_MS");
    o->send_timeout_ms = setting_int(cfg, "NOTIFY_SEND_TIMEOUT_MS");
    o->lease_ms = setting_int(cfg, "NOTIFY_LEASE_MS");
    fs_notify_channels_t *c = &o->ch;
    c->email_from = setting(cfg, "EMAIL_FROM");
    c->sendgrid_api_key = setting(cfg, "SENDGRID_API_KEY");
    c->sendgrid_base_url = setting(cfg, "SENDGRID_BASE_URL");
    c->smtp_url = setting(cfg, "SMTP_URL");
    c->smtp_username = setting(cfg, "SMTP_USERNAME");
    c->smtp_password = setting(cfg, "SMTP_PASSWORD");
    c->twilio_account_sid = setting(cfg, "TWILIO_ACCOUNT_SID");
    c->twilio_auth_token = setting(cfg, "TWILIO_AUTH_TOKEN");
    c->twilio_from_number = setting(cfg, "TWILIO_FROM_NUMBER");
    c->twilio_base_url = setting(cfg, "TWILIO_BASE_URL");
    c->webhook_url = setting(cfg, "WEBHOOK_URL");
    c->webhook_secret = setting(cfg, "WEBHOOK_SECRET");
}

static const char *dup_setting(const char *s)
{
    return s && *s ? fs_strdup(s) : NULL;
}

static void channels_copy(fs_notify_channels_t *to, const fs_notify_channels_t *from)
{
    to->email_from = dup_setting(from->email_from);
    to->sendgrid_api_key = dup_setting(from->sendgrid_api_key);
    to->sendgrid_base_url = dup_setting(from->sendgrid_base_url);
    to->smtp_url = dup_setting(from->smtp_url);
    to->smtp_username = dup_setting(from->smtp_username);
    to->smtp_password = dup_setting(from->smtp_password);
    to->twilio_account_sid = dup_setting(from->twilio_account_sid);
    to->twilio_auth_token = dup_setting(from->twilio_auth_token);
    to->twilio_from_number = dup_setting(from->twilio_from_number);
    to->twilio_base_url = dup_setting(from->twilio_base_url);
    to->webhook_url = dup_setting(from->webhook_url);
    to->webhook_secret = dup_setting(from->webhook_secret);
}

/* Which channels can run, with a warning for a half-configured one (never naming a secret). */
static void channels_enable(fs_notify_t *n)
{
    const fs_notify_channels_t *c = &n->ch;
    bool email_api = c->sendgrid_api_key || (c->smtp_url && n->pool);
    n->enabled[FSINT_CH_EMAIL] = c->email_from && email_api && (c->sendgrid_api_key ? n->http != NULL : true);
    n->email_by_smtp = !c->sendgrid_api_key;
    n->enabled[FSINT_CH_SMS] =
        c->twilio_account_sid && c->twilio_auth_token && c->twilio_from_number && n->http;
    n->enabled[FSINT_CH_WEBHOOK] = c->webhook_url && c->webhook_secret && n->http;
    if (email_api && !c->email_from)
        fs_warn("notify: e-mail is configured but EMAIL_FROM is not set; e-mail disabled");
    if (c->webhook_url && !c->webhook_secret)
        fs_warn("notify: WEBHOOK_URL is set without WEBHOOK_SECRET; the webhook is disabled");
    if (!n->enabled[FSINT_CH_SMS] && (c->twilio_account_sid || c->twilio_auth_token || c->twilio_from_number))
        fs_warn("notify: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER are all needed; SMS "
                "disabled");
    n->st.email = n->enabled[FSINT_CH_EMAIL];
    n->st.sms = n->enabled[FSINT_CH_SMS];
    n->st.webhook = n->enabled[FSINT_CH_WEBHOOK];
}

static int or_default(int v, int dflt)
{
    return v > 0 ? v : dflt;
}

fs_notify_t *fs_notify_start(fs_actor_system_t *sys, const fs_notify_opts_t *o)
{
    if (!o->pg)
        return NULL;
    fs_notify_t *n = FS_NEW(fs_notify_t);
    n->refs = 1;
    n->pg = o->pg;
    n->http = o->http;
    n->pool = o->pool;
    n->poll_ms = or_default(o->poll_ms, DEFAULT_POLL_MS);
    n->batch = or_default(o->batch, DEFAULT_BATCH);
    n->max_attempts = or_default(o->max_attempts, DEFAULT_MAX_ATTEMPTS);
    n->base_ms = or_default(o->backoff_base_ms, DEFAULT_BACKOFF_BASE_MS);
    n->cap_ms = or_default(o->backoff_cap_ms, DEFAULT_BACKOFF_CAP_MS);
    if (n->cap_ms < n->base_ms)
        n->cap_ms = n->base_ms;
    n->timeout_ms = or_default(o->send_timeout_ms, DEFAULT_SEND_TIMEOUT_MS);
    n->lease_ms = or_default(o->lease_ms, 4 * n->timeout_ms + 60000);
    channels_copy(&n->ch, &o->ch);
    channels_enable(n);
    fs_actor_spec_t spec = {
        .name = FS_NOTIFY_ACTOR, .behaviour = notify_behaviour, .init = notify_init, .arg = n};
    n->actor = fs_actor_spawn(sys, &spec);
    if (!n->actor) {
        release(n);
        return NULL;
    }
    fs_info("notify: delivering from the outbox every %d ms; email=%s%s sms=%s webhook=%s; max attempts %d",
            n->poll_ms, n->enabled[FSINT_CH_EMAIL] ? "on" : "off",
            n->enabled[FSINT_CH_EMAIL] ? (n->email_by_smtp ? " (smtp)" : " (sendgrid)") : "",
            n->enabled[FSINT_CH_SMS] ? "on" : "off", n->enabled[FSINT_CH_WEBHOOK] ? "on" : "off",
            n->max_attempts);
    return n;
}

fs_actor_t *fs_notify_actor(const fs_notify_t *n)
{
    return n->actor;
}

void fs_notify_wake(fs_notify_t *n)
{
    if (n && !n->draining)
        fs_actor_timer_start(n->actor, FS_MSG_NOTIFY_TICK, 0, 0);
}

void fs_notify_drain(fs_notify_t *n)
{
    if (n)
        n->draining = true;
}

bool fs_notify_idle(const fs_notify_t *n)
{
    return !n || (!n->claiming && n->st.inflight == 0);
}

void fs_notify_free(fs_notify_t *n)
{
    if (!n)
        return;
    if (n->st.inflight)
        fs_warn("notify: stopping with %u notifications in flight; they stay pending", n->st.inflight);
    n->freed = true;
    n->draining = true;
    fs_actor_stop(n->actor);
    release(n);
}

void fs_notify_get_stats(const fs_notify_t *n, fs_notify_stats_t *out)
{
    *out = n->st;
}
