/* inventory-bench: compute time of the embedded inventory on the real reference data.
 *
 *   DATABASE_URL=... inventory-bench [-v] [-n SEARCHES] [-d DAYS_AHEAD] [-c CALENDARS] [ORIG-DEST[:rt] ...]
 *
 * -v prints every offer of each market's first answer (local times with their UTC offsets).
 *
 * Loads the bundle from PostgreSQL (as a worker does), reports the timetable's build time and
 * memory, then for each market runs SEARCHES cold searches (one-way, or round trip with ":rt",
 * 7 nights) over consecutive departure dates and prints p50 / p99 / max in microseconds, the
 * offers of the first answer, and the time of CALENDARS month calendars. "Cold" means nothing
 * is cached between searches (the inventory has no cache); the dates rotate so that no two
 * consecutive searches are identical. Instructions per search: run one market under
 * `valgrind --tool=callgrind` or `perf stat -e instructions` and divide by SEARCHES.
 */
#include "actors/search/inventory/inventory.h"
#include "runtime/alloc.h"
#include "storage/refdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void query_for(fs_search_query_t *q, const char *o, const char *d, int64_t now, int64_t day, bool rt)
{
    memset(q, 0, sizeof *q);
    snprintf(q->origin, sizeof q->origin, "%s", o);
    snprintf(q->destination, sizeof q->destination, "%s", d);
    memcpy(q->origin_airports[0], q->origin, 4);
    memcpy(q->destination_airports[0], q->destination, 4);
    q->n_origin_airports = q->n_destination_airports = 1;
    q->departure = fs_date_from_days(day);
    q->has_return = rt;
    q->return_date = fs_date_from_days(day + 7);
    q->passengers = 1;
    q->cabin = FS_CABIN_ECONOMY;
    q->now = now;
}

static bool verbose;

static void print_local(int64_t utc, int off_min)
{
    time_t t = (time_t)(utc + off_min * 60);
    struct tm tm;
    gmtime_r(&t, &tm);
    printf("%02d-%02d %02d:%02d%+.1f", tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, off_min / 60.0);
}

static void print_offer(const fs_offer_t *o)
{
    printf("    %9.2f %-9s %4d min %s%s\n", o->price, o->source, o->total_duration_min, o->id,
           o->virtual_interlining ? " (separate tickets)" : "");
    for (int i = 0; i < o->n_out + o->n_ret; i++) {
        const fs_segment_t *s = i < o->n_out ? &o->out[i] : &o->ret[i - o->n_out];
        printf("      %-7s %s ", s->flight_number, s->from);
        print_local(s->dep_utc, s->dep_offset_min);
        printf(" -> %s ", s->to);
        print_local(s->arr_utc, s->arr_offset_min);
        printf("  %s %d min\n", s->aircraft, s->duration_min);
    }
}

static void describe(const fs_offer_list_t *l)
{
    for (size_t i = 0; verbose && i < l->n; i++)
        print_offer(&l->items[i]);
    int stops[3] = {0, 0, 0};
    for (size_t i = 0; i < l->n; i++)
        stops[l->items[i].stops > 2 ? 2 : l->items[i].stops]++;
    printf("  offers %zu (direct %d, 1 stop %d, 2 stops %d)", l->n, stops[0], stops[1], stops[2]);
    if (l->n) {
        const fs_offer_t *o = &l->items[0];
        printf("; cheapest %.2f EUR %d min:", o->price, o->total_duration_min);
        for (int i = 0; i < o->n_out; i++)
            printf(" %s %s-%s", o->out[i].flight_number, o->out[i].from, o->out[i].to);
    }
    printf("\n");
}

static void bench_market(const fs_refdata_t *r, const char *spec, int n, int64_t now, int64_t day0,
                         int calendars)
{
    char o[4] = "", d[4] = "";
    bool rt = strstr(spec, ":rt") != NULL;
    if (sscanf(spec, "%3[A-Za-z0-9]-%3[A-Za-z0-9]", o, d) != 2) {
        fprintf(stderr, "bad market %s (want ORIG-DEST)\n", spec);
        return;
    }
    double *t = fs_malloc((size_t)n * sizeof *t);
    fs_search_query_t q;
    size_t offers = 0;
    for (int i = 0; i < n; i++) {
        query_for(&q, o, d, now, day0 + i % 28, rt);
        fs_offer_list_t l = {0};
        double t0 = now_us();
        fs_inventory_search(r, &q, NULL, &l);
        t[i] = now_us() - t0;
        offers += l.n;
        if (i == 0) {
            printf("%s%s\n", spec, rt ? "" : " (one-way)");
            describe(&l);
        }
        fs_offer_list_clear(&l);
    }
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    printf("  search: n=%d p50=%.0f us p99=%.0f us max=%.0f us (mean offers %.1f)\n", n, pct(t, n, 0.5),
           pct(t, n, 0.99), t[n - 1], (double)offers / n);
    for (int i = 0; i < calendars; i++) {
        fs_date_t m = fs_date_from_days(day0 + 31 * (i % 6));
        query_for(&q, o, d, now, day0, rt);
        fs_calendar_day_t days[31];
        double t0 = now_us();
        int nd = fs_inventory_calendar(r, &q, NULL, m.y, m.m, days);
        t[i] = (now_us() - t0) / 1000.0;
        int priced = 0;
        for (int k = 0; k < nd; k++)
            priced += days[k].has_price;
        if (i == 0)
            printf("  calendar %04d-%02d: %d/%d days priced\n", m.y, m.m, priced, nd);
    }
    if (calendars > 0) {
        qsort(t, (size_t)calendars, sizeof *t, cmp_double);
        printf("  calendar: n=%d p50=%.2f ms max=%.2f ms\n", calendars, pct(t, calendars, 0.5),
               t[calendars - 1]);
    }
    free(t);
}

int main(int argc, char **argv)
{
    int n = 1000, ahead = 30, calendars = 12, opt;
    while ((opt = getopt(argc, argv, "n:d:c:v")) != -1) {
        if (opt == 'v')
            verbose = true;
        else if (opt == 'n')
            n = atoi(optarg);
        else if (opt == 'd')
            ahead = atoi(optarg);
        else if (opt == 'c')
            calendars = atoi(optarg);
        else {
            fprintf(stderr,
                    "usage: %s [-v] [-n searches] [-d days_ahead] [-c calendars] [ORIG-DEST[:rt] ...]\n",
                    argv[0]);
            return 2;
        }
    }
    n = n < 1 ? 1 : n;
    calendars = calendars < 0 ? 0 : calendars > 1000 ? 1000 : calendars;
    const char *url = getenv("DATABASE_URL");
    if (!url) {
        fprintf(stderr, "DATABASE_URL is not set\n");
        return 2;
    }
    char *err = NULL;
    double t0 = now_us();
    fs_refdata_t *r = fs_refdata_load_url(url, &err);
    if (!r) {
        fprintf(stderr, "load: %s\n", err ? err : "?");
        return 1;
    }
    double load_ms = (now_us() - t0) / 1000.0;
    t0 = now_us();
    fs_timetable_t *again = fs_timetable_build(r->airports, r->routes, r->airlines, r->n_airlines);
    double tt_ms = (now_us() - t0) / 1000.0;
    printf("bundle load %.1f ms; timetable build %.1f ms, %.2f MB: %zu airports, %zu services, %zu "
           "departures/day "
           "pattern, %zu carriers, %zu zones\n",
           load_ms, tt_ms, (double)again->memory / 1048576.0, again->n_airports, again->n_services,
           again->n_departures, again->n_carriers, again->n_zones);
    fs_timetable_free(again);
    int64_t now = (int64_t)time(NULL);
    int64_t day0 = now / 86400 + ahead;
    static const char *const defaults[] = {"JFK-BKK", "MAD-NRT", "MAN-BKK",   "LAX-SIN",
                                           "DUB-SYD", "DUB-LHR", "JFK-BKK:rt"};
    if (optind < argc)
        for (int i = optind; i < argc; i++)
            bench_market(r, argv[i], n, now, day0, calendars);
    else
        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
            bench_market(r, defaults[i], n, now, day0, calendars);
    fs_refdata_free(r);
    return 0;
}
