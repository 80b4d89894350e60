/* The embedded inventory: timetable, fare model, itinerary rules, round trips, calendar,
 * flexible search and the provider's answer without data. A small hand-made bundle checks the
 * rules precisely; the real reference data (PostgreSQL, tests/support/refdata_fixture.h)
 * checks that real markets answer sensibly. */
#include <criterion/criterion.h>

#include "actors/search/inventory/fares.h"
#include "actors/search/inventory/inventory.h"
#include "actors/search/provider.h"
#include "runtime/threadpool.h"
#include "storage/refdata.h"
#include "storage/timetable.h"
#include "tests/support/refdata_fixture.h"

#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AP(code, tz, lat, lon, rc)                                                                           \
    {                                                                                                        \
        code, "", code " Airport", code " City", "Country", "XX", tz, lat, lon, true, true, true, rc         \
    }

static const fs_airport_t airports[] = {
    AP("DUB", "Europe/Dublin", 53.4213, -6.2701, 1000),
    AP("LHR", "Europe/London", 51.4706, -0.4619, 1000),
    AP("LGW", "Europe/London", 51.1481, -0.1903, 1000),
    AP("CDG", "Europe/Paris", 49.0097, 2.5479, 1000),
    AP("FRA", "Europe/Berlin", 50.0379, 8.5622, 1000),
    AP("JFK", "America/New_York", 40.6398, -73.7789, 1000),
    AP("AKL", "Pacific/Auckland", -37.0082, 174.785, 1000),
    AP("HNL", "Pacific/Honolulu", 21.3187, -157.9225, 1000),
    AP("SML", "Europe/Dublin", 52.70, -8.92, 1000),
    AP("NOZ", NULL, 13.7, 100.75, 1000),
    AP("ISO", "Europe/Dublin", 54.0, -8.0, 1000),
    AP("BKK", "Asia/Bangkok", 13.69, 100.75, 1000),
    AP("APW", "Pacific/Apia", -13.83, -171.9975, 1000),
    AP("PPG", "Pacific/Pago_Pago", -14.331, -170.7105, 1000),
};

static const fs_route_row_t routes[] = {
    {"DUB", "LHR", "EI", 0, false, "320"}, {"DUB", "LHR", "FR", 0, false, "738"},
    {"LHR", "DUB", "EI", 0, false, "320"}, {"LHR", "JFK", "BA", 0, false, "744"},
    {"LHR", "JFK", "AA", 0, false, "777"}, {"JFK", "LHR", "BA", 0, false, "744"},
    {"DUB", "CDG", "EI", 0, false, "320"}, {"CDG", "JFK", "AF", 0, false, "77W"},
    {"JFK", "CDG", "AF", 0, false, "77W"}, {"CDG", "DUB", "EI", 0, false, "320"},
    {"DUB", "FRA", "LH", 0, false, "321"}, {"FRA", "JFK", "LH", 0, false, "744"},
    {"DUB", "LGW", "FR", 0, false, "738"}, {"LGW", "JFK", "BA", 0, false, "777"},
    {"LHR", "LGW", "BA", 0, false, "AT7"}, {"AKL", "HNL", "NZ", 0, false, "77W"},
    {"HNL", "AKL", "NZ", 0, false, "77W"}, {"SML", "DUB", "EI", 0, false, "AT7"},
    {"NOZ", "BKK", "TG", 0, false, "320"}, {"BKK", "NOZ", "TG", 0, false, "320"},
    {"LHR", "CDG", "AF", 0, false, "320"}, {"APW", "PPG", "NZ", 0, false, "DHT"},
    {"PPG", "APW", "NZ", 0, false, "DHT"},
};

#define AL(iata, lcc, alliance)                                                                              \
    {                                                                                                        \
        iata, "", iata " Airways", "Country", "XX", NULL, alliance, true, lcc, 1000                          \
    }
static const fs_airline_t airlines[] = {
    AL("EI", false, NULL),       AL("FR", true, NULL),       AL("BA", false, "oneworld"),
    AL("AA", false, "oneworld"), AL("AF", false, "SkyTeam"), AL("LH", false, "Star"),
    AL("NZ", false, "Star"),     AL("TG", false, "Star"),
};

static fs_refdata_t *ref;
static const fs_inventory_rules_t RULES = {45, 90, 600, 50};

static void setup(void)
{
    ref = fs_refdata_build(airports, sizeof airports / sizeof airports[0], routes,
                           sizeof routes / sizeof routes[0], airlines, sizeof airlines / sizeof airlines[0]);
}

static void teardown(void)
{
    fs_refdata_free(ref);
}

TestSuite(inventory, .init = setup, .fini = teardown);

/* 2030-03-01 12:00 UTC: "now" of the hand-made searches, far from any real clock. */
#define NOW    1898596800LL
#define DAY(n) fs_date_from_days(NOW / 86400 + (n))

static fs_search_query_t query(const char *o, const char *d, int days_ahead)
{
    fs_search_query_t q = {0};
    snprintf(q.origin, sizeof q.origin, "%s", o);
    snprintf(q.destination, sizeof q.destination, "%s", d);
    memcpy(q.origin_airports[0], q.origin, 4);
    memcpy(q.destination_airports[0], q.destination, 4);
    q.n_origin_airports = q.n_destination_airports = 1;
    q.departure = DAY(days_ahead);
    q.passengers = 1;
    q.cabin = FS_CABIN_ECONOMY;
    q.now = NOW;
    return q;
}

static size_t search(const fs_search_query_t *q, const fs_inventory_rules_t *rules, fs_offer_list_t *l)
{
    fs_offer_list_clear(l);
    return fs_inventory_search(ref, q, rules, l);
}

static const fs_offer_t *by_id(const fs_offer_list_t *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].id, id) == 0)
            return &l->items[i];
    return NULL;
}

static int64_t local_day(int64_t utc, int off_min)
{
    int64_t t = utc + off_min * 60;
    return t / 86400 - (t % 86400 < 0);
}

/* ---- timetable ------------------------------------------------------------------------------ */

Test(inventory, timetable_shape)
{
    const fs_timetable_t *tt = ref->timetable;
    cr_assert_not_null(tt);
    cr_expect_eq(tt->n_airports, sizeof airports / sizeof airports[0]);
    cr_expect_eq(tt->n_services, sizeof routes / sizeof routes[0]);
    for (size_t i = 0; i < tt->n_services; i++) {
        const fs_tt_service_t *s = &tt->services[i];
        cr_expect(s->n_dep >= 1 && s->n_dep <= FS_TT_MAX_DEPARTURES);
        cr_expect(s->days != 0 && s->days < 128);
        for (int k = 0; k < s->n_dep; k++) {
            const fs_tt_departure_t *d = &tt->departures[s->first_dep + k];
            cr_expect(d->dep_min >= 6 * 60 && d->dep_min < 23 * 60, "departure %d min", d->dep_min);
            cr_expect(k == 0 || d->dep_min > tt->departures[s->first_dep + k - 1].dep_min);
            cr_expect_eq(d->dep_min % 5, 0);
            cr_expect_eq(d->block_min, fs_timetable_block_minutes(s->distance_km, tt->aircraft[d->aircraft]));
        }
    }
    int noz = fs_timetable_airport(tt, "noz");
    cr_assert(noz >= 0);
    cr_expect(tt->airports[noz].tz_fallback);
    cr_expect_eq(fs_timetable_offset(tt, (uint32_t)noz, NOW), 7 * 3600); /* 100.75 E / 15 = 6.7 -> +7 */
    cr_expect_not(tt->airports[fs_timetable_airport(tt, "DUB")].tz_fallback);
    cr_expect_eq(fs_timetable_airport(tt, "XXX"), -1);
    cr_expect_eq(fs_timetable_airport(tt, "DUBX"), -1);
    cr_expect_eq(fs_timetable_airport(tt, NULL), -1);
}

Test(inventory, block_time_by_aircraft)
{
    cr_expect_eq(fs_timetable_block_minutes(830, "320"), 100); /* 40 + 60 */
    cr_expect_eq(fs_timetable_block_minutes(480, "AT7"), 85);  /* 25 + 60 */
    cr_expect_eq(fs_timetable_block_minutes(481, "AT7"), 90);  /* rounded up to 5 */
    cr_expect_eq(fs_timetable_block_minutes(830, ""), 100);    /* unknown: a jet */
    cr_expect_gt(fs_timetable_block_minutes(500, "DH4"), fs_timetable_block_minutes(500, "E90"));
}

/* ---- fares ---------------------------------------------------------------------------------- */

Test(inventory, fare_model_tables)
{
    cr_expect_float_eq(fs_fare_base(0), 30.0, 1e-9);
    cr_expect_float_eq(fs_fare_base(500), 90.0, 1e-9);
    cr_expect_float_eq(fs_fare_base(1500), 170.0, 1e-9);
    cr_expect_float_eq(fs_fare_base(10000), 30 + 60 + 80 + 150 + 200 + 80, 1e-9);
    for (int d = 0; d < 200; d++)
        cr_expect_geq(fs_fare_advance_factor(d), fs_fare_advance_factor(d + 1), "advance factor rises at %d",
                      d);
    cr_expect_float_eq(fs_fare_advance_factor(-5), 1.60, 1e-9);
    cr_expect_float_eq(fs_fare_advance_factor(14), 1.125, 1e-9);
    cr_expect_float_eq(fs_fare_advance_factor(365), 0.90, 1e-9);
    for (int i = 0; i < 1000; i++) {
        char f[8];
        snprintf(f, sizeof f, "EI%d", i);
        double v = fs_fare_variation(f, 20000 + i);
        cr_expect(v >= 0.85 - 1e-9 && v <= 1.15 + 1e-9);
    }
    cr_expect_float_eq(fs_fare_variation("EI154", 20000), fs_fare_variation("EI154", 20000), 1e-12);
    fs_fare_input_t in = {.distance_km = 449,
                          .cabin = FS_CABIN_ECONOMY,
                          .days_ahead = 30,
                          .date_days = 20000,
                          .flight_number = "EI154"};
    int64_t fs = fs_fare_cents(&in);
    in.low_cost = true;
    cr_expect_lt(fs_fare_cents(&in), fs);
    in.through = true;
    cr_expect_eq(fs_fare_cents(&in),
                 fs_fare_to_cents(fs_fare_euro(&(fs_fare_input_t){.distance_km = 449,
                                                                  .low_cost = true,
                                                                  .cabin = FS_CABIN_ECONOMY,
                                                                  .days_ahead = 30,
                                                                  .date_days = 20000,
                                                                  .flight_number = "EI154"}) *
                                  FS_FARE_THROUGH_FACTOR));
}

Test(inventory, fare_worked_example_of_the_docs)
{
    /* docs/INVENTORY.md works this one by hand. */
    fs_date_t d = {2030, 4, 5}; /* a Friday */
    fs_fare_input_t in = {.distance_km = 449.0,
                          .low_cost = false,
                          .cabin = FS_CABIN_ECONOMY,
                          .days_ahead = 35,
                          .date_days = fs_date_to_days(d),
                          .flight_number = "EI1234"};
    double v = fs_fare_variation("EI1234", fs_date_to_days(d));
    double want = (30 + 449 * 0.12) * 1.0 * 1.0 * (1.0 - 0.1 * 14 / 69) * 1.12 * v;
    cr_expect_eq(fs_fare_cents(&in), llround(want * 100));
}

Test(inventory, price_never_falls_as_departure_nears)
{
    fs_offer_list_t early = {0}, late = {0};
    for (int before = 120; before > 7; before -= 7) { /* "now" moves 6 days: flights stay ahead */
        fs_search_query_t q = query("DUB", "JFK", 0);
        q.departure = DAY(before);
        q.now = NOW; /* fixed flights, "now" moves towards them */
        fs_search_query_t q2 = q;
        q2.now = NOW + 6LL * 86400;
        search(&q, &RULES, &early);
        search(&q2, &RULES, &late);
        cr_assert_gt(early.n, 0);
        size_t matched = 0;
        for (size_t i = 0; i < late.n; i++) {
            const fs_offer_t *e = by_id(&early, late.items[i].id);
            if (!e)
                continue;
            matched++;
            cr_expect_geq(late.items[i].price, e->price, "%s cheaper nearer departure", e->id);
        }
        cr_expect_gt(matched, 0);
    }
    fs_offer_list_clear(&early), fs_offer_list_clear(&late);
}

Test(inventory, cabins_ordered_and_passengers_scale)
{
    fs_offer_list_t l[4] = {{0}}, three = {0};
    fs_search_query_t q = query("DUB", "JFK", 30);
    for (int c = 0; c < 4; c++) {
        q.cabin = (fs_cabin_t)c;
        cr_assert_gt(search(&q, &RULES, &l[c]), 0);
        cr_expect_str_eq(l[c].items[0].cabin, fs_cabin_name((fs_cabin_t)c));
    }
    for (size_t i = 0; i < l[0].n; i++)
        for (int c = 1; c < 4; c++) {
            const fs_offer_t *o = by_id(&l[c], l[0].items[i].id);
            const fs_offer_t *p = by_id(&l[c - 1], l[0].items[i].id);
            if (o && p)
                cr_expect_gt(o->price, p->price, "%s: cabin %d not dearer", o->id, c);
        }
    q.cabin = FS_CABIN_ECONOMY;
    q.passengers = 3;
    search(&q, &RULES, &three);
    cr_assert_eq(three.n, l[0].n);
    for (size_t i = 0; i < three.n; i++) {
        const fs_offer_t *one = by_id(&l[0], three.items[i].id);
        cr_assert_not_null(one);
        cr_expect_eq(llround(three.items[i].price * 100), 3 * llround(one->price * 100));
    }
    for (int c = 0; c < 4; c++)
        fs_offer_list_clear(&l[c]);
    fs_offer_list_clear(&three);
}

/* ---- itineraries ---------------------------------------------------------------------------- */

Test(inventory, deterministic)
{
    fs_offer_list_t a = {0}, b = {0};
    fs_search_query_t q = query("DUB", "JFK", 20);
    search(&q, &RULES, &a);
    q.now = NOW + 3600 * 5; /* later the same day: same answer */
    search(&q, &RULES, &b);
    cr_assert_gt(a.n, 0);
    cr_assert_eq(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        cr_expect_str_eq(a.items[i].id, b.items[i].id);
        cr_expect_eq(a.items[i].price, b.items[i].price);
        cr_expect_eq(memcmp(a.items[i].out, b.items[i].out, sizeof a.items[i].out), 0);
        cr_expect_eq(strncmp(a.items[i].id, "inventory-", 10), 0);
        cr_expect_eq(strlen(a.items[i].id), 26);
        cr_expect(i == 0 || a.items[i].price >= a.items[i - 1].price, "not sorted by price");
        for (size_t k = 0; k < i; k++)
            cr_expect_str_neq(a.items[i].id, a.items[k].id);
    }
    fs_offer_list_clear(&a), fs_offer_list_clear(&b);
}

/* Every connection of `l`: waits within the rules, segments chained, no airport twice. */
static void check_connections(const fs_offer_list_t *l, const fs_inventory_rules_t *r, int *short_waits)
{
    for (size_t i = 0; i < l->n; i++) {
        const fs_offer_t *o = &l->items[i];
        const char *seen[FS_MAX_SEGMENTS + 1];
        int n_seen = 0;
        seen[n_seen++] = o->out[0].from;
        cr_expect_eq(o->stops, o->n_out - 1);
        for (int k = 0; k < o->n_out; k++) {
            const fs_segment_t *s = &o->out[k];
            cr_expect_eq(s->arr_utc - s->dep_utc, s->duration_min * 60);
            for (int j = 0; j < n_seen; j++)
                cr_expect_str_neq(s->to, seen[j], "%s revisits %s", o->id, s->to);
            seen[n_seen++] = s->to;
            if (k == 0)
                continue;
            const fs_segment_t *p = &o->out[k - 1];
            cr_expect_str_eq(p->to, s->from);
            int wait = (int)(s->dep_utc - p->arr_utc) / 60;
            int mct = strcmp(p->carrier, s->carrier) == 0 ? r->mct_min : r->mct_interline_min;
            cr_expect_geq(wait, mct, "%s: %d min at %s (%s -> %s)", o->id, wait, s->from, p->carrier,
                          s->carrier);
            cr_expect_leq(wait, r->max_layover_min, "%s: %d min at %s", o->id, wait, s->from);
            if (short_waits && wait < 45)
                (*short_waits)++;
        }
    }
}

Test(inventory, connection_times_respected)
{
    fs_offer_list_t l = {0};
    fs_inventory_rules_t loose = {5, 5, 600, 50};
    int short_waits = 0, connections = 0;
    for (int d = 1; d <= 28; d++) {
        fs_search_query_t q = query("DUB", "JFK", d);
        search(&q, &RULES, &l);
        check_connections(&l, &RULES, NULL);
        for (size_t i = 0; i < l.n; i++)
            connections += l.items[i].stops > 0;
        search(&q, &loose, &l); /* the rule bites: looser rules find shorter connections */
        check_connections(&l, &loose, &short_waits);
    }
    cr_expect_gt(connections, 0);
    cr_expect_gt(short_waits, 0, "no connection under 45 minutes even with a 5-minute minimum");
    fs_offer_list_clear(&l);
}

Test(inventory, layover_bound)
{
    fs_offer_list_t l = {0};
    fs_inventory_rules_t tight = {45, 90, 150, 50};
    size_t total = 0;
    for (int d = 1; d <= 14; d++) {
        fs_search_query_t q = query("DUB", "JFK", d);
        search(&q, &tight, &l);
        check_connections(&l, &tight, NULL);
        total += l.n;
    }
    cr_expect_gt(total, 0);
    fs_offer_list_clear(&l);
}

Test(inventory, two_stops_only_when_scarce)
{
    fs_offer_list_t l = {0};
    int two = 0;
    for (int d = 1; d <= 14; d++) {
        fs_search_query_t q = query("SML", "JFK", d); /* no one-stop path exists */
        search(&q, &RULES, &l);
        check_connections(&l, &RULES, NULL);
        for (size_t i = 0; i < l.n; i++) {
            cr_expect_eq(l.items[i].stops, 2);
            two++;
        }
        q = query("DUB", "JFK", d); /* plenty of one-stops: no two-stop */
        search(&q, &RULES, &l);
        for (size_t i = 0; i < l.n; i++)
            cr_expect_leq(l.items[i].stops, 1, "%s", l.items[i].id);
    }
    cr_expect_gt(two, 0);
    fs_offer_list_clear(&l);
}

Test(inventory, across_the_date_line)
{
    /* Apia (+13) to Pago Pago (-11), 150 km apart: every flight lands the day before it left */
    fs_offer_list_t l = {0};
    fs_search_query_t q = query("APW", "PPG", 10);
    cr_assert_gt(search(&q, &RULES, &l), 0);
    for (size_t i = 0; i < l.n; i++) {
        const fs_segment_t *s = &l.items[i].out[0];
        cr_expect_eq(s->dep_offset_min, 13 * 60);
        cr_expect_eq(s->arr_offset_min, -11 * 60);
        cr_expect_eq(local_day(s->dep_utc, s->dep_offset_min), fs_date_to_days(q.departure));
        cr_expect_lt(local_day(s->arr_utc, s->arr_offset_min), local_day(s->dep_utc, s->dep_offset_min));
    }
    q = query("PPG", "APW", 10); /* and the other way a day is lost */
    cr_assert_gt(search(&q, &RULES, &l), 0);
    for (size_t i = 0; i < l.n; i++) {
        const fs_segment_t *s = &l.items[i].out[0];
        cr_expect_gt(local_day(s->arr_utc, s->arr_offset_min), local_day(s->dep_utc, s->dep_offset_min));
    }
    /* Auckland (+13 in March) to Honolulu (-10): local arrival = local departure + block - 23 h */
    q = query("AKL", "HNL", 10);
    cr_assert_gt(search(&q, &RULES, &l), 0);
    for (size_t i = 0; i < l.n; i++) {
        const fs_segment_t *s = &l.items[i].out[0];
        cr_expect_eq(s->dep_offset_min, 13 * 60);
        cr_expect_eq(s->arr_offset_min, -10 * 60);
        int64_t dep_local = s->dep_utc + s->dep_offset_min * 60,
                arr_local = s->arr_utc + s->arr_offset_min * 60;
        cr_expect_eq(arr_local - dep_local, (int64_t)s->duration_min * 60 - 23 * 3600);
        cr_expect_leq(local_day(s->arr_utc, s->arr_offset_min), local_day(s->dep_utc, s->dep_offset_min));
    }
    fs_offer_list_clear(&l);
}

Test(inventory, local_times_follow_dst)
{
    /* DUB is +0 in winter, +1 in summer; the timetable is in local time, so the same flight
     * leaves at the same local time and an hour earlier in UTC. */
    fs_offer_list_t w = {0}, s = {0};
    fs_search_query_t q = query("DUB", "LHR", 0);
    q.departure = (fs_date_t){2030, 3, 14}; /* winter: +0 */
    search(&q, &RULES, &w);
    q.departure = (fs_date_t){2030, 4, 4}; /* summer: +1 */
    search(&q, &RULES, &s);
    cr_assert_gt(w.n, 0);
    cr_assert_gt(s.n, 0);
    int matched = 0;
    for (size_t i = 0; i < w.n; i++)
        for (size_t k = 0; k < s.n; k++)
            if (strcmp(w.items[i].out[0].flight_number, s.items[k].out[0].flight_number) == 0) {
                const fs_segment_t *a = &w.items[i].out[0], *b = &s.items[k].out[0];
                cr_expect_eq(a->dep_offset_min, 0);
                cr_expect_eq(b->dep_offset_min, 60);
                cr_expect_eq((a->dep_utc + a->dep_offset_min * 60) % 86400,
                             (b->dep_utc + b->dep_offset_min * 60) % 86400);
                matched++;
            }
    cr_expect_gt(matched, 0);
    fs_offer_list_clear(&w), fs_offer_list_clear(&s);
}

Test(inventory, direct_only)
{
    fs_offer_list_t l = {0};
    fs_search_query_t q = query("DUB", "LHR", 10);
    q.direct_only = true;
    cr_assert_gt(search(&q, &RULES, &l), 0);
    for (size_t i = 0; i < l.n; i++)
        cr_expect(l.items[i].stops == 0 && l.items[i].n_out == 1);
    q = query("DUB", "JFK", 10); /* only connections exist */
    q.direct_only = true;
    cr_expect_eq(search(&q, &RULES, &l), 0);
    q.direct_only = false;
    cr_expect_gt(search(&q, &RULES, &l), 0);
    fs_offer_list_clear(&l);
}

Test(inventory, multi_airport_origin)
{
    fs_offer_list_t l = {0};
    bool from_lhr = false, from_lgw = false;
    for (int d = 1; d <= 7; d++) {
        fs_search_query_t q = query("LON", "JFK", d);
        memcpy(q.origin_airports[0], "LHR", 4);
        memcpy(q.origin_airports[1], "LGW", 4);
        memcpy(q.origin_airports[2], "ZZZ", 4); /* unknown: skipped */
        q.n_origin_airports = 3;
        search(&q, &RULES, &l);
        for (size_t i = 0; i < l.n; i++) {
            const fs_offer_t *o = &l.items[i];
            from_lhr |= strcmp(o->out[0].from, "LHR") == 0;
            from_lgw |= strcmp(o->out[0].from, "LGW") == 0;
            for (int k = 1; k < o->n_out; k++) /* never through the other London airport */
                cr_expect(strcmp(o->out[k].from, "LHR") && strcmp(o->out[k].from, "LGW"), "%s", o->id);
        }
    }
    cr_expect(from_lhr && from_lgw);
    fs_offer_list_clear(&l);
}

Test(inventory, round_trip)
{
    fs_offer_list_t l = {0};
    fs_search_query_t q = query("DUB", "JFK", 20);
    q.has_return = true;
    q.return_date = DAY(27);
    cr_assert_gt(search(&q, &RULES, &l), 0);
    cr_expect_leq(l.n, RULES.max_offers);
    for (size_t i = 0; i < l.n; i++) {
        const fs_offer_t *o = &l.items[i];
        cr_assert_gt(o->n_ret, 0);
        cr_expect_str_eq(o->ret[0].from, "JFK");
        cr_expect_str_eq(o->ret[o->n_ret - 1].to, "DUB");
        cr_expect_str_eq(o->out[o->n_out - 1].to, "JFK");
        cr_expect_eq(local_day(o->ret[0].dep_utc, o->ret[0].dep_offset_min), fs_date_to_days(q.return_date));
        int out_min = (int)(o->out[o->n_out - 1].arr_utc - o->out[0].dep_utc) / 60;
        int ret_min = (int)(o->ret[o->n_ret - 1].arr_utc - o->ret[0].dep_utc) / 60;
        cr_expect_eq(o->total_duration_min, out_min + ret_min);
        cr_expect(i == 0 || o->price >= l.items[i - 1].price);
    }
    /* same day out and back: the return leaves after the outbound lands */
    q = query("DUB", "LHR", 20);
    q.has_return = true;
    q.return_date = q.departure;
    search(&q, &RULES, &l);
    for (size_t i = 0; i < l.n; i++)
        cr_expect_geq(l.items[i].ret[0].dep_utc, l.items[i].out[l.items[i].n_out - 1].arr_utc + 45 * 60);
    fs_offer_list_clear(&l);
}

Test(inventory, observed_fares_take_precedence)
{
    fs_offer_list_t l = {0}, m = {0};
    fs_search_query_t q = query("DUB", "LHR", 15);
    q.passengers = 2;
    cr_assert_gt(search(&q, &RULES, &l), 0);
    const fs_offer_t *o = &l.items[l.n - 1]; /* the dearest flight becomes the cheapest */
    fs_observed_fare_t obs[3] = {
        {"DUB", "LHR", "", q.departure, FS_CABIN_ECONOMY, 12.34, NOW - 7200},
        {"DUB", "LHR", "", q.departure, FS_CABIN_ECONOMY, 11.00, NOW - 9000}, /* older: loses */
        {"DUB", "LHR", "", q.departure, FS_CABIN_BUSINESS, 1.00, NOW - 60},   /* other cabin: ignored */
    };
    for (int i = 0; i < 3; i++)
        memcpy(obs[i].carrier, o->out[0].carrier, 4);
    q.observed = obs, q.n_observed = 3;
    char id[96];
    snprintf(id, sizeof id, "%s", o->id);
    search(&q, &RULES, &m);
    const fs_offer_t *p = by_id(&m, id);
    cr_assert_not_null(p);
    cr_expect_float_eq(p->price, 24.68, 1e-9);
    cr_expect_str_eq(p->source, "observed");
    cr_expect_eq(p->priced_at, NOW - 7200);
    for (size_t i = 0; i < m.n; i++)
        if (strcmp(m.items[i].out[0].carrier, o->out[0].carrier) != 0) {
            cr_expect_str_eq(m.items[i].source, "inventory");
            cr_expect_eq(m.items[i].priced_at, NOW);
        }
    /* a connection with one observed leg keeps the model's source */
    fs_search_query_t c = query("DUB", "JFK", 15);
    search(&c, &RULES, &l);
    const fs_offer_t *conn = NULL;
    for (size_t i = 0; i < l.n && !conn; i++)
        if (l.items[i].n_out == 2)
            conn = &l.items[i];
    cr_assert_not_null(conn);
    fs_observed_fare_t leg = {"", "", "", c.departure, FS_CABIN_ECONOMY, 5.00, NOW - 100};
    memcpy(leg.origin, conn->out[0].from, 4), memcpy(leg.destination, conn->out[0].to, 4);
    memcpy(leg.carrier, conn->out[0].carrier, 4);
    c.observed = &leg, c.n_observed = 1;
    snprintf(id, sizeof id, "%s", conn->id);
    double before = conn->price;
    search(&c, &RULES, &m);
    p = by_id(&m, id);
    cr_assert_not_null(p);
    cr_expect_str_eq(p->source, "inventory");
    cr_expect_lt(p->price, before);
    fs_offer_list_clear(&l), fs_offer_list_clear(&m);
}

Test(inventory, unhappy_paths)
{
    fs_offer_list_t l = {0};
    fs_search_query_t q = query("DUB", "XXX", 10);
    cr_expect_eq(search(&q, &RULES, &l), 0);
    q = query("XXX", "DUB", 10);
    cr_expect_eq(search(&q, &RULES, &l), 0);
    q = query("ISO", "JFK", 10); /* no route at all */
    cr_expect_eq(search(&q, &RULES, &l), 0);
    q = query("DUB", "DUB", 10);
    cr_expect_eq(search(&q, &RULES, &l), 0);
    q = query("DUB", "LHR", 10);
    q.passengers = 0;
    cr_expect_eq(search(&q, &RULES, &l), 0);
    q = query("DUB", "LHR", 10); /* no airport lists: the codes themselves */
    q.n_origin_airports = q.n_destination_airports = 0;
    cr_expect_gt(search(&q, &RULES, &l), 0);
    memcpy(q.origin, "LON", 4); /* a city code without its list finds nothing */
    cr_expect_eq(search(&q, &RULES, &l), 0);
    q = query("DUB", "LHR", -3); /* every flight has left */
    cr_expect_eq(search(&q, &RULES, &l), 0);
    q = query("DUB", "LHR", 10);
    cr_expect_eq(fs_inventory_search(NULL, &q, NULL, &l), 0);
    fs_calendar_day_t days[31];
    cr_expect_eq(fs_inventory_calendar(ref, &q, NULL, 2030, 13, days), 0);
    fs_flexible_query_t f = {.base = q, .from = DAY(10), .to = DAY(5), .nights_min = 1, .nights_max = 3};
    cr_expect_eq(fs_inventory_flexible(ref, &f, NULL, &l), 0); /* range backwards */
    f.to = DAY(200);
    cr_expect_eq(fs_inventory_flexible(ref, &f, NULL, &l), 0); /* range too long */
    f.to = DAY(12), f.nights_max = 0;
    cr_expect_eq(fs_inventory_flexible(ref, &f, NULL, &l), 0); /* nights backwards */
    cr_expect_eq(l.n, 0);
    fs_offer_list_clear(&l);
}

/* ---- calendar and flexible ------------------------------------------------------------------ */

Test(inventory, calendar_has_every_day)
{
    fs_search_query_t q = query("DUB", "LHR", 0);
    q.now = fs_date_to_days((fs_date_t){2030, 3, 10}) * 86400 + 3600; /* the 10th, early morning */
    fs_calendar_day_t days[31];
    int n = fs_inventory_calendar(ref, &q, NULL, 2030, 3, days);
    cr_assert_eq(n, 31);
    fs_offer_list_t l = {0};
    for (int i = 0; i < n; i++) {
        cr_expect_eq(days[i].date.d, i + 1);
        cr_expect_str_eq(days[i].currency, "EUR");
        cr_expect_eq(days[i].has_price, i + 1 >= 10, "day %d", i + 1);
        if (!days[i].has_price)
            continue;
        q.departure = days[i].date; /* the day's price is the search's cheapest */
        fs_offer_list_clear(&l);
        cr_assert_gt(fs_inventory_search(ref, &q, NULL, &l), 0);
        cr_expect_float_eq(days[i].price, l.items[0].price, 1e-9, "day %d", i + 1);
    }
    cr_expect_eq(fs_inventory_calendar(ref, &q, NULL, 2030, 2, days), 28);
    q.has_return = true; /* a week's stay */
    q.departure = (fs_date_t){2030, 3, 10}, q.return_date = (fs_date_t){2030, 3, 17};
    fs_calendar_day_t rt[31];
    cr_assert_eq(fs_inventory_calendar(ref, &q, NULL, 2030, 4, rt), 30);
    for (int i = 0; i < 30; i++)
        cr_expect(rt[i].has_price && rt[i].price > 0);
    fs_offer_list_clear(&l);
}

Test(inventory, flexible_respects_nights)
{
    fs_flexible_query_t f = {.base = query("DUB", "JFK", 0),
                             .from = DAY(20),
                             .to = DAY(30),
                             .nights_min = 3,
                             .nights_max = 5,
                             .limit = 15};
    fs_offer_list_t l = {0};
    cr_assert_gt(fs_inventory_flexible(ref, &f, NULL, &l), 0);
    cr_expect_leq(l.n, 15);
    int64_t first = fs_date_to_days(f.from), last = fs_date_to_days(f.to);
    for (size_t i = 0; i < l.n; i++) {
        const fs_offer_t *o = &l.items[i];
        cr_assert_gt(o->n_ret, 0);
        int64_t out = local_day(o->out[0].dep_utc, o->out[0].dep_offset_min);
        int64_t ret = local_day(o->ret[0].dep_utc, o->ret[0].dep_offset_min);
        cr_expect(out >= first && out <= last);
        cr_expect(ret - out >= 3 && ret - out <= 5, "%lld nights", (long long)(ret - out));
        cr_expect(i == 0 || o->price >= l.items[i - 1].price);
        for (size_t k = 0; k < i; k++) /* one offer per (date, nights) */
            cr_expect(local_day(l.items[k].out[0].dep_utc, l.items[k].out[0].dep_offset_min) != out ||
                      local_day(l.items[k].ret[0].dep_utc, l.items[k].ret[0].dep_offset_min) != ret);
    }
    fs_offer_list_clear(&l);
}

/* ---- the provider --------------------------------------------------------------------------- */

extern const fs_provider_ops_t fs_provider_inventory;

typedef struct answer {
    bool called, returned;
    fs_provider_outcome_t outcome;
    char error[64];
} answer_t;

static void on_done(fs_provider_outcome_t outcome, fs_offer_list_t *offers, const char *error, void *arg)
{
    answer_t *a = arg;
    a->called = true;
    a->outcome = outcome;
    snprintf(a->error, sizeof a->error, "%s", error ? error : "");
    fs_offer_list_free(offers);
}

Test(inventory, provider_without_data)
{
    cr_expect_str_eq(fs_provider_inventory.name, "inventory");
    cr_expect_eq(fs_provider_inventory.priority, 100);
    cr_expect(fs_provider_inventory.configured());
    struct event_base *base = event_base_new();
    fs_threadpool_t *pool = fs_threadpool_new(base, 1);
    fs_provider_env_t env = {.base = base, .pool = pool};
    void *self = fs_provider_inventory.open(&env);
    answer_t a = {0};
    fs_search_query_t q = query("DUB", "LHR", 3);
    fs_provider_inventory.search(self, &q, 1000, on_done, &a);
    cr_expect_not(a.called, "answered inside the call");
    event_base_loop(base, EVLOOP_ONCE);
    cr_assert(a.called);
    cr_expect_eq(a.outcome, FS_PROVIDER_FAILED);
    cr_expect_str_eq(a.error, "reference data not loaded");
    /* closed with a call still pending: nobody is answered, nothing leaks */
    answer_t b = {0};
    fs_provider_inventory.search(self, &q, 1000, on_done, &b);
    fs_provider_inventory.close(self);
    event_base_loop(base, EVLOOP_NONBLOCK);
    cr_expect_not(b.called);
    fs_threadpool_free(pool);
    event_base_free(base);
}

/* ---- real data ------------------------------------------------------------------------------ */

static fs_refdata_t *real;

static void real_setup(void)
{
    fs_test_ensure_reference_data();
    char *err = NULL;
    real = fs_refdata_load_url(fs_test_env("DATABASE_URL"), &err);
    cr_assert(real, "load: %s", err ? err : "?");
}

static void real_teardown(void)
{
    fs_refdata_free(real);
}

TestSuite(inventory_real, .init = real_setup, .fini = real_teardown, .timeout = 60);

Test(inventory_real, busy_one_stop_markets)
{
    const fs_timetable_t *tt = real->timetable;
    cr_expect_gt(tt->n_services, 50000);
    cr_expect_gt(tt->n_zones, 200);
    const char *markets[][2] = {{"JFK", "BKK"}, {"MAD", "NRT"}, {"MAN", "BKK"}, {"DUB", "SYD"}};
    int64_t now = (int64_t)time(NULL);
    for (size_t m = 0; m < sizeof markets / sizeof markets[0]; m++) {
        fs_search_query_t q = query(markets[m][0], markets[m][1], 0);
        q.now = now;
        q.departure = fs_date_from_days(now / 86400 + 30);
        fs_offer_list_t l = {0};
        cr_assert_gt(fs_inventory_search(real, &q, NULL, &l), 0, "%s-%s", markets[m][0], markets[m][1]);
        fs_inventory_rules_t r = fs_inventory_rules_default();
        check_connections(&l, &r, NULL);
        int one_stop = 0;
        for (size_t i = 0; i < l.n; i++) {
            const fs_offer_t *o = &l.items[i];
            one_stop += o->stops == 1;
            cr_expect_str_eq(o->out[0].from, markets[m][0]);
            cr_expect_str_eq(o->out[o->n_out - 1].to, markets[m][1]);
            cr_expect(o->price > 50 && o->price < 5000, "%s %.2f", o->id, o->price);
            for (int k = 0; k < o->n_out; k++) { /* offsets are the airports' zones' */
                int a = fs_timetable_airport(tt, o->out[k].from), b = fs_timetable_airport(tt, o->out[k].to);
                cr_expect_eq(o->out[k].dep_offset_min * 60,
                             fs_timetable_offset(tt, (uint32_t)a, o->out[k].dep_utc));
                cr_expect_eq(o->out[k].arr_offset_min * 60,
                             fs_timetable_offset(tt, (uint32_t)b, o->out[k].arr_utc));
            }
        }
        cr_expect_gt(one_stop, 0, "%s-%s", markets[m][0], markets[m][1]);
        fs_offer_list_clear(&l);
    }
}

Test(inventory_real, low_cost_cheaper_on_a_shared_route)
{
    /* DUB-BCN: Ryanair (low-cost) and Aer Lingus; the low-cost fare wins on most days */
    const fs_airline_t *fr = fs_refdata_airline(real, "FR"), *ei = fs_refdata_airline(real, "EI");
    cr_assert(fr && fr->is_low_cost && ei && !ei->is_low_cost);
    int64_t now = (int64_t)time(NULL);
    int fr_cheapest = 0, days = 0;
    bool saw_ei = false;
    for (int d = 20; d < 34; d++) {
        fs_search_query_t q = query("DUB", "BCN", 0);
        q.now = now, q.departure = fs_date_from_days(now / 86400 + d), q.direct_only = true;
        fs_offer_list_t l = {0};
        if (fs_inventory_search(real, &q, NULL, &l) > 0) {
            days++;
            fr_cheapest += strcmp(l.items[0].airline, "FR") == 0;
        }
        for (size_t i = 0; i < l.n; i++)
            saw_ei |= strcmp(l.items[i].airline, "EI") == 0;
        fs_offer_list_clear(&l);
    }
    cr_expect_gt(days, 0);
    cr_expect(saw_ei);
    cr_expect_gt(fr_cheapest * 2, days, "FR cheapest on %d of %d days", fr_cheapest, days);
}
