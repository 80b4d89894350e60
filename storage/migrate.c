#include "storage/migrate.h"

#include "runtime/alloc.h"
#include "runtime/log.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int version;
    char *file; /* "001_base.sql" */
    char *path;
} mig_file_t;

typedef struct {
    mig_file_t *v;
    size_t n;
} mig_list_t;

static const char create_table_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                       " version int PRIMARY KEY,"
                                       " name text NOT NULL,"
                                       " applied_at timestamptz NOT NULL DEFAULT now())";

static void list_free(mig_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].file);
        free(l->v[i].path);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* "NNN_name.sql" -> NNN; -1 for any other file name. */
static int file_version(const char *name)
{
    size_t digits = strspn(name, "0123456789"), len = strlen(name);
    if (digits == 0 || digits > 9 || name[digits] != '_' || len < digits + 6 ||
        strcmp(name + len - 4, ".sql") != 0)
        return -1;
    return atoi(name);
}

static int cmp_version(const void *a, const void *b)
{
    return ((const mig_file_t *)a)->version - ((const mig_file_t *)b)->version;
}

/* The migration files of `dir`, sorted by version; two files with one version are an error. */
static int list_files(const char *dir, mig_list_t *out, char **err)
{
    DIR *d = opendir(dir);
    if (!d) {
        *err = fs_sprintf("cannot open migrations directory %s: %m", dir);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        int version = file_version(e->d_name);
        if (version < 0)
            continue;
        out->v = fs_realloc(out->v, (out->n + 1) * sizeof *out->v);
        out->v[out->n++] = (mig_file_t){version, fs_strdup(e->d_name), fs_sprintf("%s/%s", dir, e->d_name)};
    }
    closedir(d);
    if (out->n) /* qsort must not see a NULL base, even for 0 items */
        qsort(out->v, out->n, sizeof *out->v, cmp_version);
    for (size_t i = 1; i < out->n; i++) {
        if (out->v[i].version == out->v[i - 1].version) {
            *err = fs_sprintf("two migrations share version %d: %s and %s", out->v[i].version, out->v[i - 1].file,
                              out->v[i].file);
            list_free(out);
            return -1;
        }
    }
    return 0;
}

static char *slurp(const char *path, char **err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = fs_sprintf("cannot read %s: %m", path);
        return NULL;
    }
    size_t cap = 4096, len = 0, n;
    char *buf = fs_malloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2)
            buf = fs_realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* The server's message on one line (libpq's carries LINE/HINT on further lines). */
static char *one_line(const char *msg)
{
    char *s = fs_strdup(msg && *msg ? msg : "unknown error");
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
    for (char *p = s; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return s;
}

/* Runs `sql`; on failure sets *err to "<what>: <server message>" and returns -1. */
static int exec(PGconn *conn, const char *sql, const char *what, char **err)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char *msg = one_line(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
        *err = fs_sprintf("%s: %s", what, msg);
        free(msg);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

static int lock_key_exec(PGconn *conn, const char *fn, char **err)
{
    char key[32], sql[64];
    snprintf(key, sizeof key, "%lld", (long long)FS_MIGRATE_LOCK_KEY);
    snprintf(sql, sizeof sql, "SELECT %s(%s)", fn, key);
    return exec(conn, sql, fn, err);
}

/* Versions recorded in schema_migrations, as a sorted array. */
static int applied_versions(PGconn *conn, int **out, int *n, char **err)
{
    PGresult *res = PQexec(conn, "SELECT version FROM schema_migrations ORDER BY version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char *msg = one_line(PQresultErrorMessage(res));
        *err = fs_sprintf("schema_migrations: %s", msg);
        free(msg);
        PQclear(res);
        return -1;
    }
    *n = PQntuples(res);
    *out = fs_calloc((size_t)*n + 1, sizeof **out);
    for (int i = 0; i < *n; i++)
        (*out)[i] = atoi(PQgetvalue(res, i, 0));
    PQclear(res);
    return 0;
}

static bool has_version(const int *v, int n, int version)
{
    for (int i = 0; i < n; i++)
        if (v[i] == version)
            return true;
    return false;
}

static int record(PGconn *conn, const mig_file_t *m, char **err)
{
    char version[16];
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[] = {version, m->file};
    PGresult *res = PQexecParams(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, NULL,
                                 params, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char *msg = one_line(PQresultErrorMessage(res));
        *err = fs_sprintf("%s: recording version: %s", m->file, msg);
        free(msg);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

/* One file, its own transaction: the file's statements, then its schema_migrations row. */
static int apply_one(PGconn *conn, const mig_file_t *m, char **err)
{
    char *sql = slurp(m->path, err);
    if (!sql)
        return -1;
    int rc = exec(conn, "BEGIN", m->file, err);
    if (rc == 0)
        rc = exec(conn, sql, m->file, err);
    if (rc == 0 && PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        *err = fs_sprintf("%s: the file must not end the transaction itself (no COMMIT/ROLLBACK)", m->file);
        rc = -1;
    }
    if (rc == 0)
        rc = record(conn, m, err);
    if (rc == 0)
        rc = exec(conn, "COMMIT", m->file, err);
    if (rc != 0 && PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
    free(sql);
    return rc;
}

static int run_locked(PGconn *conn, const mig_list_t *files, int *applied, char **err)
{
    int *done = NULL, ndone = 0;
    if (exec(conn, create_table_sql, "schema_migrations", err) < 0 || applied_versions(conn, &done, &ndone, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < files->n && rc == 0; i++) {
        const mig_file_t *m = &files->v[i];
        if (has_version(done, ndone, m->version))
            continue;
        rc = apply_one(conn, m, err);
        if (rc == 0) {
            (*applied)++;
            fs_info("migrate: applied %s", m->file);
        }
    }
    free(done);
    return rc;
}

int fs_migrate_run(PGconn *conn, const char *dir, int *applied, char **err_out)
{
    int count = 0;
    mig_list_t files = {0};
    char *local_err = NULL, **err = err_out ? err_out : &local_err;
    *err = NULL;
    if (applied)
        *applied = 0;
    if (list_files(dir, &files, err) < 0) {
        free(local_err);
        return -1;
    }
    /* "relation already exists, skipping" and the like are noise on the console */
    PQclear(PQexec(conn, "SET client_min_messages TO warning"));
    int rc = lock_key_exec(conn, "pg_advisory_lock", err);
    if (rc == 0) {
        rc = run_locked(conn, &files, &count, err);
        char *unlock_err = NULL;
        if (lock_key_exec(conn, "pg_advisory_unlock", &unlock_err) < 0) {
            fs_warn("migrate: %s", unlock_err); /* the lock ends with the session anyway */
            free(unlock_err);
        }
    }
    PQclear(PQexec(conn, "RESET client_min_messages"));
    if (applied)
        *applied = count;
    list_free(&files);
    if (local_err)
        fs_error("migrate: %s", local_err);
    free(local_err);
    return rc;
}

/* Recorded migrations (version -> applied_at text); empty when the table does not exist. */
static PGresult *recorded(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    bool exists = PQresultStatus(res) == PGRES_TUPLES_OK && PQgetvalue(res, 0, 0)[0] == 't';
    bool failed = PQresultStatus(res) != PGRES_TUPLES_OK;
    PQclear(res);
    if (failed)
        return NULL;
    return PQexec(conn, exists ? "SELECT version, name, applied_at::text FROM schema_migrations ORDER BY version"
                               : "SELECT NULL::int, NULL::text, NULL::text WHERE false");
}

static int find_row(PGresult *res, int version)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (atoi(PQgetvalue(res, i, 0)) == version)
            return i;
    return -1;
}

int fs_migrate_status(PGconn *conn, const char *dir, FILE *out)
{
    mig_list_t files = {0};
    char *err = NULL;
    if (list_files(dir, &files, &err) < 0) {
        fprintf(out, "error: %s\n", err);
        free(err);
        return -1;
    }
    PGresult *res = recorded(conn);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char *msg = one_line(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
        fprintf(out, "error: schema_migrations: %s\n", msg);
        free(msg);
        PQclear(res);
        list_free(&files);
        return -1;
    }
    for (size_t i = 0; i < files.n; i++) {
        int row = find_row(res, files.v[i].version);
        if (row >= 0)
            fprintf(out, "%-40s applied %s\n", files.v[i].file, PQgetvalue(res, row, 2));
        else
            fprintf(out, "%-40s pending\n", files.v[i].file);
    }
    for (int i = 0; i < PQntuples(res); i++) {
        int version = atoi(PQgetvalue(res, i, 0));
        bool known = false;
        for (size_t j = 0; j < files.n && !known; j++)
            known = files.v[j].version == version;
        if (!known)
            fprintf(out, "%-40s applied %s (file missing)\n", PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
    }
    PQclear(res);
    list_free(&files);
    return 0;
}

const char *fs_migrate_default_dir(void)
{
    const char *env = getenv("FLIGHTSHARK_MIGRATIONS_DIR");
    return env && *env ? env : FS_SOURCE_DIR "/storage/migrations";
}
