/* The provider manager (manager.h, docs/PROVIDERS.md).
 *
 * A request (search, calendar, flexible, status) is a `job`; every call into a provider is a
 * `pcall` with its own timer. The two live apart on purpose: a job may end (deadline,
 * fallback won) while calls it made are still out, and a call that timed out is still waited
 * for so its late answer can be dropped safely. A pcall is freed when its provider answers,
 * or at manager free after the providers are closed (a provider's close guarantees it never
 * answers afterwards).
 *
 * Jobs start from a zero timer, so no callback ever runs inside the call that started it,
 * even when nothing can be asked.
 */
#include "actors/search/manager.h"

#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#include <ctype.h>
#include <event2/event.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_TIMEOUT_MS 10000
#define SIG_CAP 512

typedef enum { H_HEALTHY, H_DEGRADED, H_UNAVAILABLE } health_t;
static const char *const HEALTH_NAMES[] = {"healthy", "degraded", "unavailable"};

typedef enum { JOB_SEARCH, JOB_CALENDAR, JOB_FLEXIBLE, JOB_STATUS } job_kind_t;
static const char *const OP_NAMES[] = {"search", "calendar", "flexible", "probe"};

/* Outcome labels of flightshark_provider_calls_total. */
enum { OC_OK, OC_FAILED, OC_TIMEOUT, OC_RATE_LIMITED, OC_REFUSED, OC_BAD_QUERY, OC_N };
static const char *const OC_NAMES[] = {"ok", "failed", "timeout", "rate_limited", "refused", "bad_query"};

typedef struct prov {
    const fs_provider_ops_t *ops;
    void *self;
    bool configured;
    int timeout_ms;
    /* health */
    health_t status;
    int failures;          /* consecutive */
    double unavailable_at; /* monotonic ms */
    bool trial;            /* the trial call of an unavailable provider is out */
    /* stats (search and flexible calls) */
    uint64_t total, ok, results, rate_limited, refused, bad_query, timeouts;
    double avg_ms;
    /* token bucket */
    double tokens, capacity, per_ms, refilled_at;
    /* metrics (NULL without a registry) */
    fs_metric_series_t *m_searches, *m_status, *m_latency, *m_calls[4][OC_N];
} prov_t;

typedef struct job job_t;

typedef struct pcall {
    fs_provider_manager_t *m;
    job_t *job;            /* NULL once the job stopped waiting */
    int pi;
    job_kind_t kind;
    struct event *timer;
    double t0;
    bool trial, settled;   /* settled: health and stats accounted (answer or timeout) */
    struct pcall *prev, *next;
} pcall_t;

struct job {
    fs_provider_manager_t *m;
    job_kind_t kind;
    fs_strategy_t strategy;
    fs_search_query_t q;
    fs_observed_fare_t *observed;
    fs_flexible_query_t fq;
    int year, month;
    int deadline_ms;
    struct event *kick, *deadline;
    int *order, n_order, cursor; /* provider indices to ask, in priority order */
    int outstanding, called, asked, answered_ok;
    bool concurrent;
    fs_offer_list_t **results; /* per provider index (concurrent strategies) */
    fs_offer_list_t *winner;   /* sequential: the first non-empty answer */
    fs_calendar_day_t *days;
    int n_days;
    bool have_days;
    signed char *probe;        /* status: -1 pending, 0, 1 */
    char err[256];
    fs_manager_done_fn done;
    fs_manager_calendar_fn cal_done;
    void (*status_done)(json_t *, void *);
    void *arg;
    job_t *prev, *next;
};

struct fs_provider_manager {
    fs_provider_env_t env;
    prov_t *provs; /* sorted by priority */
    int n;
    job_t *jobs;
    pcall_t *pcalls;
    bool closing;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cfg_int(int v, int dflt)
{
    return fs_cfg ? v : dflt;
}

/* ---- strategies ----------------------------------------------------------------------------- */

static const char *const STRATEGY_NAMES[] = {"fallback", "parallel", "best_price"};

bool fs_strategy_parse(const char *s, fs_strategy_t *out)
{
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, STRATEGY_NAMES[i]) == 0) {
            *out = (fs_strategy_t)i;
            return true;
        }
    return false;
}

const char *fs_strategy_name(fs_strategy_t s)
{
    return (unsigned)s < 3 ? STRATEGY_NAMES[s] : "fallback";
}

/* ---- providers: settings, rate limit, health ------------------------------------------------ */

/* <NAME>_<suffix> as a positive integer, or `dflt`. */
static int setting_int(const char *name, const char *suffix, int dflt)
{
    char key[96];
    snprintf(key, sizeof key, "%s_%s", name, suffix);
    for (char *k = key; *k; k++)
        *k = (char)toupper((unsigned char)*k);
    const char *v = fs_config_extra(fs_cfg, key);
    if (!v || !*v)
        return dflt;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < 0 || x > 100000000) {
        fs_warn("%s: not a usable number (%s), using %d", key, v, dflt);
        return dflt;
    }
    return (int)x;
}

/* The upstream's limit is per account, shared by every worker of every process using the key,
 * so each worker takes its share: requests_per_minute / workers, with a bucket of one minute's
 * share (at least one call). */
static void limiter_init(prov_t *p)
{
    int rpm = setting_int(p->ops->name, "RATE_PER_MINUTE", p->ops->requests_per_minute);
    if (rpm <= 0) {
        p->capacity = 0;
        return;
    }
    int workers = fs_cfg ? fs_config_worker_count(fs_cfg) : 1;
    double share = (double)rpm / (workers > 0 ? workers : 1);
    p->capacity = share < 1 ? 1 : share;
    p->per_ms = share / 60000.0;
    p->tokens = p->capacity;
    p->refilled_at = now_ms();
}

static bool limiter_take(prov_t *p)
{
    if (p->capacity <= 0)
        return true;
    double t = now_ms();
    p->tokens = fmin(p->capacity, p->tokens + (t - p->refilled_at) * p->per_ms);
    p->refilled_at = t;
    if (p->tokens < 1)
        return false;
    p->tokens -= 1;
    return true;
}

static void set_status(prov_t *p, health_t h)
{
    if (p->status != h)
        fs_info("provider %s: %s -> %s (consecutive failures %d)", p->ops->name, HEALTH_NAMES[p->status],
                HEALTH_NAMES[h], p->failures);
    p->status = h;
    if (p->m_status)
        fs_metric_set(p->m_status, (double)h);
}

static bool is_available(const prov_t *p)
{
    return p->configured && p->status != H_UNAVAILABLE;
}

/* May a call go to `p` now? An unavailable provider gets one trial call once the retry
 * interval has passed since it became (or stayed) unavailable. */
static bool callable(const prov_t *p, bool *trial)
{
    *trial = false;
    if (!p->configured)
        return false;
    if (p->status != H_UNAVAILABLE)
        return true;
    double wait = cfg_int(fs_cfg ? fs_cfg->provider_retry_after_s : 0, 60) * 1000.0;
    if (p->trial || now_ms() - p->unavailable_at < wait)
        return false;
    *trial = true;
    return true;
}

static void record_failure(prov_t *p)
{
    p->failures++;
    int degraded = cfg_int(fs_cfg ? fs_cfg->provider_degraded_after : 0, 3);
    int unavailable = cfg_int(fs_cfg ? fs_cfg->provider_unavailable_after : 0, 10);
    if (p->failures >= unavailable) {
        if (p->status != H_UNAVAILABLE || p->trial)
            p->unavailable_at = now_ms();
        set_status(p, H_UNAVAILABLE);
    } else if (p->failures >= degraded) {
        set_status(p, H_DEGRADED);
    }
}

static void count_call(prov_t *p, job_kind_t kind, int oc)
{
    if (p->m_calls[kind][oc])
        fs_metric_inc(p->m_calls[kind][oc], 1);
}

/* Health and stats for one settled call. */
static void account(prov_t *p, pcall_t *c, fs_provider_outcome_t outcome, bool timed_out, size_t n_results)
{
    double ms = now_ms() - c->t0;
    bool stats = c->kind == JOB_SEARCH || c->kind == JOB_FLEXIBLE;
    if (stats)
        p->total++;
    if (p->m_latency)
        fs_metric_observe(p->m_latency, ms / 1000.0);
    switch (outcome) {
    case FS_PROVIDER_OK:
        count_call(p, c->kind, OC_OK);
        if (stats) {
            p->ok++;
            p->results += n_results;
            p->avg_ms += (ms - p->avg_ms) / (double)p->ok;
        }
        p->failures = 0;
        set_status(p, H_HEALTHY);
        break;
    case FS_PROVIDER_FAILED:
        count_call(p, c->kind, timed_out ? OC_TIMEOUT : OC_FAILED);
        p->timeouts += timed_out && stats;
        record_failure(p);
        break;
    case FS_PROVIDER_RATE_LIMITED: /* the upstream is up, only busy: health untouched */
        count_call(p, c->kind, OC_RATE_LIMITED);
        p->rate_limited += stats;
        if (c->trial)
            p->unavailable_at = now_ms();
        break;
    case FS_PROVIDER_BAD_QUERY: /* our query, not their fault (defect 23 of the original) */
        count_call(p, c->kind, OC_BAD_QUERY);
        p->bad_query += stats;
        if (c->trial)
            p->unavailable_at = now_ms();
        break;
    }
    if (c->trial)
        p->trial = false;
}

/* ---- calls ---------------------------------------------------------------------------------- */

static void pcall_unlink_free(pcall_t *c)
{
    fs_provider_manager_t *m = c->m;
    if (c->prev)
        c->prev->next = c->next;
    else
        m->pcalls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->timer)
        event_free(c->timer);
    free(c);
}

static void job_on_search(job_t *j, int pi, fs_provider_outcome_t outcome, fs_offer_list_t *offers, const char *error);
static void job_on_calendar(job_t *j, int pi, fs_provider_outcome_t outcome, const fs_calendar_day_t *days, int n_days,
                            const char *error);
static void job_on_probe(job_t *j, int pi, bool ok);

/* The per-call timeout: account a failure now and hand the job a timeout; the provider's answer,
 * whenever it comes, is dropped. */
static void pcall_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    pcall_t *c = arg;
    prov_t *p = &c->m->provs[c->pi];
    c->settled = true;
    if (c->kind != JOB_STATUS)
        account(p, c, FS_PROVIDER_FAILED, true, 0);
    fs_warn("provider %s: %s timed out after %d ms", p->ops->name, OP_NAMES[c->kind], p->timeout_ms);
    job_t *j = c->job;
    c->job = NULL;
    if (!j)
        return;
    j->outstanding--;
    if (c->kind == JOB_STATUS)
        job_on_probe(j, c->pi, false);
    else if (c->kind == JOB_CALENDAR)
        job_on_calendar(j, c->pi, FS_PROVIDER_FAILED, NULL, 0, "timeout");
    else
        job_on_search(j, c->pi, FS_PROVIDER_FAILED, NULL, "timeout");
}

static pcall_t *pcall_new(job_t *j, int pi, bool trial)
{
    fs_provider_manager_t *m = j->m;
    pcall_t *c = FS_NEW(pcall_t);
    c->m = m;
    c->job = j;
    c->pi = pi;
    c->kind = j->kind;
    c->trial = trial;
    c->t0 = now_ms();
    c->timer = evtimer_new(m->env.base, pcall_on_timeout, c);
    int ms = m->provs[pi].timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    c->next = m->pcalls;
    if (m->pcalls)
        m->pcalls->prev = c;
    m->pcalls = c;
    j->outstanding++;
    return c;
}

/* Settles an answered call. Returns the job still waiting for it (NULL when the answer is late). */
static job_t *pcall_answered(pcall_t *c, fs_provider_outcome_t outcome, size_t n_results, bool *late)
{
    *late = c->settled;
    job_t *j = c->job;
    if (!c->settled && c->kind != JOB_STATUS)
        account(&c->m->provs[c->pi], c, outcome, false, n_results);
    pcall_unlink_free(c);
    return *late ? NULL : j;
}

static void on_search_done(fs_provider_outcome_t outcome, fs_offer_list_t *offers, const char *error, void *arg)
{
    pcall_t *c = arg;
    int pi = c->pi;
    bool late;
    if (outcome == FS_PROVIDER_OK && !offers)
        offers = fs_offer_list_new();
    if (outcome != FS_PROVIDER_OK && offers) {
        fs_offer_list_free(offers);
        offers = NULL;
    }
    job_t *j = pcall_answered(c, outcome, offers ? offers->n : 0, &late);
    if (!j) {
        fs_offer_list_free(offers);
        return;
    }
    j->outstanding--;
    job_on_search(j, pi, outcome, offers, error);
}

static void on_calendar_done(fs_provider_outcome_t outcome, const fs_calendar_day_t *days, int n_days,
                             const char *error, void *arg)
{
    pcall_t *c = arg;
    int pi = c->pi;
    bool late;
    job_t *j = pcall_answered(c, outcome, (size_t)n_days, &late);
    if (!j)
        return;
    j->outstanding--;
    job_on_calendar(j, pi, outcome, days, n_days, error);
}

static void on_probe_done(bool ok, void *arg)
{
    pcall_t *c = arg;
    int pi = c->pi;
    bool late;
    job_t *j = pcall_answered(c, ok ? FS_PROVIDER_OK : FS_PROVIDER_FAILED, 0, &late);
    if (!j)
        return;
    j->outstanding--;
    job_on_probe(j, pi, ok);
}

/* Starts one call of the job's kind to provider `pi`. Returns false when our own rate limit
 * refused it (nothing went out). */
static bool call_provider(job_t *j, int pi, bool trial)
{
    fs_provider_manager_t *m = j->m;
    prov_t *p = &m->provs[pi];
    if (j->kind != JOB_STATUS && !limiter_take(p)) {
        count_call(p, j->kind, OC_REFUSED);
        p->refused += j->kind == JOB_SEARCH || j->kind == JOB_FLEXIBLE;
        return false;
    }
    if (trial)
        p->trial = true;
    pcall_t *c = pcall_new(j, pi, trial);
    j->asked++;
    switch (j->kind) {
    case JOB_SEARCH:
        j->called++;
        if (p->m_searches)
            fs_metric_inc(p->m_searches, 1);
        p->ops->search(p->self, &j->q, p->timeout_ms, on_search_done, c);
        break;
    case JOB_FLEXIBLE:
        j->called++;
        if (p->m_searches)
            fs_metric_inc(p->m_searches, 1);
        p->ops->flexible(p->self, &j->fq, p->timeout_ms, on_search_done, c);
        break;
    case JOB_CALENDAR:
        j->called++;
        p->ops->calendar(p->self, &j->q, j->year, j->month, p->timeout_ms, on_calendar_done, c);
        break;
    case JOB_STATUS:
        p->ops->probe(p->self, on_probe_done, c);
        break;
    }
    return true;
}

/* ---- jobs ----------------------------------------------------------------------------------- */

static void job_note_error(job_t *j, int pi, const char *error)
{
    size_t len = strlen(j->err);
    snprintf(j->err + len, sizeof j->err - len, "%s%s: %s", len ? "; " : "", j->m->provs[pi].ops->name,
             error && *error ? error : "failed");
}

static bool has_op(const prov_t *p, job_kind_t kind)
{
    switch (kind) {
    case JOB_SEARCH: return p->ops->search != NULL;
    case JOB_CALENDAR: return p->ops->calendar != NULL;
    case JOB_FLEXIBLE: return p->ops->flexible != NULL;
    case JOB_STATUS: return p->configured && p->ops->probe != NULL;
    }
    return false;
}

/* Sequential jobs ask the next callable provider once nothing is out. */
static void job_advance(job_t *j)
{
    while (j->outstanding == 0 && j->cursor < j->n_order) {
        int pi = j->order[j->cursor++];
        bool trial;
        if (!callable(&j->m->provs[pi], &trial))
            continue;
        if (!call_provider(j, pi, trial)) {
            job_note_error(j, pi, "rate limit (local)");
            j->asked++;
        }
    }
}

static void detach_calls(job_t *j)
{
    for (pcall_t *c = j->m->pcalls; c; c = c->next)
        if (c->job == j)
            c->job = NULL;
}

static void job_unlink(job_t *j)
{
    fs_provider_manager_t *m = j->m;
    if (j->prev)
        j->prev->next = j->next;
    else
        m->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
}

static void job_free(job_t *j)
{
    if (j->kick)
        event_free(j->kick);
    if (j->deadline)
        event_free(j->deadline);
    for (int i = 0; j->results && i < j->m->n; i++)
        fs_offer_list_free(j->results[i]);
    free(j->results);
    fs_offer_list_free(j->winner);
    free(j->order);
    free(j->observed);
    free(j->days);
    free(j->probe);
    free(j);
}

/* Keeps the first offer of every signature, or with `cheapest` the cheapest one (the first
 * among equal prices), in the position of the first. */
static void dedup(fs_offer_list_t *l, bool cheapest)
{
    size_t cap = 16;
    while (cap < l->n * 2)
        cap *= 2;
    int64_t *slot = fs_malloc(cap * sizeof *slot);
    for (size_t i = 0; i < cap; i++)
        slot[i] = -1;
    char (*sigs)[SIG_CAP] = fs_malloc((l->n ? l->n : 1) * sizeof *sigs);
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++) {
        fs_offer_signature(&l->items[i], sigs[kept], SIG_CAP);
        uint64_t h = 1469598103934665603ull;
        for (const char *s = sigs[kept]; *s; s++)
            h = (h ^ (unsigned char)*s) * 1099511628211ull;
        size_t at = h & (cap - 1);
        while (slot[at] >= 0 && strcmp(sigs[slot[at]], sigs[kept]) != 0)
            at = (at + 1) & (cap - 1);
        if (slot[at] < 0) {
            slot[at] = (int64_t)kept;
            l->items[kept++] = l->items[i];
        } else if (cheapest && l->items[i].price < l->items[slot[at]].price) {
            l->items[slot[at]] = l->items[i];
        }
    }
    l->n = kept;
    free(sigs);
    free(slot);
}

static fs_offer_list_t *job_offers(job_t *j)
{
    fs_offer_list_t *out = fs_offer_list_new();
    if (j->winner) {
        fs_offer_list_extend(out, j->winner);
    } else if (j->results) {
        for (int i = 0; i < j->m->n; i++) /* provider indices are in priority order */
            if (j->results[i])
                fs_offer_list_extend(out, j->results[i]);
    }
    dedup(out, j->kind == JOB_SEARCH && j->strategy == FS_STRATEGY_BEST_PRICE);
    fs_offer_list_sort_by_price(out);
    return out;
}

static json_t *status_json(fs_provider_manager_t *m, const signed char *probe)
{
    json_t *providers = json_object(), *health = json_object(), *avail = json_array();
    for (int i = 0; i < m->n; i++) {
        prov_t *p = &m->provs[i];
        double rate = p->total ? round(1e4 * (double)p->ok / (double)p->total) / 100.0 : 0.0;
        json_t *o = json_pack("{s:I, s:I, s:I, s:f, s:s, s:b, s:b, s:i, s:f, s:I, s:I, s:I, s:I, s:i}",
                              "total_searches", (json_int_t)p->total, "successful_searches", (json_int_t)p->ok,
                              "total_results", (json_int_t)p->results, "avg_response_time_ms",
                              round(p->avg_ms * 100) / 100, "status", HEALTH_NAMES[p->status], "is_configured",
                              p->configured, "is_available", is_available(p), "priority", p->ops->priority,
                              "success_rate", rate, "rate_limited", (json_int_t)p->rate_limited,
                              "rate_limited_locally", (json_int_t)p->refused, "bad_queries",
                              (json_int_t)p->bad_query, "timeouts", (json_int_t)p->timeouts,
                              "consecutive_failures", p->failures);
        json_object_set_new(providers, p->ops->name, o);
        bool ok = probe && probe[i] >= 0 ? probe[i] == 1 : p->configured && !p->ops->probe;
        json_object_set_new(health, p->ops->name, json_boolean(ok));
        if (is_available(p))
            json_array_append_new(avail, json_string(p->ops->name));
    }
    return json_pack("{s:o, s:o, s:o}", "providers", providers, "health", health, "available_providers", avail);
}

static void calendar_blank(job_t *j)
{
    j->n_days = fs_days_in_month(j->year, j->month);
    j->days = fs_calloc((size_t)j->n_days, sizeof *j->days);
    for (int d = 0; d < j->n_days; d++) {
        j->days[d].date = (fs_date_t){j->year, j->month, d + 1};
        memcpy(j->days[d].currency, "EUR", 4);
    }
}

/* Ends the job: calls still out are left to their own timers; the callback runs last, after
 * the job is gone, so it may start new requests. */
static void job_finish(job_t *j, const char *why)
{
    detach_calls(j);
    job_unlink(j);
    fs_provider_manager_t *m = j->m;
    const char *error = NULL;
    char errbuf[320];
    if (why) {
        snprintf(errbuf, sizeof errbuf, "%s%s%s", why, j->err[0] ? ": " : "", j->err);
        error = errbuf;
    } else if (j->asked > 0 && j->answered_ok == 0) {
        snprintf(errbuf, sizeof errbuf, "all providers failed: %s", j->err);
        error = errbuf;
    }
    void *arg = j->arg;
    switch (j->kind) {
    case JOB_SEARCH:
    case JOB_FLEXIBLE: {
        fs_offer_list_t *offers = job_offers(j);
        if (offers->n > 0)
            error = NULL;
        fs_manager_done_fn done = j->done;
        int called = j->called;
        job_free(j);
        done(offers, called, error, arg);
        return;
    }
    case JOB_CALENDAR: {
        if (!j->days)
            calendar_blank(j);
        if (j->have_days)
            error = NULL;
        fs_calendar_day_t *days = j->days;
        int n = j->n_days;
        j->days = NULL;
        fs_manager_calendar_fn done = j->cal_done;
        job_free(j);
        done(days, n, error, arg);
        free(days);
        return;
    }
    case JOB_STATUS: {
        json_t *st = status_json(m, j->probe);
        void (*done)(json_t *, void *) = j->status_done;
        job_free(j);
        done(st, arg);
        return;
    }
    }
}

static void job_maybe_finish(job_t *j)
{
    if (j->outstanding == 0 && (j->concurrent || j->cursor >= j->n_order))
        job_finish(j, NULL);
}

static void job_on_search(job_t *j, int pi, fs_provider_outcome_t outcome, fs_offer_list_t *offers, const char *error)
{
    if (outcome != FS_PROVIDER_OK) {
        job_note_error(j, pi, error);
    } else {
        j->answered_ok++;
        if (j->concurrent) {
            j->results[pi] = offers;
            offers = NULL;
        } else if (offers->n > 0) {
            j->winner = offers;
            job_finish(j, NULL);
            return;
        }
    }
    fs_offer_list_free(offers);
    if (!j->concurrent)
        job_advance(j);
    job_maybe_finish(j);
}

static void job_on_calendar(job_t *j, int pi, fs_provider_outcome_t outcome, const fs_calendar_day_t *days, int n_days,
                            const char *error)
{
    if (outcome != FS_PROVIDER_OK) {
        job_note_error(j, pi, error);
    } else {
        j->answered_ok++;
        calendar_blank(j);
        bool any = false;
        for (int d = 0; days && d < n_days && d < j->n_days; d++)
            if (days[d].has_price) {
                j->days[d] = days[d];
                j->days[d].date = (fs_date_t){j->year, j->month, d + 1};
                any = true;
            }
        if (any) {
            j->have_days = true;
            job_finish(j, NULL);
            return;
        }
        free(j->days);
        j->days = NULL;
    }
    job_advance(j);
    job_maybe_finish(j);
}

static void job_on_probe(job_t *j, int pi, bool ok)
{
    j->probe[pi] = ok;
    job_maybe_finish(j);
}

static void job_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    job_t *j = arg;
    if (j->kind == JOB_STATUS) {
        job_finish(j, NULL); /* probes still out count as unhealthy */
        return;
    }
    job_finish(j, j->answered_ok ? NULL : "deadline exceeded");
}

static void job_on_kick(evutil_socket_t fd, short what, void *arg)
{
    job_t *j = arg;
    if (j->concurrent) {
        for (int k = 0; k < j->n_order; k++) {
            int pi = j->order[k];
            bool trial;
            if (j->kind == JOB_STATUS) {
                call_provider(j, pi, false);
                continue;
            }
            if (!callable(&j->m->provs[pi], &trial))
                continue;
            if (!call_provider(j, pi, trial)) {
                job_note_error(j, pi, "rate limit (local)");
                j->asked++;
            }
        }
        j->cursor = j->n_order;
    } else {
        job_advance(j);
    }
    job_maybe_finish(j);
}

static job_t *job_new(fs_provider_manager_t *m, job_kind_t kind, int deadline_ms, void *arg)
{
    job_t *j = FS_NEW(job_t);
    j->m = m;
    j->kind = kind;
    j->arg = arg;
    j->order = fs_malloc((size_t)(m->n ? m->n : 1) * sizeof *j->order);
    for (int i = 0; i < m->n; i++)
        if (has_op(&m->provs[i], kind))
            j->order[j->n_order++] = i;
    if (deadline_ms <= 0)
        deadline_ms = cfg_int(fs_cfg ? fs_cfg->search_deadline_ms : 0, 8000);
    j->deadline_ms = deadline_ms;
    j->kick = evtimer_new(m->env.base, job_on_kick, j);
    j->deadline = evtimer_new(m->env.base, job_on_deadline, j);
    struct timeval zero = {0, 0}, dl = {deadline_ms / 1000, (deadline_ms % 1000) * 1000};
    evtimer_add(j->kick, &zero);
    evtimer_add(j->deadline, &dl);
    j->next = m->jobs;
    if (m->jobs)
        m->jobs->prev = j;
    m->jobs = j;
    return j;
}

static void copy_query(job_t *j, fs_search_query_t *dst, const fs_search_query_t *src)
{
    *dst = *src;
    if (src->observed && src->n_observed) {
        j->observed = fs_malloc(src->n_observed * sizeof *j->observed);
        memcpy(j->observed, src->observed, src->n_observed * sizeof *j->observed);
        dst->observed = j->observed;
    } else {
        dst->observed = NULL;
        dst->n_observed = 0;
    }
}

/* ---- public --------------------------------------------------------------------------------- */

static int by_priority(const void *a, const void *b)
{
    const prov_t *x = a, *y = b;
    if (x->ops->priority != y->ops->priority)
        return x->ops->priority < y->ops->priority ? -1 : 1;
    return strcmp(x->ops->name, y->ops->name);
}

static void metrics_init(fs_provider_manager_t *m)
{
    fs_metrics_t *reg = m->env.metrics;
    if (!reg)
        return;
    static const char *const by_p[] = {"provider", NULL};
    static const char *const by_poo[] = {"provider", "op", "outcome", NULL};
    static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    fs_metric_family_t *searches = fs_metrics_family(reg, FS_METRIC_COUNTER, "flightshark_provider_searches_total",
                                                     "Searches sent to a flight provider", by_p, NULL, 0);
    fs_metric_family_t *calls = fs_metrics_family(reg, FS_METRIC_COUNTER, "flightshark_provider_calls_total",
                                                  "Provider calls by operation and outcome", by_poo, NULL, 0);
    fs_metric_family_t *lat = fs_metrics_family(reg, FS_METRIC_HISTOGRAM, "flightshark_provider_latency_seconds",
                                                "Provider call latency", by_p, buckets,
                                                sizeof buckets / sizeof *buckets);
    fs_metric_family_t *status = fs_metrics_family(reg, FS_METRIC_GAUGE, "flightshark_provider_status",
                                                   "Provider health: 0 healthy, 1 degraded, 2 unavailable", by_p,
                                                   NULL, 0);
    for (int i = 0; i < m->n; i++) {
        prov_t *p = &m->provs[i];
        const char *name[] = {p->ops->name};
        p->m_searches = fs_metrics_series(searches, name);
        p->m_latency = fs_metrics_series(lat, name);
        p->m_status = fs_metrics_series(status, name);
        fs_metric_set(p->m_status, 0);
        for (int k = 0; k < 4; k++)
            for (int oc = 0; oc < OC_N; oc++) {
                if (k == JOB_STATUS)
                    continue;
                const char *labels[] = {p->ops->name, OP_NAMES[k], OC_NAMES[oc]};
                p->m_calls[k][oc] = fs_metrics_series(calls, labels);
            }
    }
}

fs_provider_manager_t *fs_provider_manager_new(const fs_provider_env_t *env, const fs_provider_ops_t *const *registry)
{
    fs_provider_manager_t *m = FS_NEW(fs_provider_manager_t);
    m->env = *env;
    for (const fs_provider_ops_t *const *r = registry; r && *r; r++)
        m->n++;
    m->provs = fs_calloc((size_t)(m->n ? m->n : 1), sizeof *m->provs);
    for (int i = 0; i < m->n; i++)
        m->provs[i].ops = registry[i];
    qsort(m->provs, (size_t)m->n, sizeof *m->provs, by_priority);
    for (int i = 0; i < m->n; i++) {
        prov_t *p = &m->provs[i];
        p->configured = !p->ops->configured || p->ops->configured();
        p->timeout_ms = setting_int(p->ops->name, "TIMEOUT_MS", p->ops->timeout_ms > 0 ? p->ops->timeout_ms
                                                                                     : DEFAULT_TIMEOUT_MS);
        if (p->timeout_ms <= 0)
            p->timeout_ms = DEFAULT_TIMEOUT_MS;
        limiter_init(p);
        if (p->configured && p->ops->open)
            p->self = p->ops->open(&m->env);
        fs_info("provider %s: priority %d, %s, timeout %d ms, rate %s", p->ops->name, p->ops->priority,
                p->configured ? "configured" : "not configured (never called)", p->timeout_ms,
                p->capacity > 0 ? "limited" : "unlimited");
    }
    metrics_init(m);
    return m;
}

void fs_provider_manager_free(fs_provider_manager_t *m)
{
    if (!m)
        return;
    m->closing = true;
    while (m->jobs)
        job_finish(m->jobs, "shutting down");
    for (int i = 0; i < m->n; i++)
        if (m->provs[i].configured && m->provs[i].ops->close)
            m->provs[i].ops->close(m->provs[i].self);
    while (m->pcalls) /* calls the providers will never answer now */
        pcall_unlink_free(m->pcalls);
    free(m->provs);
    free(m);
}

void fs_provider_manager_search(fs_provider_manager_t *m, const fs_search_query_t *q, fs_strategy_t s, int deadline_ms,
                                fs_manager_done_fn done, void *arg)
{
    if (m->closing) {
        done(fs_offer_list_new(), 0, "shutting down", arg);
        return;
    }
    job_t *j = job_new(m, JOB_SEARCH, deadline_ms, arg);
    j->strategy = s;
    j->concurrent = s != FS_STRATEGY_FALLBACK;
    j->done = done;
    copy_query(j, &j->q, q);
    if (j->concurrent)
        j->results = fs_calloc((size_t)(m->n ? m->n : 1), sizeof *j->results);
}

void fs_provider_manager_calendar(fs_provider_manager_t *m, const fs_search_query_t *q, int year, int month,
                                  int deadline_ms, fs_manager_calendar_fn done, void *arg)
{
    if (m->closing || month < 1 || month > 12) {
        done(NULL, 0, m->closing ? "shutting down" : "bad month", arg);
        return;
    }
    job_t *j = job_new(m, JOB_CALENDAR, deadline_ms, arg);
    j->cal_done = done;
    j->year = year;
    j->month = month;
    copy_query(j, &j->q, q);
}

void fs_provider_manager_flexible(fs_provider_manager_t *m, const fs_flexible_query_t *q, int deadline_ms,
                                  fs_manager_done_fn done, void *arg)
{
    if (m->closing) {
        done(fs_offer_list_new(), 0, "shutting down", arg);
        return;
    }
    job_t *j = job_new(m, JOB_FLEXIBLE, deadline_ms, arg);
    j->done = done;
    j->fq = *q;
    copy_query(j, &j->fq.base, &q->base);
}

void fs_provider_manager_status(fs_provider_manager_t *m, void (*done)(json_t *status, void *arg), void *arg)
{
    if (m->closing) {
        done(status_json(m, NULL), arg);
        return;
    }
    job_t *j = job_new(m, JOB_STATUS, 0, arg);
    j->status_done = done;
    j->concurrent = true;
    j->probe = fs_malloc((size_t)(m->n ? m->n : 1));
    memset(j->probe, -1, (size_t)(m->n ? m->n : 1));
}

int fs_provider_manager_reset(fs_provider_manager_t *m, const char *name)
{
    for (int i = 0; i < m->n; i++) {
        prov_t *p = &m->provs[i];
        if (strcmp(p->ops->name, name) != 0)
            continue;
        p->failures = 0;
        p->trial = false;
        set_status(p, H_HEALTHY);
        return 0;
    }
    return -1;
}
