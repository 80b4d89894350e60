#include "runtime/config.h"

#include "runtime/alloc.h"
#include "runtime/log.h"
#include "security/password.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

fs_config_t *fs_cfg;

typedef enum { T_STR, T_INT, T_BOOL } setting_type_t;

typedef struct {
    const char *name;
    setting_type_t type;
    size_t offset;
    const char *default_value;
    long min, max;
    bool secret;
} setting_t;

#define STR(n, f, d) {n, T_STR, offsetof(fs_config_t, f), d, 0, 0, false}
#define SECRET(n, f, d) {n, T_STR, offsetof(fs_config_t, f), d, 0, 0, true}
#define INT(n, f, d, lo, hi) {n, T_INT, offsetof(fs_config_t, f), d, lo, hi, false}
#define BOOL(n, f, d) {n, T_BOOL, offsetof(fs_config_t, f), d, 0, 1, false}

static const setting_t settings[] = {
    STR("DATABASE_URL", database_url, "postgresql://flightshark@127.0.0.1:5432/flightshark"),
    STR("REDIS_URL", redis_url, "redis://127.0.0.1:6379/0"),
    INT("DB_POOL_SIZE", db_pool_size, "4", 1, 100),
    INT("DB_STATEMENT_TIMEOUT_MS", db_statement_timeout_ms, "30000", 10, 3600000),
    INT("DB_CONNECT_TIMEOUT_MS", db_connect_timeout_ms, "5000", 10, 600000),
    INT("REDIS_TIMEOUT_MS", redis_timeout_ms, "5000", 10, 600000),
    SECRET("SECRET_KEY", secret_key, FS_DEFAULT_SECRET_KEY),
    STR("ALLOWED_ORIGINS", allowed_origins, "http://localhost:3000,http://localhost:8000,http://localhost:3001"),
    BOOL("DEBUG", debug, "false"),
    STR("JWT_ALGORITHM", jwt_algorithm, "HS256"),
    INT("ACCESS_TOKEN_EXPIRE_MINUTES", access_token_expire_minutes, "1440", 1, 525600),
    INT("REFRESH_TOKEN_EXPIRE_DAYS", refresh_token_expire_days, "7", 1, 365),
    INT("LOGIN_MAX_FAILURES_PER_ACCOUNT", login_max_failures_per_account, "10", 1, 1000000),
    INT("LOGIN_MAX_FAILURES_PER_IP", login_max_failures_per_ip, "100", 1, 1000000),
    INT("LOGIN_FAILURE_WINDOW_S", login_failure_window_s, "900", 1, 86400),
    INT("ARGON2_TIME_COST", argon2_time_cost, "3", 1, 64),
    INT("ARGON2_MEMORY_KIB", argon2_memory_kib, "65536", 7168, 1048576),
    INT("ARGON2_PARALLELISM", argon2_parallelism, "1", 1, 16),
    STR("BIND_ADDRESS", bind_address, "0.0.0.0"),
    INT("PORT", port, "8000", 1, 65535),
    STR("RPC_BIND_ADDRESS", rpc_bind_address, "127.0.0.1"),
    INT("RPC_PORT", rpc_port, "8002", 1, 65535),
    SECRET("RPC_TOKEN", rpc_token, ""),
    INT("WORKERS", workers, "0", 0, 256),
    INT("SHUTDOWN_TIMEOUT_MS", shutdown_timeout_ms, "10000", 0, 600000),
    INT("THREAD_POOL_SIZE", thread_pool_size, "2", 1, 64),
    INT("MAX_BODY_BYTES", max_body_bytes, "1048576", 1024, 1073741824),
    INT("MAX_URI_BYTES", max_uri_bytes, "4096", 256, 65536),
    INT("READ_TIMEOUT_MS", read_timeout_ms, "30000", 100, 3600000),
    INT("IDLE_TIMEOUT_MS", idle_timeout_ms, "60000", 100, 3600000),
    INT("MAX_KEEPALIVE_REQUESTS", max_keepalive_requests, "10000", 1, INT_MAX),
    INT("ACTOR_MAILBOX_CAPACITY", mailbox_capacity, "4096", 1, 1 << 24),
    INT("ACTOR_BATCH", actor_batch, "64", 1, 1 << 16),
    STR("FLIGHT_SEARCH_STRATEGY", flight_search_strategy, "fallback"),
    INT("SEARCH_DEADLINE_MS", search_deadline_ms, "8000", 100, 120000),
    INT("CACHE_TTL_FLIGHTS", cache_ttl_flights, "300", 1, 86400),
    INT("CACHE_TTL_CALENDAR", cache_ttl_calendar, "3600", 1, 86400),
    INT("CACHE_L1_MAX_ENTRIES", cache_l1_max_entries, "10000", 1, 10000000),
    INT("CACHE_L1_MAX_MB", cache_l1_max_mb, "64", 1, 65536),
    INT("MIN_CONNECTION_MINUTES", min_connection_minutes, "45", 10, 600),
    INT("MIN_CONNECTION_INTERLINE_MINUTES", min_connection_interline_minutes, "90", 10, 720),
    INT("MAX_LAYOVER_MINUTES", max_layover_minutes, "600", 30, 2880),
    INT("OBSERVED_FARE_MAX_AGE_HOURS", observed_fare_max_age_hours, "24", 1, 8760),
    INT("PROVIDER_DEGRADED_AFTER", provider_degraded_after, "3", 1, 1000),
    INT("PROVIDER_UNAVAILABLE_AFTER", provider_unavailable_after, "10", 1, 1000),
    INT("PROVIDER_RETRY_AFTER_S", provider_retry_after_s, "60", 1, 86400),
    INT("SEARCH_LOG_BATCH", search_log_batch, "200", 1, 100000),
    INT("SEARCH_LOG_FLUSH_MS", search_log_flush_ms, "1000", 10, 600000),
    INT("PRICE_INGEST_BATCH_ROWS", price_ingest_batch_rows, "5000", 1, 1000000),
    INT("PRICE_INGEST_FLUSH_MS", price_ingest_flush_ms, "200", 1, 600000),
    INT("PRICE_INGEST_BUFFER_ROWS", price_ingest_buffer_rows, "1000000", 1, 100000000),
    INT("PRICE_RETENTION_DAYS", price_retention_days, "1461", 31, 36500),
    INT("PRICE_STREAM_MAXLEN", price_stream_maxlen, "1000000", 0, INT_MAX),
    INT("PRICE_REFRESH_INTERVAL_S", price_refresh_interval_s, "900", 0, 86400),
    INT("PRICE_REFRESH_ROUTES", price_refresh_routes, "20", 1, 10000),
    INT("ALERTS_PER_USER", alerts_per_user, "50", 1, 100000),
    INT("ALERT_COOLDOWN_HOURS", alert_cooldown_hours, "6", 0, 8760),
    STR("LOG_LEVEL", log_level, "info"),
    STR("FLIGHTSHARK_DATA_DIR", data_dir, ""),
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

static const setting_t *find_setting(const char *name)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off", ""};
    for (size_t i = 0; i < 4; i++)
        if (strcasecmp(v, yes[i]) == 0)
            return *out = true, 0;
    for (size_t i = 0; i < 5; i++)
        if (strcasecmp(v, no[i]) == 0)
            return *out = false, 0;
    return -1;
}

static int apply(fs_config_t *cfg, const setting_t *s, const char *value, char **err)
{
    char *field = (char *)cfg + s->offset;
    switch (s->type) {
    case T_STR:
        free(*(char **)field);
        *(char **)field = fs_strdup(value);
        return 0;
    case T_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        while (*end && isspace((unsigned char)*end))
            end++;
        if (errno || end == value || *end || v < s->min || v > s->max) {
            *err = fs_sprintf("%s: expected an integer from %ld to %ld, got '%s'", s->name, s->min, s->max, value);
            return -1;
        }
        *(int *)field = (int)v;
        return 0;
    }
    case T_BOOL:
        if (parse_bool(value, (bool *)field) != 0) {
            *err = fs_sprintf("%s: expected true or false, got '%s'", s->name, value);
            return -1;
        }
        return 0;
    }
    return -1;
}

int fs_config_set(fs_config_t *cfg, const char *name, const char *value, char **err)
{
    const setting_t *s = find_setting(name);
    if (!s) {
        *err = fs_sprintf("%s: unknown setting", name);
        return -1;
    }
    return apply(cfg, s, value, err);
}

/* A key that is not in the table: kept for fs_config_extra (later files override). */
static void keep_extra(fs_config_t *cfg, const char *key, const char *value)
{
    for (size_t i = 0; i < cfg->n_extra; i++)
        if (strcmp(cfg->extra[i].key, key) == 0) {
            free(cfg->extra[i].value);
            cfg->extra[i].value = fs_strdup(value);
            return;
        }
    cfg->extra = fs_realloc(cfg->extra, (cfg->n_extra + 1) * sizeof *cfg->extra);
    cfg->extra[cfg->n_extra].key = fs_strdup(key);
    cfg->extra[cfg->n_extra].value = fs_strdup(value);
    cfg->n_extra++;
}

const char *fs_config_extra(const fs_config_t *cfg, const char *name)
{
    const char *v = getenv(name);
    if (v)
        return v;
    for (size_t i = 0; cfg && i < cfg->n_extra; i++)
        if (strcmp(cfg->extra[i].key, name) == 0)
            return cfg->extra[i].value;
    return NULL;
}

/* Parses KEY=VALUE lines (.env and flightshark.conf share the format): '#' comments, an
 * optional `export `, optional single or double quotes around the value. Unknown keys are
 * ignored, as the original's pydantic settings did, so one .env can serve other tools. */
static int load_file(fs_config_t *cfg, const char *path, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '#' || *p == '\0')
            continue;
        if (strncmp(p, "export ", 7) == 0)
            p += 7;
        char *eq = strchr(p, '=');
        if (!eq) {
            *err = fs_sprintf("%s:%d: expected KEY=VALUE", path, lineno);
            rc = -1;
            break;
        }
        char *key_end = eq;
        while (key_end > p && isspace((unsigned char)key_end[-1]))
            key_end--;
        *key_end = '\0';
        char *v = eq + 1;
        while (isspace((unsigned char)*v))
            v++;
        size_t n = strlen(v);
        while (n && isspace((unsigned char)v[n - 1]))
            v[--n] = '\0';
        if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
            v[n - 1] = '\0';
            v++;
        }
        const setting_t *s = find_setting(p);
        if (!s)
            keep_extra(cfg, p, v);
        if (s && apply(cfg, s, v, err) != 0) {
            char *inner = *err;
            *err = fs_sprintf("%s:%d: %s", path, lineno, inner);
            free(inner);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

int fs_config_load(fs_config_t *cfg, const char *conf_path, const char *dotenv_path, char **err)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (apply(cfg, &settings[i], settings[i].default_value, err) != 0)
            return -1;
    if (conf_path && load_file(cfg, conf_path, err) != 0)
        return -1;
    if (dotenv_path && load_file(cfg, dotenv_path, err) != 0)
        return -1;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *v = getenv(settings[i].name);
        if (v && apply(cfg, &settings[i], v, err) != 0)
            return -1;
    }
    return 0;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int fs_config_validate(const fs_config_t *cfg, char **err)
{
    const char *db = cfg->database_url;
    if (!has_prefix(db, "postgresql://") && !has_prefix(db, "postgres://") && !has_prefix(db, "postgresql+asyncpg://")) {
        *err = fs_sprintf("DATABASE_URL: expected a postgresql:// URL, got '%.40s'", db);
        return -1;
    }
    if (!has_prefix(cfg->redis_url, "redis://") && !has_prefix(cfg->redis_url, "unix://")) {
        *err = fs_sprintf("REDIS_URL: expected a redis:// or unix:// URL, got '%.40s'", cfg->redis_url);
        return -1;
    }
    fs_log_level_t level;
    if (fs_log_parse_level(cfg->log_level, &level) != 0) {
        *err = fs_sprintf("LOG_LEVEL: expected debug, info, warn or error, got '%s'", cfg->log_level);
        return -1;
    }
    if (!cfg->debug && strcmp(cfg->secret_key, FS_DEFAULT_SECRET_KEY) == 0) {
        *err = fs_sprintf("SECRET_KEY: still the default; set a random value (e.g. `openssl rand -hex 32`) or DEBUG=true");
        return -1;
    }
    if (strlen(cfg->secret_key) < 16 && !cfg->debug) {
        *err = fs_sprintf("SECRET_KEY: too short (%zu characters); use at least 16", strlen(cfg->secret_key));
        return -1;
    }
    if (strcmp(cfg->jwt_algorithm, "HS256") != 0) {
        *err = fs_sprintf("JWT_ALGORITHM: only HS256 is supported, got '%.40s'", cfg->jwt_algorithm);
        return -1;
    }
    fs_password_params_t argon2 = {(uint32_t)cfg->argon2_time_cost, (uint32_t)cfg->argon2_memory_kib,
                                   (uint32_t)cfg->argon2_parallelism};
    const char *weak = fs_password_params_check(&argon2);
    if (weak) {
        *err = fs_strdup(weak);
        return -1;
    }
    static const char *const strategies[] = {"fallback", "parallel", "best_price"};
    bool strategy_ok = false;
    for (size_t i = 0; i < 3; i++)
        strategy_ok |= strcmp(cfg->flight_search_strategy, strategies[i]) == 0;
    if (!strategy_ok) {
        *err = fs_sprintf("FLIGHT_SEARCH_STRATEGY: expected fallback, parallel or best_price, got '%.40s'",
                          cfg->flight_search_strategy);
        return -1;
    }
    if (cfg->provider_unavailable_after < cfg->provider_degraded_after) {
        *err = fs_sprintf("PROVIDER_UNAVAILABLE_AFTER: must be at least PROVIDER_DEGRADED_AFTER (%d)",
                          cfg->provider_degraded_after);
        return -1;
    }
    if (cfg->port == cfg->rpc_port) {
        *err = fs_sprintf("RPC_PORT: must differ from PORT (both %d)", cfg->port);
        return -1;
    }
    return 0;
}

/* postgresql://user:password@host/db -> postgresql://user:****@host/db */
static char *mask_url_password(const char *url)
{
    const char *scheme_end = strstr(url, "://");
    const char *at = scheme_end ? strchr(scheme_end + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme_end + 3, ':', (size_t)(at - scheme_end - 3)) : NULL;
    char *masked = colon ? fs_sprintf("%.*s****%s", (int)(colon + 1 - url), url, at) : fs_strdup(url);
    char *pw = strstr(masked, "password=");
    if (pw) {
        char *end = pw + 9;
        while (*end && *end != '&' && *end != ' ')
            end++;
        char *out = fs_sprintf("%.*s****%s", (int)(pw + 9 - masked), masked, end);
        free(masked);
        masked = out;
    }
    return masked;
}

void fs_config_print(const fs_config_t *cfg, FILE *out)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &settings[i];
        const char *field = (const char *)cfg + s->offset;
        switch (s->type) {
        case T_STR: {
            const char *v = *(char *const *)field;
            char *shown = s->secret ? fs_strdup(*v ? "****" : "") : mask_url_password(v);
            fprintf(out, "%s=%s\n", s->name, shown);
            free(shown);
            break;
        }
        case T_INT:
            fprintf(out, "%s=%d\n", s->name, *(const int *)field);
            break;
        case T_BOOL:
            fprintf(out, "%s=%s\n", s->name, *(const bool *)field ? "true" : "false");
            break;
        }
    }
}

void fs_config_free(fs_config_t *cfg)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings[i].type == T_STR) {
            char **field = (char **)((char *)cfg + settings[i].offset);
            free(*field);
            *field = NULL;
        }
    for (size_t i = 0; i < cfg->n_extra; i++) {
        free(cfg->extra[i].key);
        free(cfg->extra[i].value);
    }
    free(cfg->extra);
    cfg->extra = NULL;
    cfg->n_extra = 0;
}

int fs_config_worker_count(const fs_config_t *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

bool fs_config_origin_allowed(const fs_config_t *cfg, const char *origin, size_t len)
{
    const char *p = cfg->allowed_origins;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *trim = end;
        while (trim > p && trim[-1] == ' ')
            trim--;
        size_t n = (size_t)(trim - p);
        if ((n == 1 && *p == '*') || (n == len && strncmp(p, origin, len) == 0))
            return true;
        p = end;
    }
    return false;
}
