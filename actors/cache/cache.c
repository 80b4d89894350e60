/* The cache actor (see cache.h for the contract, docs/FLIGHTS.md for the role it plays).
 *
 * Two lifetimes. The instance (cache_inst_t) lives from fs_cache_spawn until the actor stops
 * for good: options, counters, metric series, and its entry in a process-wide registry that
 * the public functions use to find it from the caller's actor system. The state
 * (cache_state_t) is one incarnation: L1, the flights and the zstd contexts; a restart
 * builds a fresh one.
 *
 * A flight is one key being looked up without a value in L1. Its waiters are the asks not
 * answered yet, oldest first. States:
 *   FETCH   one Redis round trip in progress: a script that returns the L2 value or takes
 *           the cross-worker lock (SET NX PX) when there is none;
 *   REMOTE  the lock is held by another worker: poll again after a backoff;
 *   LEAD    one asker was answered FS_CACHE_LEAD; the others wait for its store.
 * The flight ends when a value arrives (store, L2 read) or when no live waiter is left.
 * A leader that never stores nor abandons (its answer lost to a timeout, or a bug) is
 * abandoned after lock_ms, like the Redis lock, so a key never stays stuck.
 *
 * Redis replies and timers run outside the handler, on the same loop thread, and touch the
 * state directly. Each Redis call carries an op record; the end of an incarnation detaches
 * the records (their callbacks then only free them), because hiredis may call back later,
 * even from fs_redis_free.
 */
#include "actors/cache/cache.h"
#include "actors/cache/cache_int.h"

#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "schemas/cache.pb-c.h"
#include "storage/redis.h"

#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_ENTRIES 10000
#define DEFAULT_MAX_BYTES ((size_t)64 << 20)
#define DEFAULT_LOCK_MS 10000
#define DEFAULT_ZSTD_LEVEL 3
#define DEFAULT_PREFIX "fs:cache:"
#define DEFAULT_TTL_S 300
#define POLL_FIRST_MS 5   /* first look at L2 while another worker leads ... */
#define POLL_MAX_MS 100   /* ... doubling up to this */
#define ASK_MARGIN_MS 1000
/* How far from its deadline an ask must be to get a shared (uncopied) hit or the lead: the
 * runtime may drop a reply a few ms before deadline_ms by our clock. */
#define DEADLINE_MARGIN_MS 100
#define FLIGHT_BUCKETS 1024

/* Returns the L2 value, or takes the lock and returns 1, or returns 0 when another holds it.
 * One script, so a value stored between the two steps cannot be missed. */
static const char acquire_lua[] = "local v = redis.call('GET', KEYS[1]) "
                                  "if v then return v end "
                                  "if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end "
                                  "return 0";
/* Deletes the lock only while it still holds our token (it may have expired and been taken). */
static const char release_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                  "return redis.call('DEL', KEYS[1]) end return 0";
/* Gives the lock a fresh lifetime for the next local leader, only while it is still ours. */
static const char refresh_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                  "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";

typedef struct cache_state cache_state_t;

typedef struct cache_inst {
    struct cache_inst *next; /* registry */
    fs_actor_system_t *sys;
    fs_actor_t *actor;
    fs_redis_t *redis;
    struct event_base *base;
    size_t max_entries, max_bytes;
    int lock_ms, wait_ms, zstd_level, ask_timeout_ms;
    char *prefix;
    size_t prefix_len;
    cache_state_t *st; /* the current incarnation */
    fs_cache_stats_t stats;
    fs_metric_series_t *m_l1_hits, *m_l2_hits, *m_misses, *m_leads, *m_joins, *m_stores, *m_l2_errors;
    fs_metric_series_t *m_entries, *m_bytes;
    uint64_t token_seed, token_seq;
} cache_inst_t;

typedef struct waiter {
    fs_reply_addr_t to;
    int64_t deadline_ms;
} waiter_t;

typedef enum { FL_FETCH, FL_REMOTE, FL_LEAD } fl_state_t;

typedef struct cache_op cache_op_t;

typedef struct flight {
    struct flight *hnext;
    cache_state_t *st;
    uint64_t hash;
    fl_state_t state;
    waiter_t *w;
    size_t head, n, cap; /* waiting asks are w[head .. n) */
    struct event *timer; /* LEAD: lease; REMOTE: next poll */
    cache_op_t *op;      /* the FETCH round trip in progress */
    int64_t started_ms;
    int poll_ms;
    bool has_lock;
    bool waited; /* the lock was found held: a value now comes from a leader */
    char token[48];
    size_t key_len;
    char key[];
} flight_t;

typedef enum { OP_ACQUIRE, OP_LOCK, OP_WRITE } op_kind_t;

struct cache_op {
    cache_op_t *prev, *next;
    cache_state_t *st; /* NULL once the incarnation ended */
    flight_t *fl;      /* NULL when the flight ended first */
    op_kind_t kind;
};

struct cache_state {
    cache_inst_t *inst;
    cache_l1_t l1;
    flight_t *flights[FLIGHT_BUCKETS];
    cache_op_t ops; /* sentinel of the ops in progress */
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
};

/*--- registry ------------------------------------------------------------------------------*/

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_inst_t *reg_head;
/* The last instance found by this thread: the public functions run on one loop thread and
 * nearly always for the same system, so the hot path skips the lock. Cleared on unregister. */
static _Thread_local cache_inst_t *reg_last;

static void reg_add(cache_inst_t *inst)
{
    pthread_mutex_lock(&reg_lock);
    inst->next = reg_head;
    reg_head = inst;
    pthread_mutex_unlock(&reg_lock);
}

static void reg_remove(cache_inst_t *inst)
{
    pthread_mutex_lock(&reg_lock);
    for (cache_inst_t **p = &reg_head; *p; p = &(*p)->next) {
        if (*p == inst) {
            *p = inst->next;
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    if (reg_last == inst)
        reg_last = NULL;
}

static cache_inst_t *reg_find(const fs_actor_system_t *sys)
{
    cache_inst_t *inst = reg_last;
    if (inst && inst->sys == sys)
        return inst;
    pthread_mutex_lock(&reg_lock);
    for (inst = reg_head; inst && inst->sys != sys; inst = inst->next)
        ;
    pthread_mutex_unlock(&reg_lock);
    if (inst)
        reg_last = inst;
    return inst;
}

/*--- counters --------------------------------------------------------------------------------*/

typedef enum { ANS_L1, ANS_L2, ANS_JOIN, ANS_LEAD } answer_kind_t;

static void count_answer(cache_inst_t *inst, answer_kind_t kind)
{
    switch (kind) {
    case ANS_L1:
        inst->stats.l1_hits++;
        fs_metric_inc(inst->m_l1_hits, 1);
        break;
    case ANS_L2:
        inst->stats.l2_hits++;
        fs_metric_inc(inst->m_l2_hits, 1);
        break;
    case ANS_JOIN:
        inst->stats.joins++;
        inst->stats.misses++;
        fs_metric_inc(inst->m_joins, 1);
        fs_metric_inc(inst->m_misses, 1);
        break;
    case ANS_LEAD:
        inst->stats.leads++;
        inst->stats.misses++;
        fs_metric_inc(inst->m_leads, 1);
        fs_metric_inc(inst->m_misses, 1);
        break;
    }
}

static void count_l2_error(cache_inst_t *inst)
{
    inst->stats.l2_errors++;
    fs_metric_inc(inst->m_l2_errors, 1);
}

static void l1_gauges(cache_state_t *st)
{
    fs_metric_set(st->inst->m_entries, (double)st->l1.count);
    fs_metric_set(st->inst->m_bytes, (double)st->l1.bytes);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*--- answers -----------------------------------------------------------------------------*/

/* Answers a lookup. A hit travels as a reference to the blob (no copy), except close to the
 * ask's deadline: the runtime frees a reply that arrives after the asker timed out (its timer
 * may fire a few ms before deadline_ms by our clock), which would leak the reference, so the
 * bytes are copied into the reply then. */
static void answer(cache_inst_t *inst, fs_reply_addr_t to, int64_t deadline_ms, answer_kind_t kind,
                   cache_blob_t *blob, int64_t age_ms)
{
    Fs__Cache__LookupReply *r = fs_pb_new(&fs__cache__lookup_reply__descriptor);
    r->has_outcome = true;
    if (kind == ANS_LEAD) {
        r->outcome = FS_CACHE_LEAD;
    } else {
        r->outcome = FS_CACHE_HIT;
        r->has_age_ms = true;
        r->age_ms = age_ms > 0 ? age_ms : 0;
        if (!deadline_ms || deadline_ms - fs_now_ms() > DEADLINE_MARGIN_MS) {
            r->has_shared = true;
            r->shared = (uint64_t)(uintptr_t)cache_blob_ref(blob);
        } else {
            r->has_value = true;
            r->value.data = fs_malloc(blob->len ? blob->len : 1);
            memcpy(r->value.data, blob->data, blob->len);
            r->value.len = blob->len;
        }
    }
    count_answer(inst, kind);
    fs_actor_reply_to(inst->sys, to, FS_OK, FS_CACHE_MSG_LOOKUP_REPLY, &r->base);
}

static void answer_error(cache_inst_t *inst, fs_reply_addr_t to)
{
    Fs__Cache__LookupReply *r = fs_pb_new(&fs__cache__lookup_reply__descriptor);
    r->has_outcome = true;
    r->outcome = FS_CACHE_ERROR;
    fs_actor_reply_to(inst->sys, to, FS_OK, FS_CACHE_MSG_LOOKUP_REPLY, &r->base);
}

/*--- Redis calls -------------------------------------------------------------------------*/

static bool redis_usable(const cache_state_t *st)
{
    return st->inst->redis && fs_redis_connected(st->inst->redis);
}

/* prefix + [infix] + key, in a new buffer. */
static char *redis_key(const cache_inst_t *inst, const char *infix, const char *key, size_t klen, size_t *len)
{
    size_t il = strlen(infix);
    char *k = fs_malloc(inst->prefix_len + il + klen + 1);
    memcpy(k, inst->prefix, inst->prefix_len);
    memcpy(k + inst->prefix_len, infix, il);
    memcpy(k + inst->prefix_len + il, key, klen);
    *len = inst->prefix_len + il + klen;
    k[*len] = '\0';
    return k;
}

static void on_redis_reply(redisReply *reply, const char *error, void *arg);

static cache_op_t *op_new(cache_state_t *st, op_kind_t kind, flight_t *fl)
{
    cache_op_t *op = FS_NEW(cache_op_t);
    op->st = st;
    op->fl = fl;
    op->kind = kind;
    op->next = st->ops.next;
    op->prev = &st->ops;
    st->ops.next->prev = op;
    st->ops.next = op;
    return op;
}

static void op_unlink(cache_op_t *op)
{
    if (!op->st)
        return;
    op->prev->next = op->next;
    op->next->prev = op->prev;
    op->st = NULL;
}

static void redis_call(cache_state_t *st, op_kind_t kind, flight_t *fl, int argc, const char **argv,
                       const size_t *argvlen)
{
    cache_op_t *op = op_new(st, kind, fl);
    if (fl)
        fl->op = op;
    fs_redis_commandargv(st->inst->redis, on_redis_reply, op, argc, argv, argvlen);
}

/* Fire-and-forget writes: only their failures are counted. */
static void redis_write(cache_state_t *st, int argc, const char **argv, const size_t *argvlen)
{
    redis_call(st, OP_WRITE, NULL, argc, argv, argvlen);
}

static void l2_set(cache_state_t *st, const char *key, size_t klen, const char *value, size_t len,
                   int64_t stored_at, int ttl_ms)
{
    cache_inst_t *inst = st->inst;
    char *blob;
    size_t blob_len, rk_len;
    if (cache_l2_encode(st->cctx, inst->zstd_level, value, len, stored_at, ttl_ms, &blob, &blob_len) != 0) {
        count_l2_error(inst);
        return;
    }
    char *rk = redis_key(inst, "", key, klen, &rk_len);
    char px[24];
    int pxl = snprintf(px, sizeof px, "%d", ttl_ms);
    const char *argv[] = {"SET", rk, blob, "PX", px};
    size_t lens[] = {3, rk_len, blob_len, 2, (size_t)pxl};
    redis_write(st, 5, argv, lens);
    free(rk);
    free(blob);
}

static void lock_script(cache_state_t *st, const char *script, flight_t *fl, const char *extra)
{
    size_t lk_len;
    char *lk = redis_key(st->inst, "lock:", fl->key, fl->key_len, &lk_len);
    const char *argv[] = {"EVAL", script, "1", lk, fl->token, extra};
    size_t lens[] = {4, strlen(script), 1, lk_len, strlen(fl->token), extra ? strlen(extra) : 0};
    redis_write(st, extra ? 6 : 5, argv, lens);
    free(lk);
}

static void lock_release(cache_state_t *st, flight_t *fl)
{
    if (!fl->has_lock)
        return;
    fl->has_lock = false;
    if (redis_usable(st))
        lock_script(st, release_lua, fl, NULL);
}

static void lock_refresh(cache_state_t *st, flight_t *fl)
{
    char ms[16];
    snprintf(ms, sizeof ms, "%d", st->inst->lock_ms);
    if (fl->has_lock && redis_usable(st))
        lock_script(st, refresh_lua, fl, ms);
}

/*--- flights -------------------------------------------------------------------------------*/

static flight_t **flight_slot(cache_state_t *st, uint64_t hash)
{
    return &st->flights[hash & (FLIGHT_BUCKETS - 1)];
}

static flight_t *flight_find(cache_state_t *st, const char *key, size_t klen, uint64_t hash)
{
    for (flight_t *fl = *flight_slot(st, hash); fl; fl = fl->hnext)
        if (fl->hash == hash && fl->key_len == klen && memcmp(fl->key, key, klen) == 0)
            return fl;
    return NULL;
}

static void flight_on_timer(evutil_socket_t fd, short what, void *arg);

static flight_t *flight_new(cache_state_t *st, const char *key, size_t klen, uint64_t hash)
{
    flight_t *fl = fs_calloc(1, sizeof *fl + klen + 1);
    fl->st = st;
    fl->hash = hash;
    fl->key_len = klen;
    memcpy(fl->key, key, klen);
    fl->started_ms = fs_now_ms();
    fl->poll_ms = POLL_FIRST_MS;
    fl->timer = evtimer_new(st->inst->base, flight_on_timer, fl);
    flight_t **p = flight_slot(st, hash);
    fl->hnext = *p;
    *p = fl;
    return fl;
}

/* Unhooks and frees the flight; its unanswered waiters (if any) are the caller's business. */
static void flight_free(flight_t *fl)
{
    flight_t **p = flight_slot(fl->st, fl->hash);
    while (*p != fl)
        p = &(*p)->hnext;
    *p = fl->hnext;
    if (fl->op)
        fl->op->fl = NULL;
    event_free(fl->timer);
    free(fl->w);
    free(fl);
}

static void flight_add_waiter(flight_t *fl, fs_reply_addr_t to, int64_t deadline_ms)
{
    if (fl->n == fl->cap) {
        if (fl->head > 0) { /* reuse the room of answered waiters first */
            memmove(fl->w, fl->w + fl->head, (fl->n - fl->head) * sizeof *fl->w);
            fl->n -= fl->head;
            fl->head = 0;
        }
        if (fl->n == fl->cap) {
            fl->cap = fl->cap ? fl->cap * 2 : 4;
            fl->w = fs_realloc(fl->w, fl->cap * sizeof *fl->w);
        }
    }
    fl->w[fl->n++] = (waiter_t){to, deadline_ms};
}

/* The next waiter whose ask can still be answered at least `margin_ms` before its deadline
 * (the runtime drops replies to asks past their deadline), or false. Waiters skipped here get
 * FS_CACHE_ERROR from their own timeout. */
static bool flight_pop_live(flight_t *fl, int64_t now, int margin_ms, waiter_t *out)
{
    while (fl->head < fl->n) {
        waiter_t w = fl->w[fl->head++];
        if (!w.deadline_ms || now + margin_ms <= w.deadline_ms) {
            *out = w;
            return true;
        }
    }
    return false;
}

/* Answers every live waiter with the value. */
static void flight_answer_all(flight_t *fl, answer_kind_t kind, cache_blob_t *blob, int64_t age_ms)
{
    waiter_t w;
    int64_t now = fs_now_ms();
    while (flight_pop_live(fl, now, 0, &w))
        answer(fl->st->inst, w.to, w.deadline_ms, kind, blob, age_ms);
}

/* Ends a flight that has its value: our lock goes (after the SET sent before it). */
static void flight_end(flight_t *fl)
{
    lock_release(fl->st, fl);
    flight_free(fl);
}

static void timer_arm(flight_t *fl, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(fl->timer, &tv);
}

/* The next live waiter leads (keeping the lock if we hold one); without one the flight ends.
 * A LEAD lost to a timeout would leave the others waiting for the lease, so the new leader
 * must be comfortably inside its deadline. */
static void flight_promote(flight_t *fl)
{
    waiter_t w;
    evtimer_del(fl->timer);
    if (!flight_pop_live(fl, fs_now_ms(), DEADLINE_MARGIN_MS, &w)) {
        flight_end(fl);
        return;
    }
    fl->state = FL_LEAD;
    timer_arm(fl, fl->st->inst->lock_ms);
    answer(fl->st->inst, w.to, w.deadline_ms, ANS_LEAD, NULL, 0);
}

static void flight_abandon(flight_t *fl)
{
    if (fl->head < fl->n)
        lock_refresh(fl->st, fl);
    flight_promote(fl);
}

static void token_new(cache_inst_t *inst, flight_t *fl)
{
    snprintf(fl->token, sizeof fl->token, "%016" PRIx64 "-%" PRIu64, inst->token_seed, ++inst->token_seq);
}

/* One round trip: the L2 value, or our lock, or news that another worker holds it. */
static void flight_fetch(flight_t *fl)
{
    cache_state_t *st = fl->st;
    size_t vk_len, lk_len;
    char *vk = redis_key(st->inst, "", fl->key, fl->key_len, &vk_len);
    char *lk = redis_key(st->inst, "lock:", fl->key, fl->key_len, &lk_len);
    char ms[16];
    int msl = snprintf(ms, sizeof ms, "%d", st->inst->lock_ms);
    token_new(st->inst, fl);
    fl->state = FL_FETCH;
    const char *argv[] = {"EVAL", acquire_lua, "2", vk, lk, fl->token, ms};
    size_t lens[] = {4, sizeof acquire_lua - 1, 1, vk_len, lk_len, strlen(fl->token), (size_t)msl};
    redis_call(st, OP_ACQUIRE, fl, 7, argv, lens);
    free(vk);
    free(lk);
}

/* After a corrupt L2 value: only the lock (the value will be overwritten by the leader). */
static void flight_lock(flight_t *fl)
{
    cache_state_t *st = fl->st;
    size_t lk_len;
    char *lk = redis_key(st->inst, "lock:", fl->key, fl->key_len, &lk_len);
    char ms[16];
    int msl = snprintf(ms, sizeof ms, "%d", st->inst->lock_ms);
    token_new(st->inst, fl);
    fl->state = FL_FETCH;
    const char *argv[] = {"SET", lk, fl->token, "NX", "PX", ms};
    size_t lens[] = {3, lk_len, strlen(fl->token), 2, 2, (size_t)msl};
    redis_call(st, OP_LOCK, fl, 6, argv, lens);
    free(lk);
}

/* Another worker holds the lock: look again after a backoff, or lead once wait_ms is over. */
static void flight_wait_remote(flight_t *fl)
{
    int left = fl->st->inst->wait_ms - (int)(fs_now_ms() - fl->started_ms);
    fl->waited = true;
    if (left <= 0) {
        flight_promote(fl);
        return;
    }
    fl->state = FL_REMOTE;
    timer_arm(fl, fl->poll_ms < left ? fl->poll_ms : left);
    fl->poll_ms = fl->poll_ms * 2 < POLL_MAX_MS ? fl->poll_ms * 2 : POLL_MAX_MS;
}

static void flight_on_timer(evutil_socket_t fd, short what, void *arg)
{
    flight_t *fl = arg;
    if (fl->state == FL_LEAD) {
        fs_warn("cache: the leader of a key neither stored nor abandoned it within %d ms; next waiter leads",
                fl->st->inst->lock_ms);
        flight_abandon(fl);
    } else if (fl->state == FL_REMOTE) {
        if (redis_usable(fl->st))
            flight_fetch(fl);
        else
            flight_promote(fl);
    }
}

/* Puts a decoded L2 value into L1 (for what is left of its TTL) and serves the waiters. */
static void flight_on_value(flight_t *fl, char *value, size_t len, int64_t stored_at, int ttl_ms)
{
    cache_state_t *st = fl->st;
    int64_t now = fs_now_ms(), wall = wall_ms();
    int64_t age = wall - stored_at > 0 ? wall - stored_at : 0;
    int64_t left = stored_at + ttl_ms - wall;
    cache_blob_t *blob = cache_blob_new(value, len);
    flight_answer_all(fl, fl->waited ? ANS_JOIN : ANS_L2, blob, age);
    if (left > 0) /* L1 keeps it for what is left of its L2 lifetime */
        cache_l1_put(&st->l1, fl->key, fl->key_len, fl->hash, blob, now - age, now + left, now);
    else
        cache_blob_unref(blob);
    flight_end(fl);
    l1_gauges(st);
}

static void flight_on_acquire(flight_t *fl, redisReply *reply)
{
    cache_state_t *st = fl->st;
    if (reply->type == REDIS_REPLY_STRING) {
        char *value;
        size_t len;
        int64_t stored_at;
        int ttl_ms;
        if (cache_l2_decode(st->dctx, reply->str, (size_t)reply->len, &value, &len, &stored_at, &ttl_ms) == 0) {
            flight_on_value(fl, value, len, stored_at, ttl_ms);
            return;
        }
        count_l2_error(st->inst);
        fs_warn("cache: undecodable L2 value for a key (%zu bytes): treated as a miss", (size_t)reply->len);
        if (redis_usable(st))
            flight_lock(fl);
        else
            flight_promote(fl);
    } else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        fl->has_lock = true;
        flight_promote(fl);
    } else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        flight_wait_remote(fl);
    } else {
        count_l2_error(st->inst);
        flight_promote(fl);
    }
}

static void flight_on_lock(flight_t *fl, redisReply *reply)
{
    if (reply->type == REDIS_REPLY_STATUS) {
        fl->has_lock = true;
        flight_promote(fl);
    } else if (reply->type == REDIS_REPLY_NIL) {
        flight_wait_remote(fl);
    } else {
        count_l2_error(fl->st->inst);
        flight_promote(fl);
    }
}

static void on_redis_reply(redisReply *reply, const char *error, void *arg)
{
    cache_op_t *op = arg;
    cache_state_t *st = op->st;
    flight_t *fl = op->fl;
    op_kind_t kind = op->kind;
    op_unlink(op);
    free(op);
    if (!st) /* the incarnation that asked is gone (and so are its flights) */
        return;
    bool failed = !reply || reply->type == REDIS_REPLY_ERROR;
    if (failed && (kind == OP_WRITE || fl))
        count_l2_error(st->inst);
    if (failed && error)
        fs_debug("cache: redis: %s", error);
    if (!fl)
        return;
    fl->op = NULL;
    if (failed)
        flight_promote(fl);
    else if (kind == OP_ACQUIRE)
        flight_on_acquire(fl, reply);
    else
        flight_on_lock(fl, reply);
}

/*--- handlers ------------------------------------------------------------------------------*/

static int on_lookup(cache_state_t *st, fs_msg_t *msg)
{
    Fs__Cache__Lookup *b = fs_msg_body(msg, &fs__cache__lookup__descriptor);
    if (!msg->reply_to.corr_id)
        return FS_OK; /* nobody to answer */
    if (!b || !b->key) {
        answer_error(st->inst, msg->reply_to);
        return FS_OK;
    }
    size_t klen = strlen(b->key);
    uint64_t hash = cache_hash(b->key, klen);
    int64_t now = fs_now_ms();
    cache_entry_t *e = cache_l1_get(&st->l1, b->key, klen, hash, now);
    if (e) {
        answer(st->inst, msg->reply_to, msg->deadline_ms, ANS_L1, e->blob, now - e->stored_ms);
        return FS_OK;
    }
    flight_t *fl = flight_find(st, b->key, klen, hash);
    if (fl) {
        flight_add_waiter(fl, msg->reply_to, msg->deadline_ms);
        return FS_OK;
    }
    fl = flight_new(st, b->key, klen, hash);
    flight_add_waiter(fl, msg->reply_to, msg->deadline_ms);
    if (redis_usable(st))
        flight_fetch(fl);
    else
        flight_promote(fl);
    return FS_OK;
}

static int ttl_ms_of(int ttl_s)
{
    if (ttl_s <= 0)
        ttl_s = fs_cfg && fs_cfg->cache_ttl_flights > 0 ? fs_cfg->cache_ttl_flights : DEFAULT_TTL_S;
    return ttl_s > INT32_MAX / 1000 ? INT32_MAX : ttl_s * 1000;
}

static int on_store(cache_state_t *st, fs_msg_t *msg)
{
    Fs__Cache__Store *b = fs_msg_body(msg, &fs__cache__store__descriptor);
    if (!b || !b->key)
        return FS_OK;
    size_t klen = strlen(b->key), len = b->value.len;
    uint64_t hash = cache_hash(b->key, klen);
    int ttl_ms = ttl_ms_of(b->has_ttl_s ? b->ttl_s : 0);
    int64_t now = fs_now_ms();
    /* take the body's buffer: L1 and the waiters share it without a copy */
    cache_blob_t *blob = cache_blob_new((char *)b->value.data, len);
    b->value.data = NULL;
    b->value.len = 0;
    st->inst->stats.stores++;
    fs_metric_inc(st->inst->m_stores, 1);
    if (redis_usable(st))
        l2_set(st, b->key, klen, blob->data, len, wall_ms(), ttl_ms); /* before the lock is released */
    flight_t *fl = flight_find(st, b->key, klen, hash);
    if (fl) {
        flight_answer_all(fl, ANS_JOIN, blob, 0);
        flight_end(fl);
    }
    cache_l1_put(&st->l1, b->key, klen, hash, blob, now, now + ttl_ms, now);
    l1_gauges(st);
    return FS_OK;
}

static int on_abandon(cache_state_t *st, fs_msg_t *msg)
{
    Fs__Cache__Key *b = fs_msg_body(msg, &fs__cache__key__descriptor);
    if (!b || !b->key)
        return FS_OK;
    size_t klen = strlen(b->key);
    flight_t *fl = flight_find(st, b->key, klen, cache_hash(b->key, klen));
    if (fl && fl->state == FL_LEAD)
        flight_abandon(fl);
    return FS_OK;
}

static int on_forget(cache_state_t *st, fs_msg_t *msg)
{
    Fs__Cache__Key *b = fs_msg_body(msg, &fs__cache__key__descriptor);
    if (!b || !b->key)
        return FS_OK;
    size_t klen = strlen(b->key), rk_len;
    cache_l1_remove(&st->l1, b->key, klen, cache_hash(b->key, klen));
    l1_gauges(st);
    if (!redis_usable(st))
        return FS_OK;
    char *rk = redis_key(st->inst, "", b->key, klen, &rk_len);
    const char *argv[] = {"DEL", rk};
    size_t lens[] = {3, rk_len};
    redis_write(st, 2, argv, lens);
    free(rk);
    return FS_OK;
}

/* Bad input is answered or ignored, never a failure: a restart would empty L1. */
static int cache_behaviour(fs_actor_t *self, void *state, fs_msg_t *msg)
{
    cache_state_t *st = state;
    switch (msg->type) {
    case FS_CACHE_MSG_LOOKUP:
        return on_lookup(st, msg);
    case FS_CACHE_MSG_STORE:
        return on_store(st, msg);
    case FS_CACHE_MSG_ABANDON:
        return on_abandon(st, msg);
    case FS_CACHE_MSG_FORGET:
        return on_forget(st, msg);
    default:
        if (msg->reply_to.corr_id)
            fs_actor_reply_to(st->inst->sys, msg->reply_to, FS_EINVAL, 0, NULL);
        return FS_OK;
    }
}

/*--- lifecycle -----------------------------------------------------------------------------*/

static void *cache_init(fs_actor_t *self, void *arg)
{
    cache_inst_t *inst = arg;
    cache_state_t *st = FS_NEW(cache_state_t);
    st->inst = inst;
    cache_l1_init(&st->l1, inst->max_entries, inst->max_bytes);
    st->ops.next = st->ops.prev = &st->ops;
    st->cctx = ZSTD_createCCtx();
    st->dctx = ZSTD_createDCtx();
    if (!st->cctx || !st->dctx)
        abort(); /* out of memory, as fs_malloc would */
    inst->st = st;
    l1_gauges(st);
    return st;
}

/* Waiters of a dying incarnation learn at once (FS_CACHE_ERROR) instead of at their deadline.
 * Locks we hold are left to expire: the Redis client may already be gone at this point. */
static void flights_end(cache_state_t *st)
{
    for (size_t i = 0; i < FLIGHT_BUCKETS; i++) {
        while (st->flights[i]) {
            flight_t *fl = st->flights[i];
            for (size_t k = fl->head; k < fl->n; k++)
                fs_actor_reply_to(st->inst->sys, fl->w[k].to, FS_ESTOPPED, 0, NULL);
            fl->head = fl->n;
            flight_free(fl);
        }
    }
}

static void inst_free(cache_inst_t *inst)
{
    reg_remove(inst);
    free(inst->prefix);
    free(inst);
}

static void cache_stop(fs_actor_t *self, void *state)
{
    cache_state_t *st = state;
    cache_inst_t *inst = st->inst;
    while (st->ops.next != &st->ops) {
        cache_op_t *op = st->ops.next;
        op->fl = NULL;
        op_unlink(op); /* freed by its callback */
    }
    flights_end(st);
    cache_l1_clear(&st->l1);
    ZSTD_freeCCtx(st->cctx);
    ZSTD_freeDCtx(st->dctx);
    inst->st = NULL;
    free(st);
    fs_actor_stats_t as;
    fs_actor_get_stats(self, &as);
    if (!as.running) /* stopped for good, not restarting */
        inst_free(inst);
}

static void metrics_install(cache_inst_t *inst, fs_metrics_t *m)
{
    if (!m)
        return;
    static const char *const level[] = {"level", NULL};
    fs_metric_family_t *hits = fs_metrics_family(m, FS_METRIC_COUNTER, "flightshark_cache_hits_total",
                                                 "Cache lookups answered with a value, by level", level, NULL, 0);
    inst->m_l1_hits = fs_metrics_series(hits, (const char *const[]){"l1"});
    inst->m_l2_hits = fs_metrics_series(hits, (const char *const[]){"l2"});
    inst->m_misses = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_cache_misses_total",
                                       "Cache lookups that found no value (they led or waited for a leader)");
    inst->m_leads = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_cache_leads_total",
                                      "Cache misses answered LEAD (the caller computes the value)");
    inst->m_joins = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_cache_joins_total",
                                      "Cache misses served by a leader's value (single-flight)");
    inst->m_stores = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_cache_stores_total", "Cache stores");
    inst->m_l2_errors = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_cache_l2_errors_total",
                                          "Redis (L2) failures and undecodable L2 values");
    inst->m_entries = fs_metrics_simple(m, FS_METRIC_GAUGE, "flightshark_cache_entries", "Entries in L1");
    inst->m_bytes = fs_metrics_simple(m, FS_METRIC_GAUGE, "flightshark_cache_bytes", "Value bytes in L1");
}

static void inst_options(cache_inst_t *inst, const fs_cache_opts_t *o)
{
    inst->max_entries = o->max_entries ? o->max_entries
                        : fs_cfg && fs_cfg->cache_l1_max_entries > 0 ? (size_t)fs_cfg->cache_l1_max_entries
                                                                      : DEFAULT_MAX_ENTRIES;
    inst->max_bytes = o->max_bytes ? o->max_bytes
                      : fs_cfg && fs_cfg->cache_l1_max_mb > 0 ? (size_t)fs_cfg->cache_l1_max_mb << 20
                                                             : DEFAULT_MAX_BYTES;
    inst->lock_ms = o->lock_ms > 0 ? o->lock_ms : DEFAULT_LOCK_MS;
    inst->wait_ms = o->wait_ms > 0 ? o->wait_ms : inst->lock_ms;
    inst->zstd_level = o->zstd_level ? o->zstd_level : DEFAULT_ZSTD_LEVEL;
    if (inst->zstd_level > ZSTD_maxCLevel())
        inst->zstd_level = ZSTD_maxCLevel();
    inst->prefix = fs_strdup(o->prefix ? o->prefix : DEFAULT_PREFIX);
    inst->prefix_len = strlen(inst->prefix);
    /* the longest a lookup can wait: for a remote leader, then for a local one */
    inst->ask_timeout_ms = inst->wait_ms + inst->lock_ms + ASK_MARGIN_MS;
}

fs_actor_t *fs_cache_spawn(fs_actor_system_t *sys, fs_redis_t *redis, fs_metrics_t *metrics,
                           const fs_cache_opts_t *opts)
{
    cache_inst_t *inst = FS_NEW(cache_inst_t);
    inst->sys = sys;
    inst->redis = redis;
    inst->base = fs_actor_system_base(sys);
    inst_options(inst, opts ? opts : &(fs_cache_opts_t){0});
    metrics_install(inst, metrics);
    if (getrandom(&inst->token_seed, sizeof inst->token_seed, 0) != sizeof inst->token_seed)
        inst->token_seed = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)inst;
    reg_add(inst);
    inst->actor = fs_actor_spawn(sys, &(fs_actor_spec_t){.name = FS_CACHE_ACTOR,
                                                         .behaviour = cache_behaviour,
                                                         .init = cache_init,
                                                         .stop = cache_stop,
                                                         .arg = inst});
    if (!inst->actor) {
        fs_error("cache: cannot spawn the actor (the name %s is taken)", FS_CACHE_ACTOR);
        inst_free(inst);
        return NULL;
    }
    return inst->actor;
}

/*--- public functions ----------------------------------------------------------------------*/

typedef struct lookup_ctx {
    fs_cache_lookup_fn cb;
    void *arg;
} lookup_ctx_t;

static void lookup_on_reply(int status, fs_msg_t *reply, void *arg)
{
    lookup_ctx_t c = *(lookup_ctx_t *)arg;
    free(arg);
    Fs__Cache__LookupReply *r = status == FS_OK ? fs_msg_body(reply, &fs__cache__lookup_reply__descriptor) : NULL;
    if (r && r->has_shared) {
        cache_blob_t *blob = (cache_blob_t *)(uintptr_t)r->shared;
        c.cb(FS_CACHE_HIT, blob->data, blob->len, (long)r->age_ms, c.arg);
        cache_blob_unref(blob);
    } else if (!r || !r->has_outcome || r->outcome == FS_CACHE_ERROR) {
        c.cb(FS_CACHE_ERROR, NULL, 0, 0, c.arg);
    } else if (r->outcome == FS_CACHE_HIT) {
        c.cb(FS_CACHE_HIT, r->value.data ? (const char *)r->value.data : "", r->value.len, (long)r->age_ms, c.arg);
    } else {
        c.cb(FS_CACHE_LEAD, NULL, 0, 0, c.arg);
    }
}

static void lookup_on_deferred_error(evutil_socket_t fd, short what, void *arg)
{
    lookup_on_reply(FS_ESTOPPED, NULL, arg);
}

void fs_cache_lookup(fs_actor_system_t *sys, const char *key, fs_cache_lookup_fn cb, void *arg)
{
    lookup_ctx_t *c = FS_NEW(lookup_ctx_t);
    c->cb = cb;
    c->arg = arg;
    cache_inst_t *inst = reg_find(sys);
    int rc = FS_ENOACTOR;
    if (inst) {
        Fs__Cache__Lookup *b = fs_pb_new(&fs__cache__lookup__descriptor);
        b->key = fs_strdup(key);
        rc = fs_actor_ask(inst->actor, NULL, FS_CACHE_MSG_LOOKUP, &b->base, inst->ask_timeout_ms, lookup_on_reply, c);
    }
    if (rc != FS_OK) { /* cb must not run inside this call */
        struct timeval now = {0, 0};
        event_base_once(fs_actor_system_base(sys), -1, EV_TIMEOUT, lookup_on_deferred_error, c, &now);
    }
}

static void send_key(fs_actor_system_t *sys, uint32_t type, const char *key)
{
    cache_inst_t *inst = reg_find(sys);
    if (!inst)
        return;
    Fs__Cache__Key *b = fs_pb_new(&fs__cache__key__descriptor);
    b->key = fs_strdup(key);
    fs_actor_send(inst->actor, NULL, type, &b->base);
}

void fs_cache_store(fs_actor_system_t *sys, const char *key, const char *value, size_t len, int ttl_s)
{
    cache_inst_t *inst = reg_find(sys);
    if (!inst)
        return;
    Fs__Cache__Store *b = fs_pb_new(&fs__cache__store__descriptor);
    b->key = fs_strdup(key);
    b->has_value = true;
    b->value.len = len;
    b->value.data = fs_malloc(len ? len : 1);
    if (len)
        memcpy(b->value.data, value, len);
    b->has_ttl_s = true;
    b->ttl_s = ttl_s;
    int rc = fs_actor_send(inst->actor, NULL, FS_CACHE_MSG_STORE, &b->base);
    if (rc != FS_OK)
        fs_warn("cache: store dropped (%s)", fs_status_str(rc));
}

void fs_cache_abandon(fs_actor_system_t *sys, const char *key)
{
    send_key(sys, FS_CACHE_MSG_ABANDON, key);
}

void fs_cache_forget(fs_actor_system_t *sys, const char *key)
{
    send_key(sys, FS_CACHE_MSG_FORGET, key);
}

bool fs_cache_redis_degraded(void)
{
    bool degraded = false;
    pthread_mutex_lock(&reg_lock);
    for (cache_inst_t *inst = reg_head; inst && !degraded; inst = inst->next)
        degraded = inst->redis && !fs_redis_connected(inst->redis);
    pthread_mutex_unlock(&reg_lock);
    return degraded;
}

void fs_cache_get_stats(fs_actor_system_t *sys, fs_cache_stats_t *out)
{
    cache_inst_t *inst = reg_find(sys);
    memset(out, 0, sizeof *out);
    if (!inst)
        return;
    *out = inst->stats;
    if (inst->st) {
        out->entries = inst->st->l1.count;
        out->bytes = inst->st->l1.bytes;
    }
}
