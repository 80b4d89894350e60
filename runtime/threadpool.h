/* A small pool of threads for blocking or CPU-heavy work (password hashing, large imports,
 * cancelling a query). The event loop never waits: work runs on a pool thread, and its
 * completion callback runs back on the loop thread that submitted it (posted through an
 * eventfd/pipe watched by the loop), as libuv's uv_queue_work does.
 */
#ifndef FS_THREADPOOL_H
#define FS_THREADPOOL_H

#include <stddef.h>

struct event_base;
typedef struct fs_threadpool fs_threadpool_t;

typedef void (*fs_work_fn)(void *arg);            /* runs on a pool thread */
typedef void (*fs_after_work_fn)(void *arg);      /* runs on the loop thread */

/* Starts `threads` threads; completions are delivered on `base`. */
fs_threadpool_t *fs_threadpool_new(struct event_base *base, int threads);

/* Queues work. Returns 0, or -1 when more than the pool's queue bound is pending
 * (the caller answers 503 rather than queueing without limit). */
int fs_threadpool_submit(fs_threadpool_t *pool, fs_work_fn work, fs_after_work_fn after, void *arg);

size_t fs_threadpool_pending(const fs_threadpool_t *pool);

/* Waits for queued work to finish, runs the remaining completions, joins the threads. */
void fs_threadpool_free(fs_threadpool_t *pool);

#endif
