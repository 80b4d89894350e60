/* The original system's built-in reference data (its init.sql): 30 European airports, 15
 * airlines, 14 routes and 11 aircraft types, so that search, grouping and the airline endpoints
 * work on a fresh database with no downloads. Rows that already exist are left alone (by IATA
 * code; an airline also counts as existing when an active airline holds its code), so the seed
 * is idempotent and never overwrites imported data. */
#include "storage/import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *iata, *icao, *name, *city, *country, *cc, *lat, *lon, *tz;
    bool major;
} seed_airport_t;

static const seed_airport_t airports[] = {
    {"DUB", "EIDW", "Dublin Airport", "Dublin", "Ireland", "IE", "53.4213", "-6.2701", "Europe/Dublin", true},
    {"SNN", "EINN", "Shannon Airport", "Shannon", "Ireland", "IE", "52.7020", "-8.9248", "Europe/Dublin", false},
    {"ORK", "EICK", "Cork Airport", "Cork", "Ireland", "IE", "51.8413", "-8.4911", "Europe/Dublin", false},
    {"LHR", "EGLL", "Heathrow Airport", "London", "United Kingdom", "GB", "51.4700", "-0.4543", "Europe/London", true},
    {"LGW", "EGKK", "Gatwick Airport", "London", "United Kingdom", "GB", "51.1537", "-0.1821", "Europe/London", true},
    {"STN", "EGSS", "Stansted Airport", "London", "United Kingdom", "GB", "51.8850", "0.2350", "Europe/London", true},
    {"MAN", "EGCC", "Manchester Airport", "Manchester", "United Kingdom", "GB", "53.3537", "-2.2750", "Europe/London", true},
    {"EDI", "EGPH", "Edinburgh Airport", "Edinburgh", "United Kingdom", "GB", "55.9500", "-3.3725", "Europe/London", true},
    {"BCN", "LEBL", "Barcelona El Prat", "Barcelona", "Spain", "ES", "41.2971", "2.0785", "Europe/Madrid", true},
    {"MAD", "LEMD", "Madrid Barajas", "Madrid", "Spain", "ES", "40.4936", "-3.5668", "Europe/Madrid", true},
    {"AGP", "LEMG", "Málaga Airport", "Málaga", "Spain", "ES", "36.6749", "-4.4991", "Europe/Madrid", true},
    {"PMI", "LEPA", "Palma de Mallorca", "Palma", "Spain", "ES", "39.5517", "2.7388", "Europe/Madrid", true},
    {"ALC", "LEAL", "Alicante Airport", "Alicante", "Spain", "ES", "38.2822", "-0.5582", "Europe/Madrid", true},
    {"CDG", "LFPG", "Charles de Gaulle", "Paris", "France", "FR", "49.0097", "2.5479", "Europe/Paris", true},
    {"ORY", "LFPO", "Paris Orly", "Paris", "France", "FR", "48.7233", "2.3794", "Europe/Paris", true},
    {"NCE", "LFMN", "Nice Côte d'Azur", "Nice", "France", "FR", "43.6584", "7.2159", "Europe/Paris", true},
    {"FRA", "EDDF", "Frankfurt Airport", "Frankfurt", "Germany", "DE", "50.0379", "8.5622", "Europe/Berlin", true},
    {"MUC", "EDDM", "Munich Airport", "Munich", "Germany", "DE", "48.3538", "11.7861", "Europe/Berlin", true},
    {"BER", "EDDB", "Berlin Brandenburg", "Berlin", "Germany", "DE", "52.3667", "13.5033", "Europe/Berlin", true},
    {"FCO", "LIRF", "Rome Fiumicino", "Rome", "Italy", "IT", "41.8003", "12.2389", "Europe/Rome", true},
    {"MXP", "LIMC", "Milan Malpensa", "Milan", "Italy", "IT", "45.6306", "8.7281", "Europe/Rome", true},
    {"VCE", "LIPZ", "Venice Marco Polo", "Venice", "Italy", "IT", "45.5053", "12.3519", "Europe/Rome", true},
    {"AMS", "EHAM", "Amsterdam Schiphol", "Amsterdam", "Netherlands", "NL", "52.3086", "4.7639", "Europe/Amsterdam", true},
    {"LIS", "LPPT", "Lisbon Portela", "Lisbon", "Portugal", "PT", "38.7813", "-9.1359", "Europe/Lisbon", true},
    {"OPO", "LPPR", "Porto Airport", "Porto", "Portugal", "PT", "41.2481", "-8.6814", "Europe/Lisbon", true},
    {"FAO", "LPFR", "Faro Airport", "Faro", "Portugal", "PT", "37.0144", "-7.9659", "Europe/Lisbon", true},
    {"CPH", "EKCH", "Copenhagen Airport", "Copenhagen", "Denmark", "DK", "55.6180", "12.6560", "Europe/Copenhagen", true},
    {"VIE", "LOWW", "Vienna Airport", "Vienna", "Austria", "AT", "48.1103", "16.5697", "Europe/Vienna", true},
    {"ZRH", "LSZH", "Zurich Airport", "Zurich", "Switzerland", "CH", "47.4647", "8.5492", "Europe/Zurich", true},
    {"BRU", "EBBR", "Brussels Airport", "Brussels", "Belgium", "BE", "50.9014", "4.4844", "Europe/Brussels", true},
};

typedef struct {
    const char *iata, *icao, *name, *country, *cc, *alliance;
    bool low_cost;
} seed_airline_t;

static const seed_airline_t airlines[] = {
    {"FR", "RYR", "Ryanair", "Ireland", "IE", NULL, true},
    {"EI", "EIN", "Aer Lingus", "Ireland", "IE", NULL, false},
    {"BA", "BAW", "British Airways", "United Kingdom", "GB", "Oneworld", false},
    {"LH", "DLH", "Lufthansa", "Germany", "DE", "Star Alliance", false},
    {"AF", "AFR", "Air France", "France", "FR", "SkyTeam", false},
    {"KL", "KLM", "KLM", "Netherlands", "NL", "SkyTeam", false},
    {"IB", "IBE", "Iberia", "Spain", "ES", "Oneworld", false},
    {"VY", "VLG", "Vueling", "Spain", "ES", NULL, true},
    {"U2", "EZY", "easyJet", "United Kingdom", "GB", NULL, true},
    {"W6", "WZZ", "Wizz Air", "Hungary", "HU", NULL, true},
    {"SK", "SAS", "SAS", "Sweden", "SE", "SkyTeam", false},
    {"AZ", "ITY", "ITA Airways", "Italy", "IT", "SkyTeam", false},
    {"TP", "TAP", "TAP Portugal", "Portugal", "PT", "Star Alliance", false},
    {"LX", "SWR", "Swiss", "Switzerland", "CH", "Star Alliance", false},
    {"OS", "AUA", "Austrian", "Austria", "AT", "Star Alliance", false},
};

typedef struct {
    const char *origin, *dest, *airline, *minutes, *km, *low, *high;
} seed_route_t;

static const seed_route_t routes[] = {
    {"DUB", "BCN", "FR", "150", "1475", "30", "150"}, {"DUB", "BCN", "EI", "155", "1475", "80", "250"},
    {"DUB", "MAD", "FR", "145", "1450", "35", "140"}, {"DUB", "MAD", "IB", "150", "1450", "90", "280"},
    {"DUB", "LHR", "EI", "75", "464", "50", "200"},   {"DUB", "LHR", "BA", "75", "464", "60", "250"},
    {"DUB", "CDG", "EI", "95", "787", "60", "180"},   {"DUB", "CDG", "AF", "95", "787", "80", "220"},
    {"DUB", "AMS", "EI", "100", "755", "55", "170"},  {"DUB", "AMS", "KL", "100", "755", "70", "200"},
    {"LHR", "BCN", "BA", "130", "1138", "60", "220"}, {"LHR", "BCN", "VY", "130", "1138", "40", "150"},
    {"LHR", "MAD", "BA", "140", "1261", "70", "250"}, {"LHR", "MAD", "IB", "140", "1261", "65", "240"},
};

typedef struct {
    const char *iata, *icao, *name, *maker, *model, *seats, *type;
} seed_aircraft_t;

static const seed_aircraft_t aircraft[] = {
    {"738", "B738", "Boeing 737-800", "Boeing", "737-800", "189", "narrow_body"},
    {"73H", "B738", "Boeing 737-800 (Winglets)", "Boeing", "737-800", "189", "narrow_body"},
    {"320", "A320", "Airbus A320", "Airbus", "A320", "180", "narrow_body"},
    {"321", "A321", "Airbus A321", "Airbus", "A321", "220", "narrow_body"},
    {"319", "A319", "Airbus A319", "Airbus", "A319", "156", "narrow_body"},
    {"32N", "A20N", "Airbus A320neo", "Airbus", "A320neo", "180", "narrow_body"},
    {"77W", "B77W", "Boeing 777-300ER", "Boeing", "777-300ER", "396", "wide_body"},
    {"788", "B788", "Boeing 787-8 Dreamliner", "Boeing", "787-8", "242", "wide_body"},
    {"789", "B789", "Boeing 787-9 Dreamliner", "Boeing", "787-9", "290", "wide_body"},
    {"359", "A359", "Airbus A350-900", "Airbus", "A350-900", "325", "wide_body"},
    {"E90", "E190", "Embraer E190", "Embraer", "E190", "100", "regional"},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The city is stored as the city served (served_city), so fs_refresh_reference_derived()
 * keeps it until an import knows better. */
static const char AIRPORT_SQL[] =
    "INSERT INTO airports (iata_code, icao_code, name, city, served_city, country, country_code, latitude, longitude,"
    " timezone, is_major) VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (iata_code) DO NOTHING";
static const char AIRLINE_SQL[] =
    "INSERT INTO airlines (iata_code, icao_code, name, country, country_code, alliance, is_low_cost, logo_url)"
    " SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::boolean,"
    "  'https://pics.avs.io/100/100/' || $1::text || '.png'"
    " WHERE NOT EXISTS (SELECT 1 FROM airlines WHERE iata_code = $1::text AND (is_active OR openflights_id IS NULL))";
static const char ROUTE_SQL[] =
    "INSERT INTO routes (origin_code, destination_code, airline_code, airline_id, typical_duration_minutes,"
    " distance_km, typical_price_low, typical_price_high, source)"
    " SELECT $1::text, $2::text, $3::text, fs_airline_primary($3::text), $4::int, $5::int, $6::float8, $7::float8,"
    " 'seed'"
    " WHERE EXISTS (SELECT 1 FROM airports WHERE iata_code = $1::text)"
    "   AND EXISTS (SELECT 1 FROM airports WHERE iata_code = $2::text)"
    " ON CONFLICT (origin_code, destination_code, (coalesce(airline_code, ''))) DO NOTHING";
static const char AIRCRAFT_SQL[] =
    "INSERT INTO aircraft (iata_code, icao_code, name, manufacturer, model, typical_seats, aircraft_type)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (iata_code) DO NOTHING";

/* Runs one INSERT; returns rows inserted (0 or 1) or -1. */
static int insert(PGconn *conn, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? atoi(PQcmdTuples(r)) : -1;
    if (rc < 0)
        fprintf(stderr, "seed: %s", PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

static void count(fs_import_result_t *res, int rc)
{
    res->rows++;
    if (rc > 0)
        res->inserted++;
    else
        res->unchanged++;
}

static int seed_rows(PGconn *conn, fs_import_result_t out[4])
{
    for (size_t i = 0; i < N(airports); i++) {
        const seed_airport_t *a = &airports[i];
        const char *p[] = {a->iata, a->icao, a->name, a->city, a->country, a->cc, a->lat, a->lon, a->tz,
                           a->major ? "t" : "f"};
        int rc = insert(conn, AIRPORT_SQL, 10, p);
        if (rc < 0)
            return -1;
        count(&out[0], rc);
    }
    for (size_t i = 0; i < N(airlines); i++) {
        const seed_airline_t *l = &airlines[i];
        const char *p[] = {l->iata, l->icao, l->name, l->country, l->cc, l->alliance, l->low_cost ? "t" : "f"};
        int rc = insert(conn, AIRLINE_SQL, 7, p);
        if (rc < 0)
            return -1;
        count(&out[1], rc);
    }
    for (size_t i = 0; i < N(routes); i++) {
        const seed_route_t *r = &routes[i];
        const char *p[] = {r->origin, r->dest, r->airline, r->minutes, r->km, r->low, r->high};
        int rc = insert(conn, ROUTE_SQL, 7, p);
        if (rc < 0)
            return -1;
        count(&out[2], rc);
    }
    for (size_t i = 0; i < N(aircraft); i++) {
        const seed_aircraft_t *c = &aircraft[i];
        const char *p[] = {c->iata, c->icao, c->name, c->maker, c->model, c->seats, c->type};
        int rc = insert(conn, AIRCRAFT_SQL, 7, p);
        if (rc < 0)
            return -1;
        count(&out[3], rc);
    }
    return 0;
}

static bool exec_ok(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "seed: %s", PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

int fs_seed_reference(PGconn *conn, fs_import_result_t out[4])
{
    static const char *const kinds[] = {"airports", "airlines", "routes", "aircraft"};
    memset(out, 0, 4 * sizeof *out);
    for (int i = 0; i < 4; i++) {
        snprintf(out[i].file, sizeof out[i].file, "seed");
        snprintf(out[i].kind, sizeof out[i].kind, "%s", kinds[i]);
    }
    if (!exec_ok(conn, "BEGIN"))
        return -1;
    if (seed_rows(conn, out) != 0 || !exec_ok(conn, "SELECT fs_refresh_reference_derived()") ||
        !exec_ok(conn, "COMMIT")) {
        PGresult *r = PQexec(conn, "ROLLBACK");
        PQclear(r);
        fprintf(stderr, "seed: rolled back, nothing was changed\n");
        return -1;
    }
    return 0;
}
