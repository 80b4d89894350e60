#include "runtime/date.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dates (days from civil, H. Hinnant's algorithm) ----------------------------------------- */

int64_t fs_date_to_days(fs_date_t d)
{
    int64_t y = d.y - (d.m <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (d.m + (d.m > 2 ? -3 : 9)) + 2) / 5 + d.d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

fs_date_t fs_date_from_days(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    return (fs_date_t){(int)(yoe + era * 400 + (m <= 2)), m, d};
}

int fs_date_weekday(fs_date_t d)
{
    int64_t days = fs_date_to_days(d); /* 1970-01-01 was a Thursday (3) */
    return (int)(((days % 7) + 7 + 3) % 7);
}

int fs_days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12)
        return 0;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return days[m - 1] + (m == 2 && leap);
}

bool fs_date_parse(const char *s, fs_date_t *out)
{
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return false;
    fs_date_t d = {atoi(s), atoi(s + 5), atoi(s + 8)};
    if (d.y < 1 || d.m < 1 || d.m > 12 || d.d < 1 || d.d > fs_days_in_month(d.y, d.m))
        return false;
    *out = d;
    return true;
}

void fs_date_format(fs_date_t d, char out[11])
{
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02d", d.y, d.m, d.d);
    memcpy(out, tmp, 10);
    out[10] = '\0';
}

fs_date_t fs_date_of_unix(int64_t unix_s)
{
    int64_t days = unix_s >= 0 ? unix_s / 86400 : -((-unix_s + 86399) / 86400);
    return fs_date_from_days(days);
}

