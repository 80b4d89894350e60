/* Failure counters in Redis, shared by every worker and host: fixed windows that start at the
 * first failure (INCR, and EXPIRE when the key is new, in one Lua script so a key can never be
 * left without a lifetime).
 *
 * Used by POST /auth/login: failures are counted per account (a hash of the normalized
 * e-mail, so no address is written to Redis) and per client address. When either count has
 * reached its limit (LOGIN_MAX_FAILURES_PER_ACCOUNT / _PER_IP within LOGIN_FAILURE_WINDOW_S)
 * the login is refused with 429 before any password is verified.
 *
 * Redis down: the limiter fails open (the login proceeds) and logs a warning at most every
 * 10 s per process. Refusing every login while Redis is away would turn a cache outage into a
 * full outage; Argon2's cost still bounds how fast passwords can be guessed meanwhile.
 */
#ifndef FS_RATELIMIT_H
#define FS_RATELIMIT_H

#include <stdbool.h>

typedef struct fs_redis fs_redis_t;

typedef struct fs_ratelimit_verdict {
    bool limited;      /** a limit has been reached: refuse */
    int retry_after_s; /** when limited: seconds until the window ends (>= 1) */
    const char *scope; /** when limited: "account" or "address" (static) */
    bool unavailable;  /** Redis did not answer (the verdict is then "not limited") */
} fs_ratelimit_verdict_t;

/* Runs exactly once, on the loop, never before the call that takes it returns. */
typedef void (*fs_ratelimit_cb)(const fs_ratelimit_verdict_t *v, void *arg);

/* Is a login for `email` (normalized) from `ip` allowed right now? */
void fs_ratelimit_login_check(fs_redis_t *r, const char *email, const char *ip, fs_ratelimit_cb cb,
                              void *arg);

/* Counts one failed login for both scopes. The verdict says whether the *next* attempt will be
 * refused (this one has been answered already). `cb` may be NULL. */
void fs_ratelimit_login_failed(fs_redis_t *r, const char *email, const char *ip, fs_ratelimit_cb cb,
                               void *arg);

/* A successful login clears the account's counter (not the address's: otherwise one valid
 * account would let an attacker reset the address limit between guesses). Fire and forget. */
void fs_ratelimit_login_succeeded(fs_redis_t *r, const char *email);

/* The Redis keys used for `email` / `ip` (for tests and operators); caller frees. */
char *fs_ratelimit_account_key(const char *email);
char *fs_ratelimit_address_key(const char *ip);

#endif
