#include "cli/cli.h"

#include "runtime/log.h"
#include "storage/migrate.h"
#include "storage/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int migrate(bool quiet_if_unreachable)
{
    char *err = NULL;
    PGconn *conn = fs_pg_connect_blocking(fs_cfg->database_url, &err);
    if (!conn) {
        if (quiet_if_unreachable) {
            fs_warn("migrations skipped: database unreachable (%s); workers will keep retrying", err);
            free(err);
            return 0;
        }
        fprintf(stderr, "flightshark migrate: %s\n", err);
        free(err);
        return 1;
    }
    int applied = 0;
    int rc = fs_migrate_run(conn, fs_migrate_default_dir(), &applied, &err);
    PQfinish(conn);
    if (rc != 0) {
        fs_error("migration failed: %s", err);
        free(err);
        return 1;
    }
    fs_info("migrations: %d applied from %s", applied, fs_migrate_default_dir());
    return 0;
}

int fs_cli_migrate_on_start(void)
{
    return migrate(true);
}

static int run(int argc, char **argv)
{
    bool status = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: flightshark migrate [--status]\n\n"
                   "Applies the pending storage/migrations/NNN_*.sql files to DATABASE_URL, each in its own\n"
                   "transaction, under an advisory lock (safe to run from several hosts at once).\n"
                   "The directory is $FLIGHTSHARK_MIGRATIONS_DIR, else the source tree's storage/migrations.\n"
                   "  --status   list applied and pending migrations instead\n");
            return 0;
        }
        if (strcmp(argv[i], "--status") == 0) {
            status = true;
        } else {
            fprintf(stderr, "flightshark migrate: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (fs_cli_load_config(NULL, 0, false) != 0)
        return 1;
    fs_log_set_role("migrate");
    if (!status)
        return migrate(false);
    char *err = NULL;
    PGconn *conn = fs_pg_connect_blocking(fs_cfg->database_url, &err);
    if (!conn) {
        fprintf(stderr, "flightshark migrate: %s\n", err);
        free(err);
        return 1;
    }
    int rc = fs_migrate_status(conn, fs_migrate_default_dir(), stdout);
    PQfinish(conn);
    return rc == 0 ? 0 : 1;
}

const fs_command_t fs_cmd_migrate = {"migrate", "apply database migrations", run};
