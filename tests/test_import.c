/* Reference data import: the CSV reader, the importers against a real PostgreSQL (each test in
 * a schema of its own, so nothing else in the database is touched), the seed, and loading the
 * in-memory bundle back. The real OurAirports/OpenFlights files are imported once, in
 * real_files_import_and_reimport. Figures quoted from /work/shared/data/README.md are marked
 * "README". */
#include <criterion/criterion.h>

#include "runtime/alloc.h"
#include "storage/csv.h"
#include "storage/import.h"
#include "storage/pg.h"
#include "storage/refdata.h"
#include "tests/support/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX FS_SOURCE_DIR "/tests/fixtures/refdata"
#define DATA_DIR "/work/shared/data"

/* ------------------------------------------------------------------------------------------
 * CSV reader (no database)
 * ---------------------------------------------------------------------------------------- */

static fs_csv_t *csv_of(const char *text)
{
    char *err = NULL;
    fs_csv_t *c = fs_csv_open_mem(text, strlen(text), "mem", &err);
    cr_assert(c, "open: %s", err ? err : "?");
    return c;
}

Test(csv, quoted_commas_doubled_quotes_crlf_and_nulls)
{
    fs_csv_t *c = csv_of("\xEF\xBB\xBF" "1,\"a, b\",\"say \"\"hi\"\"\",\\N,\"\"\r\n\r\n2,\"multi\nline\",x\n3,,\"Xi\\'AN\"");
    fs_csv_record_t r;
    char *err = NULL;
    cr_assert_eq(fs_csv_next(c, &r, &err), 1);
    cr_assert_eq(r.line, 1);
    cr_assert_eq(r.nfields, 5);
    cr_assert_str_eq(r.fields[0], "1");
    cr_assert_str_eq(r.fields[1], "a, b");
    cr_assert_str_eq(r.fields[2], "say \"hi\"");
    cr_assert(fs_csv_field_null(&r, 3));
    cr_assert(!fs_csv_field_null(&r, 4) && r.quoted[4] && r.lens[4] == 0);
    cr_assert_eq(fs_csv_next(c, &r, &err), 1); /* the blank CRLF line is skipped */
    cr_assert_eq(r.line, 3);
    cr_assert_str_eq(r.fields[1], "multi\nline");
    cr_assert_eq(fs_csv_next(c, &r, &err), 1);
    cr_assert_eq(r.line, 5, "line numbers count the newline inside the quoted field");
    cr_assert_eq(r.nfields, 3);
    cr_assert_eq(fs_csv_unescape_backslash(r.fields[2], r.lens[2]), 5);
    cr_assert_str_eq(r.fields[2], "Xi'AN");
    cr_assert_eq(fs_csv_next(c, &r, &err), 0);
    fs_csv_close(c);
}

Test(csv, malformed_input)
{
    char *err = NULL;
    fs_csv_t *c = csv_of("a,\"b\"x,c\nd,\"never closed\n");
    fs_csv_record_t r;
    cr_assert_eq(fs_csv_next(c, &r, &err), 1);
    cr_assert_str_eq(r.malformed, "text after a closing quote");
    cr_assert_eq(fs_csv_next(c, &r, &err), -1);
    cr_assert(strstr(err, "line 2"), "%s", err);
    free(err);
    fs_csv_close(c);

    err = NULL;
    cr_assert_null(fs_csv_open_mem("ok\nM\xe1laga\n", 10, "latin1.csv", &err));
    cr_assert(strstr(err, "latin1.csv:2: not valid UTF-8"), "%s", err);
    free(err);
    err = NULL;
    cr_assert_null(fs_csv_open("/nonexistent/file.csv", &err));
    cr_assert(strstr(err, "No such file"), "%s", err);
    free(err);
}

/* ------------------------------------------------------------------------------------------
 * Database fixtures
 * ---------------------------------------------------------------------------------------- */

static PGconn *conn;
static char schema[64];
static char *report_buf;
static size_t report_len;
static FILE *report;
static fs_import_opts_t opts;

static void exec_ok(const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static long scalar(const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    cr_assert_eq(PQntuples(r), 1, "%s", sql);
    long v = PQgetisnull(r, 0, 0) ? -1 : atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static char *text(const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    char *v = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) ? fs_strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return v;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = fs_malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A schema of this test's own, holding the tables of migration 002 (which depends on nothing
 * else), first on the search_path of the connection. */
static void db_setup(void)
{
    char *err = NULL;
    conn = fs_pg_connect_blocking(fs_test_env("DATABASE_URL"), &err);
    cr_assert(conn, "connect: %s", err ? err : "?");
    snprintf(schema, sizeof schema, "fs_refdata_test_%d", (int)getpid());
    char *sql = fs_sprintf("SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s;"
                           " SET search_path = %s",
                           schema, schema, schema);
    exec_ok(sql);
    free(sql);
    char *migration = read_file(FS_SOURCE_DIR "/storage/migrations/002_reference_data.sql");
    exec_ok(migration);
    free(migration);
    report = open_memstream(&report_buf, &report_len);
    opts = (fs_import_opts_t){.report = report, .max_reported = 1000};
}

static void db_teardown(void)
{
    if (conn) {
        char *sql = fs_sprintf("SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE", schema);
        PGresult *r = PQexec(conn, sql);
        PQclear(r);
        free(sql);
        PQfinish(conn);
    }
    if (report)
        fclose(report);
    free(report_buf);
}

static const char *reported(void)
{
    fflush(report);
    return report_buf ? report_buf : "";
}

static void assert_reported(const char *needle)
{
    cr_assert(strstr(reported(), needle), "expected \"%s\" in the report:\n%s", needle, reported());
}

static void assert_sums(const fs_import_result_t *r)
{
    cr_assert_eq(r->inserted + r->updated + r->unchanged + r->skipped + r->rejected, r->rows,
                 "%s: %ld ins + %ld upd + %ld same + %ld skip + %ld rej != %ld rows", r->file, r->inserted, r->updated,
                 r->unchanged, r->skipped, r->rejected, r->rows);
}

/* Everything the import tables hold, as one digest: "unchanged" means this does not move. */
static char *checksum(void)
{
    return text("SELECT md5(coalesce((SELECT string_agg(a::text, '|' ORDER BY iata_code) FROM airports a), '')"
                " || coalesce((SELECT string_agg(l::text, '|' ORDER BY id) FROM airlines l), '')"
                " || coalesce((SELECT string_agg(r::text, '|' ORDER BY id) FROM routes r), '')"
                " || coalesce((SELECT string_agg(c::text, '|' ORDER BY iata_code) FROM aircraft c), ''))");
}

TestSuite(import, .init = db_setup, .fini = db_teardown, .timeout = 120);

/* ------------------------------------------------------------------------------------------
 * Real files
 * ---------------------------------------------------------------------------------------- */

Test(import, real_files_import_and_reimport)
{
    if (access(DATA_DIR "/ourairports/airports.csv", R_OK) != 0)
        cr_skip_test("the public data files are not in " DATA_DIR);
    fs_import_result_t oa, of[4];
    int n;
    cr_assert_eq(fs_import_ourairports(conn, DATA_DIR "/ourairports/airports.csv",
                                       DATA_DIR "/ourairports/countries.csv", &opts, &oa),
                 0, "%s", reported());
    cr_assert_eq(oa.rows, 85836);       /* README: 85,836 rows + header */
    cr_assert_eq(oa.inserted, 9054);    /* README: 9,054 with a non-empty IATA code, none closed */
    cr_assert_eq(oa.skipped, 85836 - 9054);
    cr_assert_eq(oa.rejected, 0);
    assert_sums(&oa);
    cr_assert_eq(fs_import_openflights(conn, DATA_DIR "/openflights", &opts, of, &n), 0, "%s", reported());
    cr_assert_eq(n, 4);
    cr_assert_eq(of[0].rows, 7698);     /* README: airports.dat 7,698 rows */
    cr_assert_eq(of[1].rows, 6162);     /* README: airlines.dat 6,162 */
    cr_assert_eq(of[2].rows, 246);      /* README: planes.dat 246 */
    cr_assert_eq(of[3].rows, 67663);    /* README: routes.dat 67,663 */
    for (int i = 0; i < 4; i++)
        assert_sums(&of[i]);
    /* README: 176 IATA codes are only in airports.dat; those OurAirports lacks are added. */
    cr_assert(of[0].inserted > 150 && of[0].inserted <= 176, "%ld", of[0].inserted);
    /* README: 66,771 routes resolve by id and 67,092 by id-or-code against airports.dat alone;
     * OurAirports knows more airports, so at least that many import. */
    cr_assert_geq(of[3].inserted, 67092);
    cr_assert_eq(of[3].inserted + of[3].rejected, 67663);
    assert_reported("routes.dat:33277: rejected: origin and destination are the same airport (PKN)"); /* README self-loop */
    assert_reported("airlines.dat:5632: rejected: Polar Airlines: bad IATA code 'ЯП'");                /* README junk codes */

    /* README: 719 route references to IST carry id 1701, Atatürk, now coded ISL; joined by id. */
    cr_assert_eq(scalar("SELECT route_count FROM airports WHERE iata_code = 'ISL'"), 719);
    cr_assert_eq(scalar("SELECT count(*) FROM routes WHERE origin_code = 'IST' OR destination_code = 'IST'"), 0);
    /* README: INC (131) and ISB (117) have IATA \N in airports.dat; matched by ICAO code. */
    cr_assert_eq(scalar("SELECT route_count FROM airports WHERE iata_code = 'INC'"), 131);
    cr_assert_eq(scalar("SELECT route_count FROM airports WHERE iata_code = 'ISB'"), 117);
    cr_assert_eq(scalar("SELECT distance_km FROM routes WHERE origin_code = 'LHR' AND destination_code = 'JFK'"
                        " AND airline_code = 'BA'"),
                 5540);
    /* README: 131 rows use the alias Asia/Calcutta; stored canonical. */
    cr_assert_eq(scalar("SELECT count(*) FROM airports WHERE timezone = 'Asia/Calcutta'"), 0);
    char *tz = text("SELECT timezone FROM airports WHERE iata_code = 'CCU'");
    cr_assert_str_eq(tz, "Asia/Kolkata");
    free(tz);
    char *city = text("SELECT city || '|' || country FROM airports WHERE iata_code = 'AGP'");
    cr_assert_str_eq(city, "Málaga|Spain", "accented OurAirports spelling of the OpenFlights city");
    free(city);
    cr_assert_eq(scalar("SELECT count(*) FROM airports WHERE city = 'London' AND country_code = 'GB' AND is_active"), 5);
    /* Zones: from OpenFlights where it has one, else inferred from the nearest airport of the
     * same country; only airports of countries with no sourced zone at all are left without. */
    cr_assert_leq(scalar("SELECT count(*) FROM airports WHERE timezone IS NULL"), 10);

    /* Second run: nothing new, nothing changed, the tables byte-for-byte the same. */
    char *before = checksum();
    fs_import_result_t oa2, of2[4];
    cr_assert_eq(fs_import_ourairports(conn, DATA_DIR "/ourairports/airports.csv",
                                       DATA_DIR "/ourairports/countries.csv", &opts, &oa2), 0);
    cr_assert_eq(fs_import_openflights(conn, DATA_DIR "/openflights", &opts, of2, &n), 0);
    cr_assert_eq(oa2.inserted + oa2.updated, 0);
    cr_assert_eq(oa2.unchanged, 9054);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(of2[i].inserted + of2[i].updated, 0, "%s: %ld inserted, %ld updated", of2[i].file,
                     of2[i].inserted, of2[i].updated);
        cr_assert_eq(of2[i].unchanged, of[i].inserted + of[i].updated + of[i].unchanged, "%s", of2[i].file);
    }
    char *after = checksum();
    cr_assert_str_eq(before, after);
    free(before);
    free(after);

    /* And the whole of it loads into memory. */
    char *err = NULL;
    fs_refdata_t *ref = fs_refdata_load(conn, &err);
    cr_assert(ref, "%s", err ? err : "?");
    cr_assert_eq(fs_airport_index_count(ref->airports), (size_t)scalar("SELECT count(*) FROM airports WHERE is_active"));
    cr_assert_eq(fs_route_graph_count(ref->routes), (size_t)scalar("SELECT count(*) FROM routes WHERE is_active"));
    const fs_airport_t *top[3];
    cr_assert_eq(fs_airport_index_search(ref->airports, "malaga", 3, top), 1);
    cr_assert_str_eq(top[0]->iata, "AGP");
    cr_assert_str_eq(fs_refdata_airline(ref, "tk")->name, "Turkish Airlines");
    fs_refdata_free(ref);
}

/* ------------------------------------------------------------------------------------------
 * Fixtures: bad rows, malformed files
 * ---------------------------------------------------------------------------------------- */

Test(import, bad_rows_are_reported_and_the_rest_imported)
{
    fs_import_result_t r;
    cr_assert_eq(fs_import_ourairports(conn, FIX "/ourairports_small.csv", FIX "/countries_small.csv", &opts, &r), 0,
                 "%s", reported());
    cr_assert_eq(r.rows, 11);
    cr_assert_eq(r.inserted, 5);
    cr_assert_eq(r.skipped, 2); /* no IATA code; closed */
    cr_assert_eq(r.rejected, 4);
    assert_sums(&r);
    assert_reported("ourairports_small.csv:8: rejected: bad IATA code 'ab1'");
    assert_reported("ourairports_small.csv:9: rejected: NNM: missing name");
    assert_reported("ourairports_small.csv:10: rejected: FNA: bad coordinates");
    assert_reported("ourairports_small.csv:11: rejected: wrong number of fields (expected 19 fields, found 6)");
    char *q = text("SELECT name || '|' || country || '|' || city FROM airports WHERE iata_code = 'QQF'");
    cr_assert_str_eq(q, "The \"Quoted\" Field, Ltd|Namibia|Windhoek", "quotes, commas, and NA is Namibia");
    free(q);
    cr_assert_eq(scalar("SELECT count(*) FROM airports WHERE is_major"), 4, "large_airport is major");

    /* The same file again: no change. */
    fs_import_result_t again;
    cr_assert_eq(fs_import_ourairports(conn, FIX "/ourairports_small.csv", FIX "/countries_small.csv", &opts, &again), 0);
    cr_assert_eq(again.inserted + again.updated, 0);
    cr_assert_eq(again.unchanged, 5);

    /* OpenFlights on top: time zones, the served city, ICAO-only and unknown-country rows. */
    fs_import_result_t of[4];
    int n;
    cr_assert_eq(fs_import_openflights(conn, FIX "/openflights_small", &opts, of, &n), 0, "%s", reported());
    cr_assert_eq(n, 4);
    for (int i = 0; i < n; i++)
        assert_sums(&of[i]);
    assert_reported("openflights_small/airports.dat:9: rejected: BCX: bad coordinates");
    assert_reported("openflights_small/airports.dat:10: rejected: UCA: unknown country 'Atlantis'");
    assert_reported("openflights_small/airlines.dat:6: rejected: Junk Code Air: bad IATA code '?" "?'");
    assert_reported("openflights_small/planes.dat:5: rejected: duplicate IATA type code CNJ (kept line 4)");
    assert_reported("openflights_small/routes.dat:5: rejected: unknown destination airport XXX");
    assert_reported("openflights_small/routes.dat:6: rejected: origin and destination are the same airport (LHR)");
    assert_reported("openflights_small/routes.dat:7: rejected: duplicate of line 1 (LHR-JFK BA)");
    assert_reported("openflights_small/routes.dat:9: rejected: wrong number of fields");
    char *tz = text("SELECT timezone FROM airports WHERE iata_code = 'CCU'");
    cr_assert_str_eq(tz, "Asia/Kolkata");
    free(tz);
    char *xi = text("SELECT city FROM airports WHERE iata_code = 'XIY'");
    cr_assert_str_eq(xi, "Xi'AN", "\\' unescaped");
    free(xi);
    /* The 2014 code IST with airport id 1701 is today's ISL. */
    cr_assert_eq(scalar("SELECT count(*) FROM routes WHERE origin_code = 'ISL' AND airline_code = 'TK'"), 1);
    /* " 744 " equipment is trimmed; JFK-LHR exists in both directions. */
    char *eq = text("SELECT equipment::text FROM routes WHERE origin_code = 'JFK' AND destination_code = 'LHR'");
    cr_assert_str_eq(eq, "{744}");
    free(eq);
    cr_assert_eq(scalar("SELECT count(*) FROM routes WHERE codeshare"), 1);
    cr_assert_eq(scalar("SELECT count(*) FROM airlines WHERE iata_code = 'BA'"), 2, "airline codes are not unique");
    char *primary = text("SELECT name FROM airlines WHERE id = fs_airline_primary('ba')");
    cr_assert_str_eq(primary, "British Airways", "the active airline with routes is primary");
    free(primary);
    cr_assert_eq(scalar("SELECT count(*) FROM airlines WHERE NOT is_active"), 2, "'N' and lower-case 'n'");
}

static void assert_rolled_back(const char *path, int rc, const char *needle)
{
    cr_assert_eq(rc, -1, "%s was accepted:\n%s", path, reported());
    assert_reported(needle);
}

Test(import, malformed_files_change_nothing)
{
    fs_import_result_t r;
    cr_assert_eq(fs_import_ourairports(conn, FIX "/ourairports_small.csv", FIX "/countries_small.csv", &opts, &r), 0);
    char *before = checksum();

    assert_rolled_back("wrong columns",
                       fs_import_ourairports(conn, FIX "/ourairports_wrong_columns.csv", NULL, &opts, &r),
                       "ourairports_wrong_columns.csv: import failed, nothing was changed: 5 of 5 rows have the wrong shape");
    assert_reported("ourairports_wrong_columns.csv:2: rejected: wrong number of fields");
    assert_reported("ourairports_wrong_columns.csv:6: rejected: wrong number of fields");
    assert_rolled_back("latin1", fs_import_ourairports(conn, FIX "/ourairports_latin1.csv", NULL, &opts, &r),
                       "ourairports_latin1.csv:3: not valid UTF-8");
    assert_rolled_back("unterminated", fs_import_ourairports(conn, FIX "/ourairports_unterminated.csv", NULL, &opts, &r),
                       "line 3: quoted field never closed");
    assert_rolled_back("no iata column",
                       fs_import_ourairports(conn, FIX "/ourairports_no_iata_column.csv", NULL, &opts, &r),
                       "header has no \"iata_code\" column");
    assert_rolled_back("missing", fs_import_ourairports(conn, FIX "/missing.csv", NULL, &opts, &r),
                       "missing.csv: No such file or directory");
    int n;
    fs_import_result_t of[4];
    assert_rolled_back("openflights", fs_import_openflights(conn, FIX "/openflights_malformed", &opts, of, &n),
                       "openflights_malformed/airports.dat: import failed, nothing was changed: 6 of 6 rows");
    cr_assert_eq(n, 0);
    assert_rolled_back("bad header", fs_import_csv(conn, "airports", FIX "/admin_airports_bad_header.csv", &opts, &r),
                       "unknown column \"citty\" for airports");
    assert_rolled_back("kind", fs_import_csv(conn, "planes", FIX "/admin_airports.csv", &opts, &r),
                       "unknown CSV kind 'planes'");
    /* A directory is not a readable file either. */
    assert_rolled_back("dir", fs_import_csv(conn, "airports", FIX, &opts, &r), "not a regular file");

    char *after = checksum();
    cr_assert_str_eq(before, after, "a failed import left changes behind");
    free(before);
    free(after);
    /* The connection is usable afterwards (no transaction left open). */
    cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
}

/* ------------------------------------------------------------------------------------------
 * Admin CSV
 * ---------------------------------------------------------------------------------------- */

Test(import, admin_csv_insert_update_override)
{
    fs_import_result_t r;
    cr_assert_eq(fs_import_csv(conn, "airports", FIX "/admin_airports.csv", &opts, &r), 0, "%s", reported());
    cr_assert_eq(r.inserted, 3);
    cr_assert_eq(r.rejected, 3);
    assert_sums(&r);
    assert_reported("admin_airports.csv:6: rejected: bad latitude '99'");
    assert_reported("admin_airports.csv:7: rejected: duplicate of line 2");
    assert_reported("admin_airports.csv:4: rejected: ZZC: a new airport needs name, city, country_code");
    cr_assert_eq(scalar("SELECT count(*) FROM airports WHERE iata_code = 'ZZD' AND country_code = 'SE'"), 1,
                 "codes are upper-cased");
    cr_assert_eq(scalar("SELECT is_major::int FROM airports WHERE iata_code = 'ZZA'"), 1);

    cr_assert_eq(fs_import_csv(conn, "airports", FIX "/admin_airports_update.csv", &opts, &r), 0, "%s", reported());
    cr_assert_eq(r.updated, 2);
    cr_assert_eq(scalar("SELECT is_major::int FROM airports WHERE iata_code = 'ZZA'"), 0, "is_major overridden");
    char *v = text("SELECT name || '|' || city FROM airports WHERE iata_code = 'ZZB'");
    cr_assert_str_eq(v, "Zed Bravo, \"Field\"|Zed City", "empty cells keep values; city overridden");
    free(v);
    cr_assert_eq(fs_import_csv(conn, "airports", FIX "/admin_airports_update.csv", &opts, &r), 0);
    cr_assert_eq(r.unchanged, 2);

    cr_assert_eq(fs_import_csv(conn, "airlines", FIX "/admin_airlines.csv", &opts, &r), 0, "%s", reported());
    cr_assert_eq(r.inserted, 1);
    assert_reported("admin_airlines.csv:4: rejected: bad iata_code 'Z!'");
    assert_reported("admin_airlines.csv:3: rejected: ZB: a new airline needs a name");
    cr_assert_eq(fs_import_csv(conn, "routes", FIX "/admin_routes.csv", &opts, &r), 0, "%s", reported());
    cr_assert_eq(r.inserted, 2);
    assert_reported("admin_routes.csv:4: rejected: unknown airport QQQ");
    assert_reported("admin_routes.csv:5: rejected: origin and destination are the same airport");
    cr_assert_eq(scalar("SELECT count(*) FROM routes WHERE airline_id IS NOT NULL AND airline_code = 'ZA'"), 1);
    cr_assert_eq(scalar("SELECT distance_km FROM routes WHERE airline_code IS NULL"), 13, "distance filled in");
}

/* ------------------------------------------------------------------------------------------
 * Seed
 * ---------------------------------------------------------------------------------------- */

Test(import, seed_is_idempotent_and_loads)
{
    fs_import_result_t r[4];
    cr_assert_eq(fs_seed_reference(conn, r), 0);
    long want[4] = {30, 15, 14, 11}; /* original init.sql: airports, airlines, routes, aircraft */
    for (int i = 0; i < 4; i++)
        cr_assert_eq(r[i].inserted, want[i], "%s", r[i].kind);
    cr_assert_eq(scalar("SELECT count(*) FROM airports WHERE NOT is_major"), 2, "SNN and ORK");
    cr_assert_eq(fs_seed_reference(conn, r), 0);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(r[i].inserted, 0);
        cr_assert_eq(r[i].unchanged, want[i]);
    }
    char *err = NULL;
    fs_refdata_t *ref = fs_refdata_load(conn, &err);
    cr_assert(ref, "%s", err ? err : "?");
    json_t *body = fs_airport_index_search_json(ref->airports, "london", 10, true);
    json_t *first = json_array_get(json_object_get(body, "results"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "display")), "London (All 3 airports)");
    json_decref(body);
    cr_assert_eq(fs_route_graph_from(ref->routes, "DUB").n, 10);
    cr_assert(fs_refdata_airline(ref, "FR")->is_low_cost);
    fs_refdata_free(ref);
}

/* ------------------------------------------------------------------------------------------
 * Command line
 * ---------------------------------------------------------------------------------------- */

Test(import, command_line_exit_codes)
{
    const char *bin = getenv("FS_BINARY");
    if (!bin)
        cr_skip_test("FS_BINARY is not set (run through ctest)");
    /* The child connects with this test's schema on its search_path. */
    char *url = fs_sprintf("%s%coptions=-csearch_path%%3D%s", fs_test_env("DATABASE_URL"),
                           strchr(fs_test_env("DATABASE_URL"), '?') ? '&' : '?', schema);
    cr_assert_eq(fs_test_sh("DATABASE_URL='%s' %s seed >/dev/null", url, bin), 0);
    cr_assert_eq(fs_test_sh("DATABASE_URL='%s' %s import csv airports %s/admin_airports.csv >/dev/null 2>&1", url, bin,
                            FIX),
                 0);
    cr_assert_eq(fs_test_sh("DATABASE_URL='%s' %s import ourairports %s/ourairports_latin1.csv >/dev/null 2>&1", url,
                            bin, FIX),
                 1);
    cr_assert_eq(fs_test_sh("DATABASE_URL='%s' %s import csv >/dev/null 2>&1", url, bin), 2);
    cr_assert_eq(scalar("SELECT count(*) FROM airports"), 33);
    free(url);
}
