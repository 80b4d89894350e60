/* RFC 4180 CSV reader (see csv.h). Records are split in place: unquoting only ever shortens a
 * field, so the write cursor never passes the read cursor and the NUL that ends a field can
 * overwrite its delimiter. */
#include "storage/csv.h"

#include "runtime/alloc.h"
#include "storage/textfold.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct fs_csv {
    char *buf;     /* the file, NUL-terminated */
    size_t len;
    size_t pos;
    long line;     /* line number at pos */
};

static long line_of(const char *buf, size_t off)
{
    long line = 1;
    for (size_t i = 0; i < off; i++)
        line += buf[i] == '\n';
    return line;
}

static fs_csv_t *finish_open(char *buf, size_t len, const char *name, char **err)
{
    size_t bad;
    if (!fs_fold_utf8_valid(buf, len, &bad)) {
        *err = fs_sprintf("%s:%ld: not valid UTF-8 (byte 0x%02x at offset %zu); convert the file to UTF-8",
                          name, line_of(buf, bad), (unsigned char)buf[bad], bad);
        free(buf);
        return NULL;
    }
    fs_csv_t *c = FS_NEW(fs_csv_t);
    c->buf = buf;
    c->len = len;
    c->line = 1;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        c->pos = 3;
    return c;
}

fs_csv_t *fs_csv_open_mem(const char *data, size_t len, const char *name, char **err)
{
    char *buf = fs_malloc(len + 1);
    memcpy(buf, data, len);
    buf[len] = '\0';
    return finish_open(buf, len, name, err);
}

fs_csv_t *fs_csv_open(const char *path, char **err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err = fs_sprintf("%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        *err = fs_sprintf("%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    if ((unsigned long long)st.st_size > FS_CSV_MAX_BYTES) {
        *err = fs_sprintf("%s: file too large (%lld bytes, limit %u)", path, (long long)st.st_size, FS_CSV_MAX_BYTES);
        fclose(f);
        return NULL;
    }
    size_t len = (size_t)st.st_size;
    char *buf = fs_malloc(len + 1);
    size_t got = fread(buf, 1, len, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || got != len) {
        *err = fs_sprintf("%s: read error", path);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return finish_open(buf, len, path, err);
}

/* Skips blank lines (LF or CRLF) before a record. */
static void skip_blank(fs_csv_t *c)
{
    for (;;) {
        if (c->pos < c->len && c->buf[c->pos] == '\n') {
            c->pos++, c->line++;
        } else if (c->pos + 1 < c->len && c->buf[c->pos] == '\r' && c->buf[c->pos + 1] == '\n') {
            c->pos += 2, c->line++;
        } else {
            return;
        }
    }
}

static void add_field(fs_csv_record_t *rec, char *start, size_t len, bool quoted)
{
    start[len] = '\0';
    if (rec->nfields == FS_CSV_MAX_FIELDS) {
        rec->malformed = "too many fields";
        return;
    }
    rec->fields[rec->nfields] = start;
    rec->lens[rec->nfields] = len;
    rec->quoted[rec->nfields] = quoted;
    rec->nfields++;
}

/* Is there a record terminator at p? Returns its length (1 for LF, 2 for CRLF) or 0. */
static size_t eol_at(const fs_csv_t *c, size_t p)
{
    if (p < c->len && c->buf[p] == '\n')
        return 1;
    if (p + 1 < c->len && c->buf[p] == '\r' && c->buf[p + 1] == '\n')
        return 2;
    if (p + 1 == c->len && c->buf[p] == '\r')
        return 1;
    return 0;
}

/* Parses a quoted field starting at the opening quote; leaves c->pos after the closing quote.
 * Returns the unquoted length, or -1 when the input ends first. */
static long parse_quoted(fs_csv_t *c, char *out)
{
    size_t w = 0;
    c->pos++; /* opening quote */
    while (c->pos < c->len) {
        char ch = c->buf[c->pos];
        if (ch == '"') {
            if (c->pos + 1 < c->len && c->buf[c->pos + 1] == '"') {
                out[w++] = '"';
                c->pos += 2;
                continue;
            }
            c->pos++;
            return (long)w;
        }
        if (ch == '\n')
            c->line++;
        out[w++] = ch;
        c->pos++;
    }
    return -1;
}

int fs_csv_next(fs_csv_t *c, fs_csv_record_t *rec, char **err)
{
    skip_blank(c);
    if (c->pos >= c->len)
        return 0;
    rec->nfields = 0;
    rec->malformed = NULL;
    rec->line = c->line;
    for (;;) {
        char *start = c->buf + c->pos;
        size_t len;
        bool quoted = c->buf[c->pos] == '"';
        if (quoted) {
            long n = parse_quoted(c, start);
            if (n < 0) {
                *err = fs_sprintf("line %ld: quoted field never closed before the end of the file", rec->line);
                return -1;
            }
            len = (size_t)n;
            if (c->pos < c->len && c->buf[c->pos] != ',' && !eol_at(c, c->pos)) {
                rec->malformed = "text after a closing quote";
                while (c->pos < c->len && c->buf[c->pos] != ',' && !eol_at(c, c->pos))
                    c->pos++;
            }
        } else {
            size_t p = c->pos;
            while (p < c->len && c->buf[p] != ',' && !eol_at(c, p))
                p++;
            len = p - c->pos;
            c->pos = p;
        }
        bool more = c->pos < c->len && c->buf[c->pos] == ',';
        size_t eol = more ? 0 : eol_at(c, c->pos);
        add_field(rec, start, len, quoted); /* may overwrite the delimiter: already inspected */
        if (more) {
            c->pos++;
            continue;
        }
        c->pos += eol;
        if (eol)
            c->line++;
        return 1;
    }
}

size_t fs_csv_offset(const fs_csv_t *c) { return c->pos; }
size_t fs_csv_size(const fs_csv_t *c) { return c->len; }

void fs_csv_close(fs_csv_t *c)
{
    if (!c)
        return;
    free(c->buf);
    free(c);
}

bool fs_csv_field_null(const fs_csv_record_t *rec, size_t i)
{
    return i < rec->nfields && !rec->quoted[i] && rec->lens[i] == 2 && rec->fields[i][0] == '\\' &&
           rec->fields[i][1] == 'N';
}

size_t fs_csv_unescape_backslash(char *s, size_t len)
{
    size_t w = 0;
    for (size_t r = 0; r < len; r++) {
        if (s[r] == '\\' && r + 1 < len && (s[r + 1] == '\'' || s[r + 1] == '\\'))
            r++;
        s[w++] = s[r];
    }
    s[w] = '\0';
    return w;
}
