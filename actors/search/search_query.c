/* Validation of search requests and their normalised cache keys (docs/FLIGHTS.md, "Errors").
 *
 * The HTTP layer already answered 422 for malformed parameters (FastAPI's list shape); these
 * checks repeat the format rules for the RPC path and add the semantic ones: dates in the
 * past or too far ahead, a return before the departure, unknown codes, the same place at both
 * ends. A departure "today" is accepted as long as it is today anywhere on Earth (UTC-12), so
 * a traveller west of Greenwich is not told that their today is in the past.
 */
#include "actors/search/search_int.h"

#include "runtime/config.h"
#include "storage/metro.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_DAYS_AHEAD 365

__attribute__((format(printf, 3, 4))) static void fail(search_parse_t *out, int status, const char *fmt, ...)
{
    out->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof out->detail, fmt, ap);
    va_end(ap);
}

static bool is_code(const char *s)
{
    if (!s || strlen(s) != 3)
        return false;
    for (int i = 0; i < 3; i++)
        if (!isalnum((unsigned char)s[i]))
            return false;
    return true;
}

/* Resolves a code into its airports: an airport code first, else a city code. */
static bool resolve(const fs_refdata_t *ref, const char *code, char dst[4], char list[][4], int *n)
{
    for (int i = 0; i < 3; i++)
        dst[i] = (char)toupper((unsigned char)code[i]);
    dst[3] = '\0';
    const fs_airport_t *a = fs_airport_index_lookup(ref->airports, dst);
    if (a) {
        memcpy(list[0], a->iata, 4);
        *n = 1;
        return true;
    }
    const fs_airport_t *members[FS_MAX_CITY_AIRPORTS];
    size_t m = fs_metro_airports(ref->airports, dst, members, FS_MAX_CITY_AIRPORTS);
    for (size_t i = 0; i < m; i++)
        memcpy(list[i], members[i]->iata, 4);
    *n = (int)m;
    return m > 0;
}

/* Origin and destination: format, existence, and no airport at both ends. */
static bool parse_places(const fs_refdata_t *ref, const char *origin, const char *destination, search_parse_t *out)
{
    fs_search_query_t *q = &out->q;
    if (!is_code(origin))
        return fail(out, 422, "origin must be a 3-letter airport or city code"), false;
    if (!is_code(destination))
        return fail(out, 422, "destination must be a 3-letter airport or city code"), false;
    if (!ref)
        return fail(out, 503, "Reference data is loading"), false;
    if (!resolve(ref, origin, q->origin, q->origin_airports, &q->n_origin_airports))
        return fail(out, 400, "Unknown airport code '%s'", q->origin), false;
    if (!resolve(ref, destination, q->destination, q->destination_airports, &q->n_destination_airports))
        return fail(out, 400, "Unknown airport code '%s'", q->destination), false;
    for (int i = 0; i < q->n_origin_airports; i++)
        for (int j = 0; j < q->n_destination_airports; j++)
            if (strcmp(q->origin_airports[i], q->destination_airports[j]) == 0)
                return fail(out, 400, "Origin and destination must be different"), false;
    return true;
}

static bool parse_common(int has_passengers, int passengers, const char *cabin, search_parse_t *out)
{
    out->q.passengers = has_passengers ? passengers : 1;
    if (out->q.passengers < 1 || out->q.passengers > 9)
        return fail(out, 422, "passengers must be between 1 and 9"), false;
    out->q.cabin = FS_CABIN_ECONOMY;
    if (cabin && !fs_cabin_parse(cabin, &out->q.cabin))
        return fail(out, 422, "cabin_class must be one of economy, premium_economy, business, first"), false;
    return true;
}

/* A travel date: well formed, not before today anywhere on Earth, within a year. */
static bool parse_travel_date(const char *name, const char *s, int64_t now, fs_date_t *d, search_parse_t *out)
{
    if (!fs_date_parse(s, d))
        return fail(out, 422, "%s must be a date in YYYY-MM-DD format", name), false;
    int64_t day = fs_date_to_days(*d);
    int64_t earliest = fs_date_to_days(fs_date_of_unix(now - 12 * 3600));
    if (day < earliest)
        return fail(out, 400, "%s cannot be in the past",
                    strcmp(name, "departure_date") == 0 ? "Departure date" : "Return date"),
               false;
    if (day > fs_date_to_days(fs_date_of_unix(now)) + MAX_DAYS_AHEAD)
        return fail(out, 400, "%s is more than %d days ahead", name, MAX_DAYS_AHEAD), false;
    return true;
}

void fsint_search_parse(const fs_refdata_t *ref, const Fs__Search__SearchRequest *in, int64_t now,
                        search_parse_t *out)
{
    memset(out, 0, sizeof *out);
    out->status = 200;
    fs_search_query_t *q = &out->q;
    q->now = now;
    if (!parse_common(in->has_passengers, in->passengers, in->cabin_class, out))
        return;
    const char *strategy = in->strategy ? in->strategy : fs_cfg->flight_search_strategy;
    if (!fs_strategy_parse(strategy, &out->strategy))
        return fail(out, 422, "strategy must be one of fallback, parallel, best_price");
    if (!in->departure_date)
        return fail(out, 422, "departure_date is required");
    if (!parse_travel_date("departure_date", in->departure_date, now, &q->departure, out))
        return;
    if (in->return_date && *in->return_date) {
        if (!fs_date_parse(in->return_date, &q->return_date))
            return fail(out, 422, "return_date must be a date in YYYY-MM-DD format");
        if (fs_date_to_days(q->return_date) < fs_date_to_days(q->departure))
            return fail(out, 400, "Return date must be after departure date");
        if (!parse_travel_date("return_date", in->return_date, now, &q->return_date, out))
            return;
        q->has_return = true;
    }
    q->direct_only = in->has_direct_only && in->direct_only;
    if (!parse_places(ref, in->origin, in->destination, out))
        return;
    char dep[11], ret[11] = "-";
    fs_date_format(q->departure, dep);
    if (q->has_return)
        fs_date_format(q->return_date, ret);
    snprintf(out->key, sizeof out->key, "search:%s:%s:%s:%s:%d:%s:%d:%s", q->origin, q->destination, dep, ret,
             q->passengers, fs_cabin_name(q->cabin), q->direct_only, fs_strategy_name(out->strategy));
}

void fsint_calendar_parse(const fs_refdata_t *ref, const Fs__Search__CalendarRequest *in, int64_t now,
                          search_parse_t *out, int *year, int *month)
{
    memset(out, 0, sizeof *out);
    out->status = 200;
    out->q.now = now;
    if (!parse_common(in->has_passengers, in->passengers, in->cabin_class, out))
        return;
    if (!in->has_month || in->month < 1 || in->month > 12)
        return fail(out, 422, "month must be between 1 and 12");
    fs_date_t today = fs_date_of_unix(now);
    if (!in->has_year || in->year < today.y - 1 || in->year > today.y + 2)
        return fail(out, 422, "year must be between %d and %d", today.y - 1, today.y + 2);
    *year = in->year;
    *month = in->month;
    fs_date_t last = {in->year, in->month, fs_days_in_month(in->year, in->month)};
    if (fs_date_to_days(last) < fs_date_to_days(fs_date_of_unix(now - 12 * 3600)))
        return fail(out, 400, "Month cannot be in the past");
    if (fs_date_to_days((fs_date_t){in->year, in->month, 1}) > fs_date_to_days(today) + MAX_DAYS_AHEAD)
        return fail(out, 400, "month is more than %d days ahead", MAX_DAYS_AHEAD);
    out->q.departure = (fs_date_t){in->year, in->month, 1};
    if (!parse_places(ref, in->origin, in->destination, out))
        return;
    snprintf(out->key, sizeof out->key, "calendar:%s:%s:%04d-%02d:%d:%s", out->q.origin, out->q.destination,
             in->year, in->month, out->q.passengers, fs_cabin_name(out->q.cabin));
}

#define FLEX_MAX_RANGE_DAYS 62
#define FLEX_MAX_NIGHTS 30

void fsint_flexible_parse(const fs_refdata_t *ref, const Fs__Search__FlexibleRequest *in, int64_t now,
                          search_parse_t *out, fs_flexible_query_t *fq)
{
    memset(out, 0, sizeof *out);
    memset(fq, 0, sizeof *fq);
    out->status = 200;
    out->q.now = now;
    if (!parse_common(in->has_passengers, in->passengers, in->cabin_class, out))
        return;
    if (!in->date_from)
        return fail(out, 422, "date_from is required");
    if (!in->date_to)
        return fail(out, 422, "date_to is required");
    if (!parse_travel_date("date_from", in->date_from, now, &fq->from, out) ||
        !parse_travel_date("date_to", in->date_to, now, &fq->to, out))
        return;
    int64_t span = fs_date_to_days(fq->to) - fs_date_to_days(fq->from);
    if (span < 0)
        return fail(out, 400, "date_to must not be before date_from");
    if (span > FLEX_MAX_RANGE_DAYS)
        return fail(out, 400, "The date range may span at most %d days", FLEX_MAX_RANGE_DAYS);
    fq->nights_min = in->has_nights_from ? in->nights_from : 3;
    fq->nights_max = in->has_nights_to ? in->nights_to : fq->nights_min + 4;
    if (fq->nights_min < 0 || fq->nights_max > FLEX_MAX_NIGHTS || fq->nights_max < fq->nights_min)
        return fail(out, 422, "nights must satisfy 0 <= nights_from <= nights_to <= %d", FLEX_MAX_NIGHTS);
    fq->limit = in->has_limit ? in->limit : 10;
    if (fq->limit < 1 || fq->limit > 50)
        return fail(out, 422, "limit must be between 1 and 50");
    out->q.departure = fq->from;
    if (!parse_places(ref, in->origin, in->destination, out))
        return;
    fq->base = out->q;
    char from[11], to[11];
    fs_date_format(fq->from, from);
    fs_date_format(fq->to, to);
    snprintf(out->key, sizeof out->key, "flexible:%s:%s:%s:%s:%d-%d:%d:%s:%d", out->q.origin, out->q.destination,
             from, to, fq->nights_min, fq->nights_max, out->q.passengers, fs_cabin_name(out->q.cabin), fq->limit);
}
