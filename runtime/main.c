/* flightshark: one binary, several subcommands. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

extern const fs_command_t fs_cmd_rpc; /* cli/rpc.c */

static const fs_command_t *const commands[] = {
    &fs_cmd_serve, &fs_cmd_migrate, &fs_cmd_import, &fs_cmd_seed, &fs_cmd_user, &fs_cmd_rpc, &fs_cmd_version, NULL,
};

static void usage(FILE *out)
{
    fprintf(out, "usage: flightshark COMMAND [options]\n\ncommands:\n");
    for (const fs_command_t *const *c = commands; *c; c++)
        fprintf(out, "  %-10s %s\n", (*c)->name, (*c)->summary);
    fprintf(out, "\n`flightshark COMMAND --help` describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return fs_cmd_version.run(argc - 1, argv + 1);
    for (const fs_command_t *const *c = commands; *c; c++)
        if (strcmp((*c)->name, argv[1]) == 0)
            return (*c)->run(argc - 1, argv + 1);
    fprintf(stderr, "flightshark: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
