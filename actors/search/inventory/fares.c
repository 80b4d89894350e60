/* Fare model (see fares.h and docs/INVENTORY.md). */
#include "actors/search/inventory/fares.h"

#include "storage/timetable.h"

#include <math.h>
#include <string.h>

double fs_fare_base(double km)
{
    static const struct {
        double upto, rate;
    } bands[] = {{500, 0.12}, {1500, 0.08}, {4000, 0.06}, {8000, 0.05}, {INFINITY, 0.04}};
    double fare = 30.0, from = 0.0;
    for (size_t i = 0; i < sizeof bands / sizeof bands[0] && km > from; i++) {
        fare += (fmin(km, bands[i].upto) - from) * bands[i].rate;
        from = bands[i].upto;
    }
    return fare;
}

double fs_fare_carrier_factor(bool low_cost)
{
    return low_cost ? 0.65 : 1.0;
}

double fs_fare_cabin_factor(fs_cabin_t cabin)
{
    switch (cabin) {
    case FS_CABIN_PREMIUM_ECONOMY:
        return 1.6;
    case FS_CABIN_BUSINESS:
        return 3.2;
    case FS_CABIN_FIRST:
        return 5.5;
    default:
        return 1.0;
    }
}

double fs_fare_advance_factor(int days)
{
    /* (days, factor) knots; linear between them, flat outside. */
    static const double knots[][2] = {{0, 1.60}, {7, 1.25}, {21, 1.00}, {90, 0.90}};
    if (days <= 0)
        return knots[0][1];
    for (size_t i = 1; i < sizeof knots / sizeof knots[0]; i++)
        if (days < knots[i][0]) {
            double t = (days - knots[i - 1][0]) / (knots[i][0] - knots[i - 1][0]);
            return knots[i - 1][1] + t * (knots[i][1] - knots[i - 1][1]);
        }
    return knots[3][1];
}

double fs_fare_weekday_factor(int weekday)
{
    static const double f[7] = {1.05, 0.92, 0.92, 1.00, 1.12, 0.95, 1.10};
    return weekday >= 0 && weekday < 7 ? f[weekday] : 1.0;
}

static void put_digits(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
}

/* The key is formatted by hand: this runs for every dated flight a search looks at. */
double fs_fare_variation(const char *flight_number, int64_t date_days)
{
    char key[40];
    size_t n = strnlen(flight_number, 24);
    memcpy(key, flight_number, n);
    fs_date_t d = fs_date_from_days(date_days);
    key[n] = '|';
    put_digits(key + n + 1, d.y, 4);
    key[n + 5] = '-';
    put_digits(key + n + 6, d.m, 2);
    key[n + 8] = '-';
    put_digits(key + n + 9, d.d, 2);
    uint64_t h = fs_tt_hash(FS_TT_HASH_SEED, key, n + 11);
    return 0.85 + (double)(h % 31) / 100.0;
}

double fs_fare_euro(const fs_fare_input_t *in)
{
    int weekday = (int)(((in->date_days % 7) + 7 + 3) % 7); /* 1970-01-01 was a Thursday */
    return fs_fare_base(in->distance_km) * fs_fare_carrier_factor(in->low_cost) *
           fs_fare_cabin_factor(in->cabin) * fs_fare_advance_factor(in->days_ahead) *
           fs_fare_weekday_factor(weekday) * fs_fare_variation(in->flight_number, in->date_days) *
           (in->through ? FS_FARE_THROUGH_FACTOR : 1.0);
}

int64_t fs_fare_to_cents(double euro)
{
    return (int64_t)llround(euro * 100.0);
}

int64_t fs_fare_cents(const fs_fare_input_t *in)
{
    return fs_fare_to_cents(fs_fare_euro(in));
}
