/* Time zones: the TZif reader against the system's zone files (DST both hemispheres, zones
 * across the date line, 30/45-minute offsets, the POSIX footer rule past the file's last
 * transition), local-to-UTC in gaps and overlaps, and files it must refuse. */
#include <criterion/criterion.h>

#include "storage/tz.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
    return (int64_t)timegm(&tm);
}

static fs_tz_t *load(const char *name)
{
    fs_tz_t *z = fs_tz_load(name);
    cr_assert(z, "cannot load %s", name);
    cr_assert_str_eq(fs_tz_name(z), name);
    return z;
}

#define H(x) ((int)((x)*3600))

Test(tz, dublin_transitions_both_ways)
{
    fs_tz_t *z = load("Europe/Dublin");
    cr_expect_eq(fs_tz_offset(z, utc(2025, 3, 30, 0, 59, 59)), 0);
    cr_expect_eq(fs_tz_offset(z, utc(2025, 3, 30, 1, 0, 0)), H(1));
    cr_expect_eq(fs_tz_offset(z, utc(2025, 10, 26, 0, 59, 59)), H(1));
    cr_expect_eq(fs_tz_offset(z, utc(2025, 10, 26, 1, 0, 0)), 0);
    fs_tz_free(z);
}

Test(tz, rule_past_the_last_transition)
{
    /* Fat files stop in 2037; later instants come from the footer ("IST-1GMT0,M10.5.0,M3.5.0/1":
     * Dublin's winter time is its "daylight" time, a negative DST). */
    fs_tz_t *z = load("Europe/Dublin");
    cr_expect_eq(fs_tz_offset(z, utc(2045, 3, 26, 0, 59, 59)), 0);
    cr_expect_eq(fs_tz_offset(z, utc(2045, 3, 26, 1, 0, 0)), H(1));
    cr_expect_eq(fs_tz_offset(z, utc(2045, 12, 25, 12, 0, 0)), 0);
    fs_tz_free(z);
    z = load("America/New_York");
    cr_expect_eq(fs_tz_offset(z, utc(2060, 3, 14, 6, 59, 59)), H(-5));
    cr_expect_eq(fs_tz_offset(z, utc(2060, 3, 14, 7, 0, 0)), H(-4));
    fs_tz_free(z);
    z = load("America/Santiago"); /* "<-04>4<-03>,M9.1.6/24,M4.1.6/24": 24:00 rule times */
    cr_expect_eq(fs_tz_offset(z, utc(2050, 1, 1, 0, 0, 0)), H(-3));
    cr_expect_eq(fs_tz_offset(z, utc(2050, 7, 1, 0, 0, 0)), H(-4));
    fs_tz_free(z);
}

Test(tz, southern_hemisphere)
{
    fs_tz_t *z = load("Australia/Sydney");
    cr_expect_eq(fs_tz_offset(z, utc(2025, 4, 5, 15, 59, 59)), H(11)); /* DST ends first Sunday of April */
    cr_expect_eq(fs_tz_offset(z, utc(2025, 4, 5, 16, 0, 0)), H(10));
    cr_expect_eq(fs_tz_offset(z, utc(2025, 10, 4, 15, 59, 59)), H(10)); /* starts first Sunday of October */
    cr_expect_eq(fs_tz_offset(z, utc(2025, 10, 4, 16, 0, 0)), H(11));
    /* and from the rule, which wraps the year */
    cr_expect_eq(fs_tz_offset(z, utc(2050, 10, 1, 15, 59, 59)), H(10));
    cr_expect_eq(fs_tz_offset(z, utc(2050, 10, 1, 16, 0, 0)), H(11));
    cr_expect_eq(fs_tz_offset(z, utc(2050, 4, 2, 15, 59, 59)), H(11));
    cr_expect_eq(fs_tz_offset(z, utc(2050, 4, 2, 16, 0, 0)), H(10));
    fs_tz_free(z);
}

Test(tz, across_the_date_line)
{
    fs_tz_t *z = load("Pacific/Auckland");
    cr_expect_eq(fs_tz_offset(z, utc(2025, 1, 15, 0, 0, 0)), H(13));
    cr_expect_eq(fs_tz_offset(z, utc(2025, 7, 15, 0, 0, 0)), H(12));
    fs_tz_free(z);
    z = load("Pacific/Kiritimati"); /* moved from -10 to +14 at the end of 1994 */
    cr_expect_eq(fs_tz_offset(z, utc(1990, 1, 1, 0, 0, 0)), H(-10));
    cr_expect_eq(fs_tz_offset(z, utc(2025, 1, 15, 0, 0, 0)), H(14));
    cr_expect_eq(fs_tz_offset(z, utc(2070, 6, 1, 0, 0, 0)), H(14));
    fs_tz_free(z);
}

Test(tz, fractional_offsets)
{
    struct {
        const char *zone;
        int64_t at;
        int want;
    } cases[] = {
        {"Asia/Kolkata", utc(2060, 1, 1, 0, 0, 0), H(5.5)},
        {"Asia/Kathmandu", utc(2025, 1, 1, 0, 0, 0), H(5.75)},
        {"Australia/Eucla", utc(2025, 1, 1, 0, 0, 0), H(8.75)},
        {"Pacific/Chatham", utc(2025, 1, 15, 0, 0, 0), H(13.75)},
        {"Pacific/Chatham", utc(2025, 7, 15, 0, 0, 0), H(12.75)},
        {"Pacific/Chatham", utc(2050, 1, 15, 0, 0, 0), H(13.75)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fs_tz_t *z = load(cases[i].zone);
        cr_expect_eq(fs_tz_offset(z, cases[i].at), cases[i].want, "%s", cases[i].zone);
        fs_tz_free(z);
    }
}

Test(tz, local_to_utc_gap_and_overlap)
{
    fs_tz_t *z = load("Europe/Dublin");
    int64_t day = utc(2025, 3, 30, 0, 0, 0); /* local wall clock of that day, as if UTC */
    cr_expect_eq(fs_tz_local_to_utc(z, day + 12 * 3600), utc(2025, 3, 30, 11, 0, 0));
    /* 01:30 does not exist (01:00 -> 02:00): read with the offset before, i.e. 01:30 UTC */
    cr_expect_eq(fs_tz_local_to_utc(z, day + 90 * 60), utc(2025, 3, 30, 1, 30, 0));
    /* 01:30 happens twice on 26 October: the earlier instant (00:30 UTC, still at +1) */
    day = utc(2025, 10, 26, 0, 0, 0);
    cr_expect_eq(fs_tz_local_to_utc(z, day + 90 * 60), utc(2025, 10, 26, 0, 30, 0));
    cr_expect_eq(fs_tz_local_to_utc(z, day + 3 * 3600), utc(2025, 10, 26, 3, 0, 0));
    fs_tz_free(z);
    z = load("Pacific/Kiritimati"); /* local 2025-01-15 10:00 is 2025-01-14 20:00 UTC */
    cr_expect_eq(fs_tz_local_to_utc(z, utc(2025, 1, 15, 10, 0, 0)), utc(2025, 1, 14, 20, 0, 0));
    fs_tz_free(z);
}

Test(tz, fixed_offset)
{
    fs_tz_t *z = fs_tz_fixed(H(-3), "UTC-3");
    cr_expect_eq(fs_tz_offset(z, 0), H(-3));
    cr_expect_eq(fs_tz_offset(z, utc(2080, 1, 1, 0, 0, 0)), H(-3));
    cr_expect_eq(fs_tz_local_to_utc(z, utc(2025, 1, 1, 9, 0, 0)), utc(2025, 1, 1, 12, 0, 0));
    cr_expect_str_eq(fs_tz_name(z), "UTC-3");
    fs_tz_free(z);
}

/* A minimal version 2 file: no transitions, one type, the footer `rule`. */
static size_t tzif_with_rule(unsigned char *buf, const char *rule, int utoff)
{
    size_t n = 0;
    for (int v = 0; v < 2; v++) {
        memset(buf + n, 0, 44);
        memcpy(buf + n, "TZif2", 5);
        buf[n + 39] = 1; /* typecnt */
        buf[n + 43] = 4; /* charcnt */
        n += 44;
        buf[n++] = (unsigned char)((uint32_t)utoff >> 24), buf[n++] = (unsigned char)((uint32_t)utoff >> 16);
        buf[n++] = (unsigned char)((uint32_t)utoff >> 8), buf[n++] = (unsigned char)utoff;
        buf[n++] = 0, buf[n++] = 0; /* isdst, desigidx */
        memcpy(buf + n, "XXX", 4), n += 4;
    }
    n += (size_t)sprintf((char *)buf + n, "\n%s\n", rule);
    return n;
}

Test(tz, posix_rule_forms)
{
    unsigned char buf[256];
    /* Julian day forms: J60 is always 1 March; 0-based n counts 29 February */
    fs_tz_t *z = fs_tz_parse(buf, tzif_with_rule(buf, "AAA3BBB,J60/0,J300/0", H(-3)), "j");
    cr_assert(z);
    cr_expect_eq(fs_tz_offset(z, utc(2024, 2, 29, 12, 0, 0)), H(-3));
    cr_expect_eq(fs_tz_offset(z, utc(2024, 3, 1, 3, 0, 0)), H(-2));
    cr_expect_eq(fs_tz_offset(z, utc(2024, 2, 29, 2, 59, 59)), H(-3));
    fs_tz_free(z);
    z = fs_tz_parse(buf, tzif_with_rule(buf, "<+0530>-5:30", H(5.5)), "fixed");
    cr_assert(z);
    cr_expect_eq(fs_tz_offset(z, utc(2030, 6, 1, 0, 0, 0)), H(5.5));
    fs_tz_free(z);
    /* a rule that cannot be read leaves the last known offset in force */
    z = fs_tz_parse(buf, tzif_with_rule(buf, "AAA3BBB,Q1,Q2", H(-3)), "bad");
    cr_assert(z);
    cr_expect_eq(fs_tz_offset(z, utc(2030, 6, 1, 0, 0, 0)), H(-3));
    fs_tz_free(z);
}

Test(tz, refuses_bad_names_and_files)
{
    cr_expect_null(fs_tz_load("../../etc/passwd"));
    cr_expect_null(fs_tz_load("/etc/passwd"));
    cr_expect_null(fs_tz_load("Nowhere/Atlantis"));
    cr_expect_null(fs_tz_load(""));
    cr_expect_null(fs_tz_load(NULL));
    cr_expect_null(fs_tz_load_file("/etc/hostname", NULL));
    unsigned char junk[100] = "TZif2 but nothing else";
    cr_expect_null(fs_tz_parse(junk, sizeof junk, "junk"));
    cr_expect_null(fs_tz_parse(junk, 10, "short"));
    unsigned char buf[256];
    size_t n = tzif_with_rule(buf, "UTC0", 0);
    buf[4] = '1'; /* version 1 only: refused */
    cr_expect_null(fs_tz_parse(buf, n, "v1"));
}

static void *lookups(void *arg)
{
    const fs_tz_t *z = arg;
    long bad = 0;
    for (int64_t t = utc(2020, 1, 1, 0, 0, 0); t < utc(2060, 1, 1, 0, 0, 0); t += 86400 * 7 + 3607) {
        int o = fs_tz_offset(z, t);
        bad += o != H(11) && o != H(10);
    }
    return (void *)bad;
}

Test(tz, shared_between_threads)
{
    fs_tz_t *z = load("Australia/Sydney");
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, lookups, z);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(th[i], &bad);
        cr_expect_eq((long)bad, 0);
    }
    fs_tz_free(z);
}
