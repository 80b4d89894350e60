#include "cli/cli.h"

#include "runtime/log.h"
#include "runtime/master.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OVERRIDES 8

static const char *overrides[MAX_OVERRIDES];
static int n_overrides;

static void usage(FILE *out)
{
    fprintf(out, "usage: flightshark serve [--port N] [--rpc-port N] [--workers N] [--print-config]\n\n"
                 "Runs the server in the foreground: a master process and one worker per CPU (or --workers).\n"
                 "Configuration comes from config/flightshark.conf (or $FLIGHTSHARK_CONFIG), .env and the\n"
                 "environment; flags win. SIGTERM/SIGINT drain and stop; SIGHUP reloads the configuration.\n\n"
                 "  --port N         HTTP port (PORT, default 8000)\n"
                 "  --rpc-port N     internal RPC port (RPC_PORT, default 8002)\n"
                 "  --workers N      worker processes (WORKERS, default: online CPUs)\n"
                 "  --print-config   print the effective configuration, secrets masked, and exit\n");
}

static int reload(void)
{
    return fs_cli_load_config(overrides, n_overrides, true);
}

static int run(int argc, char **argv)
{
    static const struct {
        const char *flag, *setting;
    } flags[] = {{"--port", "PORT"}, {"--rpc-port", "RPC_PORT"}, {"--workers", "WORKERS"}};
    static char storage[MAX_OVERRIDES][128];
    bool print_config = false;
    n_overrides = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--print-config") == 0) {
            print_config = true;
            continue;
        }
        bool known = false;
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
            if (strcmp(argv[i], flags[f].flag) != 0)
                continue;
            if (i + 1 >= argc) {
                fprintf(stderr, "flightshark serve: %s needs a value\n", argv[i]);
                return 2;
            }
            snprintf(storage[n_overrides], sizeof storage[0], "%s=%s", flags[f].setting, argv[++i]);
            overrides[n_overrides] = storage[n_overrides];
            n_overrides++;
            known = true;
        }
        if (!known) {
            fprintf(stderr, "flightshark serve: unknown option '%s'\n\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (print_config) {
        if (fs_cli_load_config(overrides, n_overrides, false) != 0)
            return 1;
        fs_config_print(fs_cfg, stdout);
        return fs_cli_load_config(overrides, n_overrides, true) == 0 ? 0 : 1;
    }
    if (reload() != 0)
        return 1;
    fs_log_set_role("master");
    if (fs_cli_migrate_on_start() != 0)
        return 1;
    return fs_master_run(reload);
}

const fs_command_t fs_cmd_serve = {"serve", "run the HTTP server (master + one worker per CPU)", run};
