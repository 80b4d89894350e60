/* Helpers shared by the upstream providers (actors/search/providers/amadeus.c, duffel.c, and
 * any one added later): what every flight API answer needs and no provider should re-invent.
 * Loop thread only (the zone lookup reads the worker's current reference data).
 */
#ifndef FS_UPSTREAM_H
#define FS_UPSTREAM_H

#include "actors/search/offer.h"
#include "actors/search/provider.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An ISO 8601 duration ("PT2H26M", "PT02H26M", "P1DT2H", "PT45M") in whole minutes; -1 when
 * unreadable. */
int fs_upstream_duration_min(const char *s);

/* "YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM|-HH:MM]". *wall: seconds since 1970-01-01 00:00 of that
 * wall clock. *has_offset and *offset_min say whether the text carried an offset. */
bool fs_upstream_parse_time(const char *s, int64_t *wall, bool *has_offset, int *offset_min);

/* Sets the UTC times and offsets of a segment (from/to already set) from local wall-clock
 * texts, as flight APIs give them (no offset). The offset of each end comes, in order, from
 * the text itself, the airport's IANA zone in the worker's reference data (the timetable's
 * zones), or, when the worker has none (tests, tools), from a chain: the departure takes
 * *chain_offset_min (the previous arrival's offset; start at 0) and the arrival the offset
 * that makes the block time equal `duration_min`. Chained offsets are right relative to each
 * other, so durations, connection times and local times are right; only the absolute UTC
 * instant is off by the first airport's real offset. Returns false on unreadable times. */
bool fs_upstream_segment_times(fs_segment_t *sg, const char *dep_local, const char *arr_local, int duration_min,
                               int *chain_offset_min);

/* The outcome of a non-2xx HTTP status: 400/404/422 -> BAD_QUERY, 429 -> RATE_LIMITED,
 * everything else (401/403 credentials, 5xx) -> FAILED. */
fs_provider_outcome_t fs_upstream_outcome(int status);

/* A short reason for an error answer: "HTTP <status>: <title/detail/message of errors[0]>"
 * (the shape Amadeus and Duffel share), plus the Retry-After when given. */
void fs_upstream_error_text(int status, const char *body, const char *retry_after, char *out, size_t cap);

/* Copies at most cap-1 bytes of `s` (NULL -> "") into `out`, NUL-terminated. */
void fs_upstream_copy(char *out, size_t cap, const char *s);

/* Reads one upstream offer into `out`; false skips it. */
typedef bool (*fs_upstream_map_fn)(json_t *item, const fs_search_query_t *q, int64_t priced_at, fs_offer_t *out);
/* Every offer of the JSON array `items` through `map`, priced now. An offer that cannot be read
 * is skipped, as the original did; the list is never NULL. */
fs_offer_list_t *fs_upstream_map_offers(json_t *items, const fs_search_query_t *q, fs_upstream_map_fn map);

#endif
