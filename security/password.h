/* Password hashing with Argon2id (libargon2, RFC 9106), in the PHC string format
 * ("$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>"), so each stored hash carries the
 * parameters it was made with and a change of parameters does not break old hashes.
 *
 * Hashing is deliberately slow and memory-hard: these functions block for tens to hundreds of
 * milliseconds. In a worker they run only on the thread pool (fs_threadpool_submit), never on
 * the event loop. They are thread-safe.
 */
#ifndef FS_PASSWORD_H
#define FS_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fs_password_params {
    uint32_t time_cost;   /** passes over memory (ARGON2_TIME_COST) */
    uint32_t memory_kib;  /** memory in KiB (ARGON2_MEMORY_KIB) */
    uint32_t parallelism; /** lanes (ARGON2_PARALLELISM) */
} fs_password_params_t;

/* The floor below which parameters are refused: OWASP's Argon2id equivalents all have
 * memory × passes of at least 7 MiB × 5 (9 MiB × 4, 12 MiB × 3, 19 MiB × 2, 46 MiB × 1). */
#define FS_PASSWORD_MIN_MEMORY_KIB   7168u
#define FS_PASSWORD_MIN_COST_PRODUCT (7168u * 5u)

typedef enum {
    FS_PASSWORD_OK = 0,
    FS_PASSWORD_MISMATCH = -1,  /* well-formed hash, wrong password */
    FS_PASSWORD_MALFORMED = -2, /* not an argon2id PHC string we accept */
    FS_PASSWORD_FAILED = -3,    /* libargon2 could not run (memory) */
} fs_password_rc_t;

/* The parameters from fs_cfg (ARGON2_*). */
fs_password_params_t fs_password_params_from_config(void);

/* NULL if `p` is acceptable, else a static message naming the setting that is too weak. */
const char *fs_password_params_check(const fs_password_params_t *p);

/* Hashes with a fresh 16-byte random salt. Returns a new PHC string (caller frees), or NULL
 * if libargon2 failed. */
char *fs_password_hash(const char *password, size_t len, const fs_password_params_t *p);

/* Verifies in constant time (libargon2 compares with a constant-time loop). Only "$argon2id$"
 * hashes are accepted, and only with parameters no larger than a sane ceiling, so a corrupted
 * row cannot make one verification allocate gigabytes. */
fs_password_rc_t fs_password_verify(const char *encoded, const char *password, size_t len);

/* A hash of a random password with parameters `p`, made once per process and per parameter
 * set: verifying an unknown account's login against it costs what a real verification costs,
 * so response time does not reveal whether an e-mail is registered. */
const char *fs_password_dummy_hash(const fs_password_params_t *p);

#endif
