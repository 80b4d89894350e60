#include "security/email.h"

#include "runtime/alloc.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

char *fs_email_normalize(const char *raw)
{
    while (isspace((unsigned char)*raw))
        raw++;
    size_t n = strlen(raw);
    while (n && isspace((unsigned char)raw[n - 1]))
        n--;
    char *out = fs_strndup(raw, n);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

static bool atext(char c)
{
    return isalnum((unsigned char)c) || strchr("!#$%&'*+/=?^_`{|}~-", c);
}

static const char *check_local(const char *s, size_t n)
{
    if (n == 0)
        return "There must be something before the @-sign.";
    if (n > 64)
        return "The email address is too long before the @-sign.";
    if (s[0] == '.' || s[n - 1] == '.')
        return "An email address cannot start or end with a period.";
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' && s[i + 1] == '.')
            return "An email address cannot have two periods in a row.";
        if (s[i] != '.' && !atext(s[i]))
            return "The email address contains invalid characters before the @-sign.";
    }
    return NULL;
}

static const char *check_label(const char *s, size_t n)
{
    if (n == 0)
        return "An email address cannot have two periods in a row.";
    if (n > 63)
        return "The part after the @-sign is too long.";
    if (s[0] == '-' || s[n - 1] == '-')
        return "The part after the @-sign cannot start or end with a hyphen.";
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return "The part after the @-sign contains invalid characters.";
    return NULL;
}

static const char *check_domain(const char *s)
{
    if (!*s)
        return "There must be something after the @-sign.";
    if (s[0] == '.' || s[strlen(s) - 1] == '.')
        return "An email address cannot start or end with a period.";
    const char *dot = strrchr(s, '.');
    if (!dot)
        return "The part after the @-sign is not valid. It should have a period.";
    for (const char *label = s;;) {
        const char *end = strchr(label, '.');
        size_t n = end ? (size_t)(end - label) : strlen(label);
        const char *err = check_label(label, n);
        if (err)
            return err;
        if (!end)
            break;
        label = end + 1;
    }
    bool letter = false;
    for (const char *p = dot + 1; *p; p++)
        letter |= isalpha((unsigned char)*p) != 0;
    return letter ? NULL
                  : "The part after the @-sign is not valid. It is not within a valid top-level domain.";
}

const char *fs_email_check(const char *email)
{
    if (strlen(email) > FS_EMAIL_MAX)
        return "The email address is too long.";
    const char *at = strchr(email, '@');
    if (!at || strchr(at + 1, '@'))
        return "The email address is not valid. It must have exactly one @-sign.";
    const char *err = check_local(email, (size_t)(at - email));
    return err ? err : check_domain(at + 1);
}
