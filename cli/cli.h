/* Subcommands of the flightshark binary. Each lives in its own file in cli/. */
#ifndef FS_CLI_H
#define FS_CLI_H

#include "runtime/config.h"

typedef struct fs_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name; returns the exit code */
} fs_command_t;

extern const fs_command_t fs_cmd_serve, fs_cmd_migrate, fs_cmd_version, fs_cmd_import, fs_cmd_seed, fs_cmd_user;

/* Loads config/flightshark.conf (or $FLIGHTSHARK_CONFIG), .env and the environment into a new
 * fs_cfg, applies `overrides` (NAME=value strings), validates unless `validate` is false.
 * On error prints "flightshark: <message>" and returns -1. */
int fs_cli_load_config(const char *const *overrides, int n_overrides, bool validate);

/* `serve` applies pending migrations before forking workers; an unreachable database is
 * only a warning (workers recover when it comes back), a failing migration is fatal. */
int fs_cli_migrate_on_start(void);

/* True when argv holds --help or -h. */
bool fs_cli_wants_help(int argc, char **argv);

#endif
