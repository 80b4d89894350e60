/* Timetable build (see timetable.h; the numbers are explained in docs/INVENTORY.md). */
#include "storage/timetable.h"

#include "runtime/alloc.h"
#include "storage/refdata.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CODE_SLOTS    (36 * 36 * 36)
#define CODE_TABLE    4096
#define DAY_FIRST_MIN (6 * 60)  /* departures between 06:00 ... */
#define DAY_SPAN_MIN  (17 * 60) /* ... and 23:00 local */

uint64_t fs_tt_hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* ---- aircraft and block time ---------------------------------------------------------------- */

/* Propeller types in the route data (OpenFlights/IATA codes): turboprops, pistons, helicopters. */
static const char *const PROPS[] = {
    "A26", "A28", "A30", "A32", "A40", "AN4", "AN6", "AT4", "AT5", "AT7", "ATP", "ATR", "BE1",
    "BE9", "BEC", "BEH", "BET", "BH2", "BNI", "BNT", "CN1", "CNA", "CNC", "CNT", "D28", "D38",
    "DH1", "DH2", "DH3", "DH4", "DH7", "DH8", "DHC", "DHL", "DHP", "DHR", "DHT", "EM2", "EMB",
    "F27", "F50", "HS7", "I14", "J31", "J32", "J41", "L4T", "MA6", "ND2", "PA2", "PAG", "PL2",
    "PL6", "PN6", "S20", "S58", "S61", "S76", "S92", "SF3", "SFB", "SH3", "SH6", "YN2", "YN7",
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_prop(const char *aircraft)
{
    return aircraft && *aircraft &&
           bsearch(&aircraft, PROPS, sizeof PROPS / sizeof PROPS[0], sizeof PROPS[0], cmp_str) != NULL;
}

int fs_timetable_block_minutes(double distance_km, const char *aircraft)
{
    bool prop = is_prop(aircraft);
    double minutes = (prop ? 25.0 : 40.0) + distance_km / (prop ? 480.0 : 830.0) * 60.0;
    return (int)ceil(minutes / 5.0 - 1e-9) * 5;
}

/* ---- lookups -------------------------------------------------------------------------------- */

static int code_key(const char *c)
{
    int k = 0;
    for (int i = 0; i < 3; i++) {
        int ch = toupper((unsigned char)c[i]), v;
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= '0' && ch <= '9')
            v = 26 + ch - '0';
        else
            return -1;
        k = k * 36 + v;
    }
    return c[3] == '\0' ? k : -1;
}

int fs_timetable_airport(const fs_timetable_t *tt, const char *code)
{
    int k = code ? code_key(code) : -1;
    return k < 0 ? -1 : tt->code_slot[k];
}

int fs_timetable_offset(const fs_timetable_t *tt, uint32_t ap, int64_t utc)
{
    return fs_tz_offset(tt->airports[ap].tz, utc);
}

const fs_tt_service_t *fs_timetable_between(const fs_timetable_t *tt, uint32_t from, uint32_t to, size_t *n)
{
    const fs_tt_airport_t *a = &tt->airports[from];
    size_t lo = a->out_first, hi = a->out_first + a->out_n;
    while (lo < hi) { /* first service with destination >= to */
        size_t mid = (lo + hi) / 2;
        if (tt->services[mid].to < to)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < a->out_first + a->out_n && tt->services[end].to == to)
        end++;
    *n = end - lo;
    return *n ? &tt->services[lo] : NULL;
}

/* ---- build: airports and zones -------------------------------------------------------------- */

typedef struct zone_ref {
    const char *name;
    uint32_t airport;
} zone_ref_t;

static int cmp_zone_ref(const void *a, const void *b)
{
    const zone_ref_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->airport > y->airport) - (x->airport < y->airport);
}

static void add_zone(fs_timetable_t *tt, fs_tz_t *z)
{
    tt->zones = fs_realloc(tt->zones, (tt->n_zones + 1) * sizeof *tt->zones);
    tt->zones[tt->n_zones++] = z;
    tt->memory += fs_tz_memory(z) + sizeof z;
}

/* Loads each distinct zone name once; airports without a usable zone get longitude / 15. */
static void build_zones(fs_timetable_t *tt)
{
    zone_ref_t *refs = fs_calloc(tt->n_airports ? tt->n_airports : 1, sizeof *refs);
    size_t n = 0;
    for (uint32_t i = 0; i < tt->n_airports; i++)
        if (tt->airports[i].airport->timezone && *tt->airports[i].airport->timezone)
            refs[n++] = (zone_ref_t){tt->airports[i].airport->timezone, i};
    if (n)
        qsort(refs, n, sizeof *refs, cmp_zone_ref);
    fs_tz_t *cur = NULL;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(refs[i].name, refs[i - 1].name) != 0) {
            cur = fs_tz_load(refs[i].name);
            if (cur)
                add_zone(tt, cur);
        }
        tt->airports[refs[i].airport].tz = cur;
    }
    free(refs);
    fs_tz_t *fixed[25] = {0}; /* -12 .. +12 hours */
    for (uint32_t i = 0; i < tt->n_airports; i++) {
        fs_tt_airport_t *a = &tt->airports[i];
        if (a->tz)
            continue;
        int h = (int)lround(a->lon / 15.0);
        h = h < -12 ? -12 : h > 12 ? 12 : h;
        if (!fixed[h + 12]) {
            char name[16];
            snprintf(name, sizeof name, "UTC%+d", h);
            add_zone(tt, fixed[h + 12] = fs_tz_fixed(h * 3600, name));
        }
        a->tz = fixed[h + 12];
        a->tz_fallback = true;
    }
}

static void build_airports(fs_timetable_t *tt, const fs_airport_index_t *idx)
{
    tt->n_airports = fs_airport_index_count(idx);
    tt->airports = fs_calloc(tt->n_airports ? tt->n_airports : 1, sizeof *tt->airports);
    tt->code_slot = fs_malloc(CODE_SLOTS * sizeof *tt->code_slot);
    memset(tt->code_slot, 0xff, CODE_SLOTS * sizeof *tt->code_slot);
    for (uint32_t i = 0; i < tt->n_airports; i++) {
        const fs_airport_t *a = fs_airport_index_at(idx, i);
        tt->airports[i] = (fs_tt_airport_t){.airport = a, .lat = a->latitude, .lon = a->longitude};
        int k = code_key(a->iata);
        if (k >= 0)
            tt->code_slot[k] = (int32_t)i;
    }
    tt->memory += tt->n_airports * sizeof *tt->airports + CODE_SLOTS * sizeof *tt->code_slot;
    build_zones(tt);
}

/* ---- build: carriers ------------------------------------------------------------------------ */

typedef struct airline_key {
    const char *code;
    size_t pos; /* position in the bundle's table: the lowest is the primary airline */
} airline_key_t;

static int cmp_airline_key(const void *a, const void *b)
{
    const airline_key_t *x = a, *y = b;
    int c = strcasecmp(x->code, y->code);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

typedef struct carrier_ctx {
    airline_key_t *keys;
    size_t n_keys;
    const fs_airline_t *airlines;
    uint32_t carrier_keys[CODE_TABLE], carrier_val[CODE_TABLE]; /* code -> carrier index + 1 */
    int carrier_routes[CODE_TABLE];
    uint32_t aircraft_keys[CODE_TABLE], aircraft_val[CODE_TABLE]; /* code -> aircraft index + 1 */
} carrier_ctx_t;

static const fs_airline_t *primary_airline(const carrier_ctx_t *c, const char *code)
{
    size_t lo = 0, hi = c->n_keys; /* first key >= code: the primary of that code */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcasecmp(c->keys[mid].code, code) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->n_keys && strcasecmp(c->keys[lo].code, code) == 0 ? &c->airlines[c->keys[lo].pos] : NULL;
}

static uint8_t alliance_id(fs_timetable_t *tt, const char *name)
{
    if (!name || !*name)
        return 0;
    for (size_t i = 0; i < tt->n_alliances; i++)
        if (strcmp(tt->alliances[i], name) == 0)
            return (uint8_t)(i + 1);
    if (tt->n_alliances >= 254)
        return 0;
    tt->alliances = fs_realloc(tt->alliances, (tt->n_alliances + 1) * sizeof *tt->alliances);
    tt->alliances[tt->n_alliances++] = fs_strdup(name);
    return (uint8_t)tt->n_alliances;
}

/* Carrier and aircraft codes are interned through small open-addressing tables keyed by the
 * packed code (a few hundred of each; the build sees every route and departure). */

static uint32_t pack_code(const char *code)
{
    uint32_t k = 0;
    for (int i = 0; i < 4 && code[i]; i++)
        k |= (uint32_t)(unsigned char)code[i] << (8 * i);
    return k;
}

/* Slot of `code` in `keys` (packed code + 1, 0 = empty). */
static size_t code_slot_of(uint32_t *keys, const char *code)
{
    uint32_t k = pack_code(code) + 1;
    size_t i = (k * 2654435761u) % CODE_TABLE;
    while (keys[i] && keys[i] != k)
        i = (i + 1) % CODE_TABLE;
    keys[i] = k;
    return i;
}

/* The carrier index of `code` (interned in first-seen order). Also returns the carrier's route
 * count through *routes (network size, for the frequency). */
static uint16_t carrier_of(fs_timetable_t *tt, carrier_ctx_t *c, const char *code, int *routes)
{
    size_t slot = code_slot_of(c->carrier_keys, code);
    if (c->carrier_val[slot]) {
        *routes = c->carrier_routes[slot];
        return (uint16_t)(c->carrier_val[slot] - 1);
    }
    const fs_airline_t *al = primary_airline(c, code);
    *routes = c->carrier_routes[slot] = al ? al->route_count : 0;
    if (tt->n_carriers % 256 == 0)
        tt->carriers = fs_realloc(tt->carriers, (tt->n_carriers + 256) * sizeof *tt->carriers);
    fs_tt_carrier_t *k = &tt->carriers[tt->n_carriers];
    *k = (fs_tt_carrier_t){.low_cost = al && al->is_low_cost,
                           .alliance = al ? alliance_id(tt, al->alliance) : 0};
    snprintf(k->code, sizeof k->code, "%s", code);
    c->carrier_val[slot] = (uint32_t)++tt->n_carriers;
    return (uint16_t)(tt->n_carriers - 1);
}

static void carrier_ctx_init(carrier_ctx_t *c, const fs_airline_t *airlines, size_t n)
{
    c->airlines = airlines;
    c->keys = fs_calloc(2 * n + 1, sizeof *c->keys);
    c->n_keys = 0;
    for (size_t i = 0; i < n; i++) {
        if (airlines[i].iata[0])
            c->keys[c->n_keys++] = (airline_key_t){airlines[i].iata, i};
        if (airlines[i].icao[0])
            c->keys[c->n_keys++] = (airline_key_t){airlines[i].icao, i};
    }
    if (c->n_keys)
        qsort(c->keys, c->n_keys, sizeof *c->keys, cmp_airline_key);
}

/* ---- build: services and departures --------------------------------------------------------- */

static uint16_t aircraft_id(fs_timetable_t *tt, carrier_ctx_t *c, const char *code)
{
    size_t slot = code_slot_of(c->aircraft_keys, code);
    if (c->aircraft_val[slot])
        return (uint16_t)(c->aircraft_val[slot] - 1);
    if (tt->n_aircraft % 64 == 0)
        tt->aircraft = fs_realloc(tt->aircraft, (tt->n_aircraft + 64) * sizeof *tt->aircraft);
    snprintf(tt->aircraft[tt->n_aircraft], sizeof tt->aircraft[0], "%.3s", code);
    c->aircraft_val[slot] = (uint32_t)++tt->n_aircraft;
    return (uint16_t)(tt->n_aircraft - 1);
}

/* Flights per operating day (docs/INVENTORY.md, "Frequency"). */
static int daily_flights(const fs_route_t *r, int carrier_routes, uint64_t h)
{
    double s = fmin(log2(1.0 + r->origin->route_count), log2(1.0 + r->destination->route_count));
    double d = r->distance_km, base;
    if (d < 1000)
        base = 1.0 + s / 2.5;
    else if (d < 3000)
        base = 1.0 + s / 4.0;
    else if (d < 7000)
        base = 0.5 + s / 8.0;
    else
        base = 1.0;
    if (d < 3000 && r->origin->is_major && r->destination->is_major)
        base += 1.0;
    base *= 0.6 + 0.4 * fmin(1.0, log10(1.0 + carrier_routes) / 3.0);
    if (r->codeshare)
        base *= 0.5;
    int f = (int)floor(base + (double)(h % 100) / 100.0);
    return f < 1 ? 1 : f > FS_TT_MAX_DEPARTURES ? FS_TT_MAX_DEPARTURES : f;
}

/* Operating weekdays: daily from airports of some size, else 3 to 7 days a week, spread. */
static uint8_t operating_days(const fs_route_t *r, uint64_t h)
{
    double s = fmin(log2(1.0 + r->origin->route_count), log2(1.0 + r->destination->route_count));
    int weekly = s >= 5.0 ? 7 : 3 + (int)((h >> 16) % 5);
    int start = (int)((h >> 24) % 7);
    uint8_t days = 0;
    for (int k = 0; k < weekly; k++)
        days |= (uint8_t)(1u << ((start + k * 7 / weekly) % 7));
    return days;
}

static void add_departures(fs_timetable_t *tt, carrier_ctx_t *cc, fs_tt_service_t *s, const fs_route_t *r,
                           int carrier_routes)
{
    uint64_t h = fs_tt_hash(FS_TT_HASH_SEED, r->origin->iata, 3);
    h = fs_tt_hash(h, r->destination->iata, 3);
    h = fs_tt_hash(h, r->airline, strlen(r->airline));
    int f = daily_flights(r, carrier_routes, h);
    s->days = operating_days(r, h);
    s->first_dep = (uint32_t)tt->n_departures;
    s->n_dep = (uint8_t)f;
    int slot = DAY_SPAN_MIN / f / 5 * 5; /* times stay on 5-minute marks */
    for (int i = 0; i < f; i++) {
        unsigned char nth = (unsigned char)i; /* one byte: the same hash on any byte order */
        uint64_t hi = fs_tt_hash(h, &nth, 1);
        fs_tt_departure_t *d = &tt->departures[tt->n_departures++];
        const char *ac =
            r->n_equipment ? r->equipment[(size_t)((h >> 8) + (uint64_t)i) % r->n_equipment] : "";
        d->dep_min = (uint16_t)(DAY_FIRST_MIN + i * slot + (int)(hi % (uint64_t)slot) / 5 * 5);
        d->aircraft = aircraft_id(tt, cc, ac);
        d->block_min = (uint16_t)fs_timetable_block_minutes(r->distance_km, ac);
        d->number = (uint16_t)(100 + (h >> 32) % 880 * 10 + (uint64_t)i);
    }
}

static bool usable(const fs_route_t *r)
{
    return r->stops == 0 && r->airline[0] && strlen(r->airline) <= 3 && r->origin->has_coords &&
           r->destination->has_coords && r->distance_km > 0;
}

static void build_services(fs_timetable_t *tt, const fs_route_graph_t *g, carrier_ctx_t *cc)
{
    size_t cap = fs_route_graph_count(g);
    tt->services = fs_calloc(cap ? cap : 1, sizeof *tt->services);
    tt->departures = fs_calloc(cap * FS_TT_MAX_DEPARTURES + 1, sizeof *tt->departures);
    aircraft_id(tt, cc, ""); /* entry 0 */
    for (uint32_t i = 0; i < tt->n_airports; i++) {
        fs_tt_airport_t *a = &tt->airports[i];
        fs_route_list_t out = fs_route_graph_from(g, a->airport->iata);
        a->out_first = (uint32_t)tt->n_services;
        for (size_t k = 0; k < out.n; k++) { /* by destination code, then airline: our order */
            const fs_route_t *r = out.items[k];
            int to = fs_timetable_airport(tt, r->destination->iata), carrier_routes;
            if (!usable(r) || to < 0)
                continue;
            fs_tt_service_t *s = &tt->services[tt->n_services++];
            s->from = i, s->to = (uint32_t)to, s->distance_km = (float)r->distance_km;
            s->carrier = carrier_of(tt, cc, r->airline, &carrier_routes);
            add_departures(tt, cc, s, r, carrier_routes);
        }
        a->out_n = (uint32_t)tt->n_services - a->out_first;
    }
    tt->departures = fs_realloc(tt->departures, (tt->n_departures + 1) * sizeof *tt->departures);
}

/* Arrivals: a stable counting sort of the services by destination keeps (from, carrier). */
static void build_in_index(fs_timetable_t *tt)
{
    tt->in_index = fs_calloc(tt->n_services + 1, sizeof *tt->in_index);
    for (size_t i = 0; i < tt->n_services; i++)
        tt->airports[tt->services[i].to].in_n++;
    uint32_t at = 0;
    for (size_t a = 0; a < tt->n_airports; a++) {
        tt->airports[a].in_first = at;
        at += tt->airports[a].in_n;
        tt->airports[a].in_n = 0;
    }
    for (size_t i = 0; i < tt->n_services; i++) {
        fs_tt_airport_t *a = &tt->airports[tt->services[i].to];
        tt->in_index[a->in_first + a->in_n++] = (uint32_t)i;
    }
}

fs_timetable_t *fs_timetable_build(const fs_airport_index_t *airports, const fs_route_graph_t *routes,
                                   const fs_airline_t *airlines, size_t n_airlines)
{
    fs_timetable_t *tt = FS_NEW(fs_timetable_t);
    build_airports(tt, airports);
    carrier_ctx_t *cc = FS_NEW(carrier_ctx_t);
    carrier_ctx_init(cc, airlines, n_airlines);
    build_services(tt, routes, cc);
    free(cc->keys), free(cc);
    build_in_index(tt);
    tt->memory += sizeof *tt + tt->n_services * (sizeof *tt->services + sizeof *tt->in_index) +
                  tt->n_departures * sizeof *tt->departures + tt->n_carriers * sizeof *tt->carriers +
                  tt->n_aircraft * sizeof *tt->aircraft;
    return tt;
}

void fs_timetable_free(fs_timetable_t *tt)
{
    if (!tt)
        return;
    for (size_t i = 0; i < tt->n_zones; i++)
        fs_tz_free(tt->zones[i]);
    for (size_t i = 0; i < tt->n_alliances; i++)
        free(tt->alliances[i]);
    free(tt->zones), free(tt->alliances), free(tt->airports), free(tt->code_slot), free(tt->services);
    free(tt->in_index), free(tt->departures), free(tt->carriers), free(tt->aircraft), free(tt);
}
