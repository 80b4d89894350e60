#include "security/password.h"

#include "runtime/alloc.h"
#include "runtime/config.h"

#include <argon2.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN 16
#define HASH_LEN 32
/* Ceiling for parameters read back from a stored hash (see fs_password_verify). */
#define MAX_MEMORY_KIB  (1024u * 1024u)
#define MAX_TIME_COST   64u
#define MAX_PARALLELISM 64u

fs_password_params_t fs_password_params_from_config(void)
{
    return (fs_password_params_t){(uint32_t)fs_cfg->argon2_time_cost, (uint32_t)fs_cfg->argon2_memory_kib,
                                  (uint32_t)fs_cfg->argon2_parallelism};
}

const char *fs_password_params_check(const fs_password_params_t *p)
{
    if (p->memory_kib < FS_PASSWORD_MIN_MEMORY_KIB)
        return "ARGON2_MEMORY_KIB: below the minimum of 7168 (7 MiB)";
    if ((uint64_t)p->memory_kib * p->time_cost < FS_PASSWORD_MIN_COST_PRODUCT)
        return "ARGON2_TIME_COST: ARGON2_MEMORY_KIB x ARGON2_TIME_COST must be at least 35840 "
               "(e.g. 7168 x 5, 19456 x 2, 65536 x 1)";
    if (p->memory_kib < 8 * p->parallelism)
        return "ARGON2_PARALLELISM: needs at least 8 KiB of ARGON2_MEMORY_KIB per lane";
    return NULL;
}

char *fs_password_hash(const char *password, size_t len, const fs_password_params_t *p)
{
    unsigned char salt[SALT_LEN];
    if (RAND_bytes(salt, sizeof salt) != 1)
        return NULL;
    size_t enc_len =
        argon2_encodedlen(p->time_cost, p->memory_kib, p->parallelism, SALT_LEN, HASH_LEN, Argon2_id);
    char *out = fs_malloc(enc_len);
    int rc = argon2id_hash_encoded(p->time_cost, p->memory_kib, p->parallelism, password, len, salt, SALT_LEN,
                                   HASH_LEN, out, enc_len);
    if (rc != ARGON2_OK) {
        free(out);
        return NULL;
    }
    return out;
}

/* Reads the cost parameters of a PHC string; false when the prefix is not ours. */
static bool read_params(const char *encoded, fs_password_params_t *p)
{
    int used = 0;
    if (sscanf(encoded, "$argon2id$v=19$m=%u,t=%u,p=%u$%n", &p->memory_kib, &p->time_cost, &p->parallelism,
               &used) != 3 ||
        used == 0)
        return false;
    return p->memory_kib <= MAX_MEMORY_KIB && p->time_cost <= MAX_TIME_COST &&
           p->parallelism <= MAX_PARALLELISM;
}

fs_password_rc_t fs_password_verify(const char *encoded, const char *password, size_t len)
{
    fs_password_params_t p;
    if (!encoded || !read_params(encoded, &p))
        return FS_PASSWORD_MALFORMED;
    int rc = argon2id_verify(encoded, password, len);
    switch (rc) {
    case ARGON2_OK:
        return FS_PASSWORD_OK;
    case ARGON2_VERIFY_MISMATCH:
        return FS_PASSWORD_MISMATCH;
    case ARGON2_MEMORY_ALLOCATION_ERROR:
    case ARGON2_THREAD_FAIL:
        return FS_PASSWORD_FAILED;
    default:
        return FS_PASSWORD_MALFORMED;
    }
}

/* ---- dummy hashes ------------------------------------------------------------------------- */

/* One per parameter set seen by this process (a reload may change them). Entries are never
 * freed: a returned pointer stays valid for the life of the process. */
typedef struct dummy {
    fs_password_params_t params;
    char *hash;
    struct dummy *next;
} dummy_t;

static pthread_mutex_t dummy_lock = PTHREAD_MUTEX_INITIALIZER;
static dummy_t *dummies;

static bool same_params(const fs_password_params_t *a, const fs_password_params_t *b)
{
    return a->time_cost == b->time_cost && a->memory_kib == b->memory_kib && a->parallelism == b->parallelism;
}

const char *fs_password_dummy_hash(const fs_password_params_t *p)
{
    pthread_mutex_lock(&dummy_lock);
    dummy_t *d = dummies;
    while (d && !same_params(&d->params, p))
        d = d->next;
    if (!d) {
        unsigned char secret[24];
        RAND_bytes(secret, sizeof secret);
        char *hash = fs_password_hash((const char *)secret, sizeof secret, p);
        if (hash) {
            d = FS_NEW(dummy_t);
            d->params = *p;
            d->hash = hash;
            d->next = dummies;
            dummies = d;
        }
    }
    pthread_mutex_unlock(&dummy_lock);
    return d ? d->hash : NULL;
}
