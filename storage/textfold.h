/* Folding text for matching: lower-case ASCII, Latin letters with diacritics folded to their
 * ASCII base ("Málaga" -> "malaga", "Zürich" -> "zurich", ß -> ss, æ -> ae, ø -> o, ł -> l,
 * İ/ı -> i), combining marks dropped (so NFD input folds like NFC), typographic apostrophes and
 * dashes made ASCII, and runs of white space collapsed to one space with both ends trimmed.
 * Code points outside the table (Cyrillic, CJK, ...) are copied unchanged, so a query in those
 * scripts still matches the same bytes. The same table backs the SQL function fs_fold()
 * (storage/migrations/002_reference_data.sql). */
#ifndef FS_TEXTFOLD_H
#define FS_TEXTFOLD_H

#include <stdbool.h>
#include <stddef.h>

/* Folds `len` bytes of UTF-8 into a new NUL-terminated string (caller frees). Invalid UTF-8
 * bytes are copied as they are. Never returns NULL. */
char *fs_fold(const char *s, size_t len);

/* Folds into `out` (at most `cap` bytes including the NUL; folding never grows text by more
 * than 2x, so cap = 2 * len + 1 always suffices). Returns the folded length. */
size_t fs_fold_into(const char *s, size_t len, char *out, size_t cap);

/* Is `s[0..len)` well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF)? When it is not
 * and `bad_offset` is given, it receives the offset of the first bad byte. */
bool fs_fold_utf8_valid(const char *s, size_t len, size_t *bad_offset);

#endif
