/* Shared by the account resources (api/auth.c, api/users.c): JSON body validation in the
 * FastAPI/pydantic v2 shape with nested locations (["body","preferences","currency"]), the
 * profile fields common to registration and PATCH /users/me, and the airport check.
 * Internal to api/: the public guard is security/auth.h. */
#ifndef FS_API_ACCOUNTS_H
#define FS_API_ACCOUNTS_H

#include "api/http.h"
#include "storage/pg.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ["body", a, b, c] with the NULL tail left out. New reference. */
json_t *fs_acct_loc(const char *a, const char *b, const char *c);
/* Appends one pydantic error to the array `errs`. Steals `loc` and `ctx` (may be NULL);
 * borrows `input` (NULL means JSON null). */
void fs_acct_error(json_t *errs, json_t *loc, const char *type, const char *msg, json_t *input, json_t *ctx);
/* When `errs` is not empty: replies 422 {"detail": errs} and returns true. Always releases
 * `errs`. */
bool fs_acct_reply_errors(fs_req_t *req, json_t *errs);

/* Code points in a UTF-8 string (what pydantic's length limits count). */
size_t fs_acct_utf8_len(const char *s);

/* A string field of `body`. Absent: *present false (and a "missing" error when `required`).
 * JSON null: present, *out NULL (an error when not `nullable`). Otherwise it must be a string
 * of min..max code points (max 0: no limit). *out borrows from `body`. */
void fs_acct_str(json_t *body, json_t *errs, const char *name, bool required, bool nullable, size_t min,
                 size_t max, const char **out, bool *present);

/* The profile fields shared by registration and PATCH /users/me. *_set says the field was in
 * the body (JSON null clears it). Strings are owned here: release with fs_acct_profile_clear.
 * home_airport_code is upper-cased. */
typedef struct fs_acct_profile {
    bool full_name_set, home_city_set, airport_set;
    char *full_name, *home_city, *airport;
} fs_acct_profile_t;
void fs_acct_profile_read(json_t *body, json_t *errs, fs_acct_profile_t *p);
void fs_acct_profile_clear(fs_acct_profile_t *p);

/* Appends the 422 error for an airport code that is not an active airport. */
void fs_acct_unknown_airport(json_t *errs, const char *code);

/* SQL: true when $1 is the IATA code of an active airport (statement name "acct_airport"). */
#define FS_ACCT_AIRPORT_SQL "SELECT EXISTS (SELECT 1 FROM airports WHERE iata_code = $1 AND is_active)"

/* Seconds since the epoch. */
long long fs_acct_now(void);

#endif
