/* Migrations against the shared PostgreSQL test instance; every test gets a database of its
 * own (created and dropped here) and a directory of migration files written by the test. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/migrate.h"
#include "storage/pg.h"
#include "tests/support/harness.h"

static char dbname[64];
static char dir[64];
static PGconn *db;

static PGconn *connect_db(void)
{
    char *err = NULL;
    char *info = fs_pg_conninfo(fs_test_env("DATABASE_URL"), &err);
    cr_assert_not_null(info, "%s", err);
    /* the second dbname is taken literally and overrides the one inside the conninfo */
    const char *kw[] = {"dbname", "dbname", NULL};
    const char *val[] = {info, dbname, NULL};
    PGconn *c = PQconnectdbParams(kw, val, 1);
    free(info);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    return c;
}

static void admin_exec(const char *fmt, const char *arg)
{
    char *err = NULL;
    PGconn *admin = fs_pg_connect_blocking(fs_test_env("DATABASE_URL"), &err);
    cr_assert_not_null(admin, "%s", err);
    char sql[256];
    snprintf(sql, sizeof sql, fmt, arg);
    PGresult *res = PQexec(admin, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(admin));
    PQclear(res);
    PQfinish(admin);
}

static void setup(void)
{
    static int seq;
    snprintf(dbname, sizeof dbname, "fs_migtest_%d_%d", getpid(), seq++);
    admin_exec("CREATE DATABASE %s", dbname);
    snprintf(dir, sizeof dir, "/tmp/fs-test-mig-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    db = connect_db();
}

static void teardown(void)
{
    if (db)
        PQfinish(db);
    db = NULL;
    fs_test_sh("rm -rf %s", dir);
    admin_exec("DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
}

static void write_file(const char *name, const char *sql)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(sql, f);
    fclose(f);
}

/* First column of the first row, or "" */
static char *scalar(PGconn *c, const char *sql)
{
    static char buf[1024];
    PGresult *res = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    snprintf(buf, sizeof buf, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return buf;
}

TestSuite(migrate, .init = setup, .fini = teardown, .timeout = 60);

Test(migrate, applies_in_numeric_order_and_records_versions)
{
    write_file("001_create.sql", "CREATE TABLE log (seq serial PRIMARY KEY, n int NOT NULL);\n");
    write_file("10_ten.sql", "INSERT INTO log (n) VALUES (10);");
    write_file("9_nine.sql", "INSERT INTO log (n) VALUES (9);\n-- two statements in one file\nINSERT INTO log (n) VALUES (99);");
    write_file("README.md", "not a migration");
    write_file("notes.sql", "this is not a migration either");
    write_file("011_x.sql.orig", "neither");
    int applied = -1;
    char *err = NULL;
    cr_assert_eq(fs_migrate_run(db, dir, &applied, &err), 0, "%s", err);
    cr_assert_eq(applied, 3);
    cr_assert_str_eq(scalar(db, "SELECT string_agg(n::text, ',' ORDER BY seq) FROM log"), "9,99,10");
    cr_assert_str_eq(scalar(db, "SELECT string_agg(version || ':' || name, ',' ORDER BY version) FROM schema_migrations"),
                     "1:001_create.sql,9:9_nine.sql,10:10_ten.sql");
    cr_assert_str_eq(scalar(db, "SELECT count(*) FROM schema_migrations WHERE applied_at > now() - interval '1 minute'"),
                     "3");
    cr_assert_str_eq(scalar(db, "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND d.datname = current_database()"), "0", "lock released");
}

Test(migrate, second_run_applies_nothing_and_new_files_later)
{
    write_file("001_create.sql", "CREATE TABLE t (x int);");
    int applied = -1;
    char *err = NULL;
    cr_assert_eq(fs_migrate_run(db, dir, &applied, &err), 0, "%s", err);
    cr_assert_eq(applied, 1);
    cr_assert_eq(fs_migrate_run(db, dir, &applied, &err), 0, "%s", err);
    cr_assert_eq(applied, 0);
    write_file("002_more.sql", "INSERT INTO t VALUES (1);");
    cr_assert_eq(fs_migrate_run(db, dir, &applied, &err), 0, "%s", err);
    cr_assert_eq(applied, 1);
    cr_assert_str_eq(scalar(db, "SELECT count(*) FROM t"), "1");
    cr_assert_eq(fs_migrate_run(db, dir, NULL, &err), 0, "%s", err);
    cr_assert_str_eq(scalar(db, "SELECT count(*) FROM t"), "1");
}

Test(migrate, failing_file_rolls_back_alone_and_is_named)
{
    write_file("001_ok.sql", "CREATE TABLE good (x int);");
    write_file("002_bad.sql", "CREATE TABLE half_done (x int);\nINSERT INTO no_such_table VALUES (1);");
    write_file("003_after.sql", "CREATE TABLE after (x int);");
    int applied = -1;
    char *err = NULL;
    cr_assert_eq(fs_migrate_run(db, dir, &applied, &err), -1);
    cr_assert_not_null(err);
    cr_assert(strstr(err, "002_bad.sql"), "%s", err);
    cr_assert(strstr(err, "no_such_table"), "%s", err);
    cr_assert_null(strchr(err, '\n'), "one line: %s", err);
    free(err);
    cr_assert_eq(applied, 1);
    cr_assert_str_eq(scalar(db, "SELECT to_regclass('good') IS NOT NULL"), "t");
    cr_assert_str_eq(scalar(db, "SELECT to_regclass('half_done') IS NULL"), "t", "the failing file is rolled back");
    cr_assert_str_eq(scalar(db, "SELECT to_regclass('after') IS NULL"), "t", "later files are not applied");
    cr_assert_str_eq(scalar(db, "SELECT string_agg(version::text, ',') FROM schema_migrations"), "1");
    cr_assert_eq(PQtransactionStatus(db), PQTRANS_IDLE);
    cr_assert_str_eq(scalar(db, "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND d.datname = current_database()"), "0", "lock released");

    /* fixed file: the run continues where it stopped */
    write_file("002_bad.sql", "CREATE TABLE half_done (x int);");
    err = NULL;
    cr_assert_eq(fs_migrate_run(db, dir, &applied, &err), 0, "%s", err);
    cr_assert_eq(applied, 2);
}

Test(migrate, file_may_not_commit_and_versions_are_unique)
{
    write_file("001_commits.sql", "CREATE TABLE c (x int); COMMIT;");
    char *err = NULL;
    cr_assert_eq(fs_migrate_run(db, dir, NULL, &err), -1);
    cr_assert(strstr(err, "001_commits.sql"), "%s", err);
    free(err);
    fs_test_sh("rm -f %s/*.sql", dir);
    write_file("002_a.sql", "SELECT 1;");
    write_file("0002_b.sql", "SELECT 1;");
    err = NULL;
    cr_assert_eq(fs_migrate_run(db, dir, NULL, &err), -1);
    cr_assert(strstr(err, "version 2"), "%s", err);
    free(err);
    err = NULL;
    cr_assert_eq(fs_migrate_run(db, "/nonexistent-fs-dir", NULL, &err), -1);
    cr_assert(strstr(err, "/nonexistent-fs-dir"), "%s", err);
    free(err);
}

typedef struct {
    int rc, applied;
    char *err;
} run_t;

static void *run_thread(void *arg)
{
    run_t *r = arg;
    PGconn *c = connect_db();
    r->rc = fs_migrate_run(c, dir, &r->applied, &r->err);
    PQfinish(c);
    return NULL;
}

Test(migrate, concurrent_runs_apply_each_file_once)
{
    /* CREATE TABLE without IF NOT EXISTS fails if a file is applied twice; the sleeps make
     * the two runs overlap */
    write_file("001_a.sql", "CREATE TABLE log (n int); SELECT pg_sleep(0.2); INSERT INTO log VALUES (1);");
    write_file("002_b.sql", "CREATE TABLE b (x int); SELECT pg_sleep(0.2); INSERT INTO log VALUES (2);");
    write_file("003_c.sql", "CREATE TABLE c (x int); INSERT INTO log VALUES (3);");
    run_t a = {0}, b = {0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, run_thread, &a);
    pthread_create(&tb, NULL, run_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_eq(a.rc, 0, "%s", a.err);
    cr_assert_eq(b.rc, 0, "%s", b.err);
    cr_assert_eq(a.applied + b.applied, 3, "%d + %d", a.applied, b.applied);
    cr_assert_str_eq(scalar(db, "SELECT string_agg(n::text, ',' ORDER BY n) FROM log"), "1,2,3");
    cr_assert_str_eq(scalar(db, "SELECT count(*) FROM schema_migrations"), "3");
}

Test(migrate, status_lists_applied_and_pending)
{
    write_file("001_a.sql", "CREATE TABLE a (x int);");
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    cr_assert_eq(fs_migrate_status(db, dir, f), 0);
    fclose(f);
    cr_assert(strstr(out, "001_a.sql") && strstr(out, "pending"), "%s", out);
    free(out);

    cr_assert_eq(fs_migrate_run(db, dir, NULL, NULL), 0);
    write_file("002_b.sql", "CREATE TABLE b (x int);");
    f = open_memstream(&out, &len);
    cr_assert_eq(fs_migrate_status(db, dir, f), 0);
    fclose(f);
    char *line2 = strstr(out, "002_b.sql");
    cr_assert(strstr(out, "001_a.sql") && strstr(out, "applied"), "%s", out);
    cr_assert(line2 && strstr(line2, "pending"), "%s", out);
    free(out);

    fs_test_sh("rm -f %s/001_a.sql", dir);
    f = open_memstream(&out, &len);
    cr_assert_eq(fs_migrate_status(db, dir, f), 0);
    fclose(f);
    cr_assert(strstr(out, "file missing"), "%s", out);
    free(out);
}

Test(migrate, base_migration_installs_extensions)
{
    int applied = 0;
    char *err = NULL;
    cr_assert_eq(fs_migrate_run(db, FS_SOURCE_DIR "/storage/migrations", &applied, &err), 0, "%s", err);
    cr_assert_geq(applied, 1);
    cr_assert_str_eq(scalar(db, "SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'"), "1");
    cr_assert_str_eq(scalar(db, "SELECT length(encode(digest('x', 'sha256'), 'hex'))"), "64");
    cr_assert_str_eq(scalar(db, "SELECT length(gen_random_uuid()::text)"), "36");
    const char *trgm_available = scalar(db, "SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'");
    if (strcmp(trgm_available, "1") == 0)
        cr_assert_str_eq(scalar(db, "SELECT similarity('flight', 'flights') > 0.5"), "t");
    cr_assert_str_eq(scalar(db, "SELECT name FROM schema_migrations WHERE version = 1"), "001_base.sql");
}

Test(migrate, default_dir)
{
    unsetenv("FLIGHTSHARK_MIGRATIONS_DIR");
    cr_assert_str_eq(fs_migrate_default_dir(), FS_SOURCE_DIR "/storage/migrations");
    setenv("FLIGHTSHARK_MIGRATIONS_DIR", "/opt/m", 1);
    cr_assert_str_eq(fs_migrate_default_dir(), "/opt/m");
}
