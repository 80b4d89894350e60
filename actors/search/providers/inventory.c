/* The `inventory` provider: the embedded timetable and fare model (actors/search/inventory/,
 * docs/INVENTORY.md). Needs no keys and no network, so it is always configured; it comes
 * after the upstream providers (priority 100) and carries the product when they are absent.
 *
 * A call takes a counted reference to the worker's current reference data on the loop, runs
 * the search on the worker's thread pool and answers on the loop, releasing the reference.
 * Before the first bundle is loaded it answers FS_PROVIDER_FAILED, "reference data not loaded".
 */
#include "actors/search/inventory/inventory.h"
#include "actors/search/provider.h"

#include "runtime/alloc.h"
#include "runtime/threadpool.h"
#include "storage/refdata_live.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

typedef enum { JOB_SEARCH, JOB_CALENDAR, JOB_FLEXIBLE } job_kind_t;

typedef struct job job_t;

typedef struct inventory {
    fs_provider_env_t env;
    job_t *pending; /* submitted, not yet answered: orphaned on close */
} inventory_t;

struct job {
    job_t *prev, *next;
    inventory_t *self; /* NULL once the provider closed: answer nobody */
    job_kind_t kind;
    fs_refdata_ref_t *ref;
    fs_flexible_query_t q;        /* q.base is the query of every kind */
    fs_observed_fare_t *observed; /* the query's, copied: borrowed only during the call */
    int year, month;
    fs_inventory_rules_t rules; /* read on the loop: fs_cfg is not touched off it */
    const char *error;          /* set instead of running when the call cannot start */
    fs_offer_list_t *offers;
    fs_calendar_day_t days[31];
    int n_days;
    fs_provider_done_fn done;
    fs_calendar_done_fn calendar_done;
    void *arg;
};

static const char NOT_LOADED[] = "reference data not loaded";
static const char BUSY[] = "inventory: thread pool queue full";

static bool inventory_configured(void)
{
    return true;
}

static void *inventory_open(const fs_provider_env_t *env)
{
    inventory_t *self = FS_NEW(inventory_t);
    self->env = *env;
    return self;
}

static void inventory_close(void *arg)
{
    inventory_t *self = arg;
    for (job_t *j = self->pending; j; j = j->next)
        j->self = NULL;
    free(self);
}

static void unlink_job(job_t *j)
{
    if (!j->self)
        return;
    if (j->prev)
        j->prev->next = j->next;
    else
        j->self->pending = j->next;
    if (j->next)
        j->next->prev = j->prev;
}

static void job_free(job_t *j)
{
    if (j->ref)
        fs_refdata_release(j->ref);
    fs_offer_list_free(j->offers);
    free(j->observed);
    free(j);
}

/* Pool thread: the bundle is pinned by j->ref, the query is the job's own copy. */
static void job_work(void *arg)
{
    job_t *j = arg;
    const fs_refdata_t *r = fs_refdata_ref_data(j->ref);
    if (j->kind == JOB_CALENDAR) {
        j->n_days = fs_inventory_calendar(r, &j->q.base, &j->rules, j->year, j->month, j->days);
        return;
    }
    j->offers = fs_offer_list_new();
    if (j->kind == JOB_SEARCH)
        fs_inventory_search(r, &j->q.base, &j->rules, j->offers);
    else
        fs_inventory_flexible(r, &j->q, &j->rules, j->offers);
}

/* Loop thread: answer (unless the provider closed meanwhile) and drop the reference. */
static void job_after(void *arg)
{
    job_t *j = arg;
    unlink_job(j);
    if (j->self && j->kind == JOB_CALENDAR) {
        if (j->error || j->n_days == 0)
            j->calendar_done(FS_PROVIDER_FAILED, NULL, 0, j->error ? j->error : "invalid month", j->arg);
        else
            j->calendar_done(FS_PROVIDER_OK, j->days, j->n_days, NULL, j->arg);
    } else if (j->self) {
        fs_offer_list_t *offers = j->offers;
        j->offers = NULL;
        if (j->error)
            j->done(FS_PROVIDER_FAILED, NULL, j->error, j->arg);
        else
            j->done(FS_PROVIDER_OK, offers, NULL, j->arg);
    }
    job_free(j);
}

static void job_on_deferred(evutil_socket_t fd, short what, void *arg)
{
    job_after(arg);
}

static void job_start(inventory_t *self, job_t *j)
{
    j->self = self;
    j->rules = fs_inventory_rules_default();
    if (j->q.base.n_observed) {
        j->observed = fs_malloc(j->q.base.n_observed * sizeof *j->observed);
        memcpy(j->observed, j->q.base.observed, j->q.base.n_observed * sizeof *j->observed);
    }
    j->q.base.observed = j->observed;
    j->next = self->pending;
    if (self->pending)
        self->pending->prev = j;
    self->pending = j;
    j->ref = fs_refdata_acquire();
    if (!j->ref)
        j->error = NOT_LOADED;
    else if (fs_threadpool_submit(self->env.pool, job_work, job_after, j) == 0)
        return;
    else
        j->error = BUSY;
    struct timeval now = {0, 0}; /* the answer must not come inside the call */
    event_base_once(self->env.base, -1, EV_TIMEOUT, job_on_deferred, j, &now);
}

static void inventory_search(void *self, const fs_search_query_t *q, int timeout_ms, fs_provider_done_fn done,
                             void *arg)
{
    job_t *j = FS_NEW(job_t);
    j->kind = JOB_SEARCH, j->q.base = *q, j->done = done, j->arg = arg;
    job_start(self, j);
}

static void inventory_calendar(void *self, const fs_search_query_t *q, int year, int month, int timeout_ms,
                               fs_calendar_done_fn done, void *arg)
{
    job_t *j = FS_NEW(job_t);
    j->kind = JOB_CALENDAR, j->q.base = *q, j->year = year, j->month = month;
    j->calendar_done = done, j->arg = arg;
    job_start(self, j);
}

static void inventory_flexible(void *self, const fs_flexible_query_t *q, int timeout_ms,
                               fs_provider_done_fn done, void *arg)
{
    job_t *j = FS_NEW(job_t);
    j->kind = JOB_FLEXIBLE, j->q = *q, j->done = done, j->arg = arg;
    job_start(self, j);
}

const fs_provider_ops_t fs_provider_inventory = {
    .name = "inventory",
    .priority = 100,
    .requests_per_minute = 0,
    .timeout_ms = 2000,
    .configured = inventory_configured,
    .open = inventory_open,
    .close = inventory_close,
    .search = inventory_search,
    .calendar = inventory_calendar,
    .flexible = inventory_flexible,
};
