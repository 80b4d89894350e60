#include "actors/price_ingest/rows.h"

#include "runtime/date.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MS_PER_DAY 86400000LL

static const char *const cabins[] = {"economy", "premium_economy", "business", "first"};

const char *fs_price_cabin_name(int cabin)
{
    return cabin >= 0 && cabin < 4 ? cabins[cabin] : "economy";
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* Strict YYYY-MM-DD naming a real calendar day in 2000-2199. */
static bool parse_date(const char *s, int32_t *days)
{
    fs_date_t d;
    if (!fs_date_parse(s, &d) || d.y < 2000 || d.y > 2199)
        return false;
    *days = (int32_t)fs_date_to_days(d);
    return true;
}

/* Copies an upper-cased code of `min`..`max` characters accepted by `ok`. */
static bool copy_code(char *dst, const char *src, size_t min, size_t max, int (*ok)(int))
{
    size_t n = src ? strlen(src) : 0;
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)toupper((unsigned char)src[i]);
        if (!isascii(c) || !ok(c))
            return false;
        dst[i] = (char)c;
    }
    dst[n] = '\0';
    return true;
}

static bool parse_cabin(const char *s, uint8_t *out)
{
    if (!s || !*s) {
        *out = FS_CABIN_ECONOMY;
        return true;
    }
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, cabins[i]) == 0) {
            *out = (uint8_t)i;
            return true;
        }
    return false;
}

/* Printable ASCII only: the value goes into COPY text and a varchar(50) unchanged. */
static bool copy_source(char *dst, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n > FS_PRICE_SOURCE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (src[i] < 0x20 || src[i] > 0x7e)
            return false;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
    return true;
}

const char *fs_price_row_parse(fs_price_row_t *out, const Fs__Prices__PriceObservation *o, int64_t now_ms,
                               int max_age_days)
{
    memset(out, 0, sizeof *out);
    out->t_ms = o->has_observed_at_ms ? o->observed_at_ms : now_ms;
    if (out->t_ms > now_ms + FS_PRICE_FUTURE_SLACK_MS)
        return "observed_at in the future";
    if (out->t_ms < now_ms - (int64_t)max_age_days * MS_PER_DAY)
        return "observed_at older than the retention";
    if (!copy_code(out->origin, o->origin, 3, 3, isalpha) || !copy_code(out->dest, o->destination, 3, 3, isalpha))
        return "airport code must be 3 letters";
    if (strcmp(out->origin, out->dest) == 0)
        return "origin equals destination";
    if (!copy_code(out->airline, o->airline, 2, 3, isalnum))
        return "airline must be a 2-3 character code";
    if (!parse_date(o->departure_date, &out->dep_days))
        return "departure_date must be YYYY-MM-DD";
    int32_t obs_day = (int32_t)floor_div(out->t_ms, MS_PER_DAY);
    if (out->dep_days < obs_day - 1 || out->dep_days > obs_day + FS_PRICE_DEPARTURE_AHEAD_DAYS)
        return "departure_date out of range for the observation time";
    if (!parse_cabin(o->cabin_class, &out->cabin))
        return "unknown cabin_class";
    if (!o->has_price || !isfinite(o->price) || o->price < 0 || o->price > FS_PRICE_MAX)
        return "price missing or out of range";
    out->price_cents = llround(o->price * 100.0);
    if (o->currency && o->currency[0]) {
        if (!copy_code(out->currency, o->currency, 3, 3, isalpha))
            return "currency must be 3 letters";
    } else {
        memcpy(out->currency, "EUR", 4);
    }
    if (!copy_source(out->source, o->source))
        return "source too long or not printable ASCII";
    return NULL;
}

void fs_price_format_date(int32_t days, char *buf)
{
    fs_date_format(fs_date_from_days(days), buf);
}

void fs_price_format_cents(int64_t cents, char *buf)
{
    snprintf(buf, 24, "%" PRId64 ".%02d", cents / 100, (int)(cents % 100));
}

int fs_price_row_month(const fs_price_row_t *r)
{
    fs_date_t c = fs_date_from_days(floor_div(r->t_ms, MS_PER_DAY));
    return c.y * 12 + c.m - 1;
}

size_t fs_price_row_copy_line(const fs_price_row_t *r, int seq, char *buf)
{
    int64_t day = floor_div(r->t_ms, MS_PER_DAY);
    int64_t ms_of_day = r->t_ms - day * MS_PER_DAY;
    fs_date_t c = fs_date_from_days(day);
    char dep[11], price[24];
    fs_price_format_date(r->dep_days, dep);
    fs_price_format_cents(r->price_cents, price);
    /* source is printable ASCII: only a backslash needs escaping in COPY text */
    char source[2 * FS_PRICE_SOURCE_MAX + 1], *p = source;
    for (const char *s = r->source; *s; s++) {
        if (*s == '\\')
            *p++ = '\\';
        *p++ = *s;
    }
    *p = '\0';
    int n = snprintf(buf, FS_PRICE_LINE_MAX, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n",
                     c.y, c.m, c.d, (int)(ms_of_day / 3600000), (int)(ms_of_day / 60000 % 60),
                     (int)(ms_of_day / 1000 % 60), (int)(ms_of_day % 1000), r->origin, r->dest, r->airline, dep,
                     fs_price_cabin_name(r->cabin), price, r->currency, r->source[0] ? source : "\\N", seq);
    return (size_t)n;
}
