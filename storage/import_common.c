/* Shared machinery of the importers: transaction, COPY staging, reports, progress, validation
 * helpers and the country-name map (see import_priv.h). */
#include "storage/import_priv.h"

#include "runtime/alloc.h"
#include "storage/textfold.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_REPORTED 20
#define PROGRESS_INTERVAL_MS 100.0
/* A file is malformed as a whole when more than 10 % of its rows, and at least this many, have
 * the wrong shape (a short file with every row broken is caught by the all-rejected rule). */
#define MALFORMED_MIN_ROWS 3

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Erases the progress line before anything else is printed on the terminal. */
static void clear_progress(fsi_job_t *j)
{
    if (j->progress_shown) {
        fprintf(j->report, "\r\033[K");
        j->progress_shown = false;
    }
}

void fsi_note(fsi_job_t *j, const char *fmt, ...)
{
    clear_progress(j);
    va_list ap;
    va_start(ap, fmt);
    fprintf(j->report, "%s: ", j->path);
    vfprintf(j->report, fmt, ap);
    fputc('\n', j->report);
    va_end(ap);
}

static void vreject(fsi_job_t *j, long line, const char *fmt, va_list ap)
{
    j->res->rejected++;
    if (j->res->rejected > j->max_reported)
        return;
    clear_progress(j);
    fprintf(j->report, "%s:%ld: rejected: ", j->path, line);
    vfprintf(j->report, fmt, ap);
    fputc('\n', j->report);
}

void fsi_reject(fsi_job_t *j, long line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreject(j, line, fmt, ap);
    va_end(ap);
}

void fsi_reject_shape(fsi_job_t *j, long line, const char *fmt, ...)
{
    j->structural++;
    va_list ap;
    va_start(ap, fmt);
    vreject(j, line, fmt, ap);
    va_end(ap);
}

static bool sql_failed(fsi_job_t *j, PGresult *res, const char *what)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN)
        return false;
    const char *msg = PQresultErrorMessage(res);
    fsi_note(j, "%s failed: %s", what, msg && *msg ? msg : PQerrorMessage(j->conn));
    j->failed = true;
    return true;
}

long fsi_exec(fsi_job_t *j, const char *sql)
{
    PGresult *res = PQexec(j->conn, sql);
    if (sql_failed(j, res, "statement")) {
        PQclear(res);
        return -1;
    }
    long n = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : atol(PQcmdTuples(res));
    PQclear(res);
    return n;
}

long fsi_scalar(fsi_job_t *j, const char *sql)
{
    PGresult *res = PQexec(j->conn, sql);
    long v = -1;
    if (!sql_failed(j, res, "query") && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        v = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

long fsi_reject_query(fsi_job_t *j, const char *sql)
{
    PGresult *res = PQexec(j->conn, sql);
    if (sql_failed(j, res, "query")) {
        PQclear(res);
        return -1;
    }
    long n = PQntuples(res);
    for (long i = 0; i < n; i++)
        fsi_reject(j, atol(PQgetvalue(res, (int)i, 0)), "%s", PQgetvalue(res, (int)i, 1));
    PQclear(res);
    return n;
}

int fsi_begin(fsi_job_t *j, PGconn *conn, const char *path, const char *kind, const fs_import_opts_t *opts,
              fs_import_result_t *res, const char *stage_sql, const char *copy_sql)
{
    memset(j, 0, sizeof *j);
    memset(res, 0, sizeof *res);
    j->conn = conn;
    j->path = path;
    j->res = res;
    j->report = opts && opts->report ? opts->report : stderr;
    j->max_reported = opts && opts->max_reported > 0 ? opts->max_reported : DEFAULT_MAX_REPORTED;
    j->progress = opts && opts->progress && isatty(fileno(j->report));
    snprintf(res->file, sizeof res->file, "%s", base_name(path));
    snprintf(res->kind, sizeof res->kind, "%s", kind);
    if (PQstatus(conn) != CONNECTION_OK)
        return fsi_abort(j, "no database connection: %s", PQerrorMessage(conn));
    if (fsi_exec(j, "BEGIN") < 0 || fsi_exec(j, "SET LOCAL client_min_messages = warning") < 0 ||
        fsi_exec(j, stage_sql) < 0)
        return fsi_abort(j, "could not prepare the import");
    PGresult *r = PQexec(conn, copy_sql);
    bool bad = sql_failed(j, r, "COPY");
    PQclear(r);
    if (bad)
        return fsi_abort(j, "could not start COPY");
    return 0;
}

/* --- COPY rows (text format: tab-separated, \N is NULL, backslash escapes) --- */

static void row_put(fsi_job_t *j, const char *s, size_t n)
{
    if (j->row_len + n + 1 > j->row_cap) {
        j->row_cap = (j->row_len + n + 1) * 2 + 256;
        j->row = fs_realloc(j->row, j->row_cap);
    }
    memcpy(j->row + j->row_len, s, n);
    j->row_len += n;
}

void fsi_col_n(fsi_job_t *j, const char *s, size_t n)
{
    if (j->ncols++ > 0)
        row_put(j, "\t", 1);
    if (!s) {
        row_put(j, "\\N", 2);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '\\': row_put(j, "\\\\", 2); break;
        case '\t': row_put(j, "\\t", 2); break;
        case '\n': row_put(j, "\\n", 2); break;
        case '\r': row_put(j, "\\r", 2); break;
        default: row_put(j, s + i, 1);
        }
    }
}

void fsi_col(fsi_job_t *j, const char *s)
{
    fsi_col_n(j, s, s ? strlen(s) : 0);
}

void fsi_col_long(fsi_job_t *j, long v)
{
    char b[32];
    fsi_col_n(j, b, (size_t)snprintf(b, sizeof b, "%ld", v));
}

void fsi_col_double(fsi_job_t *j, double v)
{
    char b[64];
    fsi_col_n(j, b, (size_t)snprintf(b, sizeof b, "%.17g", v));
}

void fsi_col_bool(fsi_job_t *j, bool v)
{
    fsi_col_n(j, v ? "t" : "f", 1);
}

void fsi_row_discard(fsi_job_t *j)
{
    j->row_len = 0;
    j->ncols = 0;
}

int fsi_row_end(fsi_job_t *j)
{
    row_put(j, "\n", 1);
    int rc = PQputCopyData(j->conn, j->row, (int)j->row_len);
    fsi_row_discard(j);
    if (rc != 1) {
        fsi_note(j, "COPY failed: %s", PQerrorMessage(j->conn));
        j->failed = true;
        return -1;
    }
    return 0;
}

int fsi_end_copy(fsi_job_t *j)
{
    if (PQputCopyEnd(j->conn, NULL) != 1) {
        fsi_note(j, "COPY failed: %s", PQerrorMessage(j->conn));
        j->failed = true;
        return -1;
    }
    PGresult *r;
    int rc = 0;
    while ((r = PQgetResult(j->conn)) != NULL) {
        if (sql_failed(j, r, "COPY"))
            rc = -1;
        PQclear(r);
    }
    return rc;
}

void fsi_progress(fsi_job_t *j, const fs_csv_t *csv)
{
    if (!j->progress)
        return;
    double t = now_ms();
    if (t - j->last_progress < PROGRESS_INTERVAL_MS)
        return;
    j->last_progress = t;
    size_t total = fs_csv_size(csv);
    int pct = total ? (int)(100.0 * (double)fs_csv_offset(csv) / (double)total) : 100;
    fprintf(j->report, "\r\033[K%s: %3d%% (%ld rows)", j->path, pct, j->res->rows);
    fflush(j->report);
    j->progress_shown = true;
}

static void drain(fsi_job_t *j)
{
    /* Leaves COPY mode if an error struck in the middle of it. */
    if (PQtransactionStatus(j->conn) == PQTRANS_ACTIVE) {
        PQputCopyEnd(j->conn, "import aborted");
        PGresult *r;
        while ((r = PQgetResult(j->conn)) != NULL)
            PQclear(r);
    }
}

static void cleanup(fsi_job_t *j)
{
    clear_progress(j);
    free(j->row);
    j->row = NULL;
}

int fsi_abort(fsi_job_t *j, const char *fmt, ...)
{
    drain(j);
    if (PQstatus(j->conn) == CONNECTION_OK && PQtransactionStatus(j->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(j->conn, "ROLLBACK");
        PQclear(r);
    }
    clear_progress(j);
    va_list ap;
    va_start(ap, fmt);
    fprintf(j->report, "%s: import failed, nothing was changed: ", j->path);
    vfprintf(j->report, fmt, ap);
    fputc('\n', j->report);
    va_end(ap);
    cleanup(j);
    return -1;
}

int fsi_finish(fsi_job_t *j)
{
    fs_import_result_t *r = j->res;
    long data = r->rows - r->skipped;
    if (j->failed)
        return fsi_abort(j, "a database statement failed");
    if (j->structural >= MALFORMED_MIN_ROWS && j->structural * 10 > r->rows)
        return fsi_abort(j, "%ld of %ld rows have the wrong shape (limit 10%%): is this the right file?",
                         j->structural, r->rows);
    if (data > 0 && r->rejected >= data)
        return fsi_abort(j, "every row was rejected: is this the right file?");
    if (fsi_exec(j, "SELECT fs_refresh_reference_derived()") < 0)
        return fsi_abort(j, "could not refresh derived values");
    if (fsi_exec(j, "COMMIT") < 0)
        return fsi_abort(j, "COMMIT failed");
    if (r->rejected > j->max_reported) {
        clear_progress(j);
        fprintf(j->report, "%s: %ld more rejected rows not shown\n", j->path, r->rejected - j->max_reported);
    }
    cleanup(j);
    return 0;
}

int fsi_run(PGconn *conn, const char *path, const fsi_spec_t *spec, void *ctx, const fs_import_opts_t *opts,
            fs_import_result_t *out)
{
    fsi_job_t j;
    char *err = NULL;
    if (fsi_begin(&j, conn, path, spec->kind, opts, out, spec->stage_sql, spec->copy_sql) != 0)
        return -1;
    fs_csv_t *csv = fs_csv_open(path, &err);
    if (!csv)
        goto failed;
    fs_csv_record_t rec;
    int rc = 0;
    if (spec->header) {
        rc = fs_csv_next(csv, &rec, &err);
        if (rc == 0)
            err = fs_sprintf("empty file: no header row");
        if (rc <= 0 || spec->header(&j, &rec, ctx) != 0)
            goto failed;
    }
    while ((rc = fs_csv_next(csv, &rec, &err)) == 1) {
        out->rows++;
        if (spec->row(&j, &rec, ctx) != 0)
            break;
        fsi_progress(&j, csv);
    }
    if (rc < 0 || j.failed || fsi_end_copy(&j) != 0 || spec->merge(&j, ctx) != 0)
        goto failed;
    fs_csv_close(csv);
    return fsi_finish(&j);
failed:
    fs_csv_close(csv);
    fsi_abort(&j, "%s", err ? err : "see above");
    free(err);
    return -1;
}

int fsi_count_upsert(fsi_job_t *j, const char *sql)
{
    PGresult *r = PQexec(j->conn, sql);
    if (sql_failed(j, r, "merge") || PQntuples(r) != 1) {
        PQclear(r);
        j->failed = true;
        return -1;
    }
    j->res->inserted += atol(PQgetvalue(r, 0, 0));
    j->res->updated += atol(PQgetvalue(r, 0, 1));
    PQclear(r);
    return 0;
}

/* --- validation --- */

bool fsi_is_code(const char *s, size_t len, size_t min, size_t max, bool letters_only)
{
    if (!s || len < min || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        bool ok = (s[i] >= 'A' && s[i] <= 'Z') || (!letters_only && s[i] >= '0' && s[i] <= '9');
        if (!ok)
            return false;
    }
    return true;
}

bool fsi_parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ')
        end++;
    if (errno || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

bool fsi_parse_long(const char *s, long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    while (*end == ' ')
        end++;
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool fsi_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"yes", "y", "true", "t", "1"};
    static const char *const no[] = {"no", "n", "false", "f", "0"};
    for (size_t i = 0; i < 5; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = true, true;
        if (strcasecmp(s, no[i]) == 0)
            return *out = false, true;
    }
    return false;
}

size_t fsi_trim(char *s, size_t len)
{
    size_t a = 0;
    while (a < len && isspace((unsigned char)s[a]))
        a++;
    while (len > a && isspace((unsigned char)s[len - 1]))
        len--;
    memmove(s, s + a, len - a);
    s[len - a] = '\0';
    return len - a;
}

void fs_import_print_summary(FILE *f, const fs_import_result_t *r)
{
    fprintf(f, "%s (%s): %ld rows read: %ld inserted, %ld updated, %ld unchanged, %ld skipped, %ld rejected",
            r->file, r->kind, r->rows, r->inserted, r->updated, r->unchanged, r->skipped, r->rejected);
    if (r->deactivated)
        fprintf(f, ", %ld deactivated", r->deactivated);
    fputc('\n', f);
}

/* --- country names --- */

/* Names the sources use that the ISO lists spell differently (folded). */
static const char *const country_aliases[][2] = {
    {"burma", "MM"}, {"congo (kinshasa)", "CD"}, {"democratic republic of the congo", "CD"},
    {"democratic republic of congo", "CD"}, {"congo (brazzaville)", "CG"}, {"republic of the congo", "CG"},
    {"kyrgyzstan", "KG"}, {"ivory coast", "CI"}, {"cote d'ivoire", "CI"}, {"cape verde", "CV"},
    {"faroe islands", "FO"}, {"swaziland", "SZ"}, {"republic of korea", "KR"}, {"south korea", "KR"},
    {"democratic people's republic of korea", "KP"}, {"north korea", "KP"},
    {"saint vincent and the grenadines", "VC"}, {"somali republic", "SO"}, {"syrian arab republic", "SY"},
    {"hong kong sar of china", "HK"}, {"netherland", "NL"}, {"micronesia", "FM"}, {"saint lucia", "LC"},
    {"virgin islands", "VI"}, {"saint kitts and nevis", "KN"}, {"brunei", "BN"}, {"east timor", "TL"},
    {"russian federation", "RU"}, {"russia", "RU"}, {"lao peoples democratic republic", "LA"},
    {"saint pierre and miquelon", "PM"}, {"wallis and futuna", "WF"}, {"svalbard", "SJ"},
    {"saint helena", "SH"}, {"west bank", "PS"}, {"macau", "MO"}, {"midway islands", "UM"},
    {"johnston atoll", "UM"}, {"wake island", "UM"}, {"canadian territories", "CA"},
    {"united states", "US"}, {"united kingdom", "GB"},
};

typedef struct {
    char *folded;
    char *name;
    char code[3];
} country_t;

struct fsi_countries {
    country_t *v;
    size_t n, cap;
};

static void country_add(fsi_countries_t *m, const char *name, const char *code)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->v = fs_realloc(m->v, m->cap * sizeof *m->v);
    }
    country_t *c = &m->v[m->n++];
    c->folded = fs_fold(name, strlen(name));
    c->name = fs_strdup(name);
    memcpy(c->code, code, 2);
    c->code[2] = '\0';
}

fsi_countries_t *fsi_countries_load(const char *path, bool openflights, char **err)
{
    fsi_countries_t *m = FS_NEW(fsi_countries_t);
    if (path) {
        fs_csv_t *csv = fs_csv_open(path, err);
        if (!csv) {
            fsi_countries_free(m);
            return NULL;
        }
        fs_csv_record_t rec;
        size_t name_col = openflights ? 0 : 2, code_col = openflights ? 1 : 1;
        int rc;
        while ((rc = fs_csv_next(csv, &rec, err)) == 1) {
            if (rec.nfields <= name_col || rec.nfields <= code_col)
                continue;
            const char *code = rec.fields[code_col];
            if (fsi_is_code(code, rec.lens[code_col], 2, 2, true))
                country_add(m, rec.fields[name_col], code);
        }
        fs_csv_close(csv);
        if (rc < 0) {
            fsi_countries_free(m);
            return NULL;
        }
    }
    for (size_t i = 0; i < sizeof country_aliases / sizeof country_aliases[0]; i++)
        country_add(m, country_aliases[i][0], country_aliases[i][1]);
    return m;
}

const char *fsi_country_code(const fsi_countries_t *m, const char *name)
{
    if (!m || !name || !*name)
        return NULL;
    char *f = fs_fold(name, strlen(name));
    const char *code = NULL;
    for (size_t i = 0; i < m->n && !code; i++)
        if (strcmp(m->v[i].folded, f) == 0)
            code = m->v[i].code;
    free(f);
    return code;
}

const char *fsi_country_name(const fsi_countries_t *m, const char *code)
{
    if (!m || !code)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].code, code) == 0)
            return m->v[i].name;
    return NULL;
}

void fsi_countries_free(fsi_countries_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].folded);
        free(m->v[i].name);
    }
    free(m->v);
    free(m);
}
