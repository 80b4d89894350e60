/* alert-match-bench: the alert index of one shard (actors/alert/alert_index.h) with N active
 * alerts, matched against M observations, in process (no database, no Redis).
 *
 *   alert-match-bench [ALERTS=1000000] [OBSERVATIONS=5000000] [ROUTES=20000]
 *
 * Routes are drawn with a Zipf-like skew (a few busy routes hold many alerts, most hold few),
 * each with a base fare; an alert's target is 50-110% of its route's base fare, with one in
 * four restricted to a cabin and one in three to a travel-date window. Observations follow
 * the same route skew at 80-140% of the base fare. Reported, observations/s:
 *   - steady state: matched alerts are marked notified, as the shard does, with the 6 h
 *     cooldown, and stay in the walk (skipped) afterwards;
 *   - parse + match: the same with the stream fields parsed as the shard parses them (codes,
 *     day, price, currency, cabin);
 *   - no cooldown: nothing is marked, so every alert at or above the price matches every time
 *     (the worst case of the walk);
 * plus matches per observation and bytes per alert (index bytes / alerts, and resident memory
 * growth / alerts).
 */
#include "actors/alert/alert_index.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double uniform(void)
{
    return (double)(next() >> 11) / 9007199254740992.0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

typedef struct {
    char o[4], d[4];
    uint32_t key;
    int base_cents;
} route_t;

/* Skewed: index = routes * u^2, so the busiest route holds about 0.7% of everything (with
 * 20,000 routes) and the busiest 1% of routes about 10%. */
static size_t pick_route(size_t n)
{
    double u = uniform();
    return (size_t)(n * u * u) % n;
}

static void random_code(char out[4])
{
    for (int i = 0; i < 3; i++)
        out[i] = (char)('A' + next() % 26);
    out[3] = '\0';
}

static const char *const cabin_names[] = {"economy", "premium_economy", "business", "first"};

typedef struct {
    char o[4], d[4], dd[11], p[16], cur[4];
    const char *c;
} fields_t;

/* What the shard does with one stream entry's fields before the index: alert.c entry_process. */
static int parse(const fields_t *f, fs_alert_obs_t *o)
{
    o->route = fs_alert_route_key_n(f->o, 3, f->d, 3);
    int day = fs_alert_day_parse(f->dd, 10);
    char *end;
    double v = strtod(f->p, &end);
    o->price_cents = (int32_t)(v * 100 + 0.5);
    o->day = (uint16_t)day;
    o->currency = fs_alert_currency_pack(f->cur, 3);
    o->cabin = 0;
    for (uint8_t i = 0; i < 4; i++)
        if (strcmp(f->c, cabin_names[i]) == 0)
            o->cabin = i;
    return o->route && day > 0 ? 0 : -1;
}

/* The index is shared by the passes: a record's mark is a plain field, cleared in place. */
static void clear_mark(uint32_t route, const fs_alert_rec_t *rec, void *arg)
{
    ((fs_alert_rec_t *)rec)->notified_s = 0;
}

int main(int argc, char **argv)
{
    size_t n_alerts = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    size_t n_obs = argc > 2 ? strtoul(argv[2], NULL, 10) : 5000000;
    size_t n_routes = argc > 3 ? strtoul(argv[3], NULL, 10) : 20000;
    route_t *routes = calloc(n_routes, sizeof *routes);
    for (size_t i = 0; i < n_routes; i++) {
        do {
            random_code(routes[i].o);
            random_code(routes[i].d);
        } while (strcmp(routes[i].o, routes[i].d) == 0);
        routes[i].key = fs_alert_route_key(routes[i].o, routes[i].d);
        routes[i].base_cents = 3000 + (int)(next() % 120000);
    }
    int today = fs_alert_day_parse("2026-11-24", 10);
    uint16_t eur = fs_alert_currency_pack("EUR", 3);

    long rss0 = rss_kib();
    double t0 = now_s();
    fs_alert_index_t *idx = fs_alert_index_new();
    for (size_t i = 0; i < n_alerts; i++) {
        const route_t *r = &routes[pick_route(n_routes)];
        fs_alert_rec_t a = {.target_cents = (int32_t)(r->base_cents * (0.5 + 0.5 * uniform())),
                            .date_from = FS_ALERT_DATE_OPEN_FROM, .date_to = FS_ALERT_DATE_OPEN_TO,
                            .currency = eur, .cabin = FS_ALERT_CABIN_ANY};
        uint64_t id0 = next(), id1 = next();
        memcpy(a.id, &id0, 8);
        memcpy(a.id + 8, &id1, 8);
        if (next() % 4 == 0)
            a.cabin = (uint8_t)(next() % 4);
        if (next() % 3 == 0) {
            a.date_from = (uint16_t)(today + (int)(next() % 300));
            a.date_to = (uint16_t)(a.date_from + (int)(next() % 30));
        }
        fs_alert_index_put(idx, r->key, &a);
    }
    fs_alert_index_compact(idx);
    double load_s = now_s() - t0;
    long rss1 = rss_kib();

    fs_alert_obs_t *obs = malloc(n_obs * sizeof *obs);
    fields_t *fields = malloc(n_obs * sizeof *fields);
    for (size_t i = 0; i < n_obs; i++) {
        const route_t *r = &routes[pick_route(n_routes)];
        int day = today + (int)(next() % 330);
        int cents = (int)(r->base_cents * (0.8 + 0.6 * uniform()));
        uint8_t cabin = (uint8_t)(next() % 10 < 7 ? 0 : next() % 4);
        obs[i] = (fs_alert_obs_t){.route = r->key, .price_cents = cents, .day = (uint16_t)day, .currency = eur,
                                  .cabin = cabin};
        fields_t *f = &fields[i];
        memcpy(f->o, r->o, 4);
        memcpy(f->d, r->d, 4);
        time_t t = (time_t)day * 86400;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(f->dd, sizeof f->dd, "%Y-%m-%d", &tm);
        snprintf(f->p, sizeof f->p, "%d.%02d", cents / 100, cents % 100);
        memcpy(f->cur, "EUR", 4);
        f->c = cabin_names[cabin];
    }

    /* worst case first (nothing marked), then the steady state twice: index only, and with
     * parsing; the marks of the first steady-state pass are cleared before the second */
    uint32_t now = (uint32_t)time(NULL), cooldown = 6 * 3600;
    fs_alert_rec_t *out[4096];
    size_t worst = 0;
    double t0w = now_s();
    for (size_t i = 0; i < n_obs; i++)
        worst += fs_alert_index_match(idx, &obs[i], now, 0, out, 0);
    double worst_s = now_s() - t0w;

    size_t matches = 0;
    double t1 = now_s();
    for (size_t i = 0; i < n_obs; i++) {
        size_t n = fs_alert_index_match(idx, &obs[i], now, cooldown, out, 4096);
        for (size_t k = 0; k < n && k < 4096; k++)
            out[k]->notified_s = now;
        matches += n;
    }
    double match_s = now_s() - t1;
    fs_alert_index_foreach(idx, clear_mark, NULL);

    size_t matches2 = 0;
    double t2 = now_s();
    for (size_t i = 0; i < n_obs; i++) {
        fs_alert_obs_t o;
        if (parse(&fields[i], &o) != 0)
            continue;
        size_t n = fs_alert_index_match(idx, &o, now, cooldown, out, 4096);
        for (size_t k = 0; k < n && k < 4096; k++)
            out[k]->notified_s = now;
        matches2 += n;
    }
    double parse_s = now_s() - t2;

    size_t count = fs_alert_index_count(idx), bytes = fs_alert_index_bytes(idx);
    printf("alerts                 %zu on %zu routes (loaded in %.2f s)\n", count, fs_alert_index_routes(idx), load_s);
    printf("index bytes per alert  %.1f (record %zu bytes)\n", (double)bytes / (double)count, sizeof(fs_alert_rec_t));
    printf("RSS growth per alert   %.1f bytes\n", (double)(rss1 - rss0) * 1024.0 / (double)count);
    printf("observations           %zu\n", n_obs);
    printf("steady state           %.0f observations/s, %.4f matches each\n", (double)n_obs / match_s,
           (double)matches / (double)n_obs);
    printf("parse + match          %.0f observations/s%s\n", (double)n_obs / parse_s,
           matches2 == matches ? "" : " (MISMATCH)");
    printf("no cooldown            %.0f observations/s, %.2f matches each\n", (double)n_obs / worst_s,
           (double)worst / (double)n_obs);
    fs_alert_index_free(idx);
    free(obs);
    free(fields);
    free(routes);
    return matches2 == matches ? 0 : 1;
}
