/* Civil dates (proleptic Gregorian, no time zone) as day numbers, with H. Hinnant's
 * days_from_civil / civil_from_days: the one calendar of flight dates, time-zone rules and
 * price rows. */
#ifndef FS_DATE_H
#define FS_DATE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct fs_date {
    int y, m, d; /* civil date, proleptic Gregorian */
} fs_date_t;

/* Days since 1970-01-01 (negative before), and back. */
int64_t fs_date_to_days(fs_date_t d);
fs_date_t fs_date_from_days(int64_t days);
/* 0 = Monday ... 6 = Sunday. */
int fs_date_weekday(fs_date_t d);
/* "YYYY-MM-DD" strictly (a real calendar day); false otherwise. */
bool fs_date_parse(const char *s, fs_date_t *out);
/* Writes "YYYY-MM-DD" (11 bytes with the NUL). */
void fs_date_format(fs_date_t d, char out[11]);
/* Today's UTC date for a unix time. */
fs_date_t fs_date_of_unix(int64_t unix_s);
int fs_days_in_month(int y, int m);

#endif
