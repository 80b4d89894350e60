/* Airport search: an immutable in-memory index over the active airports.
 *
 * Built once from rows (fs_airport_index_build, pure C, no database, no event loop), then only
 * read: any number of threads may query one index at the same time, and a worker replaces its
 * index by swapping a pointer and freeing the old one (fs_airport_index_free) once no request
 * uses it. storage/refdata.h loads the rows from PostgreSQL.
 *
 * Matching folds case and accents on both sides ("malaga" finds Málaga, "zurich" Zürich,
 * "sao paulo" São Paulo, "strasse" Straße; see storage/textfold.h) and collapses spaces. A
 * query shorter than 2 characters after trimming matches nothing. Ranking tiers, best first:
 *
 *   1 exact code      the query is the airport's IATA code (or its ICAO code)
 *   2 city prefix     the city starts with the query
 *   3 name prefix     the airport name starts with the query
 *   4 word prefix     a later word of the city or name starts with the query ("gatwick",
 *                     "paulo"), or the IATA code starts with a 2-character query
 *   5 substring       the city or the name contains the query
 *   6 country         the country name contains the query
 *
 * Within a tier: major airports first, then more routes first, then city (folded, A-Z), then
 * IATA code. An airport appears once, in its best tier. docs/REFERENCE_DATA.md compares this
 * with the original scores.
 */
#ifndef FS_AIRPORT_INDEX_H
#define FS_AIRPORT_INDEX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* One airport. As build input the strings are borrowed (copied by the build); inside an index
 * they belong to the index and live as long as it. */
typedef struct fs_airport {
    char iata[4];          /** IATA code, 3 capital letters/digits */
    char icao[5];          /** ICAO code, "" when unknown */
    const char *name;      /** airport name, UTF-8 */
    const char *city;      /** city shown and grouped on */
    const char *country;   /** country name */
    char country_code[3];  /** ISO 3166-1 alpha-2 */
    const char *timezone;  /** IANA zone name, NULL when unknown */
    double latitude;       /** degrees, + north (valid when has_coords) */
    double longitude;      /** degrees, + east (valid when has_coords) */
    bool has_coords;
    bool is_major;         /** listed first; shown by "popular" */
    bool is_active;        /** inactive rows are dropped by the build */
    int route_count;       /** active routes touching the airport (tie-break) */
} fs_airport_t;

typedef struct fs_airport_index fs_airport_index_t;

/* Search tiers (fs_airport_index_tier). */
typedef enum {
    FS_AIRPORT_TIER_CODE = 0,
    FS_AIRPORT_TIER_CITY_PREFIX,
    FS_AIRPORT_TIER_NAME_PREFIX,
    FS_AIRPORT_TIER_WORD_PREFIX,
    FS_AIRPORT_TIER_SUBSTRING,
    FS_AIRPORT_TIER_COUNTRY,
    FS_AIRPORT_TIER_NONE,
} fs_airport_tier_t;

#define FS_AIRPORT_QUERY_MIN 2    /* characters, after trimming */
#define FS_AIRPORT_QUERY_MAX 100  /* bytes considered; longer queries are cut */

/* Builds an index over the active rows (copies every string). Rows with a duplicate IATA
 * code keep the first. Never returns NULL (an empty index is valid). */
fs_airport_index_t *fs_airport_index_build(const fs_airport_t *rows, size_t n);

/* The single free function of an index (NULL is fine). */
void fs_airport_index_free(fs_airport_index_t *idx);

/* Number of airports indexed. */
size_t fs_airport_index_count(const fs_airport_index_t *idx);

/* Airport i (0 <= i < count), in IATA code order. */
const fs_airport_t *fs_airport_index_at(const fs_airport_index_t *idx, size_t i);

/* Looks up an IATA code, case-insensitively ("dub" finds DUB). NULL when unknown. */
const fs_airport_t *fs_airport_index_lookup(const fs_airport_index_t *idx, const char *code);

/* Ranked search (tiers above). Writes at most `limit` airports to `out`, best first, and
 * returns how many. */
size_t fs_airport_index_search(const fs_airport_index_t *idx, const char *query, size_t limit,
                               const fs_airport_t **out);

/* The tier in which `a` matches `query` (FS_AIRPORT_TIER_NONE when it does not). For tests
 * and explanations; the search does not call it per airport. */
fs_airport_tier_t fs_airport_index_tier(const fs_airport_t *a, const char *query);

/* Major airports, optionally only those of `country_code` (case-insensitive; NULL or "" for
 * all), sorted by city then code. Returns how many were written (at most `limit`). */
size_t fs_airport_index_popular(const fs_airport_index_t *idx, const char *country_code, size_t limit,
                                const fs_airport_t **out);

/* Airports of a city: those whose city equals `city` after folding ("zurich" = "Zürich"), in
 * any country; when there are none, those whose city starts with it. Major first, then more
 * routes, then name. Returns how many were written (at most `limit`). */
size_t fs_airport_index_by_city(const fs_airport_index_t *idx, const char *city, size_t limit,
                                const fs_airport_t **out);

/* ---- Response text ---------------------------------------------------------------------
 * The build serialises every airport once (the airports are immutable for the life of the
 * index), so a response is a concatenation of stored fragments rather than a jansson tree
 * and a json_dumps per request. Fragments hold the same keys, in the same order and with the
 * same types as fs_airport_json; strings are escaped by jansson; latitude and longitude are
 * written with at most 6 decimals, trailing zeros trimmed but always with a decimal point
 * (51.4706, -0.4619, 51.0: still a JSON real), null without coordinates.
 * The bodies returned below are malloc'd, NUL-terminated, `*len` bytes; free() them. */

/* AirportResponse text of an airport of `idx` (a pointer from this index: lookup, search,
 * popular, by_city). Borrowed: valid as long as the index; not NUL-terminated. */
const char *fs_airport_index_text(const fs_airport_index_t *idx, const fs_airport_t *a, size_t *len);

/* JSON array of the AirportResponse texts of `list` (airports of `idx`). */
char *fs_airport_index_list_text(const fs_airport_index_t *idx, const fs_airport_t *const *list, size_t n,
                                 size_t *len);

/* The body of fs_airport_index_search_json below, as text. */
char *fs_airport_index_search_text(const fs_airport_index_t *idx, const char *query, size_t limit, bool grouped,
                                   size_t *len);

/* AirportResponse text (`full`: the grouped object) of any airport, e.g. one read from the
 * database; the same writer the build uses. */
char *fs_airport_text(const fs_airport_t *a, bool full, size_t *len);

/* AirportResponse of the original: {iata_code, name, city, country, country_code, latitude,
 * longitude, is_major}; `full` adds icao_code, timezone and is_active (the original's cached
 * object, used inside grouped results). New reference. */
json_t *fs_airport_json(const fs_airport_t *a, bool full);

/* The whole response body of /airports/search (grouped = false) or /airports/search/grouped
 * (grouped = true): {"query": query as sent, "total": n, "results": [...]}. Flat results are
 * AirportResponse objects. Grouped results fold the matched airports of one city (same folded
 * city and country) into {"type":"city","city","country","country_code","airport_count",
 * "airports":[full objects, major first, then by name],"codes":[same order],"display":"London
 * (All 5 airports)"} when two or more match, else {"type":"airport", <full object>}; an entry
 * sits where its best airport ranks, and `limit` counts entries. New reference (parsed from
 * fs_airport_index_search_text, which the endpoints send; for tests and tools). */
json_t *fs_airport_index_search_json(const fs_airport_index_t *idx, const char *query, size_t limit, bool grouped);

#endif
