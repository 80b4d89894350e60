/* The provider manager: one per worker, owns every flight provider of the registry and asks
 * them for the search actor (docs/PROVIDERS.md).
 *
 * - Only configured and available providers are called. Health per provider as the original:
 *   healthy -> degraded after fs_cfg->provider_degraded_after consecutive failures ->
 *   unavailable after fs_cfg->provider_unavailable_after. Unlike the original, an unavailable
 *   provider gets one trial call every fs_cfg->provider_retry_after_s (success -> healthy), and
 *   FS_PROVIDER_BAD_QUERY is not a failure. Rate-limited answers move a fallback on but do not
 *   touch health; they are counted apart in the stats.
 * - Each call has the provider's timeout (ops.timeout_ms, <NAME>_TIMEOUT_MS), enforced here even
 *   when a provider never answers (a late answer is discarded); each request has an overall
 *   deadline.
 * - Each provider has a token-bucket rate limit (ops.requests_per_minute, <NAME>_RATE_PER_MINUTE)
 *   divided among the workers; a call refused by it answers FS_PROVIDER_RATE_LIMITED without
 *   going out.
 *
 * Everything runs on the worker's loop thread; every callback runs on the loop, never inside
 * the call that started it.
 */
#ifndef FS_PROVIDER_MANAGER_H
#define FS_PROVIDER_MANAGER_H

#include "actors/search/offer.h"
#include "actors/search/provider.h"

#include <jansson.h>
#include <stdbool.h>

typedef enum { FS_STRATEGY_FALLBACK, FS_STRATEGY_PARALLEL, FS_STRATEGY_BEST_PRICE } fs_strategy_t;

/* "fallback" | "parallel" | "best_price"; false for anything else. */
bool fs_strategy_parse(const char *s, fs_strategy_t *out);
const char *fs_strategy_name(fs_strategy_t s);

typedef struct fs_provider_manager fs_provider_manager_t;

/* Opens every provider of `registry` (NULL-terminated; fs_provider_registry in the server, a
 * custom list in tests) that is configured. `env` is copied; what it points to must outlive
 * the manager. */
fs_provider_manager_t *fs_provider_manager_new(const fs_provider_env_t *env, const fs_provider_ops_t *const *registry);
/* Pending searches complete with an error first; then the providers are closed. Free it
 * before the HTTP client and the thread pool the providers use. Not from inside one of its
 * own callbacks. */
void fs_provider_manager_free(fs_provider_manager_t *m);

/* offers: owned by the callback (fs_offer_list_free), sorted by price, deduplicated; never NULL
 * (maybe empty). `providers_called` counts upstream calls actually made (for the single-flight
 * metric and tests). `error` is non-NULL only when every provider asked failed (then offers is
 * empty). */
typedef void (*fs_manager_done_fn)(fs_offer_list_t *offers, int providers_called, const char *error, void *arg);

/* The query (and its observed fares) is copied. `deadline_ms` <= 0: fs_cfg->search_deadline_ms. */
void fs_provider_manager_search(fs_provider_manager_t *m, const fs_search_query_t *q, fs_strategy_t s, int deadline_ms,
                                fs_manager_done_fn done, void *arg);

/* days: one per day of the month, cheapest across providers in priority order (first non-empty
 * answer wins, as the original). `days` is valid during the callback only. */
typedef void (*fs_manager_calendar_fn)(const fs_calendar_day_t *days, int n_days, const char *error, void *arg);
void fs_provider_manager_calendar(fs_provider_manager_t *m, const fs_search_query_t *q, int year, int month,
                                  int deadline_ms, fs_manager_calendar_fn done, void *arg);

/* flexible: the first provider in priority order that has the op (the next one when it fails). */
void fs_provider_manager_flexible(fs_provider_manager_t *m, const fs_flexible_query_t *q, int deadline_ms,
                                  fs_manager_done_fn done, void *arg);

/* The body of GET /flights/providers/status (the original's shape: providers{name:{total_searches,
 * successful_searches, total_results, avg_response_time_ms, status, is_configured, is_available,
 * priority, success_rate}}, health{name:bool} from live probes, available_providers[]); `done`
 * gets a new reference. */
void fs_provider_manager_status(fs_provider_manager_t *m, void (*done)(json_t *status, void *arg), void *arg);

/* Zeroes the failure counter and sets healthy; -1 when no provider has that name. */
int fs_provider_manager_reset(fs_provider_manager_t *m, const char *name);

#endif
