/* The alert shard: the actor, the load from price_alerts, the change feed (peer messages and
 * Redis pub/sub), the stream reader and the match statements. See alert.h for the contract.
 *
 * Lifetime. The shard object outlives fs_alert_stop while database callbacks are due (the
 * pool is the worker's and is freed later): each query holds a reference, and a callback that
 * finds the shard stopped only drops it. Redis callbacks run with a NULL reply inside
 * fs_redis_free, which happens in stop, and check `stopped` the same way.
 */
#include "actors/alert/alert.h"
#include "actors/alert/alert_index.h"

#include "actors/price_ingest/price_ingest.h"
#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "schemas/alerts.pb-c.h"
#include "storage/pg.h"
#include "storage/redis.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOAD_PAGE 20000       /* rows per load query */
#define READ_COUNT 256        /* stream entries per XREADGROUP */
#define MAX_INFLIGHT 2048     /* match statements in flight before reading pauses */
#define MAX_MATCHES 1024      /* matches of one observation taken in one go */
#define RETRY_MS 1000         /* after a failed read, group creation or statement */
#define SUBSCRIBE_WAIT_MS 300 /* the first load waits this long for the subscription */
#define DEFAULT_BLOCK_MS 1000

/* One statement: when the database answers a match of an entry. */
#define FS_ALERT_MATCH_SQL                                                                                   \
    "WITH a AS (UPDATE price_alerts SET last_notified_at = now() "                                           \
    " WHERE id = $1::uuid AND is_active AND target_price >= $2::numeric AND currency = $3::text "                  \
    "   AND (cabin_class IS NULL OR cabin_class = $4::text) "                                                       \
    "   AND (date_from IS NULL OR date_from <= $5::date) AND (date_to IS NULL OR date_to >= $5::date) "     \
    "   AND (last_notified_at IS NULL OR last_notified_at <= now() - $6::int * interval '1 second') "        \
    " RETURNING id, user_id, origin_code, destination_code, target_price, currency) "                         \
    "INSERT INTO notifications (user_id, alert_id, kind, title, body, payload, idempotency_key) "            \
    "SELECT a.user_id, a.id, 'price_alert', "                                                                 \
    " format('Price alert: %s to %s at %s %s', a.origin_code, a.destination_code, $2::numeric, a.currency), "        \
    " format('A fare of %s %s from %s to %s on %s (%s, %s) is at or below your target of %s %s.', "          \
    "        $2::numeric, a.currency, a.origin_code, a.destination_code, $5::date, $7::text, $4::text, a.target_price, a.currency), "  \
    " jsonb_build_object('alert_id', a.id, 'origin', a.origin_code, 'destination', a.destination_code, "   \
    "   'price', $2::numeric, 'target_price', a.target_price, 'currency', a.currency, 'travel_date', $5::date, "   \
    "   'cabin_class', $4::text, 'carrier', $7::text, 'observed_at_ms', $8::bigint, 'stream_entry', $9::text), $10::text "          \
    "FROM a ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"

#define FS_ALERT_LOAD_SQL                                                                                    \
    "SELECT id::text, origin_code, destination_code, round(target_price * 100)::bigint, currency, "         \
    " coalesce(cabin_class, ''), coalesce(date_from::text, ''), coalesce(date_to::text, ''), "              \
    " coalesce(extract(epoch FROM last_notified_at)::bigint, 0) "                                            \
    "FROM price_alerts WHERE is_active AND id > $1::uuid "                                                   \
    " AND length(origin_code) = 3 AND length(destination_code) = 3 "                                         \
    " AND " FS_ALERT_SHARD_SQL("origin_code", "destination_code") " % $2 = $3 "                              \
    "ORDER BY id LIMIT " FS_STR(LOAD_PAGE)
#define FS_STR_(x) #x
#define FS_STR(x) FS_STR_(x)

typedef struct change {
    uint32_t route;
    bool remove;
    fs_alert_rec_t rec;
} change_t;

struct fs_alert_shard {
    int refs;
    bool stopped;
    fs_actor_system_t *sys;
    struct event_base *base;
    fs_actor_t *actor;
    int shard, shards;
    fs_pg_pool_t *pg;
    uint32_t cooldown_s;
    int block_ms;
    char *stream_key;
    char group[64], consumer[160], publisher[160];
    fs_alert_index_t *idx;
    /* loading */
    bool loaded, loading, load_again;
    fs_alert_index_t *next_idx;
    char load_after[40];
    change_t *replay; /* changes that arrived during the load */
    size_t n_replay, cap_replay;
    /* change feed */
    fs_redis_t *sub;
    bool subscribed_once;
    struct event *start_ev;
    /* stream */
    fs_redis_t *stream;
    bool group_ready, read_busy, want_pending;
    char pending_from[48];
    struct event *retry_ev;
    fs_alert_stats_t st;
    fs_metric_series_t *m_alerts, *m_matches, *m_notified, *m_entries;
};

typedef struct entry {
    fs_alert_shard_t *s;
    char id[48];
    int waits;
    bool failed;
} entry_t;

typedef struct match_job {
    entry_t *e;
    uint32_t route;
    uint8_t alert[16];
    uint32_t prev_notified;
} match_job_t;

static void load_start(fs_alert_shard_t *s);
static void read_next(fs_alert_shard_t *s);

/*--- helpers -------------------------------------------------------------------------------*/

static void shard_release(fs_alert_shard_t *s)
{
    if (--s->refs == 0) {
        free(s->stream_key);
        free(s);
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool uuid_parse(const char *s, uint8_t out[16])
{
    if (!s || strlen(s) != 36)
        return false;
    int n = 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            continue;
        }
        int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[n++] = (uint8_t)(hi << 4 | lo);
        i++;
    }
    return true;
}

static void uuid_format(const uint8_t id[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[id[i] >> 4];
        out[o++] = hex[id[i] & 15];
    }
    out[o] = '\0';
}

static struct timeval ms_tv(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

static void set_gauge(fs_alert_shard_t *s)
{
    if (s->m_alerts)
        fs_metric_set(s->m_alerts, (double)fs_alert_index_count(s->idx));
}

static void inc(fs_metric_series_t *m, double by)
{
    if (m)
        fs_metric_inc(m, by);
}

/*--- changes -------------------------------------------------------------------------------*/

static uint8_t cabin_code(const char *name)
{
    static const char *const cabins[] = {"economy", "premium_economy", "business", "first"};
    for (uint8_t i = 0; name && i < 4; i++)
        if (strcmp(name, cabins[i]) == 0)
            return i;
    return FS_ALERT_CABIN_ANY;
}

/* Fills `c` from the wire form; false when it is unusable (bad id or codes). */
static bool change_read(const Fs__Alerts__AlertChanged *m, change_t *c)
{
    memset(c, 0, sizeof *c);
    c->route = fs_alert_route_key(m->origin, m->destination);
    if (!c->route || !uuid_parse(m->id, c->rec.id))
        return false;
    c->remove = (m->has_deleted && m->deleted) || (m->has_is_active && !m->is_active);
    c->rec.target_cents = m->has_target_cents ? (int32_t)m->target_cents : 0;
    c->rec.currency = fs_alert_currency_pack(m->currency ? m->currency : "EUR", m->currency ? strlen(m->currency) : 3);
    c->rec.cabin = m->cabin_class && m->cabin_class[0] ? cabin_code(m->cabin_class) : FS_ALERT_CABIN_ANY;
    int from = m->date_from && m->date_from[0] ? fs_alert_day_parse(m->date_from, strlen(m->date_from)) : -1;
    int to = m->date_to && m->date_to[0] ? fs_alert_day_parse(m->date_to, strlen(m->date_to)) : -1;
    c->rec.date_from = from > 0 ? (uint16_t)from : FS_ALERT_DATE_OPEN_FROM;
    c->rec.date_to = to > 0 ? (uint16_t)to : FS_ALERT_DATE_OPEN_TO;
    c->rec.notified_s = m->has_last_notified_s && m->last_notified_s > 0 ? (uint32_t)m->last_notified_s : 0;
    return true;
}

static void change_apply(fs_alert_index_t *idx, const change_t *c)
{
    if (c->remove) {
        fs_alert_index_remove(idx, c->route, c->rec.id);
        return;
    }
    /* a change does not know of a notification this shard made meanwhile: keep the later one */
    fs_alert_rec_t rec = c->rec;
    fs_alert_rec_t *old = fs_alert_index_find(idx, c->route, rec.id);
    if (old && old->notified_s > rec.notified_s)
        rec.notified_s = old->notified_s;
    fs_alert_index_put(idx, c->route, &rec);
}

/* Applies a change of this shard's route to the index (and queues it for the load running). */
static void shard_change(fs_alert_shard_t *s, const Fs__Alerts__AlertChanged *m)
{
    change_t c;
    if (!change_read(m, &c)) {
        fs_warn("alert shard %d: unusable alert change ignored (id %s)", s->shard, m->id ? m->id : "none");
        return;
    }
    if (fs_alert_shard_of(c.route, s->shards) != s->shard)
        return;
    s->st.changes++;
    change_apply(s->idx, &c);
    if (s->loading) {
        if (s->n_replay == s->cap_replay) {
            s->cap_replay = s->cap_replay ? s->cap_replay * 2 : 64;
            s->replay = fs_realloc(s->replay, s->cap_replay * sizeof *s->replay);
        }
        s->replay[s->n_replay++] = c;
    }
    set_gauge(s);
}

/*--- the actor -----------------------------------------------------------------------------*/

static void *actor_init(fs_actor_t *self, void *arg)
{
    return arg;
}

/* AlertChanged (sent or asked): apply, then acknowledge an ask. Anything else is a bug of the
 * sender; it is refused without restarting (the state is the shard object's anyway). */
static int actor_behaviour(fs_actor_t *self, void *state, fs_msg_t *msg)
{
    fs_alert_shard_t *s = state;
    Fs__Alerts__AlertChanged *m = fs_msg_body(msg, &fs__alerts__alert_changed__descriptor);
    if (!m) {
        if (msg->reply_to.corr_id)
            fs_actor_reply_to(s->sys, msg->reply_to, FS_EINVAL, 0, NULL);
        return FS_OK;
    }
    shard_change(s, m);
    if (!msg->reply_to.corr_id)
        return FS_OK;
    Fs__Alerts__AlertChangedAck *ack = fs_pb_new(&fs__alerts__alert_changed_ack__descriptor);
    ack->has_alerts = true;
    ack->alerts = (int32_t)fs_alert_index_count(s->idx);
    return fs_actor_reply(msg, FS_MSG_ALERT_CHANGED_ACK, &ack->base);
}

void fs_alert_register_types(void)
{
    fs_msg_type_register(FS_MSG_ALERT_CHANGED, &fs__alerts__alert_changed__descriptor);
    fs_msg_type_register(FS_MSG_ALERT_CHANGED_ACK, &fs__alerts__alert_changed_ack__descriptor);
}

/*--- loading -------------------------------------------------------------------------------*/

static void load_row(fs_alert_index_t *idx, PGresult *res, int row)
{
    Fs__Alerts__AlertChanged m = FS__ALERTS__ALERT_CHANGED__INIT;
    m.id = PQgetvalue(res, row, 0);
    m.origin = PQgetvalue(res, row, 1);
    m.destination = PQgetvalue(res, row, 2);
    m.has_target_cents = true;
    m.target_cents = strtoll(PQgetvalue(res, row, 3), NULL, 10);
    m.currency = PQgetvalue(res, row, 4);
    m.cabin_class = PQgetvalue(res, row, 5);
    m.date_from = PQgetvalue(res, row, 6);
    m.date_to = PQgetvalue(res, row, 7);
    m.has_last_notified_s = true;
    m.last_notified_s = strtoll(PQgetvalue(res, row, 8), NULL, 10);
    change_t c;
    if (change_read(&m, &c))
        fs_alert_index_put(idx, c.route, &c.rec);
}

static void load_finish(fs_alert_shard_t *s)
{
    for (size_t i = 0; i < s->n_replay; i++)
        change_apply(s->next_idx, &s->replay[i]);
    s->n_replay = 0;
    fs_alert_index_compact(s->next_idx);
    fs_alert_index_free(s->idx);
    s->idx = s->next_idx;
    s->next_idx = NULL;
    s->loading = false;
    s->st.loads++;
    set_gauge(s);
    fs_info("alert shard %d of %d ready: %zu alerts on %zu routes, %zu bytes", s->shard, s->shards,
            fs_alert_index_count(s->idx), fs_alert_index_routes(s->idx), fs_alert_index_bytes(s->idx));
    bool first = !s->loaded;
    s->loaded = true;
    if (s->load_again) {
        s->load_again = false;
        load_start(s);
    }
    if (first)
        read_next(s);
}

static void load_page(fs_alert_shard_t *s);

static void on_load_page(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    fs_alert_shard_t *s = arg;
    if (s->stopped) {
        shard_release(s);
        return;
    }
    shard_release(s);
    if (status != FS_PG_OK) {
        fs_warn("alert shard %d: load failed (%s); retrying", s->shard, error ? error : "database error");
        struct timeval tv = ms_tv(RETRY_MS);
        evtimer_add(s->start_ev, &tv); /* on_start_timer continues the same load */
        return;
    }
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        load_row(s->next_idx, res, i);
    if (n < LOAD_PAGE) {
        load_finish(s);
        return;
    }
    snprintf(s->load_after, sizeof s->load_after, "%s", PQgetvalue(res, n - 1, 0));
    load_page(s);
}

static void load_page(fs_alert_shard_t *s)
{
    char shards[16], shard[16];
    snprintf(shards, sizeof shards, "%d", s->shards);
    snprintf(shard, sizeof shard, "%d", s->shard);
    const char *params[] = {s->load_after, shards, shard};
    s->refs++;
    fs_pg_query(s->pg, "alert_load", FS_ALERT_LOAD_SQL, 3, params, on_load_page, s);
}

/* Builds a fresh index from the database while the current one keeps serving. */
static void load_start(fs_alert_shard_t *s)
{
    if (s->loading) {
        s->load_again = true;
        return;
    }
    s->loading = true;
    s->n_replay = 0;
    s->next_idx = fs_alert_index_new();
    snprintf(s->load_after, sizeof s->load_after, "00000000-0000-0000-0000-000000000000");
    load_page(s);
}

static void on_start_timer(evutil_socket_t fd, short what, void *arg)
{
    fs_alert_shard_t *s = arg;
    if (s->loading)
        load_page(s); /* a failed page, again */
    else if (!s->loaded)
        load_start(s);
}

/*--- pub/sub -------------------------------------------------------------------------------*/

static void on_published(redisReply *reply, const char *error, void *arg)
{
    if (error)
        fs_warn("alert change not published (other hosts see it at their next reload): %s", error);
}

static const char *publisher_id(void)
{
    static char id[160];
    if (!id[0]) {
        char host[64] = "";
        gethostname(host, sizeof host - 1);
        snprintf(id, sizeof id, "%s/%d", host, (int)getppid());
    }
    return id;
}

void fs_alert_publish(fs_redis_t *redis, Fs__Alerts__AlertChanged *c)
{
    if (!redis)
        return;
    char *saved = c->publisher;
    c->publisher = (char *)publisher_id();
    size_t len = fs__alerts__alert_changed__get_packed_size(c);
    uint8_t *buf = fs_malloc(len ? len : 1);
    fs__alerts__alert_changed__pack(c, buf);
    c->publisher = saved;
    const char *argv[] = {"PUBLISH", FS_ALERT_CHANNEL, (const char *)buf};
    size_t lens[] = {7, strlen(FS_ALERT_CHANNEL), len};
    fs_redis_commandargv(redis, on_published, NULL, 3, argv, lens);
    free(buf);
}

static void on_channel(const char *channel, const char *payload, size_t len, void *arg)
{
    fs_alert_shard_t *s = arg;
    if (s->stopped)
        return;
    if (!payload) { /* (re)subscribed */
        bool first = !s->subscribed_once;
        s->subscribed_once = true;
        if (first && !s->loading && !s->loaded)
            load_start(s);
        else if (!first) /* changes published while we were away are lost: catch up */
            load_start(s);
        return;
    }
    Fs__Alerts__AlertChanged *m = fs__alerts__alert_changed__unpack(NULL, len, (const uint8_t *)payload);
    if (!m) {
        fs_warn("alert shard %d: undecodable message on %s ignored", s->shard, FS_ALERT_CHANNEL);
        return;
    }
    /* this host's changes came through the peer channel already */
    if (!m->publisher || strcmp(m->publisher, publisher_id()) != 0)
        shard_change(s, m);
    fs__alerts__alert_changed__free_unpacked(m, NULL);
}

/*--- stream: acknowledgements --------------------------------------------------------------*/

static void on_ack(redisReply *reply, const char *error, void *arg)
{
    fs_alert_shard_t *s = arg;
    if (!s->stopped && error)
        fs_warn("alert shard %d: XACK failed (%s); the entries are re-read later", s->shard, error);
    shard_release(s);
}

/* XACK key group id... (ids point into the caller's memory, used before returning). */
static void ack_ids(fs_alert_shard_t *s, const char **ids, const size_t *lens, size_t n)
{
    if (n == 0 || s->stopped)
        return;
    const char **argv = fs_malloc((n + 3) * sizeof *argv);
    size_t *argl = fs_malloc((n + 3) * sizeof *argl);
    argv[0] = "XACK", argl[0] = 4;
    argv[1] = s->stream_key, argl[1] = strlen(s->stream_key);
    argv[2] = s->group, argl[2] = strlen(s->group);
    memcpy(argv + 3, ids, n * sizeof *ids);
    memcpy(argl + 3, lens, n * sizeof *lens);
    s->refs++;
    s->st.acked += n;
    fs_redis_commandargv(s->stream, on_ack, s, (int)n + 3, argv, argl);
    free(argv);
    free(argl);
}

static void retry_later(fs_alert_shard_t *s)
{
    if (!s->stopped && !evtimer_pending(s->retry_ev, NULL)) {
        struct timeval tv = ms_tv(RETRY_MS);
        evtimer_add(s->retry_ev, &tv);
    }
}

static void entry_done(entry_t *e)
{
    fs_alert_shard_t *s = e->s;
    if (--e->waits > 0)
        return;
    if (!s->stopped && !e->failed) {
        const char *id = e->id;
        size_t len = strlen(id);
        ack_ids(s, &id, &len, 1);
    } else if (!s->stopped) { /* left pending: re-read from our pending list after a pause */
        s->want_pending = true;
        snprintf(s->pending_from, sizeof s->pending_from, "0");
        retry_later(s);
    }
    shard_release(s);
    free(e);
}

/*--- stream: matching ----------------------------------------------------------------------*/

static void on_match(fs_pg_status_t status, PGresult *res, const char *error, void *arg)
{
    match_job_t *j = arg;
    entry_t *e = j->e;
    fs_alert_shard_t *s = e->s;
    if (!s->stopped) {
        s->st.inflight--;
        if (status == FS_PG_OK && PQntuples(res) > 0) {
            s->st.notified++;
            inc(s->m_notified, 1);
        } else if (status == FS_PG_OK) {
            s->st.suppressed++;
        } else {
            s->st.db_errors++;
            e->failed = true;
            fs_alert_rec_t *r = fs_alert_index_find(s->idx, j->route, j->alert);
            if (r) /* the retry must be able to match again */
                r->notified_s = j->prev_notified;
            fs_warn("alert shard %d: match not recorded (%s); entry %s stays pending", s->shard,
                    error ? error : "database error", e->id);
        }
        read_next(s); /* in case reading had paused for the database (no-op otherwise) */
    }
    free(j);
    entry_done(e);
}

typedef struct obs_fields {
    const redisReply *o, *d, *a, *dd, *c, *p, *cur, *t;
} obs_fields_t;

static bool field_is(const redisReply *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == REDIS_REPLY_STRING && (size_t)k->len == n && memcmp(k->str, name, n) == 0;
}

static void fields_read(const redisReply *kv, obs_fields_t *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; kv && kv->type == REDIS_REPLY_ARRAY && i + 1 < kv->elements; i += 2) {
        const redisReply *k = kv->element[i], *v = kv->element[i + 1];
        if (v->type != REDIS_REPLY_STRING)
            continue;
        if (field_is(k, "o"))
            f->o = v;
        else if (field_is(k, "d"))
            f->d = v;
        else if (field_is(k, "a"))
            f->a = v;
        else if (field_is(k, "dd"))
            f->dd = v;
        else if (field_is(k, "c"))
            f->c = v;
        else if (field_is(k, "p"))
            f->p = v;
        else if (field_is(k, "cur"))
            f->cur = v;
        else if (field_is(k, "t"))
            f->t = v;
    }
}

/* "123.45" -> 12345; -1 when malformed. */
static int32_t price_cents(const redisReply *p)
{
    if (!p || p->len == 0 || p->len > 12)
        return -1;
    char buf[16];
    memcpy(buf, p->str, (size_t)p->len);
    buf[p->len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (*end || !(v >= 0 && v <= 1e7))
        return -1;
    return (int32_t)(v * 100.0 + 0.5);
}

static void match_issue(fs_alert_shard_t *s, entry_t *e, const obs_fields_t *f, int32_t obs_cents, uint32_t route,
                        const fs_alert_rec_t *r, uint32_t prev)
{
    match_job_t *j = FS_NEW(match_job_t);
    j->e = e;
    j->route = route;
    memcpy(j->alert, r->id, 16);
    j->prev_notified = prev;
    e->waits++;
    s->st.inflight++;
    s->st.matches++;
    inc(s->m_matches, 1);
    char id[37], cool[16], key[96], price[24], cur[4], dd[11], cabin[20], air[8], t[24];
    uuid_format(r->id, id);
    snprintf(cool, sizeof cool, "%u", s->cooldown_s);
    snprintf(key, sizeof key, "%s:%s", id, e->id);
    snprintf(price, sizeof price, "%d.%02d", obs_cents / 100, obs_cents % 100);
    snprintf(cur, sizeof cur, "%.*s", f->cur ? (int)f->cur->len : 0, f->cur ? f->cur->str : "");
    if (!f->cur)
        snprintf(cur, sizeof cur, "EUR");
    snprintf(dd, sizeof dd, "%.*s", (int)f->dd->len, f->dd->str);
    snprintf(cabin, sizeof cabin, "%.*s", f->c ? (int)f->c->len : 0, f->c ? f->c->str : "");
    if (!f->c)
        snprintf(cabin, sizeof cabin, "economy");
    snprintf(air, sizeof air, "%.*s", f->a ? (int)f->a->len : 0, f->a ? f->a->str : "");
    bool has_t = f->t && f->t->len > 0 && f->t->len < 19 && strspn(f->t->str, "0123456789") >= f->t->len;
    snprintf(t, sizeof t, "%.*s", has_t ? (int)f->t->len : 1, has_t ? f->t->str : "0");
    const char *params[] = {id, price, cur, cabin, dd, cool, air, t, e->id, key};
    fs_pg_query(s->pg, "alert_match", FS_ALERT_MATCH_SQL, 10, params, on_match, j);
}

/* Matches one stream entry. Returns true when it can be acknowledged at once (another shard's
 * route, malformed, or no alert matched); otherwise statements were issued and the entry is
 * acknowledged when they have all answered. */
static bool entry_process(fs_alert_shard_t *s, const char *id, size_t id_len, const redisReply *kv)
{
    s->st.entries++;
    inc(s->m_entries, 1);
    obs_fields_t f;
    fields_read(kv, &f);
    uint32_t route = f.o && f.d ? fs_alert_route_key_n(f.o->str, (size_t)f.o->len, f.d->str, (size_t)f.d->len) : 0;
    if (!route || fs_alert_shard_of(route, s->shards) != s->shard) {
        s->st.foreign++;
        return true;
    }
    int day = f.dd ? fs_alert_day_parse(f.dd->str, (size_t)f.dd->len) : -1;
    int32_t cents = price_cents(f.p);
    uint8_t cabin = FS_ALERT_CABIN_ANY;
    if (f.c) {
        char c[20];
        snprintf(c, sizeof c, "%.*s", (int)f.c->len, f.c->str);
        cabin = cabin_code(c);
    }
    if (day < 0 || cents < 0 || (f.c && cabin == FS_ALERT_CABIN_ANY) || id_len >= sizeof((entry_t *)0)->id)
        return true;
    fs_alert_obs_t obs = {.route = route, .price_cents = cents, .day = (uint16_t)day,
                          .currency = f.cur ? fs_alert_currency_pack(f.cur->str, (size_t)f.cur->len)
                                            : fs_alert_currency_pack("EUR", 3),
                          .cabin = f.c ? cabin : 0};
    uint32_t now_s = (uint32_t)time(NULL);
    fs_alert_rec_t *hits[MAX_MATCHES];
    size_t n = fs_alert_index_match(s->idx, &obs, now_s, s->cooldown_s, hits, MAX_MATCHES);
    if (n == 0)
        return true;
    n = n > MAX_MATCHES ? MAX_MATCHES : n; /* the rest match again on the next observation */
    entry_t *e = FS_NEW(entry_t);
    e->s = s;
    memcpy(e->id, id, id_len);
    e->waits = 1; /* ours until every statement is issued */
    s->refs++;
    for (size_t i = 0; i < n; i++) {
        uint32_t prev = hits[i]->notified_s;
        hits[i]->notified_s = now_s ? now_s : 1; /* no second statement within the cooldown */
        match_issue(s, e, &f, cents, route, hits[i], prev);
    }
    entry_done(e);
    return false;
}

/*--- stream: reading -----------------------------------------------------------------------*/

static void on_group(redisReply *reply, const char *error, void *arg)
{
    fs_alert_shard_t *s = arg;
    s->read_busy = false;
    if (s->stopped) {
        shard_release(s);
        return;
    }
    shard_release(s);
    bool exists = reply && reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "BUSYGROUP");
    if (!reply || (reply->type == REDIS_REPLY_ERROR && !exists)) {
        fs_warn("alert shard %d: cannot create the consumer group %s: %s", s->shard, s->group,
                reply ? reply->str : error);
        retry_later(s);
        return;
    }
    s->group_ready = true;
    fs_info("alert shard %d of %d reading %s as %s in group %s", s->shard, s->shards, s->stream_key, s->consumer,
            s->group);
    s->want_pending = true;
    snprintf(s->pending_from, sizeof s->pending_from, "0");
    read_next(s);
}

/* Processes the entries of one XREADGROUP answer; acknowledges the ones that need no
 * database in one XACK. */
static size_t entries_process(fs_alert_shard_t *s, const redisReply *entries)
{
    size_t n = entries->elements;
    const char **ids = fs_malloc((n ? n : 1) * sizeof *ids);
    size_t *lens = fs_malloc((n ? n : 1) * sizeof *lens), k = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const redisReply *id = e->element[0];
        if (s->want_pending)
            snprintf(s->pending_from, sizeof s->pending_from, "%.*s", (int)id->len, id->str);
        if (entry_process(s, id->str, (size_t)id->len, e->element[1])) {
            ids[k] = id->str;
            lens[k++] = (size_t)id->len;
        }
    }
    ack_ids(s, ids, lens, k);
    free(ids);
    free(lens);
    return n;
}

static void on_read(redisReply *reply, const char *error, void *arg)
{
    fs_alert_shard_t *s = arg;
    s->read_busy = false;
    if (s->stopped) {
        shard_release(s);
        return;
    }
    shard_release(s);
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        const char *why = reply ? reply->str : error;
        if (why && strstr(why, "NOGROUP"))
            s->group_ready = false; /* the stream or group was deleted: create it again */
        else
            fs_warn("alert shard %d: stream read failed: %s", s->shard, why ? why : "unknown");
        s->want_pending = true; /* entries delivered before the failure are in our pending list */
        snprintf(s->pending_from, sizeof s->pending_from, "0");
        retry_later(s);
        return;
    }
    size_t n = 0;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        const redisReply *stream = reply->element[0];
        if (stream->type == REDIS_REPLY_ARRAY && stream->elements == 2 && stream->element[1]->type == REDIS_REPLY_ARRAY)
            n = entries_process(s, stream->element[1]);
    }
    if (s->want_pending && n == 0)
        s->want_pending = false; /* our pending list is done: new entries from now on */
    read_next(s);
}

static void read_next(fs_alert_shard_t *s)
{
    if (s->stopped || s->read_busy || !s->loaded || evtimer_pending(s->retry_ev, NULL))
        return;
    if (s->st.inflight >= MAX_INFLIGHT)
        return; /* on_match resumes */
    s->read_busy = true;
    s->refs++;
    if (!s->group_ready) {
        fs_redis_command(s->stream, on_group, s, "XGROUP CREATE %s %s $ MKSTREAM", s->stream_key, s->group);
        return;
    }
    char count[16], block[16];
    snprintf(count, sizeof count, "%d", READ_COUNT);
    snprintf(block, sizeof block, "%d", s->block_ms);
    if (s->want_pending) {
        const char *argv[] = {"XREADGROUP", "GROUP", s->group, s->consumer, "COUNT", count, "STREAMS",
                              s->stream_key, s->pending_from};
        size_t lens[9];
        for (int i = 0; i < 9; i++)
            lens[i] = strlen(argv[i]);
        fs_redis_commandargv(s->stream, on_read, s, 9, argv, lens);
        return;
    }
    const char *argv[] = {"XREADGROUP", "GROUP", s->group, s->consumer, "COUNT", count, "BLOCK", block,
                          "STREAMS", s->stream_key, ">"};
    size_t lens[11];
    for (int i = 0; i < 11; i++)
        lens[i] = strlen(argv[i]);
    fs_redis_commandargv(s->stream, on_read, s, 11, argv, lens);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    read_next(arg);
}

/*--- start / stop --------------------------------------------------------------------------*/

static void install_metrics(fs_alert_shard_t *s, fs_metrics_t *m)
{
    if (!m)
        return;
    s->m_alerts = fs_metrics_simple(m, FS_METRIC_GAUGE, "flightshark_alerts_active",
                                    "Active alerts in this worker's shard");
    s->m_entries = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_alert_stream_entries_total",
                                     "Price stream entries read by this worker's alert shard");
    s->m_matches = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_alert_matches_total",
                                     "In-memory alert matches sent to the database");
    s->m_notified = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_alert_notifications_total",
                                      "Notifications written by alert matches");
}

static int cfg_int(int v, int from_cfg, int dflt)
{
    return v ? v : fs_cfg ? from_cfg : dflt;
}

fs_alert_shard_t *fs_alert_start(fs_actor_system_t *sys, const fs_alert_opts_t *opts)
{
    fs_alert_shard_t *s = FS_NEW(fs_alert_shard_t);
    s->refs = 1;
    s->sys = sys;
    s->base = fs_actor_system_base(sys);
    s->shard = opts->shard;
    s->shards = opts->shards > 0 ? opts->shards : 1;
    s->pg = opts->pg;
    int cool = opts->cooldown_s ? opts->cooldown_s : (fs_cfg ? fs_cfg->alert_cooldown_hours : 6) * 3600;
    s->cooldown_s = cool > 0 ? (uint32_t)cool : 0;
    s->block_ms = opts->block_ms > 0 ? opts->block_ms : DEFAULT_BLOCK_MS;
    s->stream_key = fs_strdup(opts->stream_key ? opts->stream_key : FS_PRICE_STREAM_KEY);
    snprintf(s->group, sizeof s->group, "alerts-shard-%d-of-%d", s->shard, s->shards);
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    if (opts->consumer)
        snprintf(s->consumer, sizeof s->consumer, "%s", opts->consumer);
    else
        snprintf(s->consumer, sizeof s->consumer, "%s-%d", host, s->shard);
    s->idx = fs_alert_index_new();
    s->actor = fs_actor_spawn(sys, &(fs_actor_spec_t){
        .name = FS_ALERT_ACTOR, .behaviour = actor_behaviour, .init = actor_init, .arg = s});
    if (!s->actor) {
        fs_alert_index_free(s->idx);
        shard_release(s);
        return NULL;
    }
    install_metrics(s, opts->metrics);
    const char *url = opts->redis_url ? opts->redis_url : fs_cfg ? fs_cfg->redis_url : NULL;
    int timeout = cfg_int(opts->redis_timeout_ms, fs_cfg ? fs_cfg->redis_timeout_ms : 5000, 5000);
    s->sub = fs_redis_subscriber_new(s->base, &(fs_redis_opts_t){.url = url, .timeout_ms = timeout},
                                     FS_ALERT_CHANNEL, on_channel, s);
    /* the client's command timeout covers the blocking read, which holds the reply up to block_ms */
    s->stream = fs_redis_new(s->base, &(fs_redis_opts_t){.url = url, .timeout_ms = timeout + s->block_ms});
    s->start_ev = evtimer_new(s->base, on_start_timer, s);
    s->retry_ev = evtimer_new(s->base, on_retry, s);
    struct timeval tv = ms_tv(SUBSCRIBE_WAIT_MS);
    evtimer_add(s->start_ev, &tv);
    return s;
}

void fs_alert_stop(fs_alert_shard_t *s)
{
    if (!s)
        return;
    s->stopped = true;
    fs_actor_stop(s->actor);
    event_free(s->start_ev);
    event_free(s->retry_ev);
    fs_redis_free(s->sub);
    fs_redis_free(s->stream);
    fs_alert_index_free(s->idx);
    fs_alert_index_free(s->next_idx);
    s->idx = s->next_idx = NULL;
    free(s->replay);
    s->replay = NULL;
    shard_release(s);
}

fs_actor_t *fs_alert_actor(const fs_alert_shard_t *s)
{
    return s->actor;
}

int fs_alert_owner(const char *origin, const char *destination, int shards)
{
    uint32_t route = fs_alert_route_key(origin, destination);
    return route ? fs_alert_shard_of(route, shards > 0 ? shards : 1) : -1;
}

void fs_alert_get_stats(const fs_alert_shard_t *s, fs_alert_stats_t *out)
{
    *out = s->st;
    out->alerts = fs_alert_index_count(s->idx);
    out->routes = fs_alert_index_routes(s->idx);
    out->index_bytes = fs_alert_index_bytes(s->idx);
    out->loaded = s->loaded;
    out->reading = s->group_ready;
}
