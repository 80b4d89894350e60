/* Price observations as the ingest buffers them (private to actors/price_ingest/): validated
 * once on arrival, then fixed-size rows that format themselves as COPY text lines and as
 * Redis stream fields. */
#ifndef FS_PRICE_ROWS_H
#define FS_PRICE_ROWS_H

#include "schemas/prices.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define FS_PRICE_MAX 1000000.0        /* per passenger; above is a provider bug, not a fare */
#define FS_PRICE_FUTURE_SLACK_MS 86400000LL /* observed_at may be ahead by clock skew, not more */
#define FS_PRICE_DEPARTURE_AHEAD_DAYS 731   /* a fare for travel more than two years out is noise */
#define FS_PRICE_SOURCE_MAX 50        /* price_history.source is varchar(50) */
#define FS_PRICE_LINE_MAX 256         /* bound of one COPY line from fs_price_row_copy_line */

enum { FS_CABIN_ECONOMY, FS_CABIN_PREMIUM_ECONOMY, FS_CABIN_BUSINESS, FS_CABIN_FIRST };

typedef struct fs_price_row {
    int64_t t_ms;        /* observation time, unix ms */
    int64_t price_cents;
    uint32_t ask;        /* id of the ask waiting for this row, 0 for none */
    int32_t dep_days;    /* departure date, days since 1970-01-01 */
    char origin[4], dest[4], airline[4], currency[4];
    uint8_t cabin;
    char source[FS_PRICE_SOURCE_MAX + 1]; /* "" = NULL */
} fs_price_row_t;

/* Fills `out` from an observation. Returns NULL when valid, else a constant reason.
 * `now_ms` (unix ms) stands in for an unset observed_at_ms; rows older than `max_age_days`
 * are refused (they would land in a partition the retention drops). */
const char *fs_price_row_parse(fs_price_row_t *out, const Fs__Prices__PriceObservation *o, int64_t now_ms,
                               int max_age_days);

/* One COPY text line (tab-separated, newline-terminated) for price_ingest_stage, with `seq`
 * as the last column. Returns its length (< FS_PRICE_LINE_MAX). */
size_t fs_price_row_copy_line(const fs_price_row_t *r, int seq, char *buf);

/* The month of the observation: year * 12 + month - 1 (UTC). */
int fs_price_row_month(const fs_price_row_t *r);

const char *fs_price_cabin_name(int cabin);
/* "YYYY-MM-DD" of days since the epoch into buf[11]. */
void fs_price_format_date(int32_t days, char *buf);
/* "123.45" into buf[24]. */
void fs_price_format_cents(int64_t cents, char *buf);

#endif
