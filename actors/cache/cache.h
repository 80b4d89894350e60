/* The `cache` actor (one per worker): search answers kept for a short time.
 *
 *   L1  in-process LRU with TTL (bounded by entries and bytes), this worker only;
 *   L2  Redis, shared by every worker and host, values zstd-compressed, with the same TTL;
 *   single-flight: identical concurrent misses in a worker make one computation (the first
 *   asker leads, the others wait for its value), and across workers and hosts a short Redis
 *   lock (SET NX PX) makes the others wait for the leader's value in L2.
 *
 * Redis down: L2 and the lock are skipped (L1 and single-flight inside the worker go on), and
 * fs_cache_redis_degraded() says so for /health.
 *
 * Callers (the search actor, HTTP handlers) use the functions below, which send messages to
 * the actor named FS_CACHE_ACTOR in the caller's actor system; all run on the loop thread.
 * Keys are opaque strings (the caller normalises them); values are opaque bytes.
 */
#ifndef FS_CACHE_H
#define FS_CACHE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fs_actor fs_actor_t;
typedef struct fs_actor_system fs_actor_system_t;
typedef struct fs_redis fs_redis_t;
typedef struct fs_metrics fs_metrics_t;

#define FS_CACHE_ACTOR "cache"

typedef struct fs_cache_opts {
    size_t max_entries;        /* L1 bound; 0 = 10000 */
    size_t max_bytes;          /* L1 bound on stored value bytes; 0 = 64 MiB */
    int lock_ms;               /* cross-worker lock lifetime; 0 = 10000 */
    int wait_ms;               /* longest a follower waits for a leader; 0 = lock_ms */
    int zstd_level;            /* 0 = 3 */
    const char *prefix;        /* Redis key prefix; NULL = "fs:cache:" */
} fs_cache_opts_t;

/* Spawns the actor. `redis` may be NULL (L1 only). `metrics` may be NULL. */
fs_actor_t *fs_cache_spawn(fs_actor_system_t *sys, fs_redis_t *redis, fs_metrics_t *metrics,
                           const fs_cache_opts_t *opts);

typedef enum fs_cache_outcome {
    FS_CACHE_HIT = 0,   /* `value` holds the cached bytes (L1, L2, or a leader's fresh value) */
    FS_CACHE_LEAD,      /* a miss and the caller leads: compute, then fs_cache_store or fs_cache_abandon */
    FS_CACHE_ERROR,     /* the cache actor could not answer (mailbox full, stopped): compute without it */
} fs_cache_outcome_t;

/* `value` is valid during the callback only. `age_ms` is how old a hit is. */
typedef void (*fs_cache_lookup_fn)(fs_cache_outcome_t outcome, const char *value, size_t len, long age_ms,
                                   void *arg);

/* Looks `key` up. A caller that gets FS_CACHE_LEAD must call fs_cache_store or
 * fs_cache_abandon for that key exactly once, soon. `cb` runs exactly once, on the loop,
 * never inside this call. */
void fs_cache_lookup(fs_actor_system_t *sys, const char *key, fs_cache_lookup_fn cb, void *arg);

/* Stores a value for `ttl_s` seconds in L1 and L2, releases the lock and hands the value to
 * every waiter of that key. Also valid without a prior lookup (plain put). */
void fs_cache_store(fs_actor_system_t *sys, const char *key, const char *value, size_t len, int ttl_s);

/* The leader failed: releases the lock; the next waiter (if any) becomes the leader. */
void fs_cache_abandon(fs_actor_system_t *sys, const char *key);

/* Drops a key from L1 and L2 (tests, invalidation). */
void fs_cache_forget(fs_actor_system_t *sys, const char *key);

/* True while the cache's Redis connection is down (read by /health). */
bool fs_cache_redis_degraded(void);

typedef struct fs_cache_stats {
    unsigned long long l1_hits, l2_hits, misses, leads, joins, stores, l2_errors;
    size_t entries, bytes;
} fs_cache_stats_t;
/* This worker's cache counters (also exported as metrics). */
void fs_cache_get_stats(fs_actor_system_t *sys, fs_cache_stats_t *out);

#endif
