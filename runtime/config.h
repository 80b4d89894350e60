/* Configuration: compiled defaults < config/flightshark.conf < .env < environment < flags.
 *
 * Every setting is described once in a table (config.c) with its environment name, type,
 * bounds, default and whether it is secret; loading, validation, --print-config and the
 * README table all follow that table. Names are those of the original system where one
 * existed (DATABASE_URL, REDIS_URL, SECRET_KEY, ALLOWED_ORIGINS, DEBUG, ...).
 */
#ifndef FS_CONFIG_H
#define FS_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#define FS_DEFAULT_SECRET_KEY "change-me-in-production"

typedef struct fs_config {
    /* storage */
    char *database_url;
    char *redis_url;
    int db_pool_size;            /* connections per worker */
    int db_statement_timeout_ms; /* server-side statement_timeout */
    int db_connect_timeout_ms;
    int redis_timeout_ms; /* connect and command timeout (hiredis 0.14 has none of its own) */
    /* security */
    char *secret_key;
    char *allowed_origins; /* comma-separated */
    bool debug;
    /* accounts (docs/ACCOUNTS.md) */
    char *jwt_algorithm; /* only "HS256" is accepted */
    int access_token_expire_minutes;
    int refresh_token_expire_days;
    int login_max_failures_per_account;
    int login_max_failures_per_ip;
    int login_failure_window_s;
    int argon2_time_cost;
    int argon2_memory_kib;
    int argon2_parallelism;
    /* process model */
    char *bind_address;
    int port;
    char *rpc_bind_address;
    int rpc_port;
    int workers; /* 0 = one per online CPU */
    int shutdown_timeout_ms;
    int thread_pool_size;
    /* HTTP limits */
    int max_body_bytes;
    int max_uri_bytes;
    int read_timeout_ms;  /* a request (headers and body) must arrive within this */
    int idle_timeout_ms;  /* keep-alive connections idle longer are closed */
    int max_keepalive_requests;
    /* actors */
    int mailbox_capacity;
    int actor_batch;
    /* misc */
    char *log_level;
    char *data_dir; /* FLIGHTSHARK_DATA_DIR: reference data files */
} fs_config_t;

/* Fills `cfg` from defaults, then `conf_path` and `dotenv_path` (either may be NULL or
 * missing), then the environment. Returns 0, or -1 with *err set to a message naming the
 * variable and the problem (the caller frees *err). Does not validate cross-field rules. */
int fs_config_load(fs_config_t *cfg, const char *conf_path, const char *dotenv_path, char **err);

/* Sets one setting by its environment name (used for command-line flags). */
int fs_config_set(fs_config_t *cfg, const char *name, const char *value, char **err);

/* Checks values and cross-field rules (URL schemes, default secret outside DEBUG). */
int fs_config_validate(const fs_config_t *cfg, char **err);

/* Writes NAME=value lines with secrets (and URL passwords) masked. */
void fs_config_print(const fs_config_t *cfg, FILE *out);

void fs_config_free(fs_config_t *cfg);

/* Number of workers to run: cfg->workers, or the number of online CPUs when it is 0. */
int fs_config_worker_count(const fs_config_t *cfg);

/* Does `origin` appear in cfg->allowed_origins ("*" allows any)? */
bool fs_config_origin_allowed(const fs_config_t *cfg, const char *origin, size_t len);

/* The configuration of this process, set once at start (and replaced on reload). */
extern fs_config_t *fs_cfg;

#endif
