#include "security/jwt.h"

#include "runtime/alloc.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_LEN 32 /* SHA-256 */

/* ---- base64url (RFC 4648 §5, no padding) ------------------------------------------------ */

/* Encodes with OpenSSL, then maps the alphabet and drops the padding. Caller frees. */
static char *b64url_encode(const unsigned char *in, size_t len)
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

static bool b64url_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/* Strict decoding: only the URL alphabet, no padding, no whitespace. Returns the number of
 * bytes written to a new buffer in *out (caller frees), or -1. */
static long b64url_decode(const char *in, size_t len, unsigned char **out)
{
    if (len % 4 == 1)
        return -1;
    size_t padded = (len + 3) / 4 * 4;
    char *std = fs_malloc(padded + 1);
    for (size_t i = 0; i < len; i++) {
        if (!b64url_char(in[i])) {
            free(std);
            return -1;
        }
        std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    }
    memset(std + len, '=', padded - len);
    std[padded] = '\0';
    *out = fs_malloc(padded / 4 * 3 + 1);
    int n = padded ? EVP_DecodeBlock(*out, (unsigned char *)std, (int)padded) : 0;
    free(std);
    if (n < 0) {
        free(*out);
        return -1;
    }
    return n - (long)(padded - len); /* EVP_DecodeBlock counts the bytes the padding stands for */
}

/* ---- signing ------------------------------------------------------------------------------ */

static void sign(const char *key, size_t key_len, const char *data, size_t len, unsigned char mac[SIG_LEN])
{
    unsigned int mac_len = SIG_LEN;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, len, mac, &mac_len);
}

static char *b64url_json(json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *enc = b64url_encode((const unsigned char *)text, strlen(text));
    free(text);
    json_decref(j);
    return enc;
}

char *fs_jwt_encode(const fs_jwt_claims_t *c, const char *key, size_t key_len)
{
    json_t *payload = json_pack("{s:s, s:s, s:I, s:I, s:s}", "sub", c->sub, "type",
                                c->type == FS_JWT_ACCESS ? "access" : "refresh", "iat", (json_int_t)c->iat,
                                "exp", (json_int_t)c->exp, "jti", c->jti);
    if (c->fam[0])
        json_object_set_new(payload, "fam", json_string(c->fam));
    char *head = b64url_json(json_pack("{s:s, s:s}", "alg", "HS256", "typ", "JWT"));
    char *body = b64url_json(payload);
    char *signing_input = fs_sprintf("%s.%s", head, body);
    unsigned char mac[SIG_LEN];
    sign(key, key_len, signing_input, strlen(signing_input), mac);
    char *sig = b64url_encode(mac, SIG_LEN);
    char *token = fs_sprintf("%s.%s", signing_input, sig);
    free(head);
    free(body);
    free(signing_input);
    free(sig);
    return token;
}

/* ---- verification ------------------------------------------------------------------------- */

static json_t *decode_object(const char *part, size_t len)
{
    unsigned char *raw;
    long n = b64url_decode(part, len, &raw);
    if (n < 0)
        return NULL;
    json_t *j = json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* `crit` names extensions the verifier must understand; we understand none (RFC 7515 §4.1.11). */
static fs_jwt_rc_t check_header(const char *part, size_t len)
{
    json_t *h = decode_object(part, len);
    if (!h)
        return FS_JWT_MALFORMED;
    const char *alg = json_string_value(json_object_get(h, "alg"));
    fs_jwt_rc_t rc =
        alg && strcmp(alg, "HS256") == 0 && !json_object_get(h, "crit") ? FS_JWT_OK : FS_JWT_BAD_ALG;
    json_decref(h);
    return rc;
}

static fs_jwt_rc_t check_signature(const char *token, size_t signed_len, const char *sig, size_t sig_len,
                                   const char *key, size_t key_len)
{
    unsigned char *given;
    long n = b64url_decode(sig, sig_len, &given);
    if (n < 0)
        return FS_JWT_MALFORMED;
    unsigned char mac[SIG_LEN];
    sign(key, key_len, token, signed_len, mac);
    bool ok = n == SIG_LEN && CRYPTO_memcmp(mac, given, SIG_LEN) == 0;
    free(given);
    return ok ? FS_JWT_OK : FS_JWT_BAD_SIGNATURE;
}

static bool copy_uuid(json_t *payload, const char *name, char out[FS_UUID_LEN])
{
    const char *v = json_string_value(json_object_get(payload, name));
    if (!v || !fs_uuid_valid(v))
        return false;
    memcpy(out, v, FS_UUID_LEN);
    return true;
}

static fs_jwt_rc_t read_claims(json_t *p, fs_jwt_type_t expected, long long now, fs_jwt_claims_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *exp = json_object_get(p, "exp"), *iat = json_object_get(p, "iat");
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!copy_uuid(p, "sub", out->sub) || !copy_uuid(p, "jti", out->jti) || !json_is_integer(exp) || !type ||
        (iat && !json_is_integer(iat)))
        return FS_JWT_BAD_CLAIMS;
    if (json_object_get(p, "fam") && !copy_uuid(p, "fam", out->fam))
        return FS_JWT_BAD_CLAIMS;
    out->exp = json_integer_value(exp);
    out->iat = iat ? json_integer_value(iat) : 0;
    if (strcmp(type, "access") != 0 && strcmp(type, "refresh") != 0)
        return FS_JWT_BAD_CLAIMS;
    out->type = strcmp(type, "access") == 0 ? FS_JWT_ACCESS : FS_JWT_REFRESH;
    if (out->type != expected)
        return FS_JWT_WRONG_TYPE;
    if (out->exp <= now - FS_JWT_LEEWAY_S)
        return FS_JWT_EXPIRED;
    if (out->iat > now + FS_JWT_LEEWAY_S)
        return FS_JWT_NOT_YET_VALID;
    return FS_JWT_OK;
}

/* Order matters: the header is judged before the signature (so `alg` cannot pick the check),
 * and no claim is read before the signature has been verified. */
fs_jwt_rc_t fs_jwt_decode(const char *token, const char *key, size_t key_len, fs_jwt_type_t expected,
                          long long now, fs_jwt_claims_t *out)
{
    size_t len = token ? strnlen(token, FS_JWT_MAX_LEN + 1) : 0;
    if (len == 0 || len > FS_JWT_MAX_LEN)
        return FS_JWT_MALFORMED;
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot1 || !dot2 || strchr(dot2 + 1, '.'))
        return FS_JWT_MALFORMED;
    fs_jwt_rc_t rc = check_header(token, (size_t)(dot1 - token));
    if (rc == FS_JWT_OK)
        rc = check_signature(token, (size_t)(dot2 - token), dot2 + 1, strlen(dot2 + 1), key, key_len);
    if (rc != FS_JWT_OK)
        return rc;
    json_t *payload = decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!payload)
        return FS_JWT_MALFORMED;
    rc = read_claims(payload, expected, now, out);
    json_decref(payload);
    return rc;
}

const char *fs_jwt_strerror(fs_jwt_rc_t rc)
{
    switch (rc) {
    case FS_JWT_OK:
        return "ok";
    case FS_JWT_MALFORMED:
        return "malformed token";
    case FS_JWT_BAD_ALG:
        return "algorithm not allowed";
    case FS_JWT_BAD_SIGNATURE:
        return "bad signature";
    case FS_JWT_EXPIRED:
        return "expired";
    case FS_JWT_WRONG_TYPE:
        return "wrong token type";
    case FS_JWT_BAD_CLAIMS:
        return "missing or invalid claims";
    case FS_JWT_NOT_YET_VALID:
        return "issued in the future";
    }
    return "unknown";
}

/* ---- ids ---------------------------------------------------------------------------------- */

void fs_uuid_v4(char out[FS_UUID_LEN])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        abort(); /* no CSPRNG: nothing secure can be issued */
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, FS_UUID_LEN, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

bool fs_uuid_valid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return s[36] == '\0';
}
