/* Flight offers: what every provider answers and what /flights/search sends.
 *
 * An offer is one priced itinerary (one-way, or a round trip with its return segments), in
 * the shape of the original FlightOffer. Providers build them with the helpers below; the
 * search actor sorts, deduplicates, caches and writes them out (fs_offer_list_json_text).
 * Times are kept in UTC with the local offset of each airport, so a writer can show the
 * local wall-clock time the original showed and a reader can still compute durations.
 */
#ifndef FS_OFFER_H
#define FS_OFFER_H

#include "runtime/date.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- cabins ---------------------------------------------------------------------------------- */

typedef enum fs_cabin {
    FS_CABIN_ECONOMY = 0,
    FS_CABIN_PREMIUM_ECONOMY,
    FS_CABIN_BUSINESS,
    FS_CABIN_FIRST,
} fs_cabin_t;

/* "economy", "premium_economy", "business", "first". */
const char *fs_cabin_name(fs_cabin_t c);
/* Case-insensitive; false for anything else. */
bool fs_cabin_parse(const char *s, fs_cabin_t *out);

/* ---- offers ------------------------------------------------------------------------------- */

#define FS_MAX_SEGMENTS 4 /* per direction: two stops at most for the inventory, four for upstream */

typedef struct fs_segment {
    char from[4], to[4];        /* IATA airport codes */
    int64_t dep_utc, arr_utc;   /* unix seconds */
    int dep_offset_min;         /* local UTC offset at departure, minutes (local = utc + offset) */
    int arr_offset_min;         /* local UTC offset at arrival */
    char carrier[4];            /* marketing carrier code (IATA, or ICAO when it has none) */
    char flight_number[12];     /* carrier + number, e.g. "EI154" */
    char aircraft[8];           /* IATA aircraft type code, "" when unknown */
    int duration_min;           /* block time of the segment */
} fs_segment_t;

typedef struct fs_offer {
    char id[96];                /* "<source>-<provider's id>", unique within a response */
    double price;               /* total for all passengers, 2 decimals */
    char currency[4];           /* ISO 4217, "EUR" unless the provider says otherwise */
    char cabin[20];             /* fs_cabin_name() of the cabin priced */
    char airline[4];            /* carrier of the first outbound segment */
    fs_segment_t out[FS_MAX_SEGMENTS];
    int n_out;
    fs_segment_t ret[FS_MAX_SEGMENTS];
    int n_ret;                  /* 0 for a one-way offer */
    int total_duration_min;     /* elapsed minutes, first departure to last arrival, each way summed */
    int stops;                  /* outbound segments - 1 */
    char source[16];            /* where the fare came from: "inventory" (the fare model),
                                   "observed" (price_history), "amadeus", "duffel", ... */
    int64_t priced_at;          /* unix seconds at which the fare was computed or observed */
    char booking_url[256];      /* "" when none */
    bool virtual_interlining;   /* separate tickets joined by the seller */
} fs_offer_t;

typedef struct fs_offer_list {
    fs_offer_t *items;
    size_t n, cap;
} fs_offer_list_t;

/* Appends a zeroed offer and returns it (the list grows; earlier pointers may move). */
fs_offer_t *fs_offer_list_add(fs_offer_list_t *l);
/* Appends copies of every offer of `src`. */
void fs_offer_list_extend(fs_offer_list_t *l, const fs_offer_list_t *src);
/* Frees the items (the list struct itself is the caller's) and zeroes it. */
void fs_offer_list_clear(fs_offer_list_t *l);
/* A heap list (free with fs_offer_list_free). */
fs_offer_list_t *fs_offer_list_new(void);
void fs_offer_list_free(fs_offer_list_t *l);

/* Derived fields: stops, total_duration_min and airline from the segments. */
void fs_offer_finish(fs_offer_t *o);
/* The original's dedup signature: airline, then for every outbound then return segment
 * "<flight_number>-<local departure time ISO>", joined with '|'. Returns the length written
 * (truncated to `cap` - 1). */
size_t fs_offer_signature(const fs_offer_t *o, char *out, size_t cap);
/* Stable sort by ascending price (equal prices keep their order). */
void fs_offer_list_sort_by_price(fs_offer_list_t *l);
/* Keeps only direct offers (no stop outbound, and no stop on the return). */
void fs_offer_list_keep_direct(fs_offer_list_t *l);

/* Writes the offers as a JSON array of FlightOffer objects (see docs/FLIGHTS.md) into a
 * malloc'd string; *len gets its length. */
char *fs_offer_list_json_text(const fs_offer_list_t *l, size_t *len);

#endif
