/* Structured logging: one JSON object per line on stderr.
 *
 * Every line carries ts, level, pid and msg; fs_log_fields adds caller-supplied key/value
 * pairs (already-encoded JSON values) so request logs stay machine-readable. Lines are written
 * with a single write(2), so lines from several processes never interleave.
 */
#ifndef FS_LOG_H
#define FS_LOG_H

typedef enum { FS_LOG_DEBUG = 0, FS_LOG_INFO, FS_LOG_WARN, FS_LOG_ERROR } fs_log_level_t;

void fs_log_set_level(fs_log_level_t level);
int fs_log_parse_level(const char *name, fs_log_level_t *out);
int fs_log_enabled(fs_log_level_t level);
/* A role for every line of this process ("master", "worker-0", "cli"). */
void fs_log_set_role(const char *role);

void fs_log(fs_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes a line whose body is `json_fields`: a comma-separated list of "key":value pairs. */
void fs_log_json(fs_log_level_t level, const char *msg, const char *json_fields);

#define fs_debug(...) fs_log(FS_LOG_DEBUG, __VA_ARGS__)
#define fs_info(...) fs_log(FS_LOG_INFO, __VA_ARGS__)
#define fs_warn(...) fs_log(FS_LOG_WARN, __VA_ARGS__)
#define fs_error(...) fs_log(FS_LOG_ERROR, __VA_ARGS__)

#endif
