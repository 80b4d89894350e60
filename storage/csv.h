/* A reader for RFC 4180 CSV and the OpenFlights ".dat" dialect.
 *
 * The whole file is read into memory (reference files are a few MB; the reader refuses files
 * over FS_CSV_MAX_BYTES) and checked to be UTF-8 before the first record is returned, so a
 * caller never imports half of a file in the wrong encoding. Records are split in place:
 * quoted fields may hold commas, doubled quotes ("") and line breaks; CRLF and LF both end a
 * record; a UTF-8 byte order mark is skipped; blank lines are skipped. Field pointers stay valid
 * until the next fs_csv_next() call.
 *
 * Dialect details are left to the caller on purpose: OpenFlights writes NULL as an unquoted \N
 * and escapes apostrophes as \' — fs_csv_field_null() and fs_csv_unescape_backslash() handle
 * those, and `quoted` tells an empty quoted "" from an empty unquoted field.
 */
#ifndef FS_CSV_H
#define FS_CSV_H

#include <stdbool.h>
#include <stddef.h>

#define FS_CSV_MAX_BYTES (256u * 1024 * 1024)
#define FS_CSV_MAX_FIELDS 64

typedef struct fs_csv fs_csv_t;

typedef struct fs_csv_record {
    long line;                          /** line number (1-based) where the record starts */
    size_t nfields;                     /** fields in this record (at most FS_CSV_MAX_FIELDS) */
    char *fields[FS_CSV_MAX_FIELDS];    /** NUL-terminated field text, quotes removed */
    size_t lens[FS_CSV_MAX_FIELDS];     /** byte length of each field */
    bool quoted[FS_CSV_MAX_FIELDS];     /** was the field written in quotes */
    const char *malformed;              /** NULL, or why this record is structurally broken
                                            (text after a closing quote, too many fields) */
} fs_csv_record_t;

/* Opens and reads `path`. On error returns NULL and sets *err (caller frees) to a message
 * naming the file and, for bad encoding, the line: unreadable file, too large, invalid UTF-8. */
fs_csv_t *fs_csv_open(const char *path, char **err);

/* Same over a copy of `len` bytes of memory (tests, embedded data). */
fs_csv_t *fs_csv_open_mem(const char *data, size_t len, const char *name, char **err);

/* Reads the next record. Returns 1 with *rec filled, 0 at end of input, or -1 when the input
 * ends inside a quoted field (*err set, caller frees; the file is malformed as a whole). */
int fs_csv_next(fs_csv_t *c, fs_csv_record_t *rec, char **err);

/* Bytes consumed so far and in total (for progress reports). */
size_t fs_csv_offset(const fs_csv_t *c);
size_t fs_csv_size(const fs_csv_t *c);

void fs_csv_close(fs_csv_t *c);

/* True for an unquoted \N (OpenFlights NULL). */
bool fs_csv_field_null(const fs_csv_record_t *rec, size_t i);

/* Rewrites \' as ' and \\ as \ in place (MySQL-style escapes in OpenFlights data); returns the
 * new length. */
size_t fs_csv_unescape_backslash(char *s, size_t len);

#endif
