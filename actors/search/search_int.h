/* Internal to the search actor's files. */
#ifndef FS_SEARCH_INT_H
#define FS_SEARCH_INT_H

#include "actors/search/search.h"
#include "schemas/search.pb-c.h"
#include "storage/refdata.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A request turned into a provider query, or an error for the client. */
typedef struct search_parse {
    int status;          /* 200 when usable, else 400 / 422 / 503 */
    char detail[160];
    fs_search_query_t q;
    fs_strategy_t strategy;
    char key[192];       /* normalised cache key (equivalent queries share it) */
} search_parse_t;

/* The three request kinds; `today` is the UTC day of `now`. */
void fsint_search_parse(const fs_refdata_t *ref, const Fs__Search__SearchRequest *in, int64_t now,
                        search_parse_t *out);
void fsint_calendar_parse(const fs_refdata_t *ref, const Fs__Search__CalendarRequest *in, int64_t now,
                          search_parse_t *out, int *year, int *month);
void fsint_flexible_parse(const fs_refdata_t *ref, const Fs__Search__FlexibleRequest *in, int64_t now,
                          search_parse_t *out, fs_flexible_query_t *fq);

/* ---- analytics (search_log.c) ------------------------------------------------------------- */

typedef struct search_log_row {
    char origin[4], destination[4];
    fs_date_t departure, return_date;
    bool has_return;
    int passengers;
    fs_cabin_t cabin;
    bool direct_only;
    fs_strategy_t strategy;
    int result_count;
    bool cached;
    double response_ms;
    int64_t at_ms;       /* fs_now_ms() when the search was answered */
} search_log_row_t;

void fsint_search_log_init(fs_pg_pool_t *pg, fs_metrics_t *metrics);
void fsint_search_log_add(const search_log_row_t *row);
void fsint_search_log_flush(void);
void fsint_search_log_free(void);

#endif
