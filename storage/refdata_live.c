/* The worker's current reference data bundle: load, swap, refcount, reload over pub/sub.
 * Everything here runs on the worker's loop thread except load_work/free_work (pool threads),
 * which touch only their own job. See storage/refdata_live.h for the contract.
 */
#include "storage/refdata_live.h"

#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/threadpool.h"
#include "runtime/worker.h"
#include "storage/redis.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The first load waits this long for the reload subscription, so that a reload published
 * while it runs is not missed; without Redis it starts anyway. */
#define LIVE_SUBSCRIBE_WAIT_MS 300
/* A failed first load is retried after 1 s, doubling up to 30 s. */
#define LIVE_RETRY_MIN_MS 1000
#define LIVE_RETRY_MAX_MS 30000

struct fs_refdata_ref {
    fs_refdata_t *data;
    int refs; /* loop thread only */
};

typedef struct waiter {
    struct waiter *next;
    fs_refdata_reload_cb cb;
    void *arg;
} waiter_t;

typedef struct job {
    char *url;
    fs_refdata_t *data;
    char *err;
    double started_ms;
} job_t;

static struct {
    bool running;
    fs_worker_t *wk;
    char *url;
    char self_id[96]; /* our PUBLISH payload, ignored when it comes back */
    fs_refdata_ref_t *current;
    bool loading, again, started, ever_subscribed, first_done;
    waiter_t *cur, *next; /* served by the running load / by the one after it */
    waiter_t *first;      /* waiting for the end of the first attempt */
    int retry_ms;
    unsigned long generation;
    fs_redis_t *sub;
    struct event *start_ev, *retry_ev;
    fs_metric_series_t *m_airports, *m_loads, *m_failures, *m_seconds;
} L;

static void start_load(void);

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct timeval ms_tv(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/*--- references --------------------------------------------------------------------------*/

static void free_work(void *arg)
{
    fs_refdata_free(arg);
}

/* Freeing ~10^5 allocations takes milliseconds: done on the pool so no request waits. */
static void ref_drop(fs_refdata_ref_t *ref)
{
    if (!ref || --ref->refs > 0)
        return;
    if (!L.wk || fs_threadpool_submit(L.wk->pool, free_work, NULL, ref->data) != 0)
        fs_refdata_free(ref->data);
    free(ref);
}

const fs_refdata_t *fs_refdata_current(void)
{
    return L.current ? L.current->data : NULL;
}

fs_refdata_ref_t *fs_refdata_acquire(void)
{
    if (L.current)
        L.current->refs++;
    return L.current;
}

const fs_refdata_t *fs_refdata_ref_data(const fs_refdata_ref_t *ref)
{
    return ref->data;
}

void fs_refdata_release(fs_refdata_ref_t *ref)
{
    ref_drop(ref);
}

unsigned long fs_refdata_live_generation(void)
{
    return L.generation;
}

/*--- loading -----------------------------------------------------------------------------*/

static void notify(waiter_t *w, const fs_refdata_t *data, const char *error)
{
    while (w) {
        waiter_t *next = w->next;
        if (w->cb)
            w->cb(data, error, w->arg);
        free(w);
        w = next;
    }
}

static void free_waiters(waiter_t *w)
{
    while (w) {
        waiter_t *next = w->next;
        free(w);
        w = next;
    }
}

static void swap_in(fs_refdata_t *data)
{
    fs_refdata_ref_t *ref = FS_NEW(fs_refdata_ref_t);
    ref->data = data;
    ref->refs = 1;
    fs_refdata_ref_t *old = L.current;
    L.current = ref;
    L.generation++;
    ref_drop(old);
}

static void schedule_retry(void)
{
    struct timeval tv = ms_tv(L.retry_ms);
    L.retry_ms = L.retry_ms * 2 > LIVE_RETRY_MAX_MS ? LIVE_RETRY_MAX_MS : L.retry_ms * 2;
    evtimer_add(L.retry_ev, &tv);
}

static void record(const job_t *job)
{
    if (!L.m_loads)
        return;
    fs_metric_inc(job->data ? L.m_loads : L.m_failures, 1);
    if (job->data) {
        fs_metric_set(L.m_airports, (double)fs_airport_index_count(job->data->airports));
        fs_metric_set(L.m_seconds, (now_ms() - job->started_ms) / 1e3);
    }
}

static void load_work(void *arg)
{
    job_t *job = arg;
    job->data = fs_refdata_load_url(job->url, &job->err);
}

/* On the loop: swap, answer the waiters of this load, start the next one if asked. */
static void load_done(void *arg)
{
    job_t *job = arg;
    if (!L.running) { /* stopped while loading (the thread pool drains at worker exit) */
        fs_refdata_free(job->data);
        goto out;
    }
    record(job);
    waiter_t *served = L.cur;
    L.cur = NULL;
    L.loading = false;
    if (job->data) {
        fs_info("reference data loaded: %zu airports, %zu routes, %zu airlines in %.0f ms",
                fs_airport_index_count(job->data->airports), fs_route_graph_count(job->data->routes),
                job->data->n_airlines, now_ms() - job->started_ms);
        swap_in(job->data);
        L.retry_ms = LIVE_RETRY_MIN_MS;
    } else {
        fs_error("reference data load failed: %s%s", job->err ? job->err : "unknown error",
                 L.current ? " (keeping the previous data)" : "");
    }
    const char *error = job->data ? NULL : job->err ? job->err : "reference data load failed";
    notify(served, job->data, error);
    if (!L.first_done) {
        L.first_done = true;
        waiter_t *first = L.first;
        L.first = NULL;
        notify(first, job->data, error);
    }
    if (L.again) {
        L.again = false;
        L.cur = L.next;
        L.next = NULL;
        start_load();
    } else if (!L.current && !evtimer_pending(L.retry_ev, NULL)) {
        schedule_retry();
    }
out:
    free(job->url);
    free(job->err);
    free(job);
}

static void start_load(void)
{
    L.started = true;
    L.loading = true;
    job_t *job = FS_NEW(job_t);
    job->url = fs_strdup(L.url);
    job->started_ms = now_ms();
    if (fs_threadpool_submit(L.wk->pool, load_work, load_done, job) == 0)
        return;
    job->err = fs_strdup("thread pool queue is full");
    load_done(job);
}

void fs_refdata_live_reload(fs_refdata_reload_cb cb, void *arg)
{
    if (!L.running) {
        if (cb)
            cb(NULL, "reference data is stopped", arg);
        return;
    }
    waiter_t *w = FS_NEW(waiter_t);
    w->cb = cb;
    w->arg = arg;
    evtimer_del(L.start_ev);
    evtimer_del(L.retry_ev);
    if (L.loading) { /* that load may have read the database already: queue for the next */
        w->next = L.next;
        L.next = w;
        L.again = true;
        return;
    }
    w->next = L.cur;
    L.cur = w;
    start_load();
}

bool fs_refdata_live_wait_first(fs_refdata_reload_cb cb, void *arg)
{
    if (!L.running || L.first_done)
        return false;
    waiter_t *w = FS_NEW(waiter_t);
    w->cb = cb;
    w->arg = arg;
    w->next = L.first;
    L.first = w;
    return true;
}

static void on_timer_load(evutil_socket_t fd, short what, void *arg)
{
    if (!L.loading)
        fs_refdata_live_reload(NULL, NULL);
}

/*--- pub/sub -----------------------------------------------------------------------------*/

static void on_reload_message(const char *channel, const char *payload, size_t len, void *arg)
{
    if (!payload) { /* (re)subscribed */
        bool first = !L.ever_subscribed;
        L.ever_subscribed = true;
        if (first && !L.started)
            fs_refdata_live_reload(NULL, NULL);
        else if (!first) /* reloads published while we were away are lost: catch up */
            fs_refdata_live_reload(NULL, NULL);
        return;
    }
    if (len == strlen(L.self_id) && memcmp(payload, L.self_id, len) == 0)
        return;
    fs_info("reference data reload requested by %.*s", (int)(len > 64 ? 64 : len), payload);
    fs_refdata_live_reload(NULL, NULL);
}

static void on_published(redisReply *reply, const char *error, void *arg)
{
    if (error)
        fs_warn("reference data reload not broadcast (only this worker reloads): %s", error);
}

void fs_refdata_live_broadcast(void)
{
    if (!L.running)
        return;
    fs_redis_command(L.wk->redis, on_published, NULL, "PUBLISH %s %s", FS_REFDATA_RELOAD_CHANNEL, L.self_id);
}

/*--- start / stop ------------------------------------------------------------------------*/

static void install_metrics(fs_metrics_t *m)
{
    if (!m)
        return;
    L.m_airports = fs_metrics_simple(m, FS_METRIC_GAUGE, "flightshark_refdata_airports",
                                     "Airports in this worker's current reference data");
    L.m_seconds = fs_metrics_simple(m, FS_METRIC_GAUGE, "flightshark_refdata_load_seconds",
                                    "Duration of the last successful reference data load");
    L.m_loads = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_refdata_loads_total",
                                  "Reference data loads swapped in");
    L.m_failures = fs_metrics_simple(m, FS_METRIC_COUNTER, "flightshark_refdata_load_failures_total",
                                     "Reference data loads that failed");
}

void fs_refdata_live_start(fs_worker_t *wk)
{
    memset(&L, 0, sizeof L);
    L.running = true;
    L.wk = wk;
    L.url = fs_strdup(fs_cfg->database_url ? fs_cfg->database_url : "");
    L.retry_ms = LIVE_RETRY_MIN_MS;
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(L.self_id, sizeof L.self_id, "%s/%d/%lx", host, (int)getpid(), (unsigned long)random());
    install_metrics(wk->metrics);
    L.start_ev = evtimer_new(wk->base, on_timer_load, NULL);
    L.retry_ev = evtimer_new(wk->base, on_timer_load, NULL);
    fs_redis_opts_t ro = {.url = fs_cfg->redis_url, .timeout_ms = fs_cfg->redis_timeout_ms};
    L.sub = fs_redis_subscriber_new(wk->base, &ro, FS_REFDATA_RELOAD_CHANNEL, on_reload_message, NULL);
    struct timeval tv = ms_tv(LIVE_SUBSCRIBE_WAIT_MS);
    evtimer_add(L.start_ev, &tv);
}

void fs_refdata_live_stop(void)
{
    if (!L.running)
        return;
    L.running = false;
    fs_redis_free(L.sub);
    event_free(L.start_ev);
    event_free(L.retry_ev);
    free_waiters(L.cur);
    free_waiters(L.next);
    free_waiters(L.first);
    L.wk = NULL; /* from here on releases free inline: the worker's thread pool is gone */
    ref_drop(L.current);
    L.current = NULL;
    free(L.url);
    L.url = NULL;
}
