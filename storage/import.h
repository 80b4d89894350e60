/* Importing reference data into PostgreSQL: OurAirports CSV, OpenFlights .dat files, the admin
 * CSV format, and the built-in seed (docs/REFERENCE_DATA.md describes every format).
 *
 * Every file is imported in ONE transaction: its valid rows are staged with COPY into a
 * temporary table, then merged with INSERT ... ON CONFLICT DO UPDATE (only rows whose values
 * differ are written, so a re-import reports them as unchanged). A row that fails validation
 * (bad code, missing name, coordinates out of range, unknown airport) is rejected and reported as
 * "FILE:LINE: reason" on the report stream; the other rows are imported. A file that is
 * malformed as a whole (unreadable, not UTF-8, a quote never closed, required header columns
 * missing, more than 10 % (and at least 3) of its rows structurally broken, or every row
 * rejected) rolls back
 * entirely and the function returns -1. These calls block: run them from the command line or a
 * thread-pool job, never on an event loop.
 */
#ifndef FS_IMPORT_H
#define FS_IMPORT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

/* Counters of one imported file. */
typedef struct fs_import_result {
    char file[256];     /** the file, as named to the importer */
    char kind[16];      /** what it holds: airports, airlines, routes, aircraft */
    long rows;          /** data rows read (header excluded) */
    long inserted;      /** new rows written */
    long updated;       /** existing rows whose values changed */
    long unchanged;     /** existing rows that already held these values */
    long skipped;       /** rows deliberately not imported (no IATA code, sentinel rows) */
    long rejected;      /** rows refused, each reported with its line and reason */
    long deactivated;   /** rows the source no longer lists, marked is_active = false */
} fs_import_result_t;

typedef struct fs_import_opts {
    FILE *report;       /** where rejected rows and progress go (NULL: stderr) */
    int max_reported;   /** rejected rows printed per file before only counting (0: 20) */
    bool progress;      /** show progress on `report` when it is a terminal */
} fs_import_opts_t;

/* OurAirports airports.csv (18- or 19-column dumps; the header names the columns). Country
 * names come from `countries_csv` (OurAirports countries.csv) when given, else from a
 * countries.csv next to `airports_csv` if one exists, else the existing rows or the ISO code.
 * Returns 0 (committed) or -1 (rolled back; the reason was printed). */
int fs_import_ourairports(PGconn *conn, const char *airports_csv, const char *countries_csv,
                          const fs_import_opts_t *opts, fs_import_result_t *out);

/* OpenFlights data directory: airports.dat, airlines.dat, planes.dat, routes.dat (countries.dat
 * maps country names to ISO codes). Files that are absent are skipped with a note; each present
 * file is its own transaction, in that order, and the first failure stops the run. `out` gets
 * one entry per imported file (at most 4), *n_out their number. Returns 0 or -1. */
int fs_import_openflights(PGconn *conn, const char *dir, const fs_import_opts_t *opts,
                          fs_import_result_t out[4], int *n_out);

/* Admin CSV: `kind` is "airports", "airlines" or "routes"; the header row names the columns
 * (docs/REFERENCE_DATA.md lists them). Returns 0, or -1 also for an unknown kind. */
int fs_import_csv(PGconn *conn, const char *kind, const char *path, const fs_import_opts_t *opts,
                  fs_import_result_t *out);

/* The original system's built-in seed (30 European airports, 15 airlines, 14 routes, 11
 * aircraft types) so the product works with no downloads. Idempotent: rows that exist (by code)
 * are left as they are. `out` receives one result per table (4). Returns 0 or -1. */
int fs_seed_reference(PGconn *conn, fs_import_result_t out[4]);

/* One line: "airports.csv: 9054 inserted, 0 updated, ..." */
void fs_import_print_summary(FILE *f, const fs_import_result_t *r);

#endif
