/* E-mail addresses of accounts: one normal form everywhere (registration, login, CLI), so
 * that "Ann@Example.com " and "ann@example.com" are the same account. */
#ifndef FS_EMAIL_H
#define FS_EMAIL_H

#include <stddef.h>

/* Longest address accepted (RFC 5321 path limit, and the users.email column). */
#define FS_EMAIL_MAX 254

/* Trims surrounding whitespace and lower-cases ASCII letters. Returns a new string. */
char *fs_email_normalize(const char *raw);

/* NULL when `email` (already normalized) is an address we accept, else the reason, in the
 * words pydantic's EmailStr uses. Only ASCII addresses are accepted: a local part of atext
 * characters and single dots (at most 64), and a domain of at least two LDH labels whose last
 * label has a letter. */
const char *fs_email_check(const char *email);

#endif
