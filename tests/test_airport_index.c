/* Airport search index: ranking tiers and tie-breaks, accent folding, grouping, popular, by
 * city, lookup, JSON shapes; then the index against a brute-force ranking over the ~9,000 real
 * OurAirports airports (read with the CSV reader, no database). */
#include <criterion/criterion.h>

#include "runtime/alloc.h"
#include "storage/airport_index.h"
#include "storage/metro.h"
#include "storage/csv.h"
#include "storage/textfold.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define A(code, icao, name, city, country, cc, major, routes)                                                      \
    {code, icao, name, city, country, cc, "Europe/London", 51.0, 0.0, true, major, true, routes}

static const fs_airport_t rows[] = {
    A("LHR", "EGLL", "London Heathrow Airport", "London", "United Kingdom", "GB", true, 1051),
    A("LGW", "EGKK", "London Gatwick Airport", "London", "United Kingdom", "GB", true, 708),
    A("STN", "EGSS", "London Stansted Airport", "London", "United Kingdom", "GB", true, 343),
    A("LTN", "EGGW", "London Luton Airport", "London", "United Kingdom", "GB", true, 214),
    A("LCY", "EGLC", "London City Airport", "London", "United Kingdom", "GB", false, 128),
    A("SEN", "EGMC", "London Southend Airport", "London", "United Kingdom", "GB", false, 20),
    A("YXU", "CYXU", "London International Airport", "London", "Canada", "CA", false, 10),
    A("LDY", "EGAE", "City of Derry Airport", "Londonderry", "United Kingdom", "GB", false, 5),
    A("AGP", "LEMG", "Málaga-Costa del Sol Airport", "Málaga", "Spain", "ES", true, 410),
    A("ZRH", "LSZH", "Zürich Airport", "Zürich", "Switzerland", "CH", true, 494),
    A("GRU", "SBGR", "São Paulo/Guarulhos International Airport", "São Paulo", "Brazil", "BR", true, 387),
    A("CGH", "SBSP", "Congonhas Airport", "São Paulo", "Brazil", "BR", true, 94),
    A("VCP", "SBKP", "Viracopos International Airport", "Campinas", "Brazil", "BR", true, 60),
    A("DUB", "EIDW", "Dublin Airport", "Dublin", "Ireland", "IE", true, 380),
    A("DXB", "OMDB", "Dubai International Airport", "Dubai", "United Arab Emirates", "AE", true, 800),
    A("DBV", "LDDU", "Dubrovnik Airport", "Dubrovnik", "Croatia", "HR", false, 60),
    A("MAD", "LEMD", "Adolfo Suárez Madrid–Barajas Airport", "Madrid", "Spain", "ES", true, 600),
    A("IXM", "VOMD", "Madurai Airport", "Madurai", "India", "IN", false, 12),
    A("BER", "EDDB", "Berlin Brandenburg Airport", "Berlin", "Germany", "DE", true, 300),
    A("BGO", "ENBR", "Bergen Airport, Flesland", "Bergen", "Norway", "NO", true, 100),
    A("DUS", "EDDL", "Düsseldorf Airport", "Düsseldorf", "Germany", "DE", true, 250),
    A("GZX", "", "Gießen Field", "Gießen", "Germany", "DE", false, 0),
    A("TOS", "ENTC", "Tromsø Airport", "Tromsø", "Norway", "NO", false, 40),
    A("LCJ", "EPLL", "Łódź Władysław Reymont Airport", "Łódź", "Poland", "PL", false, 15),
    A("SVO", "UUEE", "Шереметьево", "Moscow", "Russia", "RU", true, 500),
    A("JFK", "KJFK", "John F. Kennedy International Airport", "New York", "United States", "US", true, 911),
    A("TXL", "EDDT", "Berlin-Tegel Airport", "Berlin", "Germany", "DE", true, 418),
    A("LHR", "XXXX", "Duplicate Heathrow", "Nowhere", "United Kingdom", "GB", false, 0),
};
#define NROWS (sizeof rows / sizeof rows[0])

static fs_airport_index_t *idx;

static void build(void)
{
    fs_airport_t copy[NROWS];
    memcpy(copy, rows, sizeof copy);
    for (size_t i = 0; i < NROWS; i++)
        if (strcmp(copy[i].iata, "TXL") == 0)
            copy[i].is_active = false;
    idx = fs_airport_index_build(copy, NROWS);
}

static void destroy(void) { fs_airport_index_free(idx); }

TestSuite(airport_index, .init = build, .fini = destroy);

/* "LHR LGW ..." for the result of a search. */
static char *codes(const char *q, size_t limit)
{
    const fs_airport_t *out[64];
    size_t n = fs_airport_index_search(idx, q, limit, out);
    char *s = fs_strdup("");
    for (size_t i = 0; i < n; i++) {
        char *next = fs_sprintf("%s%s%s", s, i ? " " : "", out[i]->iata);
        free(s);
        s = next;
    }
    return s;
}

static void expect(const char *q, size_t limit, const char *want)
{
    char *got = codes(q, limit);
    cr_expect_str_eq(got, want, "query \"%s\" limit %zu: got \"%s\", want \"%s\"", q, limit, got, want);
    free(got);
}

Test(airport_index, build_drops_inactive_and_duplicates)
{
    cr_assert_eq(fs_airport_index_count(idx), NROWS - 2);
    cr_assert_null(fs_airport_index_lookup(idx, "TXL"));
    cr_assert_str_eq(fs_airport_index_lookup(idx, "lhr")->name, "London Heathrow Airport", "the first row wins");
    cr_assert_null(fs_airport_index_lookup(idx, "LH"));
    cr_assert_null(fs_airport_index_lookup(idx, "LHRX"));
    cr_assert_null(fs_airport_index_lookup(idx, "QQQ"));
}

Test(airport_index, exact_code_beats_city_prefix)
{
    expect("dub", 10, "DUB DXB DBV");   /* code, then Dubai (major), then Dubrovnik */
    expect("MAD", 10, "MAD IXM");       /* code, then Madurai by city prefix */
    expect("ber", 10, "BER BGO");       /* code, then Bergen; Berlin-Tegel is inactive */
    expect("egll", 10, "LHR");          /* ICAO code */
}

Test(airport_index, city_prefix_major_first_then_routes)
{
    expect("london", 10, "LHR LGW STN LTN LCY SEN YXU LDY");
    expect("london", 3, "LHR LGW STN");
    expect("lond", 1, "LHR");
}

Test(airport_index, name_word_and_substring_tiers)
{
    expect("gatwick", 10, "LGW");          /* word inside the name */
    expect("derry", 10, "LDY");            /* word prefix beats ... */
    expect("onderry", 10, "LDY");          /* ... substring of the city */
    expect("congonhas", 10, "CGH");        /* name prefix */
    expect("viracopos", 10, "VCP");
    expect("flesland", 10, "BGO");
    expect("kingdom", 10, "LHR LGW STN LTN LCY SEN LDY"); /* country is the last tier */
    expect("international", 3, "JFK DXB GRU");  /* word tier, ranked by major then routes */
}

Test(airport_index, accents_case_and_spaces)
{
    expect("malaga", 10, "AGP");
    expect("MÁLAGA", 10, "AGP");
    expect("zurich", 10, "ZRH");
    expect("ZÜRICH", 10, "ZRH");
    expect("  sao   paulo ", 10, "GRU CGH");
    expect("são paulo", 10, "GRU CGH");
    expect("dusseldorf", 10, "DUS");
    expect("giessen", 10, "GZX");      /* ß -> ss */
    expect("tromso", 10, "TOS");       /* ø -> o */
    expect("lodz", 10, "LCJ");         /* Ł, ó, ź */
    expect("Sa\xcc\x83o Paulo", 10, "GRU CGH"); /* decomposed ã (a + combining tilde) */
    expect("new york", 10, "JFK");
}

Test(airport_index, two_chars_non_ascii_and_empty)
{
    expect("lh", 10, "LHR GRU");                 /* code prefix for 2 characters, then "guaru-lh-os" */
    expect("lo", 4, "LHR LGW STN LTN");
    expect("Шерем", 10, "SVO");                  /* other scripts match byte for byte */
    expect("Москва", 10, "");
    expect("a", 10, "");                         /* fewer than 2 characters */
    expect("   ", 10, "");
    expect(" d ", 10, "");
    expect("", 10, "");
    expect("london", 0, "");
    expect("xyzzy", 10, "");
    expect("\xff\xfe", 10, "");                  /* invalid UTF-8 is harmless */
    cr_assert_eq(fs_airport_index_search(idx, NULL, 10, NULL), 0);
}

Test(airport_index, tier_function)
{
    const fs_airport_t *lhr = fs_airport_index_lookup(idx, "LHR");
    cr_assert_eq(fs_airport_index_tier(lhr, "lhr"), FS_AIRPORT_TIER_CODE);
    cr_assert_eq(fs_airport_index_tier(lhr, "lon"), FS_AIRPORT_TIER_CITY_PREFIX);
    cr_assert_eq(fs_airport_index_tier(lhr, "heath"), FS_AIRPORT_TIER_WORD_PREFIX);
    cr_assert_eq(fs_airport_index_tier(lhr, "athrow"), FS_AIRPORT_TIER_SUBSTRING);
    cr_assert_eq(fs_airport_index_tier(lhr, "united"), FS_AIRPORT_TIER_COUNTRY);
    cr_assert_eq(fs_airport_index_tier(lhr, "paris"), FS_AIRPORT_TIER_NONE);
    const fs_airport_t *cgh = fs_airport_index_lookup(idx, "CGH");
    cr_assert_eq(fs_airport_index_tier(cgh, "congo"), FS_AIRPORT_TIER_NAME_PREFIX);
}

Test(airport_index, grouped_json)
{
    json_t *body = fs_airport_index_search_json(idx, "london", 10, true);
    cr_assert_str_eq(json_string_value(json_object_get(body, "query")), "london");
    json_t *results = json_object_get(body, "results");
    cr_assert_eq(json_integer_value(json_object_get(body, "total")), 3);
    cr_assert_eq(json_array_size(results), 3);
    json_t *city = json_array_get(results, 0);
    cr_assert_str_eq(json_string_value(json_object_get(city, "type")), "city");
    cr_assert_str_eq(json_string_value(json_object_get(city, "city")), "London");
    cr_assert_str_eq(json_string_value(json_object_get(city, "country_code")), "GB");
    cr_assert_eq(json_integer_value(json_object_get(city, "airport_count")), 6);
    cr_assert_str_eq(json_string_value(json_object_get(city, "display")), "London (All 6 airports)");
    /* members: major first, then by name */
    const char *want[] = {"LGW", "LHR", "LTN", "STN", "LCY", "SEN"};
    json_t *list = json_object_get(city, "codes"), *airports = json_object_get(city, "airports");
    for (size_t i = 0; i < 6; i++) {
        cr_assert_str_eq(json_string_value(json_array_get(list, i)), want[i]);
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(airports, i), "iata_code")), want[i]);
    }
    json_t *lgw = json_array_get(airports, 0);
    cr_assert_str_eq(json_string_value(json_object_get(lgw, "icao_code")), "EGKK", "full objects inside groups");
    cr_assert(json_is_true(json_object_get(lgw, "is_active")));
    json_t *yxu = json_array_get(results, 1);
    cr_assert_str_eq(json_string_value(json_object_get(yxu, "type")), "airport");
    cr_assert_str_eq(json_string_value(json_object_get(yxu, "iata_code")), "YXU", "London, Canada is its own entry");
    json_decref(body);

    body = fs_airport_index_search_json(idx, "london", 1, true);
    cr_assert_eq(json_array_size(json_object_get(body, "results")), 1, "limit counts entries");
    json_decref(body);
    /* A name match groups only the airports that match. */
    body = fs_airport_index_search_json(idx, "gatwick", 10, true);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(body, "results"), 0), "type")),
                     "airport");
    json_decref(body);
    body = fs_airport_index_search_json(idx, "sao paulo", 10, true);
    city = json_array_get(json_object_get(body, "results"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(city, "display")), "São Paulo (All 2 airports)");
    json_decref(body);
    /* A group whose second airport matches only in a lower tier than the search reached. */
    body = fs_airport_index_search_json(idx, "lon", 1, true);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(json_object_get(body, "results"), 0),
                                                    "airport_count")),
                 6);
    json_decref(body);
}

Test(airport_index, flat_json_shape)
{
    json_t *body = fs_airport_index_search_json(idx, "zrh", 5, false);
    json_t *a = json_array_get(json_object_get(body, "results"), 0);
    const char *keys[] = {"iata_code", "name", "city", "country", "country_code", "latitude", "longitude", "is_major"};
    cr_assert_eq(json_object_size(a), 8, "AirportResponse has exactly the original's fields");
    for (size_t i = 0; i < 8; i++)
        cr_assert(json_object_get(a, keys[i]), "missing %s", keys[i]);
    cr_assert_str_eq(json_string_value(json_object_get(a, "city")), "Zürich");
    json_decref(body);
    body = fs_airport_index_search_json(idx, "x", 5, false);
    cr_assert_eq(json_array_size(json_object_get(body, "results")), 0);
    cr_assert_eq(json_integer_value(json_object_get(body, "total")), 0);
    json_decref(body);
    fs_airport_t no_coords = rows[0];
    no_coords.has_coords = false;
    a = fs_airport_json(&no_coords, false);
    cr_assert(json_is_null(json_object_get(a, "latitude")));
    json_decref(a);
}

/* `got` (parsed from precomputed text) against `want` (built with jansson): same keys in the
 * same order, same types, same values; coordinates within the 6 printed decimals. */
static void assert_same_json(json_t *got, json_t *want, const char *where)
{
    cr_assert(got, "%s: missing", where);
    cr_assert_eq(json_typeof(got), json_typeof(want), "%s: type %d, want %d", where, json_typeof(got),
                 json_typeof(want));
    if (json_is_real(want)) {
        cr_assert(fabs(json_real_value(got) - json_real_value(want)) <= 5e-7, "%s: %.17g, want %.17g", where,
                  json_real_value(got), json_real_value(want));
    } else if (json_is_object(want)) {
        cr_assert_eq(json_object_size(got), json_object_size(want), "%s: size", where);
        void *ig = json_object_iter(got), *iw = json_object_iter(want);
        for (; iw; ig = json_object_iter_next(got, ig), iw = json_object_iter_next(want, iw)) {
            cr_assert_str_eq(json_object_iter_key(ig), json_object_iter_key(iw), "%s: key order", where);
            assert_same_json(json_object_iter_value(ig), json_object_iter_value(iw), json_object_iter_key(iw));
        }
    } else if (json_is_array(want)) {
        cr_assert_eq(json_array_size(got), json_array_size(want), "%s: size", where);
        for (size_t i = 0; i < json_array_size(want); i++)
            assert_same_json(json_array_get(got, i), json_array_get(want, i), where);
    } else {
        cr_assert(json_equal(got, want), "%s: values differ", where);
    }
}

static json_t *parse(const char *text, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(text, len, 0, &err);
    cr_assert(j, "not JSON (%s): %.*s", err.text, (int)len, text);
    return j;
}

/* Rows whose text is awkward: float noise, negative and tiny coordinates, no coordinates, no
 * ICAO code or time zone, quotes, backslashes and control characters. */
static const fs_airport_t odd[] = {
    {"LHR", "EGLL", "London Heathrow Airport", "London", "United Kingdom", "GB", "Europe/London", 51.470600128173828,
     -0.461941003799438, true, true, true, 1051},
    {"SYD", "YSSY", "Sydney \"Kingsford Smith\" Airport", "Sydney", "Australia", "AU", NULL, -33.946098,
     151.177002, true, false, true, 400},
    {"QQA", "", "Back\\slash\tTab\x01", "Zero", "Null Island", "ZZ", "Etc/UTC", -0.0000001, 0.0, true, false, true,
     0},
    {"QQB", "", "Nowhere", "Zero", "Null Island", "ZZ", NULL, 0, 0, false, false, true, 0},
    {"QQC", "QQCC", "Ends", "Zero", "Null Island", "ZZ", NULL, 12.5, -179.999999, true, false, true, 0},
};

Test(airport_index, precomputed_text_equals_jansson)
{
    fs_airport_index_t *ox = fs_airport_index_build(odd, sizeof odd / sizeof odd[0]);
    const fs_airport_index_t *both[] = {idx, ox};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < fs_airport_index_count(both[k]); i++) {
            const fs_airport_t *a = fs_airport_index_at(both[k], i);
            size_t len;
            const char *t = fs_airport_index_text(both[k], a, &len);
            json_t *got = parse(t, len), *want = fs_airport_json(a, false);
            assert_same_json(got, want, a->iata);
            json_decref(got), json_decref(want);
            char *full = fs_airport_text(a, true, &len);
            got = parse(full, len), want = fs_airport_json(a, true);
            assert_same_json(got, want, a->iata);
            json_decref(got), json_decref(want), free(full);
            char *flat = fs_airport_text(a, false, &len);
            cr_assert_eq(len, strlen(flat));
            size_t ilen;
            cr_assert(len == (fs_airport_index_text(both[k], a, &ilen), ilen) && memcmp(flat, t, len) == 0,
                      "the same writer in and out of an index");
            free(flat);
        }
    /* Exact text: short coordinates (no float noise), one decimal kept, -0 printed as 0. */
    size_t len;
    const char *t = fs_airport_index_text(ox, fs_airport_index_lookup(ox, "LHR"), &len);
    const char *lhr = "{\"iata_code\":\"LHR\",\"name\":\"London Heathrow Airport\",\"city\":\"London\","
                      "\"country\":\"United Kingdom\",\"country_code\":\"GB\",\"latitude\":51.4706,"
                      "\"longitude\":-0.461941,\"is_major\":true}";
    cr_assert(len == strlen(lhr) && memcmp(t, lhr, len) == 0, "%.*s", (int)len, t);
    t = fs_airport_index_text(ox, fs_airport_index_lookup(ox, "QQA"), &len);
    cr_assert(strstr(t, "\"name\":\"Back\\\\slash\\tTab\\u0001\"") &&
                  strstr(t, "\"latitude\":0.0,\"longitude\":0.0,\"is_major\":false}"),
              "%.*s", (int)len, t);
    t = fs_airport_index_text(ox, fs_airport_index_lookup(ox, "QQB"), &len);
    cr_assert(strstr(t, "\"latitude\":null,\"longitude\":null,"), "%.*s", (int)len, t);
    t = fs_airport_index_text(ox, fs_airport_index_lookup(ox, "QQC"), &len);
    cr_assert(strstr(t, "\"latitude\":12.5,\"longitude\":-179.999999,"), "%.*s", (int)len, t);
    char *full = fs_airport_text(fs_airport_index_lookup(ox, "SYD"), true, &len);
    cr_assert(strstr(full, "\"icao_code\":\"YSSY\",\"name\":\"Sydney \\\"Kingsford Smith\\\" Airport\"") &&
                  strstr(full, "\"is_major\":false,\"timezone\":null,\"is_active\":true}"),
              "%s", full);
    free(full);
    fs_airport_index_free(ox);
}

/* Keys of `o`, space-separated, in order. */
static char *keys_of(json_t *o)
{
    char *s = fs_strdup("");
    for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
        char *n = fs_sprintf("%s%s%s", s, *s ? " " : "", json_object_iter_key(it));
        free(s);
        s = n;
    }
    return s;
}

Test(airport_index, search_text_shapes)
{
    const char *queries[] = {"london", "lon", "gatwick", "sao paulo", "dub", "x", "zz top"};
    for (size_t k = 0; k < sizeof queries / sizeof queries[0]; k++)
        for (int grouped = 0; grouped < 2; grouped++) {
            size_t len;
            char *text = fs_airport_index_search_text(idx, queries[k], 10, grouped, &len);
            cr_assert_eq(len, strlen(text));
            json_t *body = parse(text, len);
            free(text);
            char *keys = keys_of(body);
            cr_assert_str_eq(keys, "query total results");
            free(keys);
            json_t *results = json_object_get(body, "results");
            cr_assert_eq(json_integer_value(json_object_get(body, "total")), (json_int_t)json_array_size(results));
            for (size_t i = 0; i < json_array_size(results); i++) {
                json_t *e = json_array_get(results, i);
                const char *type = json_string_value(json_object_get(e, "type"));
                const char *code = json_string_value(json_object_get(e, "iata_code"));
                json_t *want = NULL, *got = json_deep_copy(e);
                if (!grouped) {
                    want = fs_airport_json(fs_airport_index_lookup(idx, code), false);
                } else if (strcmp(type, "airport") == 0) {
                    want = json_pack("{s:s}", "type", "airport");
                    json_t *a = fs_airport_json(fs_airport_index_lookup(idx, code), true);
                    json_object_update(want, a);
                    json_decref(a);
                } else {
                    keys = keys_of(e);
                    /* city_code only for cities with a multi-airport code (storage/metro.c) */
                    const char *metro = NULL;
                    json_t *codes = json_object_get(e, "codes");
                    for (size_t c = 0; c < json_array_size(codes) && !metro; c++)
                        metro = fs_metro_code_of(json_string_value(json_array_get(codes, c)));
                    cr_assert_str_eq(keys, metro ? "type city_code city country country_code airport_count airports "
                                                   "codes display"
                                                 : "type city country country_code airport_count airports codes display");
                    if (metro)
                        cr_assert_str_eq(json_string_value(json_object_get(e, "city_code")), metro);
                    free(keys);
                    json_t *airports = json_object_get(e, "airports");
                    for (size_t m = 0; m < json_array_size(airports); m++) {
                        json_t *am = json_array_get(airports, m);
                        const fs_airport_t *a = fs_airport_index_lookup(
                            idx, json_string_value(json_object_get(am, "iata_code")));
                        json_t *w = fs_airport_json(a, true);
                        assert_same_json(am, w, a->iata);
                        json_decref(w);
                        cr_assert_str_eq(json_string_value(json_array_get(json_object_get(e, "codes"), m)), a->iata);
                    }
                }
                if (want)
                    assert_same_json(got, want, queries[k]);
                json_decref(want), json_decref(got);
            }
            json_decref(body);
        }
    /* The query is echoed escaped, and "" when it is not UTF-8 (as jansson refuses it). */
    size_t len;
    char *text = fs_airport_index_search_text(idx, "lo\"n\\d\n", 5, false, &len);
    json_t *body = parse(text, len);
    cr_assert_str_eq(json_string_value(json_object_get(body, "query")), "lo\"n\\d\n");
    json_decref(body), free(text);
    text = fs_airport_index_search_text(idx, "\xff\xfe", 5, true, &len);
    cr_assert_str_eq(text, "{\"query\":\"\",\"total\":0,\"results\":[]}");
    free(text);
    text = fs_airport_index_search_text(idx, NULL, 5, false, &len);
    cr_assert_str_eq(text, "{\"query\":\"\",\"total\":0,\"results\":[]}");
    free(text);
}

Test(airport_index, list_text)
{
    const fs_airport_t *out[32];
    size_t n = fs_airport_index_popular(idx, "gb", 10, out), len;
    char *text = fs_airport_index_list_text(idx, out, n, &len);
    json_t *arr = parse(text, len);
    cr_assert_eq(json_array_size(arr), n);
    for (size_t i = 0; i < n; i++) {
        json_t *w = fs_airport_json(out[i], false);
        assert_same_json(json_array_get(arr, i), w, out[i]->iata);
        json_decref(w);
    }
    json_decref(arr), free(text);
    text = fs_airport_index_list_text(idx, out, 0, &len);
    cr_assert_str_eq(text, "[]");
    cr_assert_eq(len, 2);
    free(text);
}

Test(airport_index, popular_and_by_city)
{
    const fs_airport_t *out[32];
    size_t n = fs_airport_index_popular(idx, "gb", 10, out);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(out[0]->iata, "LGW");
    cr_assert_str_eq(out[3]->iata, "STN");
    n = fs_airport_index_popular(idx, NULL, 3, out);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(out[0]->iata, "BGO"); /* Bergen, Berlin, Campinas, ... by city */
    cr_assert_str_eq(out[1]->iata, "BER");
    cr_assert_eq(fs_airport_index_popular(idx, "ZZ", 10, out), 0);

    n = fs_airport_index_by_city(idx, "zurich", 10, out);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(out[0]->iata, "ZRH");
    n = fs_airport_index_by_city(idx, "LONDON", 32, out);
    cr_assert_eq(n, 7, "exact city only: Londonderry is not London");
    cr_assert_str_eq(out[0]->iata, "LHR");
    cr_assert_str_eq(out[6]->iata, "YXU");
    n = fs_airport_index_by_city(idx, "lond", 32, out);
    cr_assert_eq(n, 8, "no exact city: the prefix matches");
    cr_assert_eq(fs_airport_index_by_city(idx, "   ", 32, out), 0);
}

/* ------------------------------------------------------------------------------------------
 * Real data: the index agrees with a brute-force ranking, and is fast
 * ---------------------------------------------------------------------------------------- */

#define OURAIRPORTS "/work/shared/data/ourairports/airports.csv"

typedef struct {
    fs_airport_t *v;
    size_t n;
    char **strings;
    size_t nstrings;
} real_t;

static const char *keep(real_t *r, const char *s)
{
    r->strings = fs_realloc(r->strings, (r->nstrings + 1) * sizeof *r->strings);
    return r->strings[r->nstrings++] = fs_strdup(s);
}

/* Airports with an IATA code: columns 2 type, 3 name, 4-5 position, 8 country, 10 city, 13 IATA. */
static void load_real(real_t *r)
{
    char *err = NULL;
    fs_csv_t *csv = fs_csv_open(OURAIRPORTS, &err);
    cr_assert(csv, "%s", err);
    fs_csv_record_t rec;
    r->v = fs_calloc(90000, sizeof *r->v);
    bool header = true;
    while (fs_csv_next(csv, &rec, &err) == 1) {
        if (header || rec.nfields < 14 || rec.lens[13] != 3 || strcmp(rec.fields[2], "closed") == 0) {
            header = false;
            continue;
        }
        fs_airport_t *a = &r->v[r->n++];
        memcpy(a->iata, rec.fields[13], 4);
        a->name = keep(r, rec.fields[3]);
        a->city = keep(r, rec.lens[10] ? rec.fields[10] : rec.fields[3]);
        a->country = keep(r, rec.fields[8]);
        memcpy(a->country_code, rec.fields[8], 3);
        a->latitude = atof(rec.fields[4]);
        a->longitude = atof(rec.fields[5]);
        a->has_coords = a->is_active = true;
        a->is_major = strcmp(rec.fields[2], "large_airport") == 0;
        a->route_count = (int)(strlen(rec.fields[3]) % 7); /* some spread for the tie-break */
    }
    fs_csv_close(csv);
}

static void free_real(real_t *r)
{
    for (size_t i = 0; i < r->nstrings; i++)
        free(r->strings[i]);
    free(r->strings);
    free(r->v);
}

typedef struct {
    const fs_airport_t *a;
    int tier;
    char *fcity;
} brute_t;

static int cmp_brute(const void *x, const void *y)
{
    const brute_t *p = x, *q = y;
    if (p->tier != q->tier)
        return p->tier - q->tier;
    if (p->a->is_major != q->a->is_major)
        return p->a->is_major ? -1 : 1;
    if (p->a->route_count != q->a->route_count)
        return q->a->route_count - p->a->route_count;
    int c = strcmp(p->fcity, q->fcity);
    return c ? c : strcmp(p->a->iata, q->a->iata);
}

/* The definition, applied to every airport: tier per airport, then the documented order. */
static size_t brute_search(const fs_airport_index_t *ix, const char *q, size_t limit, const fs_airport_t **out)
{
    size_t n = fs_airport_index_count(ix), m = 0;
    brute_t *b = fs_malloc(n * sizeof *b);
    for (size_t i = 0; i < n; i++) {
        const fs_airport_t *a = fs_airport_index_at(ix, i);
        int t = fs_airport_index_tier(a, q);
        if (t != FS_AIRPORT_TIER_NONE)
            b[m++] = (brute_t){a, t, fs_fold(a->city, strlen(a->city))};
    }
    qsort(b, m, sizeof *b, cmp_brute);
    size_t k = m < limit ? m : limit;
    for (size_t i = 0; i < k; i++)
        out[i] = b[i].a;
    for (size_t i = 0; i < m; i++)
        free(b[i].fcity);
    free(b);
    return k;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

Test(airport_index_real, agrees_with_brute_force_and_is_fast, .timeout = 60)
{
    if (access(OURAIRPORTS, R_OK) != 0)
        cr_skip_test("the public data files are not available");
    real_t r = {0};
    load_real(&r);
    cr_assert_eq(r.n, 9054); /* README: 9,054 OurAirports airports with an IATA code */
    fs_airport_index_t *ix = fs_airport_index_build(r.v, r.n);
    cr_assert_eq(fs_airport_index_count(ix), 9054);
    static const char *const queries[] = {
        "lon", "london", "lhr", "dub", "malaga", "zurich", "sao paulo", "new york", "an", "ai", "xy", "lh",
        "international", "heathrow", "par", "paris", "berlin", "ger", "kingdom", "united", "tokyo", "santa",
        "city", "port", "field", "egll", "kjfk", "a b", "los angeles", "san", "st", "xyzq", "ville", "ñ",
        "köln", "münchen", "island", "lake", "de", "aer",
    };
    const size_t nq = sizeof queries / sizeof queries[0];
    const fs_airport_t *got[50], *want[50];
    static const size_t limits[] = {1, 10, 50};
    for (size_t q = 0; q < nq; q++)
        for (size_t li = 0; li < 3; li++) {
            size_t limit = limits[li];
            size_t n = fs_airport_index_search(ix, queries[q], limit, got);
            size_t m = brute_search(ix, queries[q], limit, want);
            cr_assert_eq(n, m, "\"%s\" limit %zu: %zu results, brute force %zu", queries[q], limit, n, m);
            for (size_t i = 0; i < n; i++)
                cr_assert_eq(got[i], want[i], "\"%s\" limit %zu #%zu: %s, brute force %s", queries[q], limit, i,
                             got[i]->iata, want[i]->iata);
        }
    /* Timing: a generous bound (sanitizer and debug builds are several times slower than the
     * release numbers in docs/REFERENCE_DATA.md); it catches an accidental linear scan per
     * query with strstr over every airport. */
    const int rounds = 50;
    double t0 = now_us();
    for (int k = 0; k < rounds; k++)
        for (size_t q = 0; q < nq; q++)
            fs_airport_index_search(ix, queries[q], 10, got);
    double per_query = (now_us() - t0) / (rounds * (double)nq);
    cr_log_info("flat search, limit 10: %.1f us per query over %zu airports", per_query, r.n);
    cr_expect_lt(per_query, 1000.0, "%.1f us per query", per_query);
    fs_airport_index_free(ix);
    free_real(&r);
}
