/* Shared machinery of the importers (import_common.c): one transaction per file, a COPY into
 * a staging table, rejected-row reports and progress. Internal to storage/import_*.c. */
#ifndef FS_IMPORT_PRIV_H
#define FS_IMPORT_PRIV_H

#include "storage/csv.h"
#include "storage/import.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct fsi_job {
    PGconn *conn;
    const char *path;
    FILE *report;
    int max_reported;
    bool progress;
    fs_import_result_t *res;
    long structural;       /* rows with a wrong shape (column count, stray quote) */
    double last_progress;  /* ms of the last progress line */
    bool progress_shown;
    bool failed;           /* an SQL statement failed: the transaction is lost */
    char *row;             /* the COPY row being built */
    size_t row_len, row_cap;
    int ncols;             /* columns written to the current row */
} fsi_job_t;

/* Starts the job: fills res->file/kind, BEGIN, runs `stage_sql` (CREATE TEMP TABLE ... ON
 * COMMIT DROP) and `copy_sql` (COPY ... FROM STDIN). Returns 0 or -1 (reported, rolled back). */
int fsi_begin(fsi_job_t *j, PGconn *conn, const char *path, const char *kind, const fs_import_opts_t *opts,
              fs_import_result_t *res, const char *stage_sql, const char *copy_sql);

/* Row building for COPY text format: one call per column, then fsi_row_end(). */
void fsi_col(fsi_job_t *j, const char *s);          /* NULL writes SQL NULL */
void fsi_col_n(fsi_job_t *j, const char *s, size_t n);
void fsi_col_long(fsi_job_t *j, long v);
void fsi_col_double(fsi_job_t *j, double v);
void fsi_col_bool(fsi_job_t *j, bool v);
int fsi_row_end(fsi_job_t *j);                       /* -1 when the COPY failed */
void fsi_row_discard(fsi_job_t *j);

/* Ends the COPY. Returns 0 or -1. */
int fsi_end_copy(fsi_job_t *j);

/* Reports a rejected row ("FILE:LINE: reason"), counting it. */
void fsi_reject(fsi_job_t *j, long line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A structurally broken row: rejected, and counted toward the malformed-file threshold. */
void fsi_reject_shape(fsi_job_t *j, long line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prints a message about the whole file ("FILE: message"). */
void fsi_note(fsi_job_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs a statement. Returns the affected/returned row count, or -1 (error printed). */
long fsi_exec(fsi_job_t *j, const char *sql);
/* Runs a query returning (line int, reason text) rows and rejects each. Returns count or -1. */
long fsi_reject_query(fsi_job_t *j, const char *sql);
/* Runs a query returning one bigint. Returns it, or -1. */
long fsi_scalar(fsi_job_t *j, const char *sql);

/* Shows "FILE: 42% (n rows)" on a terminal, at most every 100 ms. */
void fsi_progress(fsi_job_t *j, const fs_csv_t *csv);

/* Decides whether the file as a whole is acceptable (structural-error and all-rejected rules),
 * refreshes derived values, and COMMITs; otherwise ROLLBACK. Returns 0 when committed. */
int fsi_finish(fsi_job_t *j);
/* ROLLBACK and clean up after an error. Always returns -1. */
int fsi_abort(fsi_job_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One kind of file: how to stage its rows and merge them. */
typedef struct fsi_spec {
    const char *kind;       /* airports, airlines, routes, aircraft */
    const char *stage_sql;  /* CREATE TEMP TABLE ... ON COMMIT DROP */
    const char *copy_sql;   /* COPY ... FROM STDIN */
    /* Reads the header row; NULL when the file has none. Returns -1 when it is not the
     * expected header (the file is then malformed as a whole). */
    int (*header)(fsi_job_t *j, fs_csv_record_t *rec, void *ctx);
    /* Validates one row and stages it or rejects it. Returns -1 only when the COPY broke. */
    int (*row)(fsi_job_t *j, fs_csv_record_t *rec, void *ctx);
    /* Merges the staged rows and fills the counters. Returns -1 to roll back. */
    int (*merge)(fsi_job_t *j, void *ctx);
} fsi_spec_t;

/* Imports one file in one transaction following `spec`. Returns 0 (committed) or -1. */
int fsi_run(PGconn *conn, const char *path, const fsi_spec_t *spec, void *ctx, const fs_import_opts_t *opts,
            fs_import_result_t *out);

/* Runs a query returning (inserted, updated) counts; adds them to the result. Returns 0/-1. */
int fsi_count_upsert(fsi_job_t *j, const char *sql);

/* Validation helpers. */
bool fsi_is_code(const char *s, size_t len, size_t min, size_t max, bool letters_only);
bool fsi_parse_double(const char *s, double *out);
bool fsi_parse_long(const char *s, long *out);
/* "yes"/"y"/"true"/"t"/"1" and "no"/"n"/"false"/"f"/"0", any case. */
bool fsi_parse_bool(const char *s, bool *out);
/* Trims ASCII white space in place; returns the new length. */
size_t fsi_trim(char *s, size_t len);

/* Country name -> ISO code map loaded from a CSV (name column, code column). */
typedef struct fsi_countries fsi_countries_t;
fsi_countries_t *fsi_countries_load(const char *path, bool openflights, char **err);
/* Code for a name (folded comparison, plus aliases for names the sources spell differently),
 * or NULL. */
const char *fsi_country_code(const fsi_countries_t *m, const char *name);
/* Name for a code, or NULL. */
const char *fsi_country_name(const fsi_countries_t *m, const char *code);
void fsi_countries_free(fsi_countries_t *m);

#endif
