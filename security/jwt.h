/* JSON Web Tokens, HS256 only (RFC 7519 / RFC 7515 compact form).
 *
 * The algorithm is pinned: a header whose `alg` is anything but exactly "HS256" (including
 * "none", "hs256" and "HS512") is refused before the signature is looked at, so no header can
 * choose how it is verified. The signature is compared with CRYPTO_memcmp (constant time).
 * `exp` is required and enforced with FS_JWT_LEEWAY_S of clock skew; an `iat` further in the
 * future than the same skew is refused. Access and refresh tokens carry `type`, and a decoder
 * is always told which one it expects, so one can never stand in for the other.
 *
 * Claims written: sub (user id), type ("access" | "refresh"), iat, exp, jti (token id) and
 * fam (the session: refresh-token family the token belongs to, see docs/ACCOUNTS.md).
 */
#ifndef FS_JWT_H
#define FS_JWT_H

#include <stdbool.h>
#include <stddef.h>

/* Tolerated clock difference between hosts, in seconds, for exp and iat. */
#define FS_JWT_LEEWAY_S 30
/* Longer tokens are refused unread (ours are ~300 bytes). */
#define FS_JWT_MAX_LEN 4096
/* A UUID string plus its NUL. */
#define FS_UUID_LEN 37

typedef enum { FS_JWT_ACCESS, FS_JWT_REFRESH } fs_jwt_type_t;

typedef struct fs_jwt_claims {
    char sub[FS_UUID_LEN]; /** user id (a UUID; anything else is refused on decode) */
    char jti[FS_UUID_LEN]; /** token id */
    char fam[FS_UUID_LEN]; /** session (refresh-token family); "" when absent */
    fs_jwt_type_t type;    /** access or refresh */
    long long iat, exp;    /** Unix seconds */
} fs_jwt_claims_t;

typedef enum {
    FS_JWT_OK = 0,
    FS_JWT_MALFORMED = -1, /* not three base64url parts of JSON objects, or too long */
    FS_JWT_BAD_ALG = -2,   /* header alg is not exactly HS256 (or crit is present) */
    FS_JWT_BAD_SIGNATURE = -3,
    FS_JWT_EXPIRED = -4,       /* exp + leeway is in the past */
    FS_JWT_WRONG_TYPE = -5,    /* access presented where refresh is expected, or the reverse */
    FS_JWT_BAD_CLAIMS = -6,    /* a required claim is missing or has the wrong type/format */
    FS_JWT_NOT_YET_VALID = -7, /* iat more than the leeway in the future */
} fs_jwt_rc_t;

/* Signs `claims` with HMAC-SHA256 under `key`. Returns a new NUL-terminated token (caller
 * frees). `fam` is written only when non-empty. */
char *fs_jwt_encode(const fs_jwt_claims_t *claims, const char *key, size_t key_len);

/* Verifies `token` and fills `out`. `now` is the current Unix time (a parameter so tests can
 * move the clock). Returns FS_JWT_OK or the first reason for refusal; `out` is meaningful
 * only on FS_JWT_OK. Never logs the token. */
fs_jwt_rc_t fs_jwt_decode(const char *token, const char *key, size_t key_len, fs_jwt_type_t expected,
                          long long now, fs_jwt_claims_t *out);

/* A short English reason for logs ("expired", "bad signature", ...). */
const char *fs_jwt_strerror(fs_jwt_rc_t rc);

/* A random (version 4) UUID from the OpenSSL CSPRNG, lower-case, into `out`. */
void fs_uuid_v4(char out[FS_UUID_LEN]);
/* Is `s` a UUID in the 8-4-4-4-12 hex form (either case)? */
bool fs_uuid_valid(const char *s);

#endif
