/* Route graph: adjacency by origin, destination and airline, pairs, great-circle distances,
 * equipment, and what the build leaves out. Pure C, no database. */
#include <criterion/criterion.h>

#include "storage/refdata.h"
#include "storage/route_graph.h"

#include <math.h>
#include <string.h>

#define AP(code, lat, lon) {code, "", code " Airport", code, "Country", "XX", NULL, lat, lon, true, false, true, 0}

static const fs_airport_t airports[] = {
    AP("LHR", 51.4706, -0.461941), AP("JFK", 40.639801, -73.7789), AP("DUB", 53.421299, -6.27007),
    AP("BCN", 41.2971, 2.07846),   AP("SYD", -33.946098, 151.177002), AP("NOC", 0, 0),
};

static const fs_route_row_t routes[] = {
    {"LHR", "JFK", "BA", 0, false, "744 777"},
    {"LHR", "JFK", "AA", 0, true, " 777 "},
    {"JFK", "LHR", "BA", 0, false, "744"},
    {"DUB", "BCN", "FR", 0, false, "738"},
    {"DUB", "LHR", "EI", 0, false, "320 321"},
    {"DUB", "LHR", "BA", 0, false, NULL},
    {"lhr", "bcn", "BA", 1, false, ""},
    {"LHR", "XXX", "BA", 0, false, "320"},  /* unknown airport: dropped */
    {"LHR", "LHR", "BA", 0, false, "320"},  /* self-loop: dropped */
    {"LHR", "JFK", "BA", 0, false, "380"},  /* repeat of the first: dropped */
    {"SYD", "LHR", NULL, 0, false, "388"},  /* no airline */
};

static fs_airport_index_t *idx;
static fs_route_graph_t *g;
static size_t dropped;

static void build(void)
{
    idx = fs_airport_index_build(airports, sizeof airports / sizeof airports[0]);
    g = fs_route_graph_build(idx, routes, sizeof routes / sizeof routes[0], &dropped);
}

static void destroy(void)
{
    fs_route_graph_free(g);
    fs_airport_index_free(idx);
}

TestSuite(route_graph, .init = build, .fini = destroy);

static void expect_pairs(fs_route_list_t l, const char *want)
{
    char got[512] = "";
    for (size_t i = 0; i < l.n; i++) {
        size_t o = strlen(got);
        snprintf(got + o, sizeof got - o, "%s%s-%s/%s", i ? " " : "", l.items[i]->origin->iata,
                 l.items[i]->destination->iata, l.items[i]->airline);
    }
    cr_expect_str_eq(got, want, "got \"%s\", want \"%s\"", got, want);
}

Test(route_graph, build_counts)
{
    cr_assert_eq(fs_route_graph_count(g), 8);
    cr_assert_eq(dropped, 3, "unknown airport, self-loop, repeat");
}

Test(route_graph, adjacency)
{
    expect_pairs(fs_route_graph_from(g, "LHR"), "LHR-BCN/BA LHR-JFK/AA LHR-JFK/BA");
    expect_pairs(fs_route_graph_from(g, "dub"), "DUB-BCN/FR DUB-LHR/BA DUB-LHR/EI");
    expect_pairs(fs_route_graph_to(g, "LHR"), "DUB-LHR/BA DUB-LHR/EI JFK-LHR/BA SYD-LHR/");
    expect_pairs(fs_route_graph_by_airline(g, "ba"), "DUB-LHR/BA JFK-LHR/BA LHR-BCN/BA LHR-JFK/BA");
    expect_pairs(fs_route_graph_by_airline(g, ""), "SYD-LHR/");
    expect_pairs(fs_route_graph_between(g, "LHR", "JFK"), "LHR-JFK/AA LHR-JFK/BA");
    expect_pairs(fs_route_graph_between(g, "JFK", "DUB"), "");
    expect_pairs(fs_route_graph_from(g, "NOC"), "");
    expect_pairs(fs_route_graph_from(g, "QQQ"), "");
    expect_pairs(fs_route_graph_to(g, "ZZZ"), "");
    expect_pairs(fs_route_graph_by_airline(g, "ZZ"), "");
    expect_pairs(fs_route_graph_from(g, NULL), "");
}

Test(route_graph, first_row_wins_and_attributes)
{
    fs_route_list_t l = fs_route_graph_between(g, "LHR", "JFK");
    const fs_route_t *ba = l.items[1], *aa = l.items[0];
    cr_assert_eq(ba->n_equipment, 2);
    cr_assert_str_eq(ba->equipment[0], "744");
    cr_assert_str_eq(ba->equipment[1], "777");
    cr_assert_eq(aa->n_equipment, 1, "stray spaces ignored");
    cr_assert_str_eq(aa->equipment[0], "777");
    cr_assert(aa->codeshare && !ba->codeshare);
    cr_assert_eq(aa->equipment[0], ba->equipment[1], "codes are interned");
    const fs_route_t *bcn = fs_route_graph_between(g, "LHR", "BCN").items[0];
    cr_assert_eq(bcn->stops, 1);
    cr_assert_eq(bcn->n_equipment, 0);
    cr_assert_eq(fs_route_graph_between(g, "DUB", "LHR").items[0]->n_equipment, 0, "NULL equipment");
}

Test(route_graph, distances)
{
    const fs_route_t *r = fs_route_graph_between(g, "LHR", "JFK").items[0];
    cr_assert(fabs(r->distance_km - 5540) < 5, "LHR-JFK %.1f km", r->distance_km);
    r = fs_route_graph_between(g, "DUB", "BCN").items[0];
    cr_assert(fabs(r->distance_km - 1481) < 10, "DUB-BCN %.1f km", r->distance_km);
    r = fs_route_graph_between(g, "SYD", "LHR").items[0];
    cr_assert(fabs(r->distance_km - 17016) < 30, "SYD-LHR %.1f km", r->distance_km);
    cr_assert_float_eq(fs_geo_distance_km(10, 20, 10, 20), 0.0, 1e-9);
    cr_assert_float_eq(fs_geo_distance_km(0, 0, 0, 180), M_PI * 6371.0088, 1e-6, "half the equator");
    cr_assert_float_eq(fs_geo_distance_km(90, 0, -90, 0), M_PI * 6371.0088, 1e-6, "pole to pole");
    cr_assert_float_eq(fs_geo_distance_km(51.47, -0.46, 40.64, -73.78), fs_geo_distance_km(40.64, -73.78, 51.47, -0.46),
                       1e-9, "symmetric");
}

Test(route_graph, empty_graph)
{
    fs_route_graph_t *e = fs_route_graph_build(idx, NULL, 0, NULL);
    cr_assert_eq(fs_route_graph_count(e), 0);
    cr_assert_eq(fs_route_graph_from(e, "LHR").n, 0);
    fs_route_graph_free(e);
    fs_route_graph_free(NULL);
}

Test(route_graph, refdata_bundle)
{
    fs_airline_t airlines[] = {
        {"BA", "BAW", "British Airways", "United Kingdom", "GB", NULL, "Oneworld", true, false, 4},
        {"BA", "OBA", "Old Speedbird", NULL, "", NULL, NULL, false, false, 0},
        {"FR", "RYR", "Ryanair", "Ireland", "IE", NULL, NULL, true, true, 1},
    };
    fs_refdata_t *r = fs_refdata_build(airports, 6, routes, sizeof routes / sizeof routes[0], airlines, 3);
    cr_assert_eq(fs_route_graph_count(r->routes), 8);
    cr_assert_eq(r->routes_dropped, 3);
    cr_assert_str_eq(fs_refdata_airline(r, "ba")->name, "British Airways", "first (primary) row of the code");
    cr_assert_str_eq(fs_refdata_airline(r, "OBA")->name, "Old Speedbird", "by ICAO code");
    cr_assert_null(fs_refdata_airline(r, "ZZ"));
    cr_assert_null(fs_refdata_airline(r, "B"));
    fs_refdata_free(r);
    fs_refdata_free(NULL);
}
