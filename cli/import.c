/* flightshark import ourairports|openflights|csv ... (see storage/import.h). */
#include "cli/cli.h"

#include "runtime/config.h"
#include "storage/import.h"
#include "storage/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: flightshark import ourairports AIRPORTS.csv [COUNTRIES.csv]\n"
            "       flightshark import openflights DIR\n"
            "       flightshark import csv airports|airlines|routes FILE\n\n"
            "Imports reference data into DATABASE_URL. Each file is one transaction: valid rows are\n"
            "upserted, bad rows are reported as FILE:LINE: reason and skipped, and a malformed file\n"
            "changes nothing. Formats and download links: docs/REFERENCE_DATA.md.\n\n"
            "  ourairports   airports.csv from https://ourairports.com/data/ (countries.csv names the\n"
            "                countries; looked for next to airports.csv when not given)\n"
            "  openflights   a directory holding airports.dat, airlines.dat, planes.dat, routes.dat\n"
            "                and countries.dat from https://openflights.org/data.php\n"
            "  csv           the admin CSV format: a header row naming the columns\n\n"
            "Exit status: 0 when every file was imported, 1 when a file was rolled back, 2 on usage errors.\n");
}

static PGconn *connect_db(void)
{
    char *err = NULL;
    PGconn *conn = fs_pg_connect_blocking(fs_cfg->database_url, &err);
    if (!conn) {
        fprintf(stderr, "flightshark: cannot connect to the database: %s\n", err ? err : "unknown error");
        free(err);
    }
    return conn;
}

static int run_import(PGconn *conn, int argc, char **argv)
{
    fs_import_opts_t opts = {.report = stderr, .progress = true};
    fs_import_result_t res[4];
    int n = 0, rc;
    const char *source = argv[1];
    if (strcmp(source, "ourairports") == 0 && (argc == 3 || argc == 4)) {
        rc = fs_import_ourairports(conn, argv[2], argc == 4 ? argv[3] : NULL, &opts, &res[0]);
        n = rc == 0;
    } else if (strcmp(source, "openflights") == 0 && argc == 3) {
        rc = fs_import_openflights(conn, argv[2], &opts, res, &n);
    } else if (strcmp(source, "csv") == 0 && argc == 4) {
        rc = fs_import_csv(conn, argv[2], argv[3], &opts, &res[0]);
        n = rc == 0;
    } else {
        usage(stderr);
        return 2;
    }
    for (int i = 0; i < n; i++)
        fs_import_print_summary(stdout, &res[i]);
    return rc == 0 ? 0 : 1;
}

static int run(int argc, char **argv)
{
    if (fs_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc < 3) {
        usage(stderr);
        return 2;
    }
    if (fs_cli_load_config(NULL, 0, false) != 0)
        return 2;
    PGconn *conn = connect_db();
    if (!conn)
        return 1;
    int rc = run_import(conn, argc, argv);
    PQfinish(conn);
    return rc;
}

const fs_command_t fs_cmd_import = {"import", "import airports, airlines, routes and aircraft from public data or CSV",
                                    run};
