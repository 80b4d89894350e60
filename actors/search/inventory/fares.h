/* The inventory's fare model: what one seat on one dated flight costs, per passenger, in euro
 * cents. Every factor is a pure function of the flight and the query, so a reader can compute
 * a fare by hand; docs/INVENTORY.md lists the tables and works an example through.
 *
 *   fare = base(distance) x carrier x cabin x advance(days to departure) x weekday
 *          x variation(flight number, date) [x through, on a connection sold as one ticket]
 *
 * rounded to the cent. An itinerary costs the sum of its legs' fares times the passengers.
 */
#ifndef FS_INVENTORY_FARES_H
#define FS_INVENTORY_FARES_H

#include "actors/search/offer.h"

#include <stdbool.h>
#include <stdint.h>

/* Legs of one connecting itinerary on one carrier (or one alliance) are sold as one through
 * ticket, which costs this much of the sum of the separate fares. */
#define FS_FARE_THROUGH_FACTOR 0.85

/* Euro: 30 plus a falling rate per kilometre band (0.12 / 0.08 / 0.06 / 0.05 / 0.04 for the
 * first 500 km / up to 1,500 / 4,000 / 8,000 / beyond). */
double fs_fare_base(double distance_km);
/* 0.65 for a low-cost carrier, 1.0 for a full-service one. */
double fs_fare_carrier_factor(bool low_cost);
/* economy 1.0, premium economy 1.6, business 3.2, first 5.5. */
double fs_fare_cabin_factor(fs_cabin_t cabin);
/* Non-increasing in `days` (departure date minus today): 1.60 on the day, 1.25 at 7 days,
 * 1.00 at 21 days, 0.90 from 90 days on, linear in between. Negative days count as 0. */
double fs_fare_advance_factor(int days);
/* By the local weekday of departure (0 = Monday): Mon 1.05, Tue 0.92, Wed 0.92, Thu 1.00,
 * Fri 1.12, Sat 0.95, Sun 1.10. */
double fs_fare_weekday_factor(int weekday);
/* 0.85 .. 1.15 in steps of 0.01: 0.85 + (FNV-1a64("<flight number>|YYYY-MM-DD") mod 31) / 100. */
double fs_fare_variation(const char *flight_number, int64_t date_days);

typedef struct fs_fare_input {
    double distance_km;
    bool low_cost;
    fs_cabin_t cabin;
    int days_ahead;            /* local departure date minus today's UTC date */
    int64_t date_days;         /* local departure date, days since 1970-01-01 */
    const char *flight_number; /* carrier + number, "EI154" */
    bool through;              /* part of a through-ticket connection */
} fs_fare_input_t;

/* The fare of one seat on one leg, euro cents (rounded half away from zero). */
int64_t fs_fare_cents(const fs_fare_input_t *in);
/* The same before rounding, in euro, and the rounding (so that a caller can apply the through
 * factor to an unrounded fare: fs_fare_to_cents(fs_fare_euro(x) * FS_FARE_THROUGH_FACTOR) equals
 * fs_fare_cents of x with `through` set). */
double fs_fare_euro(const fs_fare_input_t *in);
int64_t fs_fare_to_cents(double euro);

#endif
