/* The in-memory index of one alert shard: every active alert of the shard's routes, grouped by
 * route and ordered by target price, so that matching an observation is one hash probe and a
 * walk over the alerts whose target is at or above the price.
 *
 * Layout (docs/ALERTS.md has the numbers):
 *   - an open-addressing table of routes (linear probing, power-of-two capacity), keyed by the
 *     route packed in 32 bits (fs_alert_route_key);
 *   - per route one array of 32-byte records sorted by target price, highest first; no
 *     allocation per alert, one per route (grown by half again when full).
 * An alert is found for update or removal by its route and id (a scan of that route's array:
 * routes hold tens to hundreds of alerts). Single-threaded: the shard's loop owns it.
 */
#ifndef FS_ALERT_INDEX_H
#define FS_ALERT_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FS_ALERT_CABIN_ANY 0xFF    /**< cabin of an alert that watches every cabin */
#define FS_ALERT_DATE_OPEN_FROM 0  /**< date_from of an alert with no lower bound */
#define FS_ALERT_DATE_OPEN_TO 0xFFFF /**< date_to of an alert with no upper bound */

/* One active alert: what matching needs and nothing more (the user, the codes and the texts
 * are read by the database statement that records a match). */
typedef struct fs_alert_rec {
    uint8_t id[16];        /**< the UUID, binary */
    int32_t target_cents;  /**< the target price in cents: sort key, highest first */
    uint32_t notified_s;   /**< unix seconds of the last notification; 0 = never */
    uint16_t date_from;    /**< first travel day watched (days since 1970), or DATE_OPEN_FROM */
    uint16_t date_to;      /**< last travel day watched, or DATE_OPEN_TO */
    uint16_t currency;     /**< fs_alert_currency_pack of the target's currency */
    uint8_t cabin;         /**< fs_cabin_t, or FS_ALERT_CABIN_ANY */
    uint8_t _pad;
} fs_alert_rec_t;

/* An observed fare, packed as the records are. */
typedef struct fs_alert_obs {
    uint32_t route;       /**< fs_alert_route_key */
    int32_t price_cents;
    uint16_t day;         /**< travel day, days since 1970 */
    uint16_t currency;
    uint8_t cabin;        /**< fs_cabin_t */
} fs_alert_obs_t;

typedef struct fs_alert_index fs_alert_index_t;

/* Origin and destination ("DUB", "LHR": 3 letters or digits, any case) packed in 32 bits
 * (base 37 per character); 0 when either code is not of that form. */
uint32_t fs_alert_route_key(const char *origin, const char *destination);
/* The same from counted bytes (stream fields are not NUL-terminated in every reader). */
uint32_t fs_alert_route_key_n(const char *origin, size_t olen, const char *destination, size_t dlen);
/* Back to the codes (4 bytes each with the NUL). */
void fs_alert_route_codes(uint32_t route, char origin[4], char destination[4]);

/* The shard of a route among `n` (n >= 1): the polynomial hash sum(ascii(c_k) * 31^(5-k)) over
 * the six upper-case characters of origin then destination, modulo n. Stable across
 * processes, hosts and versions, and computable in SQL (FS_ALERT_SHARD_SQL) so that a shard
 * loads only its own rows. */
int fs_alert_shard_of(uint32_t route, int n);
/* The same in SQL over columns `o` and `d`, for "... WHERE <expr> % n = i". */
#define FS_ALERT_SHARD_SQL(o, d)                                                                               \
    "(((((ascii(substr(" o ",1,1))::bigint*31 + ascii(substr(" o ",2,1)))*31 + ascii(substr(" o              \
    ",3,1)))*31 + ascii(substr(" d ",1,1)))*31 + ascii(substr(" d ",2,1)))*31 + ascii(substr(" d ",3,1)))"

/* Three letters packed in 15 bits; 0 for anything else. */
uint16_t fs_alert_currency_pack(const char *code, size_t len);

/* Days since 1970 of a strict "YYYY-MM-DD" (len 10) within 1970..2149; -1 otherwise. */
int fs_alert_day_parse(const char *s, size_t len);

fs_alert_index_t *fs_alert_index_new(void);
void fs_alert_index_free(fs_alert_index_t *idx); /* NULL is fine */

/* Inserts or replaces (same route and id) an alert, keeping the route's order. */
void fs_alert_index_put(fs_alert_index_t *idx, uint32_t route, const fs_alert_rec_t *rec);
/* Removes an alert; false when it was not there. */
bool fs_alert_index_remove(fs_alert_index_t *idx, uint32_t route, const uint8_t id[16]);
/* The record, or NULL. Valid until the next put or remove. */
fs_alert_rec_t *fs_alert_index_find(fs_alert_index_t *idx, uint32_t route, const uint8_t id[16]);

/* Writes to `out` (at most `max`) the alerts `obs` satisfies: target >= price, same currency,
 * cabin ANY or equal, travel day within [date_from, date_to], and not notified within
 * `cooldown_s` before `now_s`. Highest target first. Returns the number of matches, which may
 * exceed `max` (only `max` were written). Pointers are valid until the next put or remove. */
size_t fs_alert_index_match(fs_alert_index_t *idx, const fs_alert_obs_t *obs, uint32_t now_s, uint32_t cooldown_s,
                            fs_alert_rec_t **out, size_t max);

size_t fs_alert_index_count(const fs_alert_index_t *idx);
size_t fs_alert_index_routes(const fs_alert_index_t *idx);
/* Bytes held: the route table plus every route's array (capacity, not just length). */
size_t fs_alert_index_bytes(const fs_alert_index_t *idx);
/* Shrinks every route's array to its length (after a bulk load). */
void fs_alert_index_compact(fs_alert_index_t *idx);

/* Calls fn for every alert (route order unspecified, target order within a route). */
typedef void (*fs_alert_visit_fn)(uint32_t route, const fs_alert_rec_t *rec, void *arg);
void fs_alert_index_foreach(const fs_alert_index_t *idx, fs_alert_visit_fn fn, void *arg);

#endif
