/* Flight data providers behind one interface.
 *
 * A provider is one file, actors/search/providers/NAME.c, that defines
 *
 *     const fs_provider_ops_t fs_provider_NAME = { .name = "NAME", ... };
 *
 * The build generates the registry (fs_provider_registry) from the files in that folder, so
 * adding or dropping a provider is adding or deleting that one file (docs/PROVIDERS.md). Its
 * settings are read with fs_config_extra() (runtime/config.h), so no other file names them.
 *
 * Every call runs on the worker's loop thread and must not block: network work goes through
 * the worker's libcurl multi client (runtime/http_client.h), CPU-heavy work to the thread pool.
 * `done` runs exactly once, never before the call returns.
 */
#ifndef FS_PROVIDER_H
#define FS_PROVIDER_H

#include "actors/search/offer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
typedef struct fs_threadpool fs_threadpool_t;
typedef struct fs_http_client fs_http_client_t;
typedef struct fs_metrics fs_metrics_t;

/* An observed fare from price_history: it replaces the modelled fare of that leg. */
typedef struct fs_observed_fare {
    char origin[4], destination[4];
    char carrier[4];
    fs_date_t date;           /* departure date of the flight */
    fs_cabin_t cabin;
    double price;             /* per passenger, EUR */
    int64_t observed_at;      /* unix seconds */
} fs_observed_fare_t;

#define FS_MAX_CITY_AIRPORTS 8

/* One search, already validated. Codes are upper case. When the client sent a multi-airport
 * city code (e.g. "LON"), `origin` holds it and `origin_airports` its airports; otherwise
 * `origin_airports` holds the one airport. The same for the destination. */
typedef struct fs_search_query {
    char origin[4], destination[4];
    char origin_airports[FS_MAX_CITY_AIRPORTS][4];
    int n_origin_airports;
    char destination_airports[FS_MAX_CITY_AIRPORTS][4];
    int n_destination_airports;
    fs_date_t departure;
    fs_date_t return_date;
    bool has_return;
    int passengers;           /* 1..9 */
    fs_cabin_t cabin;
    bool direct_only;
    int64_t now;              /* unix seconds: "today" for days-to-departure and priced_at */
    const fs_observed_fare_t *observed; /* borrowed for the duration of the call; may be NULL */
    size_t n_observed;
} fs_search_query_t;

/* What a provider got back. */
typedef enum fs_provider_outcome {
    FS_PROVIDER_OK = 0,       /* offers (possibly none) */
    FS_PROVIDER_FAILED,       /* upstream fault: error, 5xx, timeout, malformed answer */
    FS_PROVIDER_RATE_LIMITED, /* 429 upstream, or our own per-provider limit refused the call */
    FS_PROVIDER_BAD_QUERY,    /* the upstream refused the query itself (4xx on input): not a
                                 provider fault, so health is not touched */
} fs_provider_outcome_t;

/* `offers` belongs to the callee (free with fs_offer_list_free); NULL unless FS_PROVIDER_OK.
 * `error` is a short reason (valid during the call) when not OK. */
typedef void (*fs_provider_done_fn)(fs_provider_outcome_t outcome, fs_offer_list_t *offers, const char *error,
                                    void *arg);

/* One day of a month calendar. */
typedef struct fs_calendar_day {
    fs_date_t date;
    double price;      /* cheapest fare that day, per the query's passengers */
    char currency[4];
    bool has_price;    /* false: no flight that day */
} fs_calendar_day_t;

/* `days` holds one entry per day of the month (index 0 = the 1st); NULL unless OK. It is
 * valid during the call only. */
typedef void (*fs_calendar_done_fn)(fs_provider_outcome_t outcome, const fs_calendar_day_t *days, int n_days,
                                    const char *error, void *arg);

/* A flexible search: departures between `from` and `to`, staying `nights_min`..`nights_max`
 * nights; the cheapest round trips over the whole range. The query's departure and
 * return_date are unused. */
typedef struct fs_flexible_query {
    fs_search_query_t base;
    fs_date_t from, to;
    int nights_min, nights_max;
    int limit;
} fs_flexible_query_t;

/* What a provider may use; valid for as long as the provider is open. */
typedef struct fs_provider_env {
    struct event_base *base;
    fs_threadpool_t *pool;
    fs_http_client_t *http;
    fs_metrics_t *metrics;     /* may be NULL */
} fs_provider_env_t;

typedef struct fs_provider_ops {
    const char *name;          /* "inventory", "amadeus", ...: the offer id prefix and `source` */
    int priority;              /* lower is asked first */
    int requests_per_minute;   /* default rate limit per worker; 0 = none. <NAME>_RATE_PER_MINUTE overrides */
    int timeout_ms;            /* default per-call timeout; <NAME>_TIMEOUT_MS overrides */
    /* Are its keys set? Unconfigured providers are listed in the status but never called. */
    bool (*configured)(void);
    /* Builds the provider's state for one worker (NULL is a valid state). */
    void *(*open)(const fs_provider_env_t *env);
    void (*close)(void *self);
    /* The search. `timeout_ms` is this call's budget (the manager also enforces it). */
    void (*search)(void *self, const fs_search_query_t *q, int timeout_ms, fs_provider_done_fn done, void *arg);
    /* Optional (NULL when unsupported): cheapest fare per day of a month. */
    void (*calendar)(void *self, const fs_search_query_t *q, int year, int month, int timeout_ms,
                     fs_calendar_done_fn done, void *arg);
    /* Optional: flexible dates; answers offers like search. */
    void (*flexible)(void *self, const fs_flexible_query_t *q, int timeout_ms, fs_provider_done_fn done, void *arg);
    /* Optional: a live probe for /flights/providers/status ("health"); default: configured. */
    void (*probe)(void *self, void (*done)(bool ok, void *arg), void *arg);
} fs_provider_ops_t;

/* Generated by the build: every provider, NULL-terminated, in file-name order. */
extern const fs_provider_ops_t *const fs_provider_registry[];

#endif
