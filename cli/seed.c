/* flightshark seed: the original system's built-in reference data (see storage/import.h). */
#include "cli/cli.h"

#include "runtime/config.h"
#include "storage/import.h"
#include "storage/pg.h"

#include <stdio.h>
#include <stdlib.h>

static int run(int argc, char **argv)
{
    if (fs_cli_wants_help(argc, argv)) {
        printf("usage: flightshark seed\n\n"
               "Loads the built-in reference data into DATABASE_URL: 30 European airports, 15 airlines,\n"
               "14 routes and 11 aircraft types, so the product works without downloads. Rows that\n"
               "already exist (by code) are left alone, so running it twice changes nothing and it\n"
               "never overwrites imported data. Run `flightshark migrate` first.\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: flightshark seed\n");
        return 2;
    }
    if (fs_cli_load_config(NULL, 0, false) != 0)
        return 2;
    char *err = NULL;
    PGconn *conn = fs_pg_connect_blocking(fs_cfg->database_url, &err);
    if (!conn) {
        fprintf(stderr, "flightshark: cannot connect to the database: %s\n", err ? err : "unknown error");
        free(err);
        return 1;
    }
    fs_import_result_t res[4];
    int rc = fs_seed_reference(conn, res);
    if (rc == 0)
        for (int i = 0; i < 4; i++)
            fs_import_print_summary(stdout, &res[i]);
    PQfinish(conn);
    return rc == 0 ? 0 : 1;
}

const fs_command_t fs_cmd_seed = {"seed", "load the built-in reference data (30 airports, 15 airlines, ...)", run};
