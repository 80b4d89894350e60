/* TZif reader (see tz.h). Layout of a file (RFC 8536): a 44-byte header, the version 1 data
 * block (32-bit times), and from version 2 on a second header, the same block with 64-bit
 * times, then a footer "\n<POSIX TZ string>\n" that describes every instant after the last
 * transition. Only the second block and the footer are read. */
#include "storage/tz.h"

#include "runtime/date.h"

#include "runtime/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The POSIX TZ rule of the footer: std offset [dst [offset] [,start[/time],end[/time]]].
 * Offsets here are east-positive seconds (the string itself is west-positive). */
typedef struct rule_date {
    char kind;      /* 'J' (1..365, no Feb 29), 'N' (0..365, zero-based), 'M' (month.week.day) */
    int n, m, w, d; /* n for J/N; m, w (1..5, 5 = last), d (0 = Sunday) for M */
    int time;       /* seconds after local midnight (may be negative or > 24 h) */
} rule_date_t;

typedef struct rule {
    int std_off, dst_off;
    bool has_dst;
    rule_date_t start, end;
} rule_t;

struct fs_tz {
    char *name;
    int64_t *at;  /* transition instants, ascending */
    int32_t *off; /* offset in force from at[i] on */
    size_t n;
    int32_t before; /* offset before the first transition */
    bool has_rule;  /* instants after the last transition follow `rule` */
    rule_t rule;
};

/* ---- calendar ------------------------------------------------------------------------------- */

/* Local midnight (as days since the epoch) of a rule date in year y. */
static int64_t rule_day(const rule_date_t *r, int64_t y)
{
    int64_t jan1 = fs_date_to_days((fs_date_t){(int)y, 1, 1});
    if (r->kind == 'J') /* Feb 29 is never counted: day 60 is always March 1 */
        return jan1 + r->n - 1 + (fs_days_in_month((int)y, 2) == 29 && r->n >= 60);
    if (r->kind == 'N')
        return jan1 + r->n;
    int64_t first = fs_date_to_days((fs_date_t){(int)y, r->m, 1});
    int wd_first = (int)(((first % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday (4; 0 = Sunday) */
    int64_t day = first + (r->d - wd_first + 7) % 7 + (int64_t)(r->w - 1) * 7;
    while (day >= first + fs_days_in_month((int)y, r->m))
        day -= 7;
    return day;
}

static int rule_offset(const rule_t *r, int64_t utc)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y = fs_date_from_days((utc + r->std_off) / 86400 - ((utc + r->std_off) % 86400 < 0)).y;
    /* The start time is read in standard time, the end time in daylight time. */
    int64_t start = rule_day(&r->start, y) * 86400 + r->start.time - r->std_off;
    int64_t end = rule_day(&r->end, y) * 86400 + r->end.time - r->dst_off;
    bool dst = start < end ? (utc >= start && utc < end) : (utc >= start || utc < end);
    return dst ? r->dst_off : r->std_off;
}

/* ---- POSIX TZ string ------------------------------------------------------------------------ */

static bool parse_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        const char *e = strchr(s, '>');
        if (!e || e - s < 4)
            return false;
        *p = e + 1;
        return true;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    if (s - *p < 3)
        return false;
    *p = s;
    return true;
}

/* [+-]hh[:mm[:ss]] with hours up to 167 (RFC 8536 allows that much for rule times). */
static bool parse_hms(const char **p, int *out)
{
    const char *s = *p;
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (*s < '0' || *s > '9')
        return false;
    int v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0 && *s != ':')
            break;
        if (i > 0)
            s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            v[i] = v[i] * 10 + (*s++ - '0');
        if (v[i] > (i ? 59 : 167))
            return false;
    }
    *out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
    *p = s;
    return true;
}

static bool parse_int(const char **p, int lo, int hi, int *out)
{
    char *e;
    long v = strtol(*p, &e, 10);
    if (e == *p || v < lo || v > hi)
        return false;
    *out = (int)v, *p = e;
    return true;
}

static bool parse_rule_date(const char **p, rule_date_t *r)
{
    r->time = 7200; /* 02:00 unless given */
    bool ok;
    if (**p == 'M') {
        (*p)++;
        r->kind = 'M';
        ok = parse_int(p, 1, 12, &r->m) && *(*p)++ == '.' && parse_int(p, 1, 5, &r->w) && *(*p)++ == '.' &&
             parse_int(p, 0, 6, &r->d);
    } else if (**p == 'J') {
        (*p)++;
        r->kind = 'J';
        ok = parse_int(p, 1, 365, &r->n);
    } else {
        r->kind = 'N';
        ok = parse_int(p, 0, 365, &r->n);
    }
    if (ok && **p == '/') {
        (*p)++;
        ok = parse_hms(p, &r->time);
    }
    return ok;
}

static bool parse_posix(const char *s, rule_t *r)
{
    int west;
    memset(r, 0, sizeof *r);
    if (!parse_name(&s) || !parse_hms(&s, &west))
        return false;
    r->std_off = -west;
    if (!*s)
        return true;
    if (!parse_name(&s))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s && *s != ',') {
        if (!parse_hms(&s, &west))
            return false;
        r->dst_off = -west;
    }
    if (*s != ',') /* a DST name without a rule: the POSIX default rule is implementation-defined */
        return false;
    s++;
    if (!parse_rule_date(&s, &r->start) || *s++ != ',' || !parse_rule_date(&s, &r->end))
        return false;
    return *s == '\0';
}

/* ---- TZif ----------------------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct counts {
    uint32_t isut, isstd, leap, time, type, chars;
} counts_t;

static bool read_header(const unsigned char *d, size_t len, counts_t *c)
{
    if (len < 44 || memcmp(d, "TZif", 4) != 0)
        return false;
    *c = (counts_t){be32(d + 20), be32(d + 24), be32(d + 28), be32(d + 32), be32(d + 36), be32(d + 40)};
    return c->type > 0 && c->type <= 256 && c->time <= 1000000 && c->chars <= 100000 && c->leap <= 100000 &&
           c->isut <= c->type && c->isstd <= c->type;
}

static size_t block_size(const counts_t *c, size_t tsize)
{
    return c->time * tsize + c->time + c->type * 6 + c->chars + c->leap * (tsize + 4) + c->isstd + c->isut;
}

/* Fills z from the 64-bit block at `d` (len bytes from its header on). */
static bool read_v2(fs_tz_t *z, const unsigned char *d, size_t len, const counts_t *c, size_t *used)
{
    size_t need = 44 + block_size(c, 8);
    if (len < need)
        return false;
    const unsigned char *times = d + 44, *idx = times + c->time * 8, *types = idx + c->time;
    int32_t *type_off = fs_malloc(c->type * sizeof *type_off);
    for (uint32_t i = 0; i < c->type; i++)
        type_off[i] = (int32_t)be32(types + i * 6);
    z->at = fs_malloc((c->time ? c->time : 1) * sizeof *z->at);
    z->off = fs_malloc((c->time ? c->time : 1) * sizeof *z->off);
    bool ok = true;
    for (uint32_t i = 0; i < c->time && ok; i++) {
        z->at[i] = be64(times + i * 8);
        ok = idx[i] < c->type && (i == 0 || z->at[i] > z->at[i - 1]);
        z->off[i] = ok ? type_off[idx[i]] : 0;
    }
    z->n = c->time;
    z->before = type_off[0];
    free(type_off);
    *used = need;
    return ok;
}

fs_tz_t *fs_tz_parse(const unsigned char *data, size_t len, const char *name)
{
    counts_t c1, c2;
    if (!read_header(data, len, &c1) || data[4] < '2')
        return NULL; /* version 1 files (32-bit only) are not produced by zic since 2005 */
    size_t skip = 44 + block_size(&c1, 4), used;
    if (len < skip || !read_header(data + skip, len - skip, &c2))
        return NULL;
    fs_tz_t *z = FS_NEW(fs_tz_t);
    z->name = fs_strdup(name ? name : "");
    if (!read_v2(z, data + skip, len - skip, &c2, &used)) {
        fs_tz_free(z);
        return NULL;
    }
    const char *foot = (const char *)data + skip + used, *end = (const char *)data + len;
    if (foot < end && *foot == '\n') {
        const char *nl = memchr(foot + 1, '\n', (size_t)(end - foot - 1));
        if (nl && nl > foot + 1) {
            char *s = fs_strndup(foot + 1, (size_t)(nl - foot - 1));
            z->has_rule = parse_posix(s, &z->rule);
            free(s);
        }
    }
    return z;
}

fs_tz_t *fs_tz_load_file(const char *path, const char *name)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char buf[1 << 16]; /* the largest zone files are under 4 KB */
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return fs_tz_parse(buf, len, name ? name : path);
}

fs_tz_t *fs_tz_load(const char *name)
{
    if (!name || !*name || name[0] == '/' || strstr(name, "..") || strlen(name) > 200)
        return NULL;
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    return fs_tz_load_file(path, name);
}

fs_tz_t *fs_tz_fixed(int offset_s, const char *name)
{
    fs_tz_t *z = FS_NEW(fs_tz_t);
    z->name = fs_strdup(name ? name : "");
    z->before = offset_s;
    z->has_rule = true;
    z->rule.std_off = offset_s;
    return z;
}

void fs_tz_free(fs_tz_t *z)
{
    if (!z)
        return;
    free(z->name), free(z->at), free(z->off), free(z);
}

const char *fs_tz_name(const fs_tz_t *z)
{
    return z->name;
}

size_t fs_tz_memory(const fs_tz_t *z)
{
    return sizeof *z + strlen(z->name) + 1 + z->n * (sizeof *z->at + sizeof *z->off);
}

int fs_tz_offset(const fs_tz_t *z, int64_t utc)
{
    if (z->n == 0 || utc < z->at[0])
        return z->n == 0 && z->has_rule ? rule_offset(&z->rule, utc) : z->before;
    if (utc >= z->at[z->n - 1] && z->has_rule)
        return rule_offset(&z->rule, utc);
    size_t lo = 0, hi = z->n; /* the last transition at or before utc */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (z->at[mid] <= utc)
            lo = mid;
        else
            hi = mid;
    }
    return z->off[lo];
}

int64_t fs_tz_local_to_utc(const fs_tz_t *z, int64_t local)
{
    /* Offsets lie within +-26 h, and zones never change twice within two days: the offsets a
     * day either side are the only candidates. */
    int a = fs_tz_offset(z, local - 86400), b = fs_tz_offset(z, local + 86400);
    bool va = fs_tz_offset(z, local - a) == a, vb = fs_tz_offset(z, local - b) == b;
    if (va && vb)
        return local - (a > b ? a : b);
    if (vb && !va)
        return local - b;
    return local - a;
}
