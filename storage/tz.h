/* Time zones: a small reader of the system's compiled IANA zone files (TZif, RFC 8536).
 *
 * A zone is loaded once (fs_tz_load reads $TZDIR or /usr/share/zoneinfo) and is immutable
 * afterwards, so any number of threads may query it at the same time. Only what flight
 * schedules need is kept: the UTC offset in force at an instant. The reader takes the 64-bit
 * (version 2+) data block, and for instants after the last transition it evaluates the POSIX
 * TZ rule of the file's footer (e.g. "GMT0IST,M3.5.0/1,M10.5.0"), so files compiled "slim"
 * (few transitions, rule for the rest) give the same answers as "fat" ones. Leap seconds are
 * ignored (the zone files under zoneinfo/ carry none; the right/ variants are not used).
 */
#ifndef FS_TZ_H
#define FS_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fs_tz fs_tz_t;

/* Loads the zone `name` ("Europe/Dublin") from $TZDIR, else /usr/share/zoneinfo. Returns NULL
 * when the name is not a plain relative path (no "..", no leading '/'), the file is missing
 * or it is not a valid TZif file. */
fs_tz_t *fs_tz_load(const char *name);

/* Loads a TZif file by path; `name` (may be NULL) is what fs_tz_name() answers. */
fs_tz_t *fs_tz_load_file(const char *path, const char *name);

/* Parses TZif data in memory (for tests and for loaders). NULL when invalid. */
fs_tz_t *fs_tz_parse(const unsigned char *data, size_t len, const char *name);

/* A zone with one fixed offset (seconds east of UTC), e.g. for an airport without a zone. */
fs_tz_t *fs_tz_fixed(int offset_s, const char *name);

void fs_tz_free(fs_tz_t *z);

const char *fs_tz_name(const fs_tz_t *z);

/* The offset east of UTC, in seconds, in force at `utc` (unix seconds): local = utc + offset. */
int fs_tz_offset(const fs_tz_t *z, int64_t utc);

/* The UTC instant of local wall-clock time `local` (seconds since 1970-01-01 00:00 local).
 * A local time that occurs twice (the hour repeated when clocks go back) gives the earlier
 * instant; one that does not exist (the hour skipped when clocks go forward) is read with the
 * offset in force before the change, so it lands just after the change. */
int64_t fs_tz_local_to_utc(const fs_tz_t *z, int64_t local);

/* Bytes held by the zone (for memory reports). */
size_t fs_tz_memory(const fs_tz_t *z);

#endif
