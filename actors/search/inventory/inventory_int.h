/* Inside the inventory: dated flights, itineraries and the one-way search engine shared by
 * the search, the calendar and the flexible search (connections.c). Not for other modules. */
#ifndef FS_INVENTORY_INT_H
#define FS_INVENTORY_INT_H

#include "actors/search/inventory/inventory.h"
#include "storage/timetable.h"

#include <stdbool.h>
#include <stdint.h>

/* Search limits (docs/INVENTORY.md, "Itineraries"). */
#define INV_DETOUR_FACTOR   1.3 /* flown distance <= factor x great circle + INV_DETOUR_KM */
#define INV_DETOUR_KM       500.0
#define INV_TWO_STOP_BELOW  5  /* two-stop itineraries only when fewer options than this */
#define INV_KEEP_PER_FLIGHT 3  /* onward options kept per first flight, and per last flight */
#define INV_ROUND_TRIP_K    12 /* best outbound x best return combined */

/* Bump allocator for one search: everything a search builds is freed at once. */
typedef struct inv_chunk inv_chunk_t;
typedef struct inv_arena {
    inv_chunk_t *head;
} inv_arena_t;

void *inv_alloc(inv_arena_t *a, size_t size);
void inv_arena_reset(inv_arena_t *a); /* frees all but the first chunk */
void inv_arena_free(inv_arena_t *a);

/* One dated flight. */
typedef struct inv_inst {
    const fs_tt_service_t *svc;
    const fs_tt_departure_t *dep;
    int64_t dep_utc, arr_utc;
    int32_t dep_off;      /* seconds east of UTC at the departure */
    int32_t date;         /* local departure date, days since 1970-01-01 */
    int32_t fare;         /* cents per passenger, sold alone */
    int32_t fare_through; /* cents per passenger, inside a through ticket */
    uint32_t sid;         /* service index (tie-breaks) */
    bool priced;          /* the fares below are set (flights are priced when first used) */
    bool observed;        /* fare from price_history */
    int64_t observed_at;
    char flight[8]; /* carrier + number */
} inv_inst_t;

/* One priced itinerary in one direction. */
typedef struct inv_itin {
    const inv_inst_t *leg[3];
    uint8_t n;
    bool through;     /* one ticket: one carrier or one alliance */
    int64_t price;    /* cents per passenger */
    int64_t dep, arr; /* UTC of the first departure and the last arrival */
} inv_itin_t;

typedef struct inv_ctx {
    const fs_timetable_t *tt;
    const fs_search_query_t *q;
    fs_inventory_rules_t rules;
    int64_t today;                  /* UTC date of q->now, days */
    const fs_observed_fare_t **obs; /* the query's observed fares of its cabin */
    size_t n_obs;
    inv_arena_t arena;
} inv_ctx_t;

/* Airports of one side of a search (timetable indexes). */
typedef struct inv_side {
    uint32_t ap[FS_MAX_CITY_AIRPORTS];
    int n;
} inv_side_t;

void inv_ctx_init(inv_ctx_t *c, const fs_timetable_t *tt, const fs_search_query_t *q,
                  const fs_inventory_rules_t *rules);
void inv_ctx_free(inv_ctx_t *c);

/* The airports named by codes[n] that the timetable knows (unknown ones are skipped). */
inv_side_t inv_side(const fs_timetable_t *tt, const char (*codes)[4], int n);
/* Both sides of a query: its airport lists, or its origin / destination code when a list is
 * empty. */
void inv_sides(const fs_timetable_t *tt, const fs_search_query_t *q, inv_side_t *from, inv_side_t *to);

/* One-way itineraries from `from` to `to` leaving on local date `date` (days): best first
 * (price, duration, stops, then flights), at most rules.max_offers. The array and what it
 * points to live in c->arena. */
size_t inv_one_way(inv_ctx_t *c, const inv_side_t *from, const inv_side_t *to, int64_t date, bool direct_only,
                   inv_itin_t **out);

/* Total order of itineraries: price, duration, stops, then the flights. */
int inv_itin_cmp(const inv_itin_t *a, const inv_itin_t *b);

/* ---- offers and round trips (itinerary.c) ---- */

typedef struct inv_pair {
    const inv_itin_t *out, *ret;
} inv_pair_t;

int64_t inv_days(fs_date_t d);

/* Writes one offer: outbound `out`, return `ret` (NULL for one-way). */
void inv_fill_offer(const inv_ctx_t *c, fs_offer_t *o, const inv_itin_t *out, const inv_itin_t *ret);

/* Can `ret` follow `out` (a same-day return leaves a connection time after the landing)? */
bool inv_round_trip_ok(const inv_ctx_t *c, const inv_itin_t *out, const inv_itin_t *ret);

/* Round trips from the best INV_ROUND_TRIP_K of `outs` and of `rets` (both sorted best
 * first): cheapest first (then shorter, then the better-ranked outbound and return), at most
 * `limit`, written to pairs[]. */
size_t inv_round_trips(inv_ctx_t *c, const inv_itin_t *outs, size_t no, const inv_itin_t *rets, size_t nr,
                       size_t limit, inv_pair_t *pairs);

#endif
