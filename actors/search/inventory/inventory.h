/* The embedded inventory: dated flights, fares and itineraries computed from the reference
 * data (storage/timetable.h), with no keys and no network. The `inventory` provider
 * (actors/search/providers/inventory.c) runs these on the worker's thread pool; tests and the
 * micro-benchmark call them directly.
 *
 * Every function here is pure: it reads the immutable bundle and the query, writes its answer
 * and keeps nothing, so any number of threads may run searches at the same time. The same
 * query (same bundle, same UTC day of `now`) gives the same offers in the same order, except
 * that flights which have already left (`now`) are never offered. docs/INVENTORY.md describes
 * the schedule, the fare model and the itinerary rules.
 */
#ifndef FS_INVENTORY_H
#define FS_INVENTORY_H

#include "actors/search/provider.h"
#include "storage/refdata.h"

#include <stddef.h>

#define FS_INVENTORY_MAX_OFFERS 50

/* Connection rules of a search. */
typedef struct fs_inventory_rules {
    int mct_min;           /* minimum connection time on one carrier */
    int mct_interline_min; /* minimum connection time when changing carrier */
    int max_layover_min;   /* longest wait between two flights */
    int max_offers;        /* offers per answer (1..FS_INVENTORY_MAX_OFFERS) */
} fs_inventory_rules_t;

/* The rules from fs_cfg (MIN_CONNECTION_MINUTES, MIN_CONNECTION_INTERLINE_MINUTES,
 * MAX_LAYOVER_MINUTES), or 45 / 90 / 600 when no configuration is loaded; 50 offers. */
fs_inventory_rules_t fs_inventory_rules_default(void);

/* One-way or round-trip search (q->has_return). Appends the offers, cheapest first, to `out`
 * and returns how many. Unknown airports or no route give 0. `rules` may be NULL (defaults). */
size_t fs_inventory_search(const fs_refdata_t *r, const fs_search_query_t *q,
                           const fs_inventory_rules_t *rules, fs_offer_list_t *out);

/* Cheapest fare of each day of `month` (1..12) of `year`, for the query's passengers and
 * cabin: one-way, or, when q->has_return, a round trip staying as many nights as
 * q->return_date - q->departure. Writes fs_days_in_month entries to `days` (index 0 = the
 * 1st) and returns their number (0 for an invalid month). Days before today's UTC date have
 * no price. */
int fs_inventory_calendar(const fs_refdata_t *r, const fs_search_query_t *q,
                          const fs_inventory_rules_t *rules, int year, int month, fs_calendar_day_t days[31]);

/* The cheapest round trips departing between q->from and q->to (at most 93 days) and staying
 * q->nights_min..q->nights_max nights (0..30): one offer per (departure date, nights), the
 * cheapest itinerary of each way, cheapest first, at most q->limit (1..50; 0 = 10). */
size_t fs_inventory_flexible(const fs_refdata_t *r, const fs_flexible_query_t *q,
                             const fs_inventory_rules_t *rules, fs_offer_list_t *out);

#endif
