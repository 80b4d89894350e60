#include "runtime/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static fs_log_level_t min_level = FS_LOG_INFO;
static char role[32] = "main";
static const char *level_names[] = {"debug", "info", "warn", "error"};

void fs_log_set_level(fs_log_level_t level)
{
    min_level = level;
}

int fs_log_parse_level(const char *name, fs_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (fs_log_level_t)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = FS_LOG_WARN;
        return 0;
    }
    return -1;
}

int fs_log_enabled(fs_log_level_t level)
{
    return level >= min_level;
}

void fs_log_set_role(const char *r)
{
    snprintf(role, sizeof role, "%s", r);
}

static void write_line(fs_log_level_t level, const char *msg_json, const char *fields)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);

    char line[8192];
    int n = snprintf(line, sizeof line, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"pid\":%d,\"role\":\"%s\",\"msg\":%s%s%s}\n",
                     ts, (long)(tv.tv_usec / 1000), level_names[level], (int)getpid(), role, msg_json,
                     fields && *fields ? "," : "", fields ? fields : "");
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line) {
        n = sizeof line - 1;
        line[n - 1] = '\n';
    }
    ssize_t written = write(STDERR_FILENO, line, (size_t)n);
    (void)written;
}

static void log_message(fs_log_level_t level, const char *text, const char *fields)
{
    json_t *s = json_string(text);
    if (!s)
        s = json_string("(invalid utf-8 in log message)");
    char *msg = json_dumps(s, JSON_ENCODE_ANY);
    json_decref(s);
    write_line(level, msg ? msg : "\"\"", fields);
    free(msg);
}

void fs_log(fs_log_level_t level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    log_message(level, text, NULL);
}

void fs_log_json(fs_log_level_t level, const char *msg, const char *json_fields)
{
    if (level < min_level)
        return;
    log_message(level, msg, json_fields);
}
