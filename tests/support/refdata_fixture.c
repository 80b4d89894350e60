/* Shared by the suites that need the real reference data in the suite database. */
#include "tests/support/refdata_fixture.h"

#include "security/jwt.h"
#include "storage/pg.h"
#include "tests/support/harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

PGconn *fs_test_db(void)
{
    char *err = NULL;
    PGconn *c = fs_pg_connect_blocking(fs_test_env("DATABASE_URL"), &err);
    cr_assert(c, "cannot connect: %s", err ? err : "?");
    return c;
}

void fs_test_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
              PQerrorMessage(c));
    PQclear(r);
}

long fs_test_scalar(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    long v = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* The full real data in the suite database's public schema, imported once (the imports are
 * idempotent; the advisory lock keeps parallel test processes from importing together), plus
 * two airports of our own: ZZR (active, renamed by the reload test) and ZZQ (inactive). */
void fs_test_ensure_reference_data(void)
{
    PGconn *c = fs_test_db();
    fs_test_exec(c, "SELECT pg_advisory_lock(774201)");
    const char *bin = fs_test_env("FS_BINARY"), *src = fs_test_env("FS_SOURCE_DIR");
    cr_assert_eq(fs_test_sh("%s migrate >/dev/null 2>&1 && %s seed >/dev/null 2>&1", bin, bin), 0);
    if (fs_test_scalar(c, "SELECT count(*) FROM airports WHERE is_active") < 5000 ||
        fs_test_scalar(c, "SELECT count(*) FROM routes") < 10000) {
        cr_assert_eq(fs_test_sh("%s import ourairports %s/../shared/data/ourairports/airports.csv "
                                "%s/../shared/data/ourairports/countries.csv >/dev/null 2>&1",
                                bin, src, src),
                     0);
        cr_assert_eq(fs_test_sh("%s import openflights %s/../shared/data/openflights >/dev/null 2>&1", bin, src), 0);
    }
    fs_test_exec(c, "INSERT INTO airports (iata_code, name, city, country, country_code, latitude, longitude, is_active) "
               "VALUES ('ZZR', 'Refapi Test Airport', 'Zedrefcity', 'Ireland', 'IE', 53.0, -7.0, true), "
               "('ZZQ', 'Refapi Closed Airport', 'Zedclosed', 'Ireland', 'IE', 52.0, -8.0, false) "
               "ON CONFLICT (iata_code) DO UPDATE SET name = excluded.name, is_active = excluded.is_active");
    fs_test_exec(c, "SELECT pg_advisory_unlock(774201)");
    PQfinish(c);
}

void fs_test_start_refdata_server(fs_test_server_t *srv, int workers, const char *const *env)
{
    fs_test_ensure_reference_data();
    cr_assert_eq(fs_test_server_start(srv, workers, env), 0, "server did not start; see %s", srv->log_path);
    /* Workers answer 503 until their first load of the reference data has finished. */
    char url[128];
    snprintf(url, sizeof url, "%s/airports/search?q=dub", srv->url);
    for (double deadline = fs_test_now_ms() + 20000; fs_test_now_ms() < deadline; usleep(50000)) {
        fs_test_resp_t r;
        fs_test_http("GET", url, NULL, NULL, &r);
        long status = r.status;
        fs_test_resp_free(&r);
        if (status == 200)
            return;
    }
    cr_assert_fail("reference data never loaded; see %s", srv->log_path);
}

char *fs_test_token(const char *email, bool admin, const char *secret)
{
    PGconn *c = fs_test_db();
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO users (email, password_hash, is_admin) VALUES ('%s', 'x', %s) "
             "ON CONFLICT (email) DO UPDATE SET is_admin = excluded.is_admin, is_active = true RETURNING id",
             email, admin ? "true" : "false");
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    fs_jwt_claims_t cl = {.type = FS_JWT_ACCESS, .iat = time(NULL), .exp = time(NULL) + 600};
    snprintf(cl.sub, sizeof cl.sub, "%s", PQgetvalue(r, 0, 0));
    fs_uuid_v4(cl.jti);
    PQclear(r);
    PQfinish(c);
    return fs_jwt_encode(&cl, secret, strlen(secret));
}
