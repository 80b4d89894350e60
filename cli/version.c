#include "cli/cli.h"

#include <evhtp.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <zstd.h>

static int run(int argc, char **argv)
{
    if (fs_cli_wants_help(argc, argv)) {
        printf("usage: flightshark version\n\nPrints the version of flightshark and of the libraries it runs on.\n");
        return 0;
    }
    printf("flightshark %s\n", FS_VERSION);
    printf("libevent %s, libevhtp %s, libpq %d, hiredis %d.%d.%d, protobuf-c %s, jansson %s, zstd %s\n",
           event_get_version(), EVHTP_VERSION, PQlibVersion(), HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH,
           protobuf_c_version(), JANSSON_VERSION, ZSTD_versionString());
    return 0;
}

const fs_command_t fs_cmd_version = {"version", "print the version of flightshark and its libraries", run};
