/* The worker's current reference data: the fs_refdata_t bundle (storage/refdata.h) that the
 * airport endpoints and flight search read, loaded at start and replaced on reload.
 *
 * One per worker process, driven by its loop:
 *   - loads run on the worker's thread pool (fs_refdata_load_url blocks); the finished bundle is
 *     swapped in on the loop, so a reader sees either the old or the new bundle, never a
 *     half-built one;
 *   - the bundle is refcounted: the "current" slot holds one reference and an asynchronous
 *     handler that keeps the bundle across callbacks holds another (fs_refdata_acquire); a
 *     replaced bundle is freed (on the thread pool) when its last reference goes. A handler that
 *     reads it and replies before returning needs no reference at all: nothing can swap the
 *     pointer while a loop callback runs;
 *   - reloads cross processes and hosts through Redis pub/sub: fs_refdata_live_broadcast()
 *     publishes on FS_REFDATA_RELOAD_CHANNEL, every worker subscribes on a client of its own and
 *     reloads. After a lost subscription comes back the worker reloads too, since messages
 *     published meanwhile are gone.
 *   - until the first load succeeds, fs_refdata_current() is NULL (endpoints answer 503); a
 *     failed first load is retried with backoff, a failed reload keeps the old bundle.
 */
#ifndef FS_REFDATA_LIVE_H
#define FS_REFDATA_LIVE_H

#include "storage/refdata.h"

#include <stdbool.h>

#define FS_REFDATA_RELOAD_CHANNEL "flightshark:refdata:reload"

typedef struct fs_worker fs_worker_t;

/* Starts the first load and the reload subscription for worker `wk` (its loop, thread pool and
 * Redis client; DATABASE_URL and REDIS_URL from fs_cfg). Call once, after the storage started. */
void fs_refdata_live_start(fs_worker_t *wk);

/* Drops the current bundle and the subscription. Reload callbacks still waiting are not called
 * (their requests died with the HTTP server). Bundles still referenced by fs_refdata_acquire
 * holders are freed by their last release. Call after the worker's thread pool is freed (so no
 * load completes later) and before the Redis client it subscribed with is freed. */
void fs_refdata_live_stop(void);

/* The current bundle, NULL until the first load has finished. Valid until the current loop
 * callback returns; take a reference to keep it longer. */
const fs_refdata_t *fs_refdata_current(void);

/* A counted reference to the current bundle (NULL while none is loaded). Loop thread only. */
typedef struct fs_refdata_ref fs_refdata_ref_t;
fs_refdata_ref_t *fs_refdata_acquire(void);
const fs_refdata_t *fs_refdata_ref_data(const fs_refdata_ref_t *ref);
void fs_refdata_release(fs_refdata_ref_t *ref);

/* Called on the loop when the reload asked for has finished: `data` is the new current bundle
 * (valid during the call), or NULL with `error` saying why the load failed (the previous bundle,
 * if any, stays current). */
typedef void (*fs_refdata_reload_cb)(const fs_refdata_t *data, const char *error, void *arg);

/* Reloads this worker. The load reads the database after this call: when a load is already
 * running, another one follows it, and concurrent requests share that next load. `cb` may be
 * NULL. */
void fs_refdata_live_reload(fs_refdata_reload_cb cb, void *arg);

/* Asks every other worker, of this host and of others sharing the Redis server, to reload
 * (PUBLISH; this worker ignores its own message). Fire and forget: with Redis down only the
 * local reload happens, which is logged. */
void fs_refdata_live_broadcast(void);

/* While the worker's first load attempt has not finished (it may still be waiting for its
 * subscription), queues `cb` to run when it does, whatever its outcome, and returns true; then
 * fs_refdata_current() tells the outcome. Returns false at once otherwise. Lets a request that
 * arrives in the first moments of a worker wait for the data instead of failing. */
bool fs_refdata_live_wait_first(fs_refdata_reload_cb cb, void *arg);

/* Loads completed (successful swaps) since start; for tests and metrics. */
unsigned long fs_refdata_live_generation(void);

#endif
