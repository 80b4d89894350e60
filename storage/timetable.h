/* Timetable: a weekly schedule derived from the route graph, the index behind the embedded
 * `inventory` flight provider (actors/search/inventory/).
 *
 * Built once per reference-data bundle (fs_refdata_build calls fs_timetable_build, on the
 * thread pool that loads the bundle), pure C, no event loop; afterwards only read, so any
 * number of threads share it. The model (docs/INVENTORY.md gives the numbers):
 *
 *   - one *service* per direct route (origin, destination, carrier) of the graph; routes with
 *     stops, without a carrier or between airports without coordinates are left out;
 *   - per service: flights per operating day (from distance, the size of both airports, the
 *     carrier's network, codeshare or not, and a hash of the route), the operating weekdays,
 *     departure times spread over 06:00-23:00 local, a flight number per departure (carrier +
 *     a number stable for the route), the aircraft (from the route's equipment list) and the
 *     block time (great-circle distance at jet or turboprop speed plus taxi/climb overhead);
 *   - per airport: its time zone (the IANA zone of the airport read from the system's zone
 *     files, storage/tz.h), or, for an airport without one (or with a zone the system does not
 *     have), a fixed offset of its longitude / 15 rounded to whole hours.
 *
 * Everything is deterministic: the hash is FNV-1a over the codes, so the same data gives the
 * same timetable on every host.
 */
#ifndef FS_TIMETABLE_H
#define FS_TIMETABLE_H

#include "storage/airport_index.h"
#include "storage/route_graph.h"
#include "storage/tz.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fs_airline fs_airline_t;

#define FS_TT_MAX_DEPARTURES 8 /* per service and day */

/** One scheduled departure of a service (every operating day of the service). */
typedef struct fs_tt_departure {
    uint16_t dep_min;   /** local departure time at the origin, minutes after midnight */
    uint16_t block_min; /** block time, minutes */
    uint16_t number;    /** flight number without the carrier (1..9999) */
    uint16_t aircraft;  /** index into fs_timetable_t.aircraft ("" when unknown) */
} fs_tt_departure_t;

/** One direct route flown by one carrier. */
typedef struct fs_tt_service {
    uint32_t from, to;  /** airport indexes (fs_timetable_t.airports) */
    uint32_t first_dep; /** departures[first_dep .. first_dep + n_dep), by departure time */
    uint8_t n_dep;
    uint8_t days;      /** operating weekdays: bit 0 = Monday ... bit 6 = Sunday */
    uint16_t carrier;  /** index into fs_timetable_t.carriers */
    float distance_km; /** great circle */
} fs_tt_service_t;

/** A marketing carrier as the fare model sees it. */
typedef struct fs_tt_carrier {
    char code[4];     /** as filed on the routes (IATA, or ICAO when it has none) */
    bool low_cost;    /** fs_airline_t.is_low_cost of the primary airline of the code */
    uint8_t alliance; /** 0 = none, else an index + 1 into fs_timetable_t.alliances */
} fs_tt_carrier_t;

/** An airport of the timetable, in the order of the airport index (IATA code order). */
typedef struct fs_tt_airport {
    const fs_airport_t *airport;
    const fs_tz_t *tz;         /** its zone, or a fixed offset zone (see above) */
    bool tz_fallback;          /** true when `tz` is the longitude fallback */
    double lat, lon;           /** degrees */
    uint32_t out_first, out_n; /** services[out_first ..]: leaving here, by (to, carrier) */
    uint32_t in_first, in_n;   /** in_index[in_first ..]: service ids arriving here, by (from, carrier) */
} fs_tt_airport_t;

typedef struct fs_timetable {
    fs_tt_airport_t *airports;
    size_t n_airports;
    fs_tt_service_t *services; /** sorted by (from, to, carrier code) */
    size_t n_services;
    uint32_t *in_index; /** service ids sorted by (to, from, carrier code) */
    fs_tt_departure_t *departures;
    size_t n_departures;
    fs_tt_carrier_t *carriers;
    size_t n_carriers;
    char (*aircraft)[4]; /** aircraft type codes; entry 0 is "" */
    size_t n_aircraft;
    char **alliances;
    size_t n_alliances;
    fs_tz_t **zones; /** owned zones (loaded files and fixed offsets) */
    size_t n_zones;
    int32_t *code_slot; /** airport index by IATA code (fs_timetable_airport) */
    size_t memory;      /** bytes held, for reports */
} fs_timetable_t;

/* Builds the timetable of a graph (its airports come from `airports`, the index the graph was
 * built with). `airlines` (the bundle's table, primary airline first for each code) gives the
 * low-cost flag and the alliance of each carrier. Never returns NULL. */
fs_timetable_t *fs_timetable_build(const fs_airport_index_t *airports, const fs_route_graph_t *routes,
                                   const fs_airline_t *airlines, size_t n_airlines);

void fs_timetable_free(fs_timetable_t *tt);

/* The index of an airport by IATA code (case-insensitive), -1 when the timetable lacks it. */
int fs_timetable_airport(const fs_timetable_t *tt, const char *code);

/* UTC offset (seconds east) of airport `ap` at instant `utc`. */
int fs_timetable_offset(const fs_timetable_t *tt, uint32_t ap, int64_t utc);

/* Services from airport `from` to airport `to` (a contiguous run of services, by carrier);
 * *n = 0 when none. */
const fs_tt_service_t *fs_timetable_between(const fs_timetable_t *tt, uint32_t from, uint32_t to, size_t *n);

/* The block time, in minutes, of `distance_km` flown by aircraft type `aircraft` ("" or an
 * unknown type: a jet): overhead + distance / cruise speed, rounded up to 5 minutes. */
int fs_timetable_block_minutes(double distance_km, const char *aircraft);

/* FNV-1a 64 over `len` bytes, continuing from `h` (start with FS_TT_HASH_SEED). The hash
 * behind every deterministic choice of the timetable and the inventory. */
#define FS_TT_HASH_SEED 0xcbf29ce484222325ULL
uint64_t fs_tt_hash(uint64_t h, const void *data, size_t len);

#endif
