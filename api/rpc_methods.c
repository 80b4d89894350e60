/* The methods of the internal RPC (docs/RPC.md). Each one unpacks its payload, answers from
 * the worker's memory or asks an actor, and maps the outcome to an RPC status:
 *
 *   Ping           fs.rpc.Ping -> fs.rpc.Pong; at once, or after delay_ms (at most 10 s)
 *   GetAirport     fs.rpc.GetAirportRequest -> fs.rpc.Airport, from the reference data in memory
 *                  (NOT_FOUND for a code that is not an active airport; UNAVAILABLE until the
 *                  worker's first load has finished)
 *   SearchFlights  fs.search.SearchRequest -> fs.search.SearchReply, asked of this worker's
 *                  `search` actor (the HTTP endpoint's implementation)
 *   IngestPrices   fs.prices.PriceBatch -> fs.prices.PriceBatchReply, asked of `price-ingest`
 *                  in worker 0 with wait_commit set: OK means the rows are committed
 *
 * Every ask is given what is left of the call's deadline.
 */
#include "api/rpc_methods.h"

#include "actors/search/search.h"
#include "runtime/actor.h"
#include "runtime/log.h"
#include "runtime/peer.h"
#include "runtime/rpc.h"
#include "runtime/worker.h"
#include "schemas/prices.pb-c.h"
#include "schemas/rpc.pb-c.h"
#include "schemas/search.pb-c.h"
#include "storage/refdata_live.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#define PING_MAX_DELAY_MS 10000

/*--- Ping ----------------------------------------------------------------------------------*/

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pong(fs_rpc_call_t *call, const Fs__Rpc__Ping *ping)
{
    Fs__Rpc__Pong p = FS__RPC__PONG__INIT;
    p.has_data = ping->has_data;
    p.data = ping->data;
    p.has_worker = fs_worker != NULL;
    p.worker = fs_worker ? (uint32_t)fs_worker->index : 0;
    p.has_server_time_ms = true;
    p.server_time_ms = unix_ms();
    fs_rpc_reply(call, &p.base);
}

static void ping_later(fs_rpc_call_t *call)
{
    Fs__Rpc__Ping *ping = fs_rpc_unpack_or_fail(call, &fs__rpc__ping__descriptor);
    if (!ping)
        return;
    pong(call, ping);
    fs_pb_free(&ping->base);
}

static void rpc_ping(fs_rpc_call_t *call)
{
    Fs__Rpc__Ping *ping = fs_rpc_unpack_or_fail(call, &fs__rpc__ping__descriptor);
    if (!ping)
        return;
    uint32_t delay = ping->has_delay_ms ? ping->delay_ms : 0;
    if (delay > PING_MAX_DELAY_MS)
        fs_rpc_fail(call, FS_RPC_INVALID_ARGUMENT, "delay_ms: at most %d", PING_MAX_DELAY_MS);
    else if (delay > 0)
        fs_rpc_call_defer(call, (int)delay, ping_later);
    else
        pong(call, ping);
    fs_pb_free(&ping->base);
}

/*--- GetAirport ----------------------------------------------------------------------------*/

static char *or_null(const char *s)
{
    return s && *s ? (char *)s : NULL;
}

/* The message borrows the airport's strings (only packed, never freed). */
static void airport_reply(fs_rpc_call_t *call, const fs_airport_t *a)
{
    Fs__Rpc__Airport m = FS__RPC__AIRPORT__INIT;
    m.iata_code = (char *)a->iata;
    m.name = or_null(a->name);
    m.city = or_null(a->city);
    m.country = or_null(a->country);
    m.country_code = or_null(a->country_code);
    m.has_latitude = m.has_longitude = a->has_coords;
    m.latitude = a->latitude;
    m.longitude = a->longitude;
    m.has_is_major = m.has_is_active = true;
    m.is_major = a->is_major;
    m.is_active = a->is_active;
    m.icao_code = or_null(a->icao);
    m.timezone = or_null(a->timezone);
    fs_rpc_reply(call, &m.base);
}

static void rpc_get_airport(fs_rpc_call_t *call)
{
    Fs__Rpc__GetAirportRequest *req = fs_rpc_unpack_or_fail(call, &fs__rpc__get_airport_request__descriptor);
    if (!req)
        return;
    const fs_refdata_t *data = fs_refdata_current();
    if (!req->code || !req->code[0])
        fs_rpc_fail(call, FS_RPC_INVALID_ARGUMENT, "code: required");
    else if (strlen(req->code) > 8)
        fs_rpc_fail(call, FS_RPC_INVALID_ARGUMENT, "code: an IATA code has 3 characters");
    else if (!data)
        fs_rpc_fail(call, FS_RPC_UNAVAILABLE, "reference data is loading");
    else {
        const fs_airport_t *a = fs_airport_index_lookup(data->airports, req->code);
        if (a)
            airport_reply(call, a);
        else
            fs_rpc_fail(call, FS_RPC_NOT_FOUND, "airport '%s' not found", req->code);
    }
    fs_pb_free(&req->base);
}

/*--- SearchFlights -------------------------------------------------------------------------*/

/* The search actor answers with an HTTP status; the RPC one that means the same. */
static fs_rpc_status_t from_http(int status)
{
    switch (status) {
    case 200:
        return FS_RPC_OK;
    case 400:
    case 422:
        return FS_RPC_INVALID_ARGUMENT;
    case 404:
        return FS_RPC_NOT_FOUND;
    case 429:
        return FS_RPC_RESOURCE_EXHAUSTED;
    case 503:
        return FS_RPC_UNAVAILABLE;
    case 504:
        return FS_RPC_DEADLINE_EXCEEDED;
    default:
        return FS_RPC_INTERNAL;
    }
}

static void on_search_reply(int status, fs_msg_t *reply, void *arg)
{
    fs_rpc_call_t *call = arg;
    if (status != FS_OK) {
        fs_rpc_fail(call, fs_rpc_status_from_fs(status), "search: %s", fs_status_str(status));
        return;
    }
    Fs__Search__SearchReply *r = fs_msg_body(reply, &fs__search__search_reply__descriptor);
    if (!r) {
        fs_rpc_fail(call, FS_RPC_INTERNAL, "search answered with message type %u", reply->type);
        return;
    }
    int http = r->has_status ? r->status : 200;
    fs_rpc_status_t st = from_http(http);
    if (st == FS_RPC_OK)
        fs_rpc_reply(call, &r->base);
    else
        fs_rpc_fail(call, st, "%s", r->detail ? r->detail : "search failed");
}

static void rpc_search_flights(fs_rpc_call_t *call)
{
    Fs__Search__SearchRequest *req = fs_rpc_unpack_or_fail(call, &fs__search__search_request__descriptor);
    if (!req)
        return;
    fs_actor_t *search = fs_worker ? fs_actor_lookup(fs_worker->actors, FS_SEARCH_ACTOR) : NULL;
    if (!search) {
        fs_pb_free(&req->base);
        fs_rpc_fail(call, FS_RPC_UNAVAILABLE, "search is not running");
        return;
    }
    int rc = fs_actor_ask(search, NULL, FS_MSG_SEARCH_REQUEST, &req->base, fs_rpc_call_remaining_ms(call),
                          on_search_reply, call);
    if (rc != FS_OK)
        fs_rpc_fail(call, fs_rpc_status_from_fs(rc), "search: %s", fs_status_str(rc));
}

/*--- IngestPrices --------------------------------------------------------------------------*/

/* price-ingest's status: 0, a negative fs_status_t, or an RPC status code. */
static fs_rpc_status_t ingest_status(const Fs__Prices__PriceBatchReply *r)
{
    int st = r->has_status ? r->status : 0;
    if (st == 0)
        return FS_RPC_OK;
    if (st == FS_EFULL || (r->error && strstr(r->error, "resource exhausted")))
        return FS_RPC_RESOURCE_EXHAUSTED;
    if (st > 0)
        return fs_rpc_status_valid(st) ? (fs_rpc_status_t)st : FS_RPC_INTERNAL;
    return fs_rpc_status_from_fs(st);
}

static void on_ingest_reply(int status, fs_msg_t *reply, void *arg)
{
    fs_rpc_call_t *call = arg;
    if (status != FS_OK) {
        fs_rpc_fail(call, fs_rpc_status_from_fs(status), "price-ingest: %s",
                    status == FS_ENOACTOR ? "not running" : fs_status_str(status));
        return;
    }
    Fs__Prices__PriceBatchReply *r = fs_msg_body(reply, &fs__prices__price_batch_reply__descriptor);
    if (!r) {
        fs_rpc_fail(call, FS_RPC_INTERNAL, "price-ingest answered with message type %u", reply->type);
        return;
    }
    fs_rpc_status_t st = ingest_status(r);
    if (st == FS_RPC_OK)
        fs_rpc_reply(call, &r->base);
    else
        fs_rpc_fail(call, st, "price-ingest: %s", r->error ? r->error : fs_rpc_status_name(st));
}

static void rpc_ingest_prices(fs_rpc_call_t *call)
{
    Fs__Prices__PriceBatch *batch = fs_rpc_unpack_or_fail(call, &fs__prices__price_batch__descriptor);
    if (!batch)
        return;
    if (batch->n_observations == 0) {
        fs_pb_free(&batch->base);
        fs_rpc_fail(call, FS_RPC_INVALID_ARGUMENT, "observations: the batch is empty");
        return;
    }
    if (!fs_worker || !fs_worker->peer) {
        fs_pb_free(&batch->base);
        fs_rpc_fail(call, FS_RPC_UNAVAILABLE, "price-ingest: not reachable");
        return;
    }
    /* the answer must mean "committed" */
    batch->has_wait_commit = true;
    batch->wait_commit = true;
    int rc =
        fs_peer_ask(fs_worker->peer, NULL, FS_PRICE_INGEST_WORKER, FS_PRICE_INGEST_ACTOR, FS_MSG_PRICE_BATCH,
                    &batch->base, fs_rpc_call_remaining_ms(call), on_ingest_reply, call);
    if (rc != FS_OK)
        fs_rpc_fail(call, fs_rpc_status_from_fs(rc), "price-ingest: %s",
                    rc == FS_ENOACTOR ? "not running" : fs_status_str(rc));
}

/*--- registration --------------------------------------------------------------------------*/

static void register_type(uint32_t type, const ProtobufCMessageDescriptor *desc)
{
    if (fs_msg_type_register(type, desc) != FS_OK)
        fs_error("rpc: message type %u is already registered with another descriptor than %s", type,
                 desc->name);
}

void fs_api_rpc_register(void)
{
    register_type(FS_MSG_PRICE_BATCH, &fs__prices__price_batch__descriptor);
    register_type(FS_MSG_PRICE_BATCH_REPLY, &fs__prices__price_batch_reply__descriptor);
    static const struct {
        const char *name;
        fs_rpc_handler_fn fn;
    } table[] = {
        {"Ping", rpc_ping},
        {"GetAirport", rpc_get_airport},
        {"SearchFlights", rpc_search_flights},
        {"IngestPrices", rpc_ingest_prices},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (fs_rpc_register(table[i].name, table[i].fn) != 0)
            fs_error("rpc: method %s is already registered", table[i].name);
}
