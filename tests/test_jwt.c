/* security/jwt.c: HS256 tokens, and every reason to refuse one. Hand-made tokens are built
 * here with OpenSSL directly, independently of the code under test. */
#include "runtime/alloc.h"
#include "security/jwt.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char KEY[] = "unit-test-key-0123456789abcdef";
#define NOW 1700000000LL
#define UID "6f1c2c1e-8d1b-4c53-9a43-0a4d1f7f2b11"
#define JTI "0b7f6a8e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
#define FAM "3a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

static fs_jwt_claims_t claims(fs_jwt_type_t type, long long iat, long long exp)
{
    fs_jwt_claims_t c = {.type = type, .iat = iat, .exp = exp};
    strcpy(c.sub, UID);
    strcpy(c.jti, JTI);
    strcpy(c.fam, FAM);
    return c;
}

static char *encode(fs_jwt_type_t type, long long iat, long long exp)
{
    fs_jwt_claims_t c = claims(type, iat, exp);
    return fs_jwt_encode(&c, KEY, strlen(KEY));
}

static fs_jwt_rc_t decode(const char *token, fs_jwt_type_t expected)
{
    fs_jwt_claims_t out;
    return fs_jwt_decode(token, KEY, strlen(KEY), expected, NOW, &out);
}

/* ---- independent token construction ------------------------------------------------------ */

static char *b64url(const unsigned char *in, size_t len)
{
    char *out = fs_malloc(4 * ((len + 2) / 3) + 1);
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

/* header.payload.HMAC-SHA256(key) from raw JSON texts. */
static char *forge(const char *header, const char *payload, const char *key)
{
    char *h = b64url((const unsigned char *)header, strlen(header));
    char *p = b64url((const unsigned char *)payload, strlen(payload));
    char *input = fs_sprintf("%s.%s", h, p);
    unsigned char mac[32];
    unsigned int mac_len = 32;
    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)input, strlen(input), mac, &mac_len);
    char *sig = b64url(mac, 32);
    char *token = fs_sprintf("%s.%s", input, sig);
    free(h), free(p), free(input), free(sig);
    return token;
}

static char *payload_json(const char *type, long long iat, long long exp)
{
    return fs_sprintf("{\"sub\":\"%s\",\"type\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\"}", UID, type,
                      iat, exp, JTI);
}

/* ---- round trips -------------------------------------------------------------------------- */

Test(jwt, access_round_trip)
{
    char *t = encode(FS_JWT_ACCESS, NOW, NOW + 900);
    fs_jwt_claims_t out;
    cr_assert_eq(fs_jwt_decode(t, KEY, strlen(KEY), FS_JWT_ACCESS, NOW, &out), FS_JWT_OK);
    cr_assert_str_eq(out.sub, UID);
    cr_assert_str_eq(out.jti, JTI);
    cr_assert_str_eq(out.fam, FAM);
    cr_assert_eq(out.type, FS_JWT_ACCESS);
    cr_assert_eq(out.iat, NOW);
    cr_assert_eq(out.exp, NOW + 900);
    cr_assert_eq(strncmp(t, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37), 0,
                 "header {\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    free(t);
}

Test(jwt, refresh_round_trip_and_a_token_made_elsewhere)
{
    char *t = encode(FS_JWT_REFRESH, NOW, NOW + 86400);
    cr_assert_eq(decode(t, FS_JWT_REFRESH), FS_JWT_OK);
    free(t);
    char *p = payload_json("access", NOW, NOW + 60);
    char *forged = forge("{\"typ\":\"JWT\",\"alg\":\"HS256\"}", p, KEY);
    cr_assert_eq(decode(forged, FS_JWT_ACCESS), FS_JWT_OK, "any correct HS256 encoder interoperates");
    free(p), free(forged);
}

/* RFC 7515 appendix A.1: a JWS signed with HS256 by a third party. Its payload has none of our
 * claims, so a correct signature check gets as far as the claims. */
Test(jwt, rfc7515_example_signature_verifies)
{
    const char *token =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const char *k64 =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ+EstJQLr/T+1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow==";
    unsigned char key[80];
    int n = EVP_DecodeBlock(key, (const unsigned char *)k64, (int)strlen(k64)) - 2;
    cr_assert_eq(n, 64);
    fs_jwt_claims_t out;
    cr_assert_eq(fs_jwt_decode(token, (const char *)key, 64, FS_JWT_ACCESS, 1300819000, &out),
                 FS_JWT_BAD_CLAIMS);
    key[0] ^= 1;
    cr_assert_eq(fs_jwt_decode(token, (const char *)key, 64, FS_JWT_ACCESS, 1300819000, &out),
                 FS_JWT_BAD_SIGNATURE);
}

/* ---- refusals ----------------------------------------------------------------------------- */

Test(jwt, tampered_signature_payload_and_wrong_key)
{
    char *t = encode(FS_JWT_ACCESS, NOW, NOW + 900);
    char *bad = fs_strdup(t);
    char *c = strrchr(bad, '.') + 5;
    *c = *c == 'A' ? 'B' : 'A';
    cr_assert_eq(decode(bad, FS_JWT_ACCESS), FS_JWT_BAD_SIGNATURE);
    /* payload replaced, signature kept */
    char *other = forge("{\"alg\":\"HS256\"}", "{\"sub\":\"00000000-0000-4000-8000-000000000000\"}", KEY);
    const char *d1 = strchr(other, '.'), *d2 = strrchr(other, '.');
    char *spliced =
        fs_sprintf("%.*s.%.*s%s", (int)(strchr(t, '.') - t), t, (int)(d2 - d1 - 1), d1 + 1, strrchr(t, '.'));
    cr_assert_eq(decode(spliced, FS_JWT_ACCESS), FS_JWT_BAD_SIGNATURE);
    /* truncated signature, empty signature */
    char *truncated = fs_strndup(t, strlen(t) - 4);
    cr_assert_eq(decode(truncated, FS_JWT_ACCESS), FS_JWT_BAD_SIGNATURE);
    char *nosig = fs_strndup(t, (size_t)(strrchr(t, '.') - t + 1));
    cr_assert_eq(decode(nosig, FS_JWT_ACCESS), FS_JWT_BAD_SIGNATURE);
    fs_jwt_claims_t out;
    cr_assert_eq(fs_jwt_decode(t, "another-key", 11, FS_JWT_ACCESS, NOW, &out), FS_JWT_BAD_SIGNATURE);
    free(t), free(bad), free(other), free(spliced), free(truncated), free(nosig);
}

Test(jwt, algorithm_is_pinned)
{
    char *p = payload_json("access", NOW, NOW + 900);
    const char *headers[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"None\"}",
        "{\"alg\":\"HS512\"}",
        "{\"alg\":\"hs256\"}",
        "{\"alg\":\"RS256\"}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":256}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        /* even correctly HMAC-signed with our key, a foreign alg is refused */
        char *t = forge(headers[i], p, KEY);
        cr_assert_eq(decode(t, FS_JWT_ACCESS), FS_JWT_BAD_ALG, "%s", headers[i]);
        /* and the classic unsigned form */
        char *unsigned_t = fs_strndup(t, (size_t)(strrchr(t, '.') - t + 1));
        cr_assert_eq(decode(unsigned_t, FS_JWT_ACCESS), FS_JWT_BAD_ALG, "%s unsigned", headers[i]);
        free(t), free(unsigned_t);
    }
    free(p);
}

Test(jwt, expiry_with_leeway)
{
    char *t = encode(FS_JWT_ACCESS, NOW - 1000, NOW - 10);
    cr_assert_eq(decode(t, FS_JWT_ACCESS), FS_JWT_OK, "within the %d s leeway", FS_JWT_LEEWAY_S);
    free(t);
    t = encode(FS_JWT_ACCESS, NOW - 1000, NOW - FS_JWT_LEEWAY_S);
    cr_assert_eq(decode(t, FS_JWT_ACCESS), FS_JWT_EXPIRED);
    free(t);
    t = encode(FS_JWT_ACCESS, NOW + 120, NOW + 1000);
    cr_assert_eq(decode(t, FS_JWT_ACCESS), FS_JWT_NOT_YET_VALID, "issued in the future");
    free(t);
    char *p = fs_sprintf("{\"sub\":\"%s\",\"type\":\"access\",\"exp\":9223372036854775807,\"jti\":\"%s\"}",
                         UID, JTI);
    t = forge("{\"alg\":\"HS256\"}", p, KEY);
    cr_assert_eq(decode(t, FS_JWT_ACCESS), FS_JWT_OK, "huge exp does not overflow");
    free(t), free(p);
    p = fs_sprintf("{\"sub\":\"%s\",\"type\":\"access\",\"exp\":-9223372036854775807,\"jti\":\"%s\"}", UID,
                   JTI);
    t = forge("{\"alg\":\"HS256\"}", p, KEY);
    cr_assert_eq(decode(t, FS_JWT_ACCESS), FS_JWT_EXPIRED);
    free(t), free(p);
}

Test(jwt, access_and_refresh_are_not_interchangeable)
{
    char *a = encode(FS_JWT_ACCESS, NOW, NOW + 900), *r = encode(FS_JWT_REFRESH, NOW, NOW + 900);
    cr_assert_eq(decode(a, FS_JWT_REFRESH), FS_JWT_WRONG_TYPE);
    cr_assert_eq(decode(r, FS_JWT_ACCESS), FS_JWT_WRONG_TYPE);
    free(a), free(r);
}

Test(jwt, malformed_tokens)
{
    char *long_token = fs_malloc(FS_JWT_MAX_LEN + 10);
    memset(long_token, 'a', FS_JWT_MAX_LEN + 9);
    long_token[10] = '.';
    long_token[20] = '.';
    long_token[FS_JWT_MAX_LEN + 9] = '\0';
    char *valid = encode(FS_JWT_ACCESS, NOW, NOW + 900);
    char *padded = fs_sprintf("%s=", valid);
    char *four = fs_sprintf("%s.AAAA", valid);
    char *not_json = forge("{\"alg\":\"HS256\"}", "not json", KEY);
    char *array = forge("{\"alg\":\"HS256\"}", "[1,2]", KEY);
    char *dup = fs_sprintf("{\"sub\":\"%s\",\"sub\":\"%s\",\"type\":\"access\",\"exp\":%lld,\"jti\":\"%s\"}",
                           UID, "00000000-0000-4000-8000-000000000000", NOW + 60, JTI);
    char *dup_t = forge("{\"alg\":\"HS256\"}", dup, KEY);
    const char *cases[] = {
        "",     "abc", "a.b",    "a.b.c", "....", "eyJ.eyJ.",    long_token,
        padded, four,  not_json, array,   dup_t,  "e+J.e/J.abc", "eyJhbGciOiJIUzI1NiJ9 .x.y"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fs_jwt_rc_t rc = decode(cases[i], FS_JWT_ACCESS);
        cr_assert(rc == FS_JWT_MALFORMED || rc == FS_JWT_BAD_ALG || rc == FS_JWT_BAD_SIGNATURE,
                  "case %zu (%.40s): %s", i, cases[i], fs_jwt_strerror(rc));
        cr_assert_neq(rc, FS_JWT_OK);
    }
    cr_assert_eq(decode(not_json, FS_JWT_ACCESS), FS_JWT_MALFORMED);
    cr_assert_eq(decode(dup_t, FS_JWT_ACCESS), FS_JWT_MALFORMED, "duplicate claims are ambiguous");
    cr_assert_eq(decode(NULL, FS_JWT_ACCESS), FS_JWT_MALFORMED);
    free(long_token), free(valid), free(padded), free(four), free(not_json), free(array), free(dup),
        free(dup_t);
}

Test(jwt, missing_or_bad_claims)
{
    const char *payloads[] = {
        "{\"type\":\"access\",\"exp\":1700000900,\"jti\":\"" JTI "\"}",                /* no sub */
        "{\"sub\":\"42\",\"type\":\"access\",\"exp\":1700000900,\"jti\":\"" JTI "\"}", /* sub not a UUID */
        "{\"sub\":\"" UID "\",\"type\":\"access\",\"jti\":\"" JTI "\"}",               /* no exp */
        "{\"sub\":\"" UID "\",\"type\":\"access\",\"exp\":\"1700000900\",\"jti\":\"" JTI
        "\"}", /* exp a string */
        "{\"sub\":\"" UID "\",\"type\":\"access\",\"exp\":1700000900.5,\"jti\":\"" JTI "\"}", /* exp a real */
        "{\"sub\":\"" UID "\",\"type\":\"access\",\"exp\":1700000900}",                       /* no jti */
        "{\"sub\":\"" UID "\",\"exp\":1700000900,\"jti\":\"" JTI "\"}",                       /* no type */
        "{\"sub\":\"" UID "\",\"type\":\"id\",\"exp\":1700000900,\"jti\":\"" JTI "\"}", /* unknown type */
        "{\"sub\":\"" UID "\",\"type\":\"access\",\"exp\":1700000900,\"jti\":\"" JTI "\",\"fam\":7}",
        "{\"sub\":\"" UID "\",\"type\":\"access\",\"exp\":1700000900,\"jti\":\"" JTI "\",\"iat\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char *t = forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payloads[i], KEY);
        cr_assert_eq(decode(t, FS_JWT_ACCESS), FS_JWT_BAD_CLAIMS, "%s", payloads[i]);
        free(t);
    }
}

Test(jwt, uuids)
{
    char a[FS_UUID_LEN], b[FS_UUID_LEN];
    fs_uuid_v4(a);
    fs_uuid_v4(b);
    cr_assert(fs_uuid_valid(a) && fs_uuid_valid(b));
    cr_assert_str_neq(a, b);
    cr_assert_eq(a[14], '4', "version 4");
    cr_assert(strchr("89ab", a[19]), "RFC 4122 variant");
    cr_assert(fs_uuid_valid("6F1C2C1E-8D1B-4C53-9A43-0A4D1F7F2B11"));
    cr_assert_not(fs_uuid_valid("6f1c2c1e-8d1b-4c53-9a43-0a4d1f7f2b1"));
    cr_assert_not(fs_uuid_valid("6f1c2c1e-8d1b-4c53-9a43-0a4d1f7f2b111"));
    cr_assert_not(fs_uuid_valid("6f1c2c1e08d1b-4c53-9a43-0a4d1f7f2b11"));
    cr_assert_not(fs_uuid_valid("6f1c2c1e-8d1b-4c53-9a43-0a4d1f7f2b1g"));
    cr_assert_not(fs_uuid_valid(""));
}
