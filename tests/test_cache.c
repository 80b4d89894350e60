/* The cache actor against real Redis (REDIS_URL, plus private redis-server processes for
 * outages) and real event loops: L1 LRU/TTL, the L2 format, single-flight inside a worker and
 * across workers (two actor systems with their own loops and Redis clients), Redis down. */
#include "actors/cache/cache.h"
#include "actors/cache/cache_int.h"

#include "runtime/actor.h"
#include "runtime/metrics.h"
#include "storage/redis.h"
#include "tests/support/harness.h"

#include <criterion/criterion.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*--- nodes: one "worker" each (loop, actor system, Redis client, cache actor) ---------------*/

typedef struct node {
    struct event_base *base;
    struct event *tick;
    fs_actor_system_t *sys;
    fs_redis_t *redis;
    fs_actor_t *cache;
} node_t;

#define MAX_NODES 4
static node_t *nodes[MAX_NODES];
static char prefix[96]; /* Redis key prefix of this test process */

static void on_tick(evutil_socket_t fd, short what, void *arg) {}

static void pump(void)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i])
            event_base_loop(nodes[i]->base, EVLOOP_NONBLOCK);
    usleep(50);
}

#define SPIN_UNTIL(cond, ms)                                                                      \
    ({                                                                                            \
        double end_ = fs_test_now_ms() + (ms);                                                    \
        while (!(cond) && fs_test_now_ms() < end_)                                                \
            pump();                                                                               \
        (cond);                                                                                   \
    })

static void spin_ms(int ms)
{
    double end = fs_test_now_ms() + ms;
    while (fs_test_now_ms() < end)
        pump();
}

/* `redis_url` NULL: L1 only. */
static node_t *node_new(const char *redis_url, fs_metrics_t *metrics, fs_cache_opts_t opts)
{
    node_t *n = calloc(1, sizeof *n);
    n->base = event_base_new();
    n->tick = event_new(n->base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(n->tick, &tv);
    n->sys = fs_actor_system_new(n->base, NULL);
    if (redis_url)
        n->redis = fs_redis_new(n->base, &(fs_redis_opts_t){.url = redis_url, .timeout_ms = 1000, .heartbeat_ms = 100});
    if (!opts.prefix)
        opts.prefix = prefix;
    n->cache = fs_cache_spawn(n->sys, n->redis, metrics, &opts);
    cr_assert_not_null(n->cache);
    for (int i = 0; i < MAX_NODES; i++) {
        if (!nodes[i]) {
            nodes[i] = n;
            break;
        }
    }
    return n;
}

/* The worker's order: actors first (nothing may use the Redis client afterwards), then Redis. */
static void node_free(node_t *n)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i] == n)
            nodes[i] = NULL;
    fs_actor_system_free(n->sys);
    if (n->redis)
        fs_redis_free(n->redis);
    event_free(n->tick);
    event_base_free(n->base);
    free(n);
}

static bool wait_connected(node_t *n)
{
    return SPIN_UNTIL(fs_redis_connected(n->redis), 5000);
}

static void setup(void)
{
    snprintf(prefix, sizeof prefix, "fs-test:%d:%ld:", getpid(), (long)time(NULL));
}

static void teardown(void)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i])
            node_free(nodes[i]);
}

/*--- lookups -------------------------------------------------------------------------------*/

typedef struct res {
    int calls;
    fs_cache_outcome_t outcome;
    const char *where; /* the callback's value pointer (tells a shared hit from a copy) */
    char *value;
    size_t len;
    long age_ms;
    double at_ms;
} res_t;

static void on_result(fs_cache_outcome_t outcome, const char *value, size_t len, long age_ms, void *arg)
{
    res_t *r = arg;
    r->calls++;
    r->outcome = outcome;
    r->at_ms = fs_test_now_ms();
    r->age_ms = age_ms;
    free(r->value);
    r->value = NULL;
    r->len = len;
    r->where = value;
    if (value) {
        r->value = malloc(len + 1);
        memcpy(r->value, value, len);
        r->value[len] = '\0';
    }
}

static res_t lookup(node_t *n, const char *key)
{
    res_t r = {0};
    fs_cache_lookup(n->sys, key, on_result, &r);
    cr_assert_eq(r.calls, 0, "the callback never runs inside fs_cache_lookup");
    cr_assert(SPIN_UNTIL(r.calls == 1, 5000), "lookup of %s unanswered", key);
    return r;
}

static void expect_hit(node_t *n, const char *key, const char *value, size_t len)
{
    res_t r = lookup(n, key);
    cr_assert_eq(r.outcome, FS_CACHE_HIT, "%s: outcome %d, want a hit", key, r.outcome);
    cr_assert_eq(r.len, len, "%s: %zu bytes, want %zu", key, r.len, len);
    cr_assert_eq(memcmp(r.value, value, len), 0, "%s: value differs", key);
    free(r.value);
}

static void expect_lead(node_t *n, const char *key)
{
    res_t r = lookup(n, key);
    cr_assert_eq(r.outcome, FS_CACHE_LEAD, "%s: outcome %d, want LEAD", key, r.outcome);
    free(r.value);
}

static void store(node_t *n, const char *key, const char *value, int ttl_s)
{
    fs_cache_store(n->sys, key, value, strlen(value), ttl_s);
}

static fs_cache_stats_t stats(node_t *n)
{
    fs_cache_stats_t s;
    fs_cache_get_stats(n->sys, &s);
    return s;
}

/* Lets queued sends (store, abandon, forget) reach the actor. */
static void settle(void)
{
    spin_ms(20);
}

/* A direct Redis command on its own client (the test's view of L2). */
typedef struct raw {
    int calls, type;
    long long integer;
    char *str;
    size_t len;
} raw_t;

static void on_raw(redisReply *reply, const char *error, void *arg)
{
    raw_t *r = arg;
    r->calls++;
    r->type = reply ? reply->type : -1;
    if (reply && reply->type == REDIS_REPLY_INTEGER)
        r->integer = reply->integer;
    if (reply && reply->str) {
        r->str = malloc(reply->len + 1);
        memcpy(r->str, reply->str, reply->len);
        r->str[reply->len] = '\0';
        r->len = reply->len;
    }
}

static raw_t raw_cmd(node_t *n, int argc, const char **argv, const size_t *lens)
{
    raw_t r = {0};
    fs_redis_commandargv(n->redis, on_raw, &r, argc, argv, lens);
    cr_assert(SPIN_UNTIL(r.calls == 1, 5000));
    return r;
}

static char *full_key(const char *key)
{
    char *k = malloc(strlen(prefix) + strlen(key) + 1);
    sprintf(k, "%s%s", prefix, key);
    return k;
}

static raw_t raw_get(node_t *n, const char *key)
{
    char *k = full_key(key);
    const char *argv[] = {"GET", k};
    raw_t r = raw_cmd(n, 2, argv, NULL);
    free(k);
    return r;
}

static void raw_set(node_t *n, const char *key, const char *value, size_t len)
{
    char *k = full_key(key);
    const char *argv[] = {"SET", k, value, "PX", "60000"};
    size_t lens[] = {3, strlen(k), len, 2, 5};
    raw_t r = raw_cmd(n, 5, argv, lens);
    cr_assert_eq(r.type, REDIS_REPLY_STATUS);
    free(r.str);
    free(k);
}

static char *repetitive(size_t len)
{
    static const char word[] = "{\"price\":123.45,\"carrier\":\"LH\",\"stops\":1},";
    char *v = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        v[i] = word[i % (sizeof word - 1)];
    v[len] = '\0';
    return v;
}

TestSuite(cache, .init = setup, .fini = teardown, .timeout = 60);

/*--- L1 --------------------------------------------------------------------------------------*/

Test(cache, l1_hit_miss_and_expiry)
{
    node_t *n = node_new(NULL, NULL, (fs_cache_opts_t){0});
    expect_lead(n, "k");
    store(n, "k", "value-1", 1);
    settle();
    spin_ms(60);
    res_t r = lookup(n, "k");
    cr_assert_eq(r.outcome, FS_CACHE_HIT);
    cr_assert_str_eq(r.value, "value-1");
    cr_assert_geq(r.age_ms, 50, "age %ld", r.age_ms);
    cr_assert_lt(r.age_ms, 1000, "age %ld", r.age_ms);
    free(r.value);
    expect_lead(n, "other");
    spin_ms(1000);
    expect_lead(n, "k"); /* expired: never served */
    fs_cache_stats_t s = stats(n);
    cr_assert_eq(s.l1_hits, 1);
    cr_assert_eq(s.leads, 3);
    cr_assert_eq(s.misses, 3);
    cr_assert_eq(s.stores, 1);
    cr_assert_eq(s.entries, 0);
    cr_assert_not(fs_cache_redis_degraded(), "no Redis configured is not a degraded Redis");
}

Test(cache, store_replaces_and_empty_value)
{
    node_t *n = node_new(NULL, NULL, (fs_cache_opts_t){0});
    store(n, "k", "first", 60);
    store(n, "k", "second", 60);
    fs_cache_store(n->sys, "empty", "", 0, 60);
    settle();
    expect_hit(n, "k", "second", 6);
    expect_hit(n, "empty", "", 0);
    fs_cache_stats_t s = stats(n);
    cr_assert_eq(s.entries, 2);
    cr_assert_eq(s.bytes, 6);
}

Test(cache, lru_eviction_by_entries)
{
    node_t *n = node_new(NULL, NULL, (fs_cache_opts_t){.max_entries = 3});
    store(n, "a", "A", 60);
    store(n, "b", "B", 60);
    store(n, "c", "C", 60);
    settle();
    expect_hit(n, "a", "A", 1); /* a is now the most recent: b is the oldest */
    store(n, "d", "D", 60);
    settle();
    cr_assert_eq(stats(n).entries, 3);
    expect_lead(n, "b");
    fs_cache_abandon(n->sys, "b");
    expect_hit(n, "a", "A", 1);
    expect_hit(n, "c", "C", 1);
    expect_hit(n, "d", "D", 1);
}

Test(cache, lru_eviction_by_bytes)
{
    node_t *n = node_new(NULL, NULL, (fs_cache_opts_t){.max_bytes = 1000});
    char *v = repetitive(400);
    store(n, "x", v, 60);
    store(n, "y", v, 60);
    settle();
    cr_assert_eq(stats(n).bytes, 800);
    store(n, "z", v, 60); /* 1200 > 1000: x (the oldest) goes */
    settle();
    fs_cache_stats_t s = stats(n);
    cr_assert_eq(s.entries, 2);
    cr_assert_eq(s.bytes, 800);
    expect_lead(n, "x");
    fs_cache_abandon(n->sys, "x");
    expect_hit(n, "y", v, 400);
    expect_hit(n, "z", v, 400);
    char *big = repetitive(1001); /* larger than the whole L1: not kept, nothing evicted */
    store(n, "big", big, 60);
    settle();
    expect_lead(n, "big");
    cr_assert_eq(stats(n).entries, 2);
    free(v);
    free(big);
}

Test(cache, l1_table_direct)
{
    cache_l1_t l1;
    cache_l1_init(&l1, 1000, 1 << 20);
    char key[32];
    for (int i = 0; i < 500; i++) { /* grows the table past its first size */
        snprintf(key, sizeof key, "key-%d", i);
        cr_assert_not_null(cache_l1_put(&l1, key, strlen(key), cache_hash(key, strlen(key)), cache_blob_new(strdup("v"), 1), 0, 100, 0));
    }
    cr_assert_eq(l1.count, 500);
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        cache_entry_t *e = cache_l1_get(&l1, key, strlen(key), cache_hash(key, strlen(key)), 50);
        cr_assert_not_null(e, "%s", key);
        cr_assert_str_eq(e->key, key);
    }
    cr_assert_null(cache_l1_get(&l1, "key-1", 5, cache_hash("key-1", 5), 100), "expired at expires_ms");
    cr_assert_eq(l1.count, 499);
    cr_assert(cache_l1_remove(&l1, "key-2", 5, cache_hash("key-2", 5)));
    cr_assert_not(cache_l1_remove(&l1, "key-2", 5, cache_hash("key-2", 5)));
    cr_assert_null(cache_l1_put(&l1, "old", 3, cache_hash("old", 3), cache_blob_new(strdup("v"), 1), 0, 10, 20), "already expired");
    cache_l1_clear(&l1);
    cr_assert_neq(cache_hash("ab", 2), cache_hash("ba", 2));
    cr_assert_neq(cache_hash("12345678a", 9), cache_hash("12345678b", 9));
}

/*--- L2 ----------------------------------------------------------------------------------*/

Test(cache, l2_hit_after_l1_eviction_is_compressed)
{
    node_t *n = node_new(fs_test_env("REDIS_URL"), NULL, (fs_cache_opts_t){.max_entries = 1});
    cr_assert(wait_connected(n));
    size_t len = 20000;
    char *v = repetitive(len);
    store(n, "k1", v, 60);
    store(n, "k2", "second", 60); /* evicts k1 from L1 */
    settle();
    cr_assert_eq(stats(n).entries, 1);
    raw_t raw = raw_get(n, "k1");
    cr_assert_eq(raw.type, REDIS_REPLY_STRING);
    cr_assert_lt(raw.len, len / 10, "stored %zu bytes for a repetitive %zu-byte value: not compressed?", raw.len, len);
    cr_assert_eq(memcmp(raw.str, "FSC\x01", 4), 0, "header");
    free(raw.str);
    char *k = full_key("k1");
    const char *pttl_argv[] = {"PTTL", k};
    raw_t pttl = raw_cmd(n, 2, pttl_argv, NULL);
    cr_assert(pttl.integer > 55000 && pttl.integer <= 60000, "PTTL %lld", pttl.integer);
    free(k);
    spin_ms(30);
    res_t r = lookup(n, "k1");
    cr_assert_eq(r.outcome, FS_CACHE_HIT);
    cr_assert_eq(r.len, len);
    cr_assert_eq(memcmp(r.value, v, len), 0, "decompressed value equals the stored one");
    cr_assert_geq(r.age_ms, 25, "age from the stored-at header: %ld", r.age_ms);
    free(r.value);
    fs_cache_stats_t s = stats(n);
    cr_assert_eq(s.l2_hits, 1);
    cr_assert_eq(s.l1_hits, 0);
    expect_hit(n, "k1", v, len); /* back in L1 */
    cr_assert_eq(stats(n).l1_hits, 1);
    free(v);
}

Test(cache, corrupt_l2_value_is_a_miss)
{
    node_t *n = node_new(fs_test_env("REDIS_URL"), NULL, (fs_cache_opts_t){0});
    cr_assert(wait_connected(n));
    raw_set(n, "garbage", "not a cache value at all", 24);
    /* a valid header whose frame is cut short */
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    char *blob;
    size_t blob_len;
    char *v = repetitive(5000);
    cr_assert_eq(cache_l2_encode(cctx, 3, v, 5000, 0, 60000, &blob, &blob_len), 0);
    raw_set(n, "truncated", blob, blob_len - 5);
    blob[3] = 9; /* unknown format version */
    raw_set(n, "version", blob, blob_len);
    expect_lead(n, "garbage");
    expect_lead(n, "truncated");
    expect_lead(n, "version");
    fs_cache_stats_t s = stats(n);
    cr_assert_eq(s.l2_errors, 3);
    cr_assert_eq(s.leads, 3);
    store(n, "garbage", "fresh", 60); /* the leader's value replaces the corrupt one */
    fs_cache_forget(n->sys, "truncated");
    fs_cache_abandon(n->sys, "truncated");
    fs_cache_abandon(n->sys, "version");
    settle();
    raw_t raw = raw_get(n, "garbage");
    cr_assert_eq(memcmp(raw.str, "FSC\x01", 4), 0);
    free(raw.str);
    free(blob);
    free(v);
    ZSTD_freeCCtx(cctx);
}

Test(cache, l2_codec_rejects_bad_input)
{
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    char *v = repetitive(3000), *blob, *out;
    size_t blob_len, out_len;
    int64_t at;
    int ttl;
    cr_assert_eq(cache_l2_encode(cctx, 3, v, 3000, 1234567890123LL, 300000, &blob, &blob_len), 0);
    cr_assert_eq(cache_l2_decode(dctx, blob, blob_len, &out, &out_len, &at, &ttl), 0);
    cr_assert_eq(out_len, 3000);
    cr_assert_eq(memcmp(out, v, 3000), 0);
    cr_assert_eq(at, 1234567890123LL);
    cr_assert_eq(ttl, 300000);
    free(out);
    for (size_t cut = 0; cut < blob_len; cut += 7)
        cr_assert_eq(cache_l2_decode(dctx, blob, cut, &out, &out_len, &at, &ttl), -1, "cut at %zu", cut);
    blob[5] ^= 1; /* uncompressed length disagrees with the frame */
    cr_assert_eq(cache_l2_decode(dctx, blob, blob_len, &out, &out_len, &at, &ttl), -1);
    blob[5] ^= 1;
    blob[blob_len / 2] ^= 0x55; /* damaged frame: an error or a different length, never a crash */
    if (cache_l2_decode(dctx, blob, blob_len, &out, &out_len, &at, &ttl) == 0) {
        cr_assert_eq(out_len, 3000);
        free(out);
    }
    free(blob);
    free(v);
    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
}

Test(cache, forget_drops_l1_and_l2)
{
    node_t *n = node_new(fs_test_env("REDIS_URL"), NULL, (fs_cache_opts_t){0});
    cr_assert(wait_connected(n));
    store(n, "k", "v", 60);
    settle();
    raw_t before = raw_get(n, "k");
    cr_assert_eq(before.type, REDIS_REPLY_STRING);
    free(before.str);
    fs_cache_forget(n->sys, "k");
    settle();
    raw_t after = raw_get(n, "k");
    cr_assert_eq(after.type, REDIS_REPLY_NIL);
    expect_lead(n, "k");
    cr_assert_eq(stats(n).entries, 0);
}

/*--- single-flight in a worker -----------------------------------------------------------*/

static void single_flight_50(node_t *n)
{
    enum { N = 50 };
    fs_cache_stats_t s0 = stats(n);
    res_t r[N] = {{0}};
    for (int i = 0; i < N; i++)
        fs_cache_lookup(n->sys, "hot", on_result, &r[i]);
    int leader = -1;
    cr_assert(SPIN_UNTIL(({
                             int done = 0;
                             for (int i = 0; i < N; i++)
                                 done += r[i].calls;
                             done >= 1;
                         }),
                         5000));
    spin_ms(50); /* nobody else may be answered yet */
    for (int i = 0; i < N; i++) {
        if (r[i].calls) {
            cr_assert_eq(leader, -1, "two answers before the store");
            cr_assert_eq(r[i].outcome, FS_CACHE_LEAD);
            leader = i;
        }
    }
    cr_assert_eq(leader, 0, "the first asker leads");
    store(n, "hot", "the-value", 60);
    cr_assert(SPIN_UNTIL(({
                             int done = 0;
                             for (int i = 0; i < N; i++)
                                 done += r[i].calls;
                             done == N;
                         }),
                         5000));
    for (int i = 1; i < N; i++) {
        cr_assert_eq(r[i].calls, 1);
        cr_assert_eq(r[i].outcome, FS_CACHE_HIT);
        cr_assert_str_eq(r[i].value, "the-value");
        free(r[i].value);
    }
    fs_cache_stats_t s = stats(n);
    cr_assert_eq(s.leads - s0.leads, 1);
    cr_assert_eq(s.joins - s0.joins, N - 1);
    cr_assert_eq(s.misses - s0.misses, N);
}

Test(cache, local_single_flight_with_redis)
{
    node_t *n = node_new(fs_test_env("REDIS_URL"), NULL, (fs_cache_opts_t){0});
    cr_assert(wait_connected(n));
    single_flight_50(n);
}

Test(cache, local_single_flight_without_redis)
{
    node_t *n = node_new(NULL, NULL, (fs_cache_opts_t){0});
    single_flight_50(n);
}

Test(cache, abandon_makes_the_next_waiter_lead)
{
    node_t *n = node_new(fs_test_env("REDIS_URL"), NULL, (fs_cache_opts_t){0});
    cr_assert(wait_connected(n));
    res_t a = {0}, b = {0}, c = {0};
    fs_cache_lookup(n->sys, "k", on_result, &a);
    fs_cache_lookup(n->sys, "k", on_result, &b);
    fs_cache_lookup(n->sys, "k", on_result, &c);
    cr_assert(SPIN_UNTIL(a.calls == 1, 5000));
    cr_assert_eq(a.outcome, FS_CACHE_LEAD);
    spin_ms(30);
    cr_assert_eq(b.calls + c.calls, 0);
    fs_cache_abandon(n->sys, "k");
    cr_assert(SPIN_UNTIL(b.calls == 1, 5000));
    cr_assert_eq(b.outcome, FS_CACHE_LEAD, "the next waiter leads");
    spin_ms(30);
    cr_assert_eq(c.calls, 0);
    store(n, "k", "from-b", 60);
    cr_assert(SPIN_UNTIL(c.calls == 1, 5000));
    cr_assert_eq(c.outcome, FS_CACHE_HIT);
    cr_assert_str_eq(c.value, "from-b");
    free(c.value);
    fs_cache_stats_t s = stats(n);
    cr_assert_eq(s.leads, 2);
    cr_assert_eq(s.joins, 1);
    /* the lock passed to b and was released by its store */
    char *lk = full_key("lock:k");
    const char *argv[] = {"EXISTS", lk};
    raw_t ex = raw_cmd(n, 2, argv, NULL);
    cr_assert_eq(ex.integer, 0, "lock left behind");
    free(lk);
}

Test(cache, abandon_without_waiters_releases_the_lock)
{
    node_t *n = node_new(fs_test_env("REDIS_URL"), NULL, (fs_cache_opts_t){0});
    cr_assert(wait_connected(n));
    expect_lead(n, "k");
    char *lk = full_key("lock:k");
    const char *argv[] = {"EXISTS", lk};
    cr_assert_eq(raw_cmd(n, 2, argv, NULL).integer, 1, "the leader holds the Redis lock");
    fs_cache_abandon(n->sys, "k");
    settle();
    cr_assert_eq(raw_cmd(n, 2, argv, NULL).integer, 0);
    expect_lead(n, "k");
    free(lk);
}

Test(cache, silent_leader_loses_the_lead_after_lock_ms)
{
    node_t *n = node_new(NULL, NULL, (fs_cache_opts_t){.lock_ms = 300});
    expect_lead(n, "k"); /* this leader never stores nor abandons */
    double t0 = fs_test_now_ms();
    res_t b = {0};
    fs_cache_lookup(n->sys, "k", on_result, &b);
    cr_assert(SPIN_UNTIL(b.calls == 1, 3000));
    cr_assert_eq(b.outcome, FS_CACHE_LEAD);
    cr_assert_geq(b.at_ms - t0, 200);
    free(b.value);
}

Test(cache, stopped_actor_answers_waiters_with_error)
{
    node_t *n = node_new(NULL, NULL, (fs_cache_opts_t){0});
    res_t a = {0}, b = {0};
    fs_cache_lookup(n->sys, "k", on_result, &a);
    fs_cache_lookup(n->sys, "k", on_result, &b);
    cr_assert(SPIN_UNTIL(a.calls == 1, 5000));
    fs_actor_stop(n->cache);
    cr_assert(SPIN_UNTIL(b.calls == 1, 1000), "a waiter learns at once");
    cr_assert_eq(b.outcome, FS_CACHE_ERROR);
    res_t c = lookup(n, "k");
    cr_assert_eq(c.outcome, FS_CACHE_ERROR, "no cache actor: an error, never inside the call");
    fs_cache_store(n->sys, "k", "v", 1, 60); /* ignored */
    fs_cache_stats_t s = stats(n);
    cr_assert_eq(s.leads, 0);
}

/*--- single-flight across workers ----------------------------------------------------------*/

Test(cache, cross_worker_single_flight)
{
    node_t *a = node_new(fs_test_env("REDIS_URL"), NULL, (fs_cache_opts_t){0});
    node_t *b = node_new(fs_test_env("REDIS_URL"), NULL, (fs_cache_opts_t){0});
    cr_assert(wait_connected(a) && wait_connected(b));
    res_t ra = {0}, rb[3] = {{0}};
    fs_cache_lookup(a->sys, "route", on_result, &ra);
    cr_assert(SPIN_UNTIL(ra.calls == 1, 5000));
    cr_assert_eq(ra.outcome, FS_CACHE_LEAD);
    for (int i = 0; i < 3; i++)
        fs_cache_lookup(b->sys, "route", on_result, &rb[i]);
    spin_ms(150);
    cr_assert_eq(rb[0].calls + rb[1].calls + rb[2].calls, 0, "b waits for a's value");
    store(a, "route", "offers-from-a", 60);
    cr_assert(SPIN_UNTIL(rb[0].calls + rb[1].calls + rb[2].calls == 3, 5000));
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(rb[i].outcome, FS_CACHE_HIT);
        cr_assert_str_eq(rb[i].value, "offers-from-a");
        free(rb[i].value);
    }
    fs_cache_stats_t sa = stats(a), sb = stats(b);
    cr_assert_eq(sa.leads, 1);
    cr_assert_eq(sb.leads, 0, "b never leads");
    cr_assert_eq(sb.joins, 3);
    expect_hit(b, "route", "offers-from-a", 13); /* now in b's L1 */
    cr_assert_eq(stats(b).l1_hits, 1);
}

Test(cache, leader_dies_then_a_waiter_takes_over_after_lock_ms)
{
    node_t *a = node_new(fs_test_env("REDIS_URL"), NULL, (fs_cache_opts_t){.lock_ms = 400, .wait_ms = 5000});
    node_t *b = node_new(fs_test_env("REDIS_URL"), NULL, (fs_cache_opts_t){.lock_ms = 400, .wait_ms = 5000});
    cr_assert(wait_connected(a) && wait_connected(b));
    expect_lead(a, "k");
    double t_lock = fs_test_now_ms();
    node_free(a); /* dies holding the lock: it is never released */
    res_t rb = {0};
    fs_cache_lookup(b->sys, "k", on_result, &rb);
    cr_assert(SPIN_UNTIL(rb.calls == 1, 3000), "no takeover");
    cr_assert_eq(rb.outcome, FS_CACHE_LEAD);
    double waited = rb.at_ms - t_lock;
    cr_assert_geq(waited, 350, "took over after %.0f ms, before the lock expired", waited);
    cr_assert_lt(waited, 1200, "took over after %.0f ms", waited);
    cr_assert_eq(stats(b).leads, 1);
    /* b now holds the lock: b's store releases it and serves from L2 for others */
    store(b, "k", "from-b", 60);
    settle();
    node_t *c = node_new(fs_test_env("REDIS_URL"), NULL, (fs_cache_opts_t){0});
    cr_assert(wait_connected(c));
    expect_hit(c, "k", "from-b", 6);
    cr_assert_eq(stats(c).l2_hits, 1);
}

Test(cache, follower_leads_when_its_wait_runs_out)
{
    node_t *a = node_new(fs_test_env("REDIS_URL"), NULL, (fs_cache_opts_t){.lock_ms = 5000});
    node_t *b = node_new(fs_test_env("REDIS_URL"), NULL, (fs_cache_opts_t){.lock_ms = 5000, .wait_ms = 300});
    cr_assert(wait_connected(a) && wait_connected(b));
    expect_lead(a, "k");
    double t0 = fs_test_now_ms();
    res_t rb = {0};
    fs_cache_lookup(b->sys, "k", on_result, &rb);
    cr_assert(SPIN_UNTIL(rb.calls == 1, 3000));
    cr_assert_eq(rb.outcome, FS_CACHE_LEAD);
    cr_assert_geq(rb.at_ms - t0, 250);
    cr_assert_lt(rb.at_ms - t0, 1500);
    /* b stores without holding the lock: a's lock must survive b's release attempt */
    store(b, "k", "from-b", 60);
    settle();
    char *lk = full_key("lock:k");
    const char *argv[] = {"EXISTS", lk};
    cr_assert_eq(raw_cmd(b, 2, argv, NULL).integer, 1, "another worker's lock was deleted");
    store(a, "k", "from-a", 60);
    settle();
    cr_assert_eq(raw_cmd(b, 2, argv, NULL).integer, 0, "the owner's release did not work");
    free(lk);
}

/*--- Redis down ----------------------------------------------------------------------------*/

Test(cache, redis_on_a_closed_port)
{
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", fs_test_free_port());
    node_t *n = node_new(url, NULL, (fs_cache_opts_t){0});
    spin_ms(100);
    cr_assert(fs_cache_redis_degraded());
    double t0 = fs_test_now_ms();
    expect_lead(n, "k");
    cr_assert_lt(fs_test_now_ms() - t0, 200, "no waiting on Redis timeouts");
    store(n, "k", "v", 60);
    settle();
    expect_hit(n, "k", "v", 1);
    single_flight_50(n);
    fs_cache_forget(n->sys, "k");
    settle();
    expect_lead(n, "k");
    cr_assert_eq(stats(n).l2_errors, 0, "nothing was even tried");
}

static char priv_dir[64];

static void priv_redis_start(void)
{
    if (!priv_dir[0]) {
        snprintf(priv_dir, sizeof priv_dir, "/tmp/fs-test-cache-XXXXXX");
        cr_assert_not_null(mkdtemp(priv_dir));
    }
    cr_assert_eq(fs_test_sh("%s/scripts/services.sh redis-start %s >/dev/null", FS_SOURCE_DIR, priv_dir), 0);
}

static void priv_redis_stop(void)
{
    fs_test_sh("%s/scripts/services.sh redis-stop %s >/dev/null 2>&1", FS_SOURCE_DIR, priv_dir);
}

static void priv_fini(void)
{
    teardown();
    priv_redis_stop();
    fs_test_sh("rm -rf %s", priv_dir);
}

Test(cache, redis_stops_and_comes_back, .init = setup, .fini = priv_fini)
{
    priv_redis_start();
    char url[128];
    snprintf(url, sizeof url, "unix://%s/redis/redis.sock", priv_dir);
    node_t *n = node_new(url, NULL, (fs_cache_opts_t){0});
    cr_assert(wait_connected(n));
    cr_assert_not(fs_cache_redis_degraded());
    store(n, "k", "v", 60);
    settle();
    priv_redis_stop();
    cr_assert(SPIN_UNTIL(fs_cache_redis_degraded(), 3000), "degraded after the server stopped");
    expect_hit(n, "k", "v", 1); /* L1 */
    double t0 = fs_test_now_ms();
    expect_lead(n, "new");
    cr_assert_lt(fs_test_now_ms() - t0, 200);
    store(n, "new", "n", 60);
    settle();
    expect_hit(n, "new", "n", 1);
    priv_redis_start();
    cr_assert(SPIN_UNTIL(!fs_cache_redis_degraded(), 8000), "not degraded once Redis is back");
    expect_lead(n, "third");
}

/*--- metrics and cost --------------------------------------------------------------------*/

Test(cache, metrics_exported)
{
    fs_metrics_t *m = fs_metrics_new();
    node_t *n = node_new(NULL, m, (fs_cache_opts_t){0});
    expect_lead(n, "k");
    store(n, "k", "12345", 60);
    settle();
    expect_hit(n, "k", "12345", 5);
    expect_hit(n, "k", "12345", 5);
    size_t len;
    char *text = fs_metrics_render(m, &len);
    cr_assert(strstr(text, "flightshark_cache_hits_total{level=\"l1\"} 2"), "%s", text);
    cr_assert(strstr(text, "flightshark_cache_leads_total 1"), "%s", text);
    cr_assert(strstr(text, "flightshark_cache_misses_total 1"), "%s", text);
    cr_assert(strstr(text, "flightshark_cache_stores_total 1"), "%s", text);
    cr_assert(strstr(text, "flightshark_cache_entries 1"), "%s", text);
    cr_assert(strstr(text, "flightshark_cache_bytes 5"), "%s", text);
    free(text);
    node_free(n);
    fs_metrics_free(m);
}

/* A hit is handed over by reference while the ask is far from its deadline, as a copy when
 * close to it (a reply the runtime dropped as late would leak the reference). */
Test(cache, hits_share_the_value_unless_close_to_the_deadline)
{
    node_t *n = node_new(NULL, NULL, (fs_cache_opts_t){.lock_ms = 1, .wait_ms = 1}); /* asks: 1002 ms */
    store(n, "k", "shared-value", 60);
    settle();
    res_t a = lookup(n, "k"), b = lookup(n, "k");
    cr_assert_str_eq(a.value, "shared-value");
    cr_assert_eq(a.where, b.where, "both hits point at the L1 value");
    res_t late = {0};
    fs_cache_lookup(n->sys, "k", on_result, &late);
    usleep(950 * 1000); /* the loop is busy: the ask reaches the actor 50 ms before its deadline */
    cr_assert(SPIN_UNTIL(late.calls == 1, 2000));
    cr_assert_eq(late.outcome, FS_CACHE_HIT);
    cr_assert_str_eq(late.value, "shared-value");
    cr_assert_neq(late.where, a.where, "a copy near the deadline");
    free(a.value);
    free(b.value);
    free(late.value);
}

static int answered;
static void count_cb(fs_cache_outcome_t outcome, const char *value, size_t len, long age_ms, void *arg)
{
    if (outcome == FS_CACHE_HIT)
        answered++;
}

/* Prints what one L1 hit costs through the actor (lookup, ask, reply with the copied value,
 * continuation); the bound only catches a gross regression. */
Test(cache, l1_hit_cost)
{
    node_t *n = node_new(NULL, NULL, (fs_cache_opts_t){0});
    size_t len = 16384;
    char *v = repetitive(len);
    fs_cache_store(n->sys, "search:LHR:JFK:2026-09-01:1:economy", v, len, 60);
    settle();
    enum { BATCH = 256, ROUNDS = 200 };
    answered = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < BATCH; i++)
            fs_cache_lookup(n->sys, "search:LHR:JFK:2026-09-01:1:economy", count_cb, NULL);
        while (answered < (r + 1) * BATCH)
            event_base_loop(n->base, EVLOOP_NONBLOCK);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (BATCH * ROUNDS);
    fprintf(stderr, "cache: L1 hit of a %zu-byte value through the actor: %.0f ns\n", len, ns);
    cr_assert_eq(answered, BATCH * ROUNDS);
    cr_assert_lt(ns, 100000, "%.0f ns per L1 hit", ns);
    free(v);
}
