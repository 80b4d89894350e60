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
    char *rpc_token; /* RPC shared secret; "" = none required (docs/RPC.md) */
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
    /* flight search (docs/FLIGHTS.md) */
    char *flight_search_strategy;     /* fallback | parallel | best_price */
    int search_deadline_ms;           /* overall budget of one search across providers */
    int cache_ttl_flights;            /* seconds a search answer is reused */
    int cache_ttl_calendar;           /* seconds a cheapest-dates answer is reused */
    int cache_l1_max_entries;
    int cache_l1_max_mb;
    int min_connection_minutes;       /* minimum connection time, same carrier */
    int min_connection_interline_minutes; /* minimum connection time when changing carrier */
    int max_layover_minutes;
    int observed_fare_max_age_hours;  /* price_history rows younger than this override the model */
    int provider_degraded_after;      /* consecutive failures */
    int provider_unavailable_after;
    int provider_retry_after_s;       /* an unavailable provider gets one trial call after this */
    int search_log_batch;             /* search_logs rows per INSERT */
    int search_log_flush_ms;
    /* price ingest (docs/PRICES.md) */
    int price_ingest_batch_rows;      /* rows per COPY transaction */
    int price_ingest_flush_ms;        /* a partial batch is written after this */
    int price_ingest_buffer_rows;     /* rows held while PostgreSQL is slow or down */
    int price_retention_days;         /* price_history partitions older than this are dropped */
    int price_stream_maxlen;          /* approximate length of the Redis stream; 0 = no stream */
    int price_refresh_interval_s;     /* scheduled refresh of popular routes; 0 = off */
    int price_refresh_routes;         /* how many of the most searched routes it refreshes */
    /* price alerts (docs/ALERTS.md) */
    int alerts_per_user;              /* alerts one user may hold (active or paused) */
    int alert_cooldown_hours;         /* an alert notifies at most once within this */
    /* misc */
    char *log_level;
    char *data_dir; /* FLIGHTSHARK_DATA_DIR: reference data files */
    /* keys of the files that are not in the table (see fs_config_extra) */
    struct fs_config_kv {
        char *key, *value;
    } *extra;
    size_t n_extra;
} fs_config_t;

/* Fills `cfg` from defaults, then `conf_path` and `dotenv_path` (either may be NULL or
 * missing), then the environment. Returns 0, or -1 with *err set to a message naming the
 * variable and the problem (the caller frees *err). Does not validate cross-field rules. */
int fs_config_load(fs_config_t *cfg, const char *conf_path, const char *dotenv_path, char **err);

/* Sets one setting by its environment name (used for command-line flags). */
int fs_config_set(fs_config_t *cfg, const char *name, const char *value, char **err);

/* Checks values and cross-field rules (URL schemes, default secret outside DEBUG). */
int fs_config_validate(const fs_config_t *cfg, char **err);

/* A setting that is not in the table, for modules that own their settings (a flight provider's
 * keys): the environment, else the last value in .env or the configuration file, else NULL.
 * Not validated and never printed by --print-config. */
const char *fs_config_extra(const fs_config_t *cfg, const char *name);

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
