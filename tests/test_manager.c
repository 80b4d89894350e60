/* The provider manager: strategies, dedup, health transitions (with the trial call and the
 * BAD_QUERY fix), rate limits, per-provider timeouts and the overall deadline, calendar,
 * flexible, status and reset, metrics. Test providers defined here answer from a script on
 * the loop; one test runs the real upstream providers against a local server. */
#include "actors/search/manager.h"
#include "runtime/config.h"
#include "runtime/http_client.h"
#include "runtime/metrics.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/harness.h"

#include <criterion/criterion.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct event_base *base;
static fs_config_t cfg;
static fs_metrics_t *metrics;

/* ---- scripted test providers ---------------------------------------------------------------- */

typedef struct pending {
    struct tp *tp;
    fs_provider_done_fn done;
    fs_calendar_done_fn cal_done;
    void (*probe_done)(bool, void *);
    void *arg;
    struct event *ev;
    struct pending *next;
} pending_t;

typedef struct tp {
    const char *name;
    /* script */
    fs_provider_outcome_t outcome;
    fs_offer_list_t offers;   /* copied into each answer */
    int delay_ms;             /* answer after this long */
    bool never;               /* never answer */
    bool configured;
    bool probe_ok;
    fs_calendar_day_t days[31];
    int n_days;
    /* record */
    int calls, cal_calls, flex_calls, probes, opened, closed;
    pending_t *pending;
} tp_t;

static tp_t alpha, beta, gamma_;

static void tp_reset(tp_t *t, const char *name)
{
    fs_offer_list_clear(&t->offers);
    memset(t, 0, sizeof *t);
    t->name = name;
    t->configured = true;
    t->probe_ok = true;
}

static void pending_drop(pending_t *p)
{
    pending_t **pp = &p->tp->pending;
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    event_free(p->ev);
    free(p);
}

static void on_fire(evutil_socket_t fd, short w, void *arg)
{
    pending_t *p = arg;
    tp_t *t = p->tp;
    if (p->probe_done) {
        p->probe_done(t->probe_ok, p->arg);
    } else if (p->cal_done) {
        if (t->outcome == FS_PROVIDER_OK)
            p->cal_done(FS_PROVIDER_OK, t->days, t->n_days, NULL, p->arg);
        else
            p->cal_done(t->outcome, NULL, 0, "scripted failure", p->arg);
    } else if (t->outcome == FS_PROVIDER_OK) {
        fs_offer_list_t *l = fs_offer_list_new();
        fs_offer_list_extend(l, &t->offers);
        p->done(FS_PROVIDER_OK, l, NULL, p->arg);
    } else {
        p->done(t->outcome, NULL, "scripted failure", p->arg);
    }
    pending_drop(p);
}

static pending_t *tp_pending(tp_t *t, void *arg)
{
    pending_t *p = calloc(1, sizeof *p);
    p->tp = t;
    p->arg = arg;
    p->ev = evtimer_new(base, on_fire, p);
    p->next = t->pending;
    t->pending = p;
    if (!t->never) {
        struct timeval tv = {t->delay_ms / 1000, (t->delay_ms % 1000) * 1000};
        evtimer_add(p->ev, &tv);
    }
    return p;
}

static void tp_search(void *self, const fs_search_query_t *q, int timeout_ms, fs_provider_done_fn done, void *arg)
{
    tp_t *t = self;
    t->calls++;
    tp_pending(t, arg)->done = done;
}

static void tp_calendar(void *self, const fs_search_query_t *q, int y, int m, int timeout_ms, fs_calendar_done_fn done,
                        void *arg)
{
    tp_t *t = self;
    t->cal_calls++;
    tp_pending(t, arg)->cal_done = done;
}

static void tp_flexible(void *self, const fs_flexible_query_t *q, int timeout_ms, fs_provider_done_fn done, void *arg)
{
    tp_t *t = self;
    t->flex_calls++;
    tp_pending(t, arg)->done = done;
}

static void tp_probe(void *self, void (*done)(bool, void *), void *arg)
{
    tp_t *t = self;
    t->probes++;
    tp_pending(t, arg)->probe_done = done;
}

/* close: pending answers are dropped, never delivered (the provider contract). */
static void tp_close(void *self)
{
    tp_t *t = self;
    t->closed++;
    while (t->pending)
        pending_drop(t->pending);
}

#define TEST_PROVIDER(var, NAME, PRIO, RPM, TIMEOUT, CAL, FLEX)                                                       \
    static bool var##_configured(void) { return var.configured; }                                                      \
    static void *var##_open(const fs_provider_env_t *env)                                                              \
    {                                                                                                                  \
        var.opened++;                                                                                                  \
        return &var;                                                                                                   \
    }                                                                                                                  \
    static const fs_provider_ops_t var##_ops = {                                                                       \
        .name = NAME, .priority = PRIO, .requests_per_minute = RPM, .timeout_ms = TIMEOUT,                             \
        .configured = var##_configured, .open = var##_open, .close = tp_close, .search = tp_search,                    \
        .calendar = CAL, .flexible = FLEX, .probe = tp_probe};

TEST_PROVIDER(alpha, "alpha", 1, 0, 300, NULL, NULL)
TEST_PROVIDER(beta, "beta", 2, 0, 300, tp_calendar, tp_flexible)
TEST_PROVIDER(gamma_, "gamma", 3, 0, 300, tp_calendar, tp_flexible)

/* Registry order differs from priority order on purpose. */
static const fs_provider_ops_t *const registry[] = {&gamma__ops, &alpha_ops, &beta_ops, NULL};

/* ---- fixtures ------------------------------------------------------------------------------- */

static fs_provider_manager_t *mgr;

static void setup(void)
{
    char *err = NULL;
    cr_assert_eq(fs_config_load(&cfg, NULL, NULL, &err), 0, "%s", err);
    cfg.workers = 1;
    cfg.provider_degraded_after = 3;
    cfg.provider_unavailable_after = 10;
    cfg.provider_retry_after_s = 1;
    cfg.search_deadline_ms = 3000;
    fs_cfg = &cfg;
    base = event_base_new();
    metrics = fs_metrics_new();
    tp_reset(&alpha, "alpha");
    tp_reset(&beta, "beta");
    tp_reset(&gamma_, "gamma");
}

static void teardown(void)
{
    fs_provider_manager_free(mgr);
    mgr = NULL;
    fs_metrics_free(metrics);
    tp_reset(&alpha, "alpha");
    tp_reset(&beta, "beta");
    tp_reset(&gamma_, "gamma");
    event_base_free(base);
    fs_config_free(&cfg);
    fs_cfg = NULL;
}

TestSuite(manager, .init = setup, .fini = teardown, .timeout = 60);

static fs_provider_manager_t *open_manager(void)
{
    fs_provider_env_t env = {.base = base, .metrics = metrics};
    mgr = fs_provider_manager_new(&env, registry);
    return mgr;
}

static void noop(evutil_socket_t fd, short w, void *a) {}

static void run_until(const int *count, int want, int ms)
{
    struct event *hb = event_new(base, -1, EV_PERSIST, noop, NULL);
    struct timeval tv = {0, 5000};
    event_add(hb, &tv);
    double t0 = fs_test_now_ms();
    while (*count < want && fs_test_now_ms() - t0 < ms)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(hb);
}

static void run_for(int ms)
{
    int never = 0;
    run_until(&never, 1, ms);
}

/* An offer of one direct segment; `flight` and `hour` make its signature. */
static void add_offer(tp_t *t, const char *id, const char *carrier, const char *flight, int hour, double price)
{
    fs_offer_t *o = fs_offer_list_add(&t->offers);
    snprintf(o->id, sizeof o->id, "%s-%s", t->name, id);
    snprintf(o->source, sizeof o->source, "%s", t->name);
    o->price = price;
    snprintf(o->cabin, sizeof o->cabin, "economy");
    o->n_out = 1;
    fs_segment_t *s = &o->out[0];
    snprintf(s->from, 4, "DUB");
    snprintf(s->to, 4, "LHR");
    snprintf(s->carrier, 4, "%s", carrier);
    snprintf(s->flight_number, sizeof s->flight_number, "%s", flight);
    s->dep_utc = 1906502400 + hour * 3600; /* 2030-06-01 */
    s->arr_utc = s->dep_utc + 80 * 60;
    s->duration_min = 80;
    fs_offer_finish(o);
}

static fs_search_query_t query(void)
{
    fs_search_query_t q = {.origin = "DUB", .destination = "LHR", .departure = {2030, 6, 1}, .passengers = 1};
    snprintf(q.origin_airports[0], 4, "DUB");
    snprintf(q.destination_airports[0], 4, "LHR");
    q.n_origin_airports = q.n_destination_airports = 1;
    q.now = time(NULL);
    return q;
}

typedef struct {
    int calls;
    fs_offer_list_t *offers;
    int called;
    char *error;
    bool *returned, early;
    double at_ms;
} result_t;

static void on_done(fs_offer_list_t *offers, int called, const char *error, void *arg)
{
    result_t *r = arg;
    r->calls++;
    cr_assert_not_null(offers);
    fs_offer_list_free(r->offers);
    r->offers = offers;
    r->called = called;
    free(r->error);
    r->error = error ? strdup(error) : NULL;
    r->at_ms = fs_test_now_ms();
    if (r->returned && !*r->returned)
        r->early = true;
}

static void result_free(result_t *r)
{
    fs_offer_list_free(r->offers);
    free(r->error);
    memset(r, 0, sizeof *r);
}

static result_t search(fs_strategy_t s, int deadline_ms)
{
    result_t r = {0};
    bool returned = false;
    r.returned = &returned;
    fs_search_query_t q = query();
    fs_provider_manager_search(mgr, &q, s, deadline_ms, on_done, &r);
    returned = true;
    run_until(&r.calls, 1, 10000);
    cr_assert_eq(r.calls, 1);
    cr_assert_not(r.early, "answered inside the call");
    r.returned = NULL;
    return r;
}

static json_t *status_now(void);

static json_t *provider_status(const char *name)
{
    json_t *st = status_now();
    json_t *p = json_incref(json_object_get(json_object_get(st, "providers"), name));
    json_decref(st);
    return p;
}

static const char *health_of(const char *name)
{
    static char buf[32];
    json_t *p = provider_status(name);
    snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(p, "status")));
    json_decref(p);
    return buf;
}

static long long stat_of(const char *name, const char *key)
{
    json_t *p = provider_status(name);
    long long v = json_integer_value(json_object_get(p, key));
    json_decref(p);
    return v;
}

/* ---- strategies ----------------------------------------------------------------------------- */

Test(manager, strategy_names)
{
    fs_strategy_t s;
    cr_assert(fs_strategy_parse("fallback", &s) && s == FS_STRATEGY_FALLBACK);
    cr_assert(fs_strategy_parse("parallel", &s) && s == FS_STRATEGY_PARALLEL);
    cr_assert(fs_strategy_parse("best_price", &s) && s == FS_STRATEGY_BEST_PRICE);
    cr_assert_not(fs_strategy_parse("cheapest", &s));
    cr_assert_not(fs_strategy_parse(NULL, &s));
    cr_assert_str_eq(fs_strategy_name(FS_STRATEGY_BEST_PRICE), "best_price");
}

Test(manager, fallback_goes_in_priority_order_and_skips_empty_answers)
{
    open_manager();
    cr_assert_eq(alpha.opened + beta.opened + gamma_.opened, 3);
    alpha.outcome = FS_PROVIDER_OK; /* no offers */
    add_offer(&beta, "1", "EI", "EI154", 8, 200);
    add_offer(&beta, "2", "EI", "EI156", 12, 100);
    add_offer(&gamma_, "1", "FR", "FR202", 9, 10);
    result_t r = search(FS_STRATEGY_FALLBACK, 0);
    cr_assert_null(r.error);
    cr_assert_eq(r.called, 2);
    cr_assert_eq(alpha.calls, 1);
    cr_assert_eq(beta.calls, 1);
    cr_assert_eq(gamma_.calls, 0);
    cr_assert_eq(r.offers->n, 2);
    cr_assert_str_eq(r.offers->items[0].id, "beta-2"); /* sorted by price */
    cr_assert_str_eq(r.offers->items[1].id, "beta-1");
    result_free(&r);
}

Test(manager, fallback_moves_on_after_a_failure_and_reports_when_all_fail)
{
    open_manager();
    alpha.outcome = FS_PROVIDER_FAILED;
    add_offer(&beta, "1", "EI", "EI154", 8, 200);
    result_t r = search(FS_STRATEGY_FALLBACK, 0);
    cr_assert_null(r.error);
    cr_assert_eq(r.offers->n, 1);
    result_free(&r);

    beta.outcome = FS_PROVIDER_FAILED;
    gamma_.outcome = FS_PROVIDER_RATE_LIMITED;
    r = search(FS_STRATEGY_FALLBACK, 0);
    cr_assert_not_null(r.error);
    cr_assert(strstr(r.error, "alpha") && strstr(r.error, "beta") && strstr(r.error, "gamma"), "%s", r.error);
    cr_assert_eq(r.offers->n, 0);
    cr_assert_eq(r.called, 3);
    result_free(&r);

    /* an empty success is not a failure: no error, just nothing */
    gamma_.outcome = FS_PROVIDER_OK;
    r = search(FS_STRATEGY_FALLBACK, 0);
    cr_assert_null(r.error);
    cr_assert_eq(r.offers->n, 0);
    result_free(&r);
}

Test(manager, parallel_dedups_keeping_the_higher_priority_offer)
{
    open_manager();
    add_offer(&alpha, "x", "EI", "EI154", 8, 300);
    add_offer(&beta, "x", "EI", "EI154", 8, 250); /* same flight, cheaper, lower priority */
    add_offer(&beta, "y", "FR", "FR100", 7, 100);
    add_offer(&gamma_, "y", "FR", "FR100", 7, 90);
    add_offer(&gamma_, "z", "BA", "BA830", 9, 400);
    result_t r = search(FS_STRATEGY_PARALLEL, 0);
    cr_assert_null(r.error);
    cr_assert_eq(r.called, 3);
    cr_assert_eq(r.offers->n, 3);
    cr_assert_str_eq(r.offers->items[0].id, "beta-y");
    cr_assert_str_eq(r.offers->items[1].id, "alpha-x");
    cr_assert_str_eq(r.offers->items[2].id, "gamma-z");
    result_free(&r);
}

Test(manager, best_price_keeps_the_cheapest_duplicate)
{
    open_manager();
    add_offer(&alpha, "x", "EI", "EI154", 8, 300);
    add_offer(&beta, "x", "EI", "EI154", 8, 250);
    add_offer(&beta, "y", "FR", "FR100", 7, 100);
    add_offer(&gamma_, "y", "FR", "FR100", 7, 90);
    add_offer(&gamma_, "x", "EI", "EI154", 8, 250); /* a tie keeps the higher priority one */
    result_t r = search(FS_STRATEGY_BEST_PRICE, 0);
    cr_assert_eq(r.offers->n, 2);
    cr_assert_str_eq(r.offers->items[0].id, "gamma-y");
    cr_assert_float_eq(r.offers->items[0].price, 90, 1e-9);
    cr_assert_str_eq(r.offers->items[1].id, "beta-x");
    result_free(&r);
}

Test(manager, parallel_keeps_what_succeeded)
{
    open_manager();
    alpha.outcome = FS_PROVIDER_FAILED;
    add_offer(&beta, "1", "EI", "EI154", 8, 200);
    gamma_.outcome = FS_PROVIDER_RATE_LIMITED;
    result_t r = search(FS_STRATEGY_PARALLEL, 0);
    cr_assert_null(r.error);
    cr_assert_eq(r.offers->n, 1);
    result_free(&r);
}

Test(manager, unconfigured_providers_are_never_called_and_none_left_is_empty)
{
    alpha.configured = false;
    gamma_.configured = false;
    open_manager();
    cr_assert_eq(alpha.opened, 0);
    beta.outcome = FS_PROVIDER_OK;
    result_t r = search(FS_STRATEGY_PARALLEL, 0);
    cr_assert_eq(alpha.calls + gamma_.calls, 0);
    cr_assert_eq(beta.calls, 1);
    result_free(&r);
    beta.configured = false; /* read once, at open */
    cr_assert_eq(fs_provider_manager_reset(mgr, "beta"), 0);
    fs_provider_manager_free(mgr);
    mgr = NULL;
    open_manager();
    r = search(FS_STRATEGY_FALLBACK, 0); /* nothing to ask: empty, answered on the loop */
    cr_assert_eq(r.called, 0);
    cr_assert_eq(r.offers->n, 0);
    cr_assert_null(r.error);
    result_free(&r);
}

/* ---- health --------------------------------------------------------------------------------- */

Test(manager, health_degraded_after_3_unavailable_after_10_trial_after_retry_interval)
{
    open_manager();
    alpha.outcome = FS_PROVIDER_FAILED;
    beta.outcome = FS_PROVIDER_OK;
    for (int i = 1; i <= 10; i++) {
        result_t r = search(FS_STRATEGY_FALLBACK, 0);
        result_free(&r);
        const char *want = i >= 10 ? "unavailable" : i >= 3 ? "degraded" : "healthy";
        cr_assert_str_eq(health_of("alpha"), want, "after %d failures", i);
    }
    cr_assert_eq(alpha.calls, 10);
    json_t *st = status_now();
    cr_assert_not(json_is_true(json_object_get(json_object_get(json_object_get(st, "providers"), "alpha"), "is_available")));
    json_t *avail = json_object_get(st, "available_providers");
    cr_assert_eq(json_array_size(avail), 2);
    cr_assert_str_eq(json_string_value(json_array_get(avail, 0)), "beta");
    json_decref(st);

    /* unavailable: skipped */
    result_t r = search(FS_STRATEGY_FALLBACK, 0);
    result_free(&r);
    cr_assert_eq(alpha.calls, 10);

    /* after the retry interval, one trial call; it fails: unavailable again, wait again */
    run_for(1100);
    r = search(FS_STRATEGY_FALLBACK, 0);
    result_free(&r);
    cr_assert_eq(alpha.calls, 11);
    r = search(FS_STRATEGY_FALLBACK, 0);
    result_free(&r);
    cr_assert_eq(alpha.calls, 11);
    cr_assert_str_eq(health_of("alpha"), "unavailable");

    /* the next trial succeeds: healthy */
    run_for(1100);
    alpha.outcome = FS_PROVIDER_OK;
    add_offer(&alpha, "1", "EI", "EI154", 8, 50);
    r = search(FS_STRATEGY_FALLBACK, 0);
    cr_assert_eq(alpha.calls, 12);
    cr_assert_eq(r.offers->n, 1);
    result_free(&r);
    cr_assert_str_eq(health_of("alpha"), "healthy");
    cr_assert_eq(stat_of("alpha", "consecutive_failures"), 0);
}

Test(manager, only_one_trial_call_at_a_time)
{
    open_manager();
    alpha.outcome = FS_PROVIDER_FAILED;
    for (int i = 0; i < 10; i++) {
        result_t r = search(FS_STRATEGY_FALLBACK, 0);
        result_free(&r);
    }
    cr_assert_str_eq(health_of("alpha"), "unavailable");
    run_for(1100);
    alpha.delay_ms = 100;
    alpha.outcome = FS_PROVIDER_OK;
    result_t a = {0}, b = {0};
    fs_search_query_t q = query();
    fs_provider_manager_search(mgr, &q, FS_STRATEGY_PARALLEL, 0, on_done, &a);
    fs_provider_manager_search(mgr, &q, FS_STRATEGY_PARALLEL, 0, on_done, &b);
    run_until(&a.calls, 1, 3000);
    run_until(&b.calls, 1, 3000);
    cr_assert_eq(alpha.calls, 11);
    cr_assert_str_eq(health_of("alpha"), "healthy");
    result_free(&a);
    result_free(&b);
}

Test(manager, reset_makes_a_provider_healthy_again)
{
    open_manager();
    alpha.outcome = FS_PROVIDER_FAILED;
    for (int i = 0; i < 10; i++) {
        result_t r = search(FS_STRATEGY_FALLBACK, 0);
        result_free(&r);
    }
    cr_assert_str_eq(health_of("alpha"), "unavailable");
    cr_assert_eq(fs_provider_manager_reset(mgr, "alpha"), 0);
    cr_assert_str_eq(health_of("alpha"), "healthy");
    cr_assert_eq(stat_of("alpha", "consecutive_failures"), 0);
    result_t r = search(FS_STRATEGY_FALLBACK, 0);
    result_free(&r);
    cr_assert_eq(alpha.calls, 11);
    cr_assert_eq(fs_provider_manager_reset(mgr, "kiwi"), -1);
}

Test(manager, bad_query_and_rate_limits_do_not_touch_health)
{
    open_manager();
    alpha.outcome = FS_PROVIDER_BAD_QUERY;
    for (int i = 0; i < 12; i++) {
        result_t r = search(FS_STRATEGY_FALLBACK, 0);
        result_free(&r);
    }
    cr_assert_str_eq(health_of("alpha"), "healthy");
    cr_assert_eq(stat_of("alpha", "consecutive_failures"), 0);
    cr_assert_eq(stat_of("alpha", "bad_queries"), 12);
    alpha.outcome = FS_PROVIDER_RATE_LIMITED;
    for (int i = 0; i < 12; i++) {
        result_t r = search(FS_STRATEGY_FALLBACK, 0);
        result_free(&r);
    }
    cr_assert_str_eq(health_of("alpha"), "healthy");
    cr_assert_eq(stat_of("alpha", "rate_limited"), 12);
    cr_assert_eq(stat_of("alpha", "total_searches"), 24);
    cr_assert_eq(stat_of("alpha", "successful_searches"), 0);
    /* both moved the fallback on */
    cr_assert_eq(beta.calls, 24);
    /* a failure in between still counts */
    alpha.outcome = FS_PROVIDER_FAILED;
    result_t r = search(FS_STRATEGY_FALLBACK, 0);
    result_free(&r);
    cr_assert_eq(stat_of("alpha", "consecutive_failures"), 1);
}

Test(manager, own_rate_limit_refuses_without_calling)
{
    setenv("ALPHA_RATE_PER_MINUTE", "2", 1);
    open_manager();
    unsetenv("ALPHA_RATE_PER_MINUTE");
    add_offer(&alpha, "1", "EI", "EI154", 8, 50);
    add_offer(&beta, "1", "FR", "FR100", 8, 60);
    result_t r = search(FS_STRATEGY_FALLBACK, 0);
    cr_assert_str_eq(r.offers->items[0].id, "alpha-1");
    result_free(&r);
    r = search(FS_STRATEGY_FALLBACK, 0);
    result_free(&r);
    r = search(FS_STRATEGY_FALLBACK, 0); /* the bucket (2 per minute) is empty */
    cr_assert_eq(alpha.calls, 2);
    cr_assert_eq(beta.calls, 1);
    cr_assert_eq(r.called, 1);
    cr_assert_str_eq(r.offers->items[0].id, "beta-1");
    result_free(&r);
    cr_assert_eq(stat_of("alpha", "rate_limited_locally"), 1);
    cr_assert_eq(stat_of("alpha", "total_searches"), 2);
    cr_assert_str_eq(health_of("alpha"), "healthy");
}

Test(manager, rate_limit_is_shared_among_workers)
{
    cfg.workers = 4;
    setenv("ALPHA_RATE_PER_MINUTE", "8", 1); /* 2 per worker */
    open_manager();
    unsetenv("ALPHA_RATE_PER_MINUTE");
    for (int i = 0; i < 4; i++) {
        result_t r = search(FS_STRATEGY_FALLBACK, 0);
        result_free(&r);
    }
    cr_assert_eq(alpha.calls, 2);
}

/* ---- timeouts ------------------------------------------------------------------------------- */

Test(manager, per_provider_timeout_with_a_provider_that_never_answers)
{
    setenv("ALPHA_TIMEOUT_MS", "150", 1);
    open_manager();
    unsetenv("ALPHA_TIMEOUT_MS");
    alpha.never = true;
    add_offer(&beta, "1", "EI", "EI154", 8, 200);
    double t0 = fs_test_now_ms();
    result_t r = search(FS_STRATEGY_FALLBACK, 0);
    double took = r.at_ms - t0;
    cr_assert_null(r.error);
    cr_assert_eq(r.offers->n, 1);
    cr_assert_eq(r.called, 2);
    cr_assert(took >= 140 && took < 1000, "took %.0f ms", took);
    result_free(&r);
    cr_assert_eq(stat_of("alpha", "timeouts"), 1);
    cr_assert_eq(stat_of("alpha", "consecutive_failures"), 1);
}

Test(manager, a_late_answer_is_discarded)
{
    setenv("ALPHA_TIMEOUT_MS", "100", 1);
    open_manager();
    unsetenv("ALPHA_TIMEOUT_MS");
    alpha.delay_ms = 300;
    add_offer(&alpha, "1", "EI", "EI154", 8, 1);
    add_offer(&beta, "1", "FR", "FR100", 8, 200);
    result_t r = search(FS_STRATEGY_PARALLEL, 0);
    cr_assert_eq(r.offers->n, 1);
    cr_assert_str_eq(r.offers->items[0].id, "beta-1");
    run_for(400); /* alpha answers now; nothing happens */
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(alpha.pending, NULL);
    cr_assert_eq(stat_of("alpha", "successful_searches"), 0);
    cr_assert_eq(stat_of("alpha", "timeouts"), 1);
    result_free(&r);
}

Test(manager, overall_deadline)
{
    setenv("ALPHA_TIMEOUT_MS", "5000", 1);
    setenv("BETA_TIMEOUT_MS", "5000", 1);
    open_manager();
    unsetenv("ALPHA_TIMEOUT_MS");
    unsetenv("BETA_TIMEOUT_MS");
    alpha.never = true;
    double t0 = fs_test_now_ms();
    result_t r = search(FS_STRATEGY_FALLBACK, 250);
    double took = r.at_ms - t0;
    cr_assert(took >= 240 && took < 1000, "took %.0f ms", took);
    cr_assert_not_null(r.error);
    cr_assert(strstr(r.error, "deadline"), "%s", r.error);
    cr_assert_eq(r.offers->n, 0);
    result_free(&r);

    /* parallel: what arrived before the deadline is the answer */
    add_offer(&beta, "1", "EI", "EI154", 8, 200);
    t0 = fs_test_now_ms();
    r = search(FS_STRATEGY_PARALLEL, 250);
    took = r.at_ms - t0;
    cr_assert(took >= 240 && took < 1000, "took %.0f ms", took);
    cr_assert_null(r.error);
    cr_assert_eq(r.offers->n, 1);
    result_free(&r);
}

Test(manager, free_completes_pending_searches_first)
{
    open_manager();
    alpha.never = true;
    result_t r = {0};
    fs_search_query_t q = query();
    fs_provider_manager_search(mgr, &q, FS_STRATEGY_FALLBACK, 0, on_done, &r);
    run_for(30);
    cr_assert_eq(r.calls, 0);
    fs_provider_manager_free(mgr);
    mgr = NULL;
    cr_assert_eq(r.calls, 1);
    cr_assert(r.error && strstr(r.error, "shutting down"), "%s", r.error);
    cr_assert_eq(alpha.closed, 1);
    cr_assert_eq(beta.closed, 1);
    result_free(&r);
}

/* ---- calendar, flexible --------------------------------------------------------------------- */

typedef struct {
    int calls, n;
    fs_calendar_day_t days[31];
    char error[256];
} cal_t;

static void on_cal(const fs_calendar_day_t *days, int n, const char *error, void *arg)
{
    cal_t *c = arg;
    c->calls++;
    c->n = n;
    if (days)
        memcpy(c->days, days, (size_t)n * sizeof *days);
    snprintf(c->error, sizeof c->error, "%s", error ? error : "");
}

Test(manager, calendar_first_non_empty_answer_in_priority_order)
{
    open_manager();
    beta.outcome = FS_PROVIDER_OK;
    beta.n_days = 30; /* no price on any day */
    gamma_.n_days = 30;
    gamma_.days[4] = (fs_calendar_day_t){{2030, 6, 5}, 99.5, "EUR", true};
    gamma_.days[9] = (fs_calendar_day_t){{2030, 6, 10}, 120, "EUR", true};
    cal_t c = {0};
    fs_search_query_t q = query();
    fs_provider_manager_calendar(mgr, &q, 2030, 6, 0, on_cal, &c);
    cr_assert_eq(c.calls, 0);
    run_until(&c.calls, 1, 3000);
    cr_assert_eq(alpha.cal_calls, 0); /* alpha has no calendar */
    cr_assert_eq(beta.cal_calls, 1);
    cr_assert_eq(gamma_.cal_calls, 1);
    cr_assert_str_eq(c.error, "");
    cr_assert_eq(c.n, 30);
    cr_assert(c.days[4].has_price);
    cr_assert_float_eq(c.days[4].price, 99.5, 1e-9);
    cr_assert_not(c.days[5].has_price);
    cr_assert_eq(c.days[29].date.d, 30);
    cr_assert_eq(c.days[29].date.m, 6);

    /* all fail: an error, and still one (empty) entry per day */
    beta.outcome = gamma_.outcome = FS_PROVIDER_FAILED;
    cal_t e = {0};
    fs_provider_manager_calendar(mgr, &q, 2030, 2, 0, on_cal, &e);
    run_until(&e.calls, 1, 3000);
    cr_assert_neq(e.error[0], '\0');
    cr_assert_eq(e.n, 28);
    cr_assert_not(e.days[0].has_price);
}

Test(manager, flexible_asks_the_first_provider_with_the_op)
{
    open_manager();
    add_offer(&beta, "1", "EI", "EI154", 8, 120);
    add_offer(&beta, "2", "EI", "EI154", 8, 100); /* duplicates are removed */
    add_offer(&gamma_, "1", "FR", "FR1", 8, 1);
    fs_flexible_query_t fq = {.base = query(), .from = {2030, 6, 1}, .to = {2030, 6, 20}, .nights_min = 3,
                              .nights_max = 7, .limit = 10};
    result_t r = {0};
    fs_provider_manager_flexible(mgr, &fq, 0, on_done, &r);
    run_until(&r.calls, 1, 3000);
    cr_assert_eq(alpha.flex_calls, 0);
    cr_assert_eq(beta.flex_calls, 1);
    cr_assert_eq(gamma_.flex_calls, 0);
    cr_assert_eq(r.offers->n, 1);
    cr_assert_str_eq(r.offers->items[0].id, "beta-1");
    result_free(&r);
}

/* ---- status and metrics --------------------------------------------------------------------- */

typedef struct {
    int calls;
    json_t *st;
} status_t;

static void on_status(json_t *st, void *arg)
{
    status_t *s = arg;
    s->calls++;
    s->st = st;
}

static json_t *status_now(void)
{
    status_t s = {0};
    fs_provider_manager_status(mgr, on_status, &s);
    cr_assert_eq(s.calls, 0);
    run_until(&s.calls, 1, 3000);
    cr_assert_eq(s.calls, 1);
    return s.st;
}

Test(manager, status_json_shape_with_live_probes)
{
    gamma_.configured = false;
    open_manager();
    beta.probe_ok = false;
    add_offer(&alpha, "1", "EI", "EI154", 8, 100);
    result_t r = search(FS_STRATEGY_FALLBACK, 0);
    result_free(&r);
    json_t *st = status_now();
    json_t *providers = json_object_get(st, "providers"), *health = json_object_get(st, "health");
    cr_assert_eq(json_object_size(providers), 3);
    json_t *a = json_object_get(providers, "alpha");
    static const char *const keys[] = {"total_searches", "successful_searches", "total_results", "avg_response_time_ms",
                                       "status", "is_configured", "is_available", "priority", "success_rate", NULL};
    for (const char *const *k = keys; *k; k++)
        cr_assert_not_null(json_object_get(a, *k), "missing %s", *k);
    cr_assert_eq(json_integer_value(json_object_get(a, "total_searches")), 1);
    cr_assert_eq(json_integer_value(json_object_get(a, "successful_searches")), 1);
    cr_assert_eq(json_integer_value(json_object_get(a, "total_results")), 1);
    cr_assert(json_is_real(json_object_get(a, "avg_response_time_ms")));
    cr_assert_float_eq(json_real_value(json_object_get(a, "success_rate")), 100.0, 1e-9);
    cr_assert_str_eq(json_string_value(json_object_get(a, "status")), "healthy");
    cr_assert(json_is_true(json_object_get(a, "is_configured")));
    cr_assert(json_is_true(json_object_get(a, "is_available")));
    cr_assert_eq(json_integer_value(json_object_get(a, "priority")), 1);
    json_t *g = json_object_get(providers, "gamma");
    cr_assert(json_is_false(json_object_get(g, "is_configured")));
    cr_assert(json_is_false(json_object_get(g, "is_available")));
    cr_assert_float_eq(json_real_value(json_object_get(g, "success_rate")), 0.0, 1e-9);
    cr_assert(json_is_true(json_object_get(health, "alpha")));
    cr_assert(json_is_false(json_object_get(health, "beta")));
    cr_assert(json_is_false(json_object_get(health, "gamma")));
    cr_assert_eq(alpha.probes, 1);
    cr_assert_eq(gamma_.probes, 0); /* unconfigured: never probed */
    json_t *avail = json_object_get(st, "available_providers");
    cr_assert_eq(json_array_size(avail), 2);
    cr_assert_str_eq(json_string_value(json_array_get(avail, 0)), "alpha");
    cr_assert_str_eq(json_string_value(json_array_get(avail, 1)), "beta");
    json_decref(st);
}

Test(manager, status_does_not_wait_for_a_probe_that_never_answers)
{
    setenv("BETA_TIMEOUT_MS", "200", 1);
    open_manager();
    unsetenv("BETA_TIMEOUT_MS");
    beta.never = true;
    double t0 = fs_test_now_ms();
    json_t *st = status_now();
    cr_assert(fs_test_now_ms() - t0 < 1500);
    cr_assert(json_is_false(json_object_get(json_object_get(st, "health"), "beta")));
    cr_assert(json_is_true(json_object_get(json_object_get(st, "health"), "alpha")));
    json_decref(st);
}

Test(manager, metrics_count_provider_searches)
{
    open_manager();
    alpha.outcome = FS_PROVIDER_FAILED;
    add_offer(&beta, "1", "EI", "EI154", 8, 100);
    for (int i = 0; i < 3; i++) {
        result_t r = search(FS_STRATEGY_FALLBACK, 0);
        result_free(&r);
    }
    size_t len;
    char *text = fs_metrics_render(metrics, &len);
    cr_assert(strstr(text, "flightshark_provider_searches_total{provider=\"alpha\"} 3"), "%s", text);
    cr_assert(strstr(text, "flightshark_provider_searches_total{provider=\"beta\"} 3"), "%s", text);
    cr_assert(strstr(text, "flightshark_provider_searches_total{provider=\"gamma\"} 0"), "%s", text);
    cr_assert(strstr(text, "flightshark_provider_status{provider=\"alpha\"} 1"), "%s", text); /* degraded */
    cr_assert(strstr(text, "flightshark_provider_calls_total{provider=\"alpha\",op=\"search\",outcome=\"failed\"} 3"),
              "%s", text);
    cr_assert(strstr(text, "flightshark_provider_latency_seconds_count{provider=\"beta\"} 3"), "%s", text);
    free(text);
}

/* ---- the real upstream providers behind the manager ----------------------------------------- */

extern const fs_provider_ops_t fs_provider_amadeus;
extern const fs_provider_ops_t fs_provider_duffel;

Test(manager, upstream_fallback_from_amadeus_500_to_duffel)
{
    fs_fake_upstream_t *up = fs_fake_upstream_start();
    fs_http_client_t *http = fs_http_client_new(base);
    setenv("AMADEUS_API_KEY", "k", 1);
    setenv("AMADEUS_API_SECRET", "s", 1);
    setenv("AMADEUS_BASE_URL", fs_fake_upstream_url(up), 1);
    setenv("DUFFEL_ACCESS_TOKEN", "t", 1);
    setenv("DUFFEL_BASE_URL", fs_fake_upstream_url(up), 1);
    fs_fake_upstream_json(up, "POST", "/v1/security/oauth2/token", 200, "{\"access_token\":\"a\",\"expires_in\":1799}");
    fs_fake_upstream_json(up, "GET", "/v2/shopping/flight-offers", 500, "{\"errors\":[{\"title\":\"SYSTEM ERROR\"}]}");
    fs_fake_upstream_json(up, "POST", "/air/offer_requests", 201,
                          "{\"data\":{\"offers\":[{\"id\":\"off_1\",\"total_amount\":\"99.10\",\"total_currency\":"
                          "\"EUR\",\"owner\":{\"iata_code\":\"EI\"},\"slices\":[{\"segments\":[{\"origin\":{\"iata_code\""
                          ":\"DUB\"},\"destination\":{\"iata_code\":\"LHR\"},\"departing_at\":\"2030-06-01T08:00:00\","
                          "\"arriving_at\":\"2030-06-01T09:20:00\",\"marketing_carrier\":{\"iata_code\":\"EI\"},"
                          "\"marketing_carrier_flight_number\":\"154\",\"duration\":\"PT1H20M\"}]}]}]}}");
    static const fs_provider_ops_t *const upstream[] = {&fs_provider_duffel, &fs_provider_amadeus, NULL};
    fs_provider_env_t env = {.base = base, .http = http, .metrics = metrics};
    mgr = fs_provider_manager_new(&env, upstream);
    result_t r = search(FS_STRATEGY_FALLBACK, 5000);
    cr_assert_null(r.error, "%s", r.error);
    cr_assert_eq(r.called, 2);
    cr_assert_eq(r.offers->n, 1);
    cr_assert_str_eq(r.offers->items[0].id, "duffel-off_1");
    cr_assert_str_eq(r.offers->items[0].out[0].flight_number, "EI154");
    result_free(&r);
    cr_assert_eq(stat_of("amadeus", "consecutive_failures"), 1);
    json_t *st = status_now();
    cr_assert(json_is_true(json_object_get(json_object_get(st, "health"), "amadeus")));
    cr_assert(json_is_false(json_object_get(json_object_get(st, "health"), "duffel"))); /* /air/airlines: 404 */
    json_decref(st);
    fs_provider_manager_free(mgr);
    mgr = NULL;
    fs_http_client_free(http);
    fs_fake_upstream_stop(up);
}
