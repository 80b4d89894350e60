#include "cli/cli.h"

#include "runtime/alloc.h"
#include "runtime/log.h"

#include <stdlib.h>
#include <string.h>

int fs_cli_load_config(const char *const *overrides, int n_overrides, bool validate)
{
    fs_config_t *cfg = FS_NEW(fs_config_t);
    const char *conf = getenv("FLIGHTSHARK_CONFIG");
    char *err = NULL;
    if (fs_config_load(cfg, conf ? conf : "config/flightshark.conf", ".env", &err) != 0)
        goto failed;
    for (int i = 0; i < n_overrides; i++) {
        const char *eq = strchr(overrides[i], '=');
        char *name = fs_strndup(overrides[i], (size_t)(eq - overrides[i]));
        int rc = fs_config_set(cfg, name, eq + 1, &err);
        free(name);
        if (rc != 0)
            goto failed;
    }
    if (validate && fs_config_validate(cfg, &err) != 0)
        goto failed;
    fs_log_level_t level = FS_LOG_INFO;
    fs_log_parse_level(cfg->log_level, &level);
    fs_log_set_level(level);
    if (fs_cfg) {
        fs_config_free(fs_cfg);
        free(fs_cfg);
    }
    fs_cfg = cfg;
    return 0;
failed:
    fprintf(stderr, "flightshark: invalid configuration: %s\n", err);
    free(err);
    fs_config_free(cfg);
    free(cfg);
    return -1;
}

bool fs_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}
