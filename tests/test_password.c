/* security/password.c: Argon2id hashing and verification. */
#include "security/password.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The floor the configuration accepts (7 MiB x 5), cheap enough for unit tests. */
static const fs_password_params_t P = {5, 7168, 1};

static char *hash(const char *pw)
{
    char *h = fs_password_hash(pw, strlen(pw), &P);
    cr_assert(h, "hashing failed");
    return h;
}

Test(password, hash_is_argon2id_phc_with_the_parameters)
{
    char *h = hash("correct horse battery staple");
    cr_assert_eq(strncmp(h, "$argon2id$v=19$m=7168,t=5,p=1$", 30), 0, "%s", h);
    cr_assert_eq(fs_password_verify(h, "correct horse battery staple", 28), FS_PASSWORD_OK);
    free(h);
}

Test(password, wrong_password_is_a_mismatch)
{
    char *h = hash("password-1");
    cr_assert_eq(fs_password_verify(h, "password-2", 10), FS_PASSWORD_MISMATCH);
    cr_assert_eq(fs_password_verify(h, "password-1 ", 11), FS_PASSWORD_MISMATCH);
    cr_assert_eq(fs_password_verify(h, "", 0), FS_PASSWORD_MISMATCH);
    cr_assert_eq(fs_password_verify(h, "PASSWORD-1", 10), FS_PASSWORD_MISMATCH);
    free(h);
}

Test(password, salts_differ)
{
    char *a = hash("same password"), *b = hash("same password");
    cr_assert_str_neq(a, b);
    cr_assert_eq(fs_password_verify(a, "same password", 13), FS_PASSWORD_OK);
    cr_assert_eq(fs_password_verify(b, "same password", 13), FS_PASSWORD_OK);
    free(a), free(b);
}

Test(password, non_ascii_and_embedded_bytes)
{
    const char pw[] = "p\xc3\xa4ssw\xc3\xb6rd\0tail";
    char *h = fs_password_hash(pw, sizeof pw - 1, &P);
    cr_assert_eq(fs_password_verify(h, pw, sizeof pw - 1), FS_PASSWORD_OK);
    cr_assert_eq(fs_password_verify(h, pw, strlen(pw)), FS_PASSWORD_MISMATCH,
                 "the length is part of the input");
    free(h);
}

Test(password, malformed_hashes_are_refused)
{
    char *h = hash("password-1");
    char *truncated = strndup(h, strlen(h) - 10);
    char *bad_b64 = strdup(h);
    bad_b64[strlen(bad_b64) - 3] = '!';
    const char *cases[] = {
        "",
        "password-1",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", /* bcrypt, as the original stored */
        "$argon2i$v=19$m=7168,t=5,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$argon2id$v=16$m=7168,t=5,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$argon2id$v=19$m=4194304,t=5,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$argon2id$v=19$m=7168,t=1000,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$argon2id$v=19$m=7168,t=5,p=1$",
        truncated,
        bad_b64,
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(fs_password_verify(cases[i], "password-1", 10), FS_PASSWORD_MALFORMED, "case %zu: %s", i,
                     cases[i]);
    cr_assert_eq(fs_password_verify(NULL, "password-1", 10), FS_PASSWORD_MALFORMED);
    free(h), free(truncated), free(bad_b64);
}

Test(password, hashes_made_with_other_parameters_still_verify)
{
    fs_password_params_t stronger = {2, 19456, 2};
    char *h = fs_password_hash("password-1", 10, &stronger);
    cr_assert_eq(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=2$", 31), 0, "%s", h);
    cr_assert_eq(fs_password_verify(h, "password-1", 10), FS_PASSWORD_OK);
    free(h);
}

Test(password, parameter_floor)
{
    cr_assert_null(fs_password_params_check(&P));
    cr_assert_null(fs_password_params_check(&(fs_password_params_t){3, 65536, 1}), "the defaults");
    cr_assert_null(fs_password_params_check(&(fs_password_params_t){2, 19456, 1}));
    cr_assert_null(fs_password_params_check(&(fs_password_params_t){1, 47104, 1}));
    const char *e = fs_password_params_check(&(fs_password_params_t){10, 4096, 1});
    cr_assert(e && strstr(e, "ARGON2_MEMORY_KIB"), "%s", e);
    e = fs_password_params_check(&(fs_password_params_t){1, 19456, 1});
    cr_assert(e && strstr(e, "ARGON2_TIME_COST"), "%s", e);
    e = fs_password_params_check(&(fs_password_params_t){5, 7168, 1000});
    cr_assert(e && strstr(e, "ARGON2_PARALLELISM"), "%s", e);
}

Test(password, dummy_hash_costs_what_a_real_one_does)
{
    const char *d = fs_password_dummy_hash(&P);
    cr_assert(d);
    cr_assert_eq(strncmp(d, "$argon2id$v=19$m=7168,t=5,p=1$", 30), 0, "%s", d);
    cr_assert_eq(fs_password_dummy_hash(&P), d, "made once per parameter set");
    fs_password_params_t other = {2, 19456, 1};
    const char *d2 = fs_password_dummy_hash(&other);
    cr_assert(d2 && d2 != d);
    cr_assert_eq(strncmp(d2, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0);
    cr_assert_eq(fs_password_verify(d, "password-1", 10), FS_PASSWORD_MISMATCH, "its password is random");
}
