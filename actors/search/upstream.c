/* Helpers for upstream providers (upstream.h). */
#include "actors/search/upstream.h"

#include "storage/refdata_live.h"
#include "storage/timetable.h"
#include "storage/tz.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_OFFSET_GAP_MIN (26 * 60) /* two zones are never further apart */

void fs_upstream_copy(char *out, size_t cap, const char *s)
{
    if (cap == 0)
        return;
    snprintf(out, cap, "%s", s ? s : "");
}

int fs_upstream_duration_min(const char *s)
{
    if (!s || *s++ != 'P')
        return -1;
    bool in_time = false, any = false;
    double minutes = 0;
    while (*s) {
        if (*s == 'T') {
            in_time = true;
            s++;
            continue;
        }
        char *end;
        double v = strtod(s, &end);
        if (end == s || !*end)
            return -1;
        switch (*end) {
        case 'W': minutes += v * 7 * 1440; break;
        case 'D': minutes += v * 1440; break;
        case 'H': minutes += v * 60; break;
        case 'M': minutes += in_time ? v : v * 30 * 1440; break;
        case 'S': minutes += v / 60; break;
        default: return -1;
        }
        any = true;
        s = end + 1;
    }
    return any ? (int)(minutes + 0.5) : -1;
}

bool fs_upstream_parse_time(const char *s, int64_t *wall, bool *has_offset, int *offset_min)
{
    int y, mo, d, h, mi, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d%n", &y, &mo, &d, &h, &mi, &n) != 5 || n < 16)
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > fs_days_in_month(y, mo) || h > 23 || mi > 59 || h < 0 || mi < 0)
        return false;
    const char *p = s + n;
    int sec = 0;
    if (*p == ':') {
        char *end;
        double v = strtod(p + 1, &end);
        if (end == p + 1 || v < 0 || v >= 61)
            return false;
        sec = (int)v;
        p = end;
    }
    *wall = fs_date_to_days((fs_date_t){y, mo, d}) * 86400 + h * 3600 + mi * 60 + sec;
    *has_offset = false;
    *offset_min = 0;
    if (*p == 'Z') {
        *has_offset = true;
    } else if (*p == '+' || *p == '-') {
        int oh = 0, om = 0;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) < 1)
            return false;
        *has_offset = true;
        *offset_min = (*p == '-' ? -1 : 1) * (oh * 60 + om);
    }
    return true;
}

/* The offset (minutes) of `code` at local time `wall`, from the worker's reference data. */
static bool zone_offset(const char *code, int64_t wall, int *offset_min)
{
    const fs_refdata_t *rd = fs_refdata_current();
    if (!rd || !rd->timetable)
        return false;
    int ap = fs_timetable_airport(rd->timetable, code);
    if (ap < 0 || !rd->timetable->airports[ap].tz)
        return false;
    int64_t utc = fs_tz_local_to_utc(rd->timetable->airports[ap].tz, wall);
    *offset_min = (int)((wall - utc) / 60);
    return true;
}

bool fs_upstream_segment_times(fs_segment_t *sg, const char *dep_local, const char *arr_local, int duration_min,
                               int *chain_offset_min)
{
    int64_t wd, wa;
    bool hd, ha;
    int od, oa;
    if (!fs_upstream_parse_time(dep_local, &wd, &hd, &od) || !fs_upstream_parse_time(arr_local, &wa, &ha, &oa))
        return false;
    if (!hd)
        hd = zone_offset(sg->from, wd, &od);
    if (!hd)
        od = *chain_offset_min;
    if (!ha)
        ha = zone_offset(sg->to, wa, &oa);
    if (!ha) {
        oa = od;
        if (duration_min >= 0) {
            int gap = (int)((wa - wd) / 60) - duration_min;
            if (abs(gap) <= MAX_OFFSET_GAP_MIN)
                oa = od + gap;
        }
    }
    sg->dep_offset_min = od;
    sg->arr_offset_min = oa;
    sg->dep_utc = wd - (int64_t)od * 60;
    sg->arr_utc = wa - (int64_t)oa * 60;
    sg->duration_min = duration_min >= 0 ? duration_min : (int)((sg->arr_utc - sg->dep_utc) / 60);
    *chain_offset_min = oa;
    return sg->arr_utc >= sg->dep_utc;
}

fs_provider_outcome_t fs_upstream_outcome(int status)
{
    switch (status) {
    case 400:
    case 404:
    case 422:
        return FS_PROVIDER_BAD_QUERY;
    case 429:
        return FS_PROVIDER_RATE_LIMITED;
    default:
        return status >= 200 && status < 300 ? FS_PROVIDER_OK : FS_PROVIDER_FAILED;
    }
}

static const char *first_string(json_t *o, const char *const *keys)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(o, *keys);
        if (json_is_string(v) && json_string_length(v) > 0)
            return json_string_value(v);
    }
    return NULL;
}

void fs_upstream_error_text(int status, const char *body, const char *retry_after, char *out, size_t cap)
{
    static const char *const keys[] = {"detail", "message", "error_description", "title", "error", NULL};
    json_t *root = body ? json_loads(body, 0, NULL) : NULL;
    const char *why = NULL;
    json_t *errs = json_object_get(root, "errors");
    if (json_is_array(errs) && json_array_size(errs) > 0)
        why = first_string(json_array_get(errs, 0), keys);
    if (!why && json_is_object(root))
        why = first_string(root, keys);
    snprintf(out, cap, "HTTP %d%s%.160s%s%.16s", status, why ? ": " : "", why ? why : "",
             retry_after ? ", retry after " : "", retry_after ? retry_after : "");
    json_decref(root);
}

fs_offer_list_t *fs_upstream_map_offers(json_t *items, const fs_search_query_t *q, fs_upstream_map_fn map)
{
    fs_offer_list_t *l = fs_offer_list_new();
    int64_t priced_at = (int64_t)time(NULL);
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        fs_offer_t tmp = {0};
        if (map(item, q, priced_at, &tmp))
            *fs_offer_list_add(l) = tmp;
    }
    return l;
}
