/* flightshark rpc: a client of the internal RPC (docs/RPC.md).
 *
 *   rpc ping [--data TEXT]                  round trip to a worker
 *   rpc airport CODE                        GetAirport, printed as JSON
 *   rpc search --origin X --destination Y --date YYYY-MM-DD [--return YYYY-MM-DD]
 *              [--passengers N] [--cabin C] [--direct] [--strategy S]
 *                                           SearchFlights, prints the JSON body
 *   rpc ingest FILE.csv|- [--batch N]       IngestPrices in batches; rows are
 *              time,origin,destination,airline,departure_date,cabin,price,currency,source
 *
 * --host/--port/--token default to RPC_BIND_ADDRESS (loopback when it is a wildcard),
 * RPC_PORT and RPC_TOKEN of the configuration. Exit codes: 0 OK, 1 the server answered with
 * an error, 2 usage or bad input, 3 no answer (cannot connect, timeout, connection lost).
 */
#include "cli/cli.h"

#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/rpc.h"
#include "runtime/rpc_client.h"
#include "schemas/prices.pb-c.h"
#include "schemas/rpc.pb-c.h"
#include "schemas/search.pb-c.h"
#include "storage/csv.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_REMOTE        1
#define EXIT_USAGE         2
#define EXIT_TRANSPORT     3
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_BATCH      1000
#define MAX_BATCH          20000
#define MAX_STDIN          (256u << 20)

typedef struct opts {
    const char *host, *token;
    int port, timeout_ms;
    const char *data;                                                 /* ping */
    const char *origin, *destination, *date, *ret, *cabin, *strategy; /* search */
    int passengers;
    bool direct;
    int batch; /* ingest */
    char **args;
    int nargs;
} opts_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: flightshark rpc [--host H] [--port P] [--token T] [--timeout MS] COMMAND ...\n\n"
            "commands:\n"
            "  ping [--data TEXT]             round trip to a worker\n"
            "  airport CODE                   an airport by IATA code (JSON)\n"
            "  search --origin X --destination Y --date YYYY-MM-DD [--return YYYY-MM-DD]\n"
            "         [--passengers N] [--cabin economy|premium_economy|business|first]\n"
            "         [--direct] [--strategy fallback|parallel|best_price]\n"
            "                                 a flight search; prints the JSON body\n"
            "  ingest FILE.csv|- [--batch N]  sends price observations (IngestPrices), N rows per\n"
            "                                 call (default %d); rows are time,origin,destination,\n"
            "                                 airline,departure_date,cabin,price,currency,source\n"
            "                                 (time: unix seconds or ms, or ISO 8601 UTC; empty:\n"
            "                                 now; a header line starting with 'time' is skipped)\n\n"
            "--host, --port and --token default to RPC_BIND_ADDRESS, RPC_PORT and RPC_TOKEN.\n"
            "Exit codes: 0 OK, 1 the server answered with an error, 2 usage or bad input,\n"
            "3 no answer (cannot connect, timeout).\n",
            DEFAULT_BATCH);
}

static int number(const char *v, const char *name, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || *end || errno || n < lo || n > hi) {
        fprintf(stderr, "flightshark rpc: --%s needs a number from %ld to %ld, got '%s'\n", name, lo, hi, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int parse_args(int argc, char **argv, opts_t *o)
{
    enum {
        O_HOST = 256,
        O_PORT,
        O_TOKEN,
        O_TIMEOUT,
        O_DATA,
        O_ORIGIN,
        O_DEST,
        O_DATE,
        O_RETURN,
        O_PAX,
        O_CABIN,
        O_DIRECT,
        O_STRATEGY,
        O_BATCH
    };
    static const struct option table[] = {
        {"host", 1, NULL, O_HOST},         {"port", 1, NULL, O_PORT},   {"token", 1, NULL, O_TOKEN},
        {"timeout", 1, NULL, O_TIMEOUT},   {"data", 1, NULL, O_DATA},   {"origin", 1, NULL, O_ORIGIN},
        {"destination", 1, NULL, O_DEST},  {"date", 1, NULL, O_DATE},   {"return", 1, NULL, O_RETURN},
        {"passengers", 1, NULL, O_PAX},    {"cabin", 1, NULL, O_CABIN}, {"direct", 0, NULL, O_DIRECT},
        {"strategy", 1, NULL, O_STRATEGY}, {"batch", 1, NULL, O_BATCH}, {0}};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", table, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case O_HOST:
            o->host = optarg;
            break;
        case O_PORT:
            rc = number(optarg, "port", 1, 65535, &o->port);
            break;
        case O_TOKEN:
            o->token = optarg;
            break;
        case O_TIMEOUT:
            rc = number(optarg, "timeout", 1, 600000, &o->timeout_ms);
            break;
        case O_DATA:
            o->data = optarg;
            break;
        case O_ORIGIN:
            o->origin = optarg;
            break;
        case O_DEST:
            o->destination = optarg;
            break;
        case O_DATE:
            o->date = optarg;
            break;
        case O_RETURN:
            o->ret = optarg;
            break;
        case O_PAX:
            rc = number(optarg, "passengers", 1, 9, &o->passengers);
            break;
        case O_CABIN:
            o->cabin = optarg;
            break;
        case O_DIRECT:
            o->direct = true;
            break;
        case O_STRATEGY:
            o->strategy = optarg;
            break;
        case O_BATCH:
            rc = number(optarg, "batch", 1, MAX_BATCH, &o->batch);
            break;
        default:
            fprintf(stderr, "flightshark rpc: unknown or incomplete option '%s'\n", argv[optind - 1]);
            rc = -1;
        }
        if (rc != 0)
            return -1;
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
    return 0;
}

/* Loopback when the server listens on every address. */
static const char *default_host(void)
{
    const char *a = fs_cfg->rpc_bind_address;
    return strcmp(a, "0.0.0.0") == 0 || strcmp(a, "::") == 0 || !*a ? "127.0.0.1" : a;
}

/*--- calls -----------------------------------------------------------------------------------*/

/* One call; prints the error and returns the exit code when it is not OK. */
static int call(fs_rpc_client_t *c, const opts_t *o, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *desc, ProtobufCMessage **reply)
{
    char *error = NULL;
    int st = fs_rpc_client_call(c, method, req, desc, o->timeout_ms, reply, &error);
    if (st == FS_RPC_OK) {
        free(error);
        return 0;
    }
    if (st < 0)
        fprintf(stderr, "flightshark rpc: %s: %s\n", method, error);
    else
        fprintf(stderr, "flightshark rpc: %s: %s: %s\n", method, fs_rpc_status_name(st), error);
    free(error);
    return st < 0 ? EXIT_TRANSPORT : EXIT_REMOTE;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmd_ping(fs_rpc_client_t *c, const opts_t *o)
{
    Fs__Rpc__Ping ping = FS__RPC__PING__INIT;
    if (o->data) {
        ping.has_data = true;
        ping.data = (ProtobufCBinaryData){strlen(o->data), (uint8_t *)o->data};
    }
    ProtobufCMessage *reply;
    double t0 = mono_ms();
    int rc = call(c, o, "Ping", &ping.base, &fs__rpc__pong__descriptor, &reply);
    if (rc != 0)
        return rc;
    Fs__Rpc__Pong *pong = (Fs__Rpc__Pong *)reply;
    printf("pong from worker %u in %.2f ms", pong->worker, mono_ms() - t0);
    if (pong->has_data)
        printf(": %.*s", (int)pong->data.len, (const char *)pong->data.data);
    printf("\n");
    protobuf_c_message_free_unpacked(reply, NULL);
    return 0;
}

static void set_str(json_t *obj, const char *key, const char *v)
{
    json_object_set_new(obj, key, v ? json_string(v) : json_null());
}

static int cmd_airport(fs_rpc_client_t *c, const opts_t *o)
{
    if (o->nargs != 2) {
        fprintf(stderr, "flightshark rpc: airport needs one IATA code\n");
        return EXIT_USAGE;
    }
    Fs__Rpc__GetAirportRequest req = FS__RPC__GET_AIRPORT_REQUEST__INIT;
    req.code = o->args[1];
    ProtobufCMessage *reply;
    int rc = call(c, o, "GetAirport", &req.base, &fs__rpc__airport__descriptor, &reply);
    if (rc != 0)
        return rc;
    Fs__Rpc__Airport *a = (Fs__Rpc__Airport *)reply;
    json_t *j = json_object();
    set_str(j, "iata_code", a->iata_code);
    set_str(j, "name", a->name);
    set_str(j, "city", a->city);
    set_str(j, "country", a->country);
    set_str(j, "country_code", a->country_code);
    json_object_set_new(j, "latitude", a->has_latitude ? json_real(a->latitude) : json_null());
    json_object_set_new(j, "longitude", a->has_longitude ? json_real(a->longitude) : json_null());
    json_object_set_new(j, "is_major", json_boolean(a->is_major));
    set_str(j, "icao_code", a->icao_code);
    set_str(j, "timezone", a->timezone);
    json_object_set_new(j, "is_active", json_boolean(a->is_active));
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    printf("\n");
    json_decref(j);
    protobuf_c_message_free_unpacked(reply, NULL);
    return 0;
}

static int cmd_search(fs_rpc_client_t *c, const opts_t *o)
{
    if (!o->origin || !o->destination || !o->date || o->nargs != 1) {
        fprintf(stderr, "flightshark rpc: search needs --origin, --destination and --date\n");
        return EXIT_USAGE;
    }
    Fs__Search__SearchRequest req = FS__SEARCH__SEARCH_REQUEST__INIT;
    req.origin = (char *)o->origin;
    req.destination = (char *)o->destination;
    req.departure_date = (char *)o->date;
    req.return_date = (char *)o->ret;
    req.has_passengers = o->passengers > 0;
    req.passengers = o->passengers;
    req.cabin_class = (char *)o->cabin;
    req.has_direct_only = o->direct;
    req.direct_only = o->direct;
    req.strategy = (char *)o->strategy;
    ProtobufCMessage *reply;
    int rc = call(c, o, "SearchFlights", &req.base, &fs__search__search_reply__descriptor, &reply);
    if (rc != 0)
        return rc;
    Fs__Search__SearchReply *r = (Fs__Search__SearchReply *)reply;
    if (r->has_body)
        fwrite(r->body.data, 1, r->body.len, stdout);
    printf("\n");
    protobuf_c_message_free_unpacked(reply, NULL);
    return 0;
}

/*--- ingest ----------------------------------------------------------------------------------*/

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* Unix seconds or milliseconds (told apart by size), or ISO 8601 in UTC ("2026-05-01T12:00:00Z",
 * also with a space, fractions or "+00:00"). */
static bool parse_time(const char *s, int64_t *ms)
{
    if (all_digits(s)) {
        long long v = strtoll(s, NULL, 10);
        *ms = v < 100000000000LL ? v * 1000 : v;
        return true;
    }
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
    if (!end)
        return false;
    int frac_ms = 0;
    if (*end == '.') {
        int scale = 100;
        for (end++; isdigit((unsigned char)*end); end++, scale /= 10)
            frac_ms += (*end - '0') * scale;
    }
    if (strcmp(end, "") != 0 && strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
        return false;
    *ms = (int64_t)timegm(&tm) * 1000 + frac_ms;
    return true;
}

static char *opt_field(const fs_csv_record_t *r, size_t i)
{
    return i < r->nfields && r->lens[i] > 0 ? fs_strdup(r->fields[i]) : NULL;
}

/* One CSV record as an observation; NULL with a message on stderr when it cannot be one. */
static Fs__Prices__PriceObservation *row_to_obs(const fs_csv_record_t *r, const char *name)
{
    if (r->malformed || r->nfields < 7 || r->nfields > 9) {
        fprintf(stderr, "flightshark rpc: %s:%ld: %s\n", name, r->line,
                r->malformed ? r->malformed
                             : "expected 7 to 9 fields (time,origin,destination,airline,"
                               "departure_date,cabin,price[,currency[,source]])");
        return NULL;
    }
    int64_t at = 0;
    if (r->lens[0] > 0 && !parse_time(r->fields[0], &at)) {
        fprintf(stderr, "flightshark rpc: %s:%ld: time '%s' is not unix seconds/ms or ISO 8601 UTC\n", name,
                r->line, r->fields[0]);
        return NULL;
    }
    char *end;
    double price = strtod(r->fields[6], &end);
    if (r->lens[6] == 0 || *end) {
        fprintf(stderr, "flightshark rpc: %s:%ld: price '%s' is not a number\n", name, r->line, r->fields[6]);
        return NULL;
    }
    Fs__Prices__PriceObservation *obs = fs_pb_new(&fs__prices__price_observation__descriptor);
    obs->has_observed_at_ms = r->lens[0] > 0;
    obs->observed_at_ms = at;
    obs->origin = opt_field(r, 1);
    obs->destination = opt_field(r, 2);
    obs->airline = opt_field(r, 3);
    obs->departure_date = opt_field(r, 4);
    obs->cabin_class = opt_field(r, 5);
    obs->has_price = true;
    obs->price = price;
    obs->currency = opt_field(r, 7);
    obs->source = opt_field(r, 8);
    return obs;
}

static fs_csv_t *open_input(const char *path, char **err)
{
    if (strcmp(path, "-") != 0)
        return fs_csv_open(path, err);
    size_t cap = 65536, len = 0;
    char *buf = fs_malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, stdin)) > 0) {
        len += n;
        if (len > MAX_STDIN) {
            free(buf);
            *err = fs_strdup("stdin: more than 256 MiB");
            return NULL;
        }
        if (len == cap)
            buf = fs_realloc(buf, cap *= 2);
    }
    fs_csv_t *csv = fs_csv_open_mem(buf, len, "stdin", err);
    free(buf);
    return csv;
}

/* Reads every row first, so that a bad line sends nothing. Returns the count, or -1. */
static long read_rows(const char *path, Fs__Prices__PriceObservation ***out)
{
    char *err = NULL;
    fs_csv_t *csv = open_input(path, &err);
    if (!csv) {
        fprintf(stderr, "flightshark rpc: %s\n", err);
        free(err);
        return -1;
    }
    const char *name = strcmp(path, "-") == 0 ? "stdin" : path;
    Fs__Prices__PriceObservation **rows = NULL;
    long n = 0, cap = 0;
    fs_csv_record_t rec;
    int rc;
    while ((rc = fs_csv_next(csv, &rec, &err)) == 1) {
        if (n == 0 && rec.nfields > 0 && strcmp(rec.fields[0], "time") == 0)
            continue; /* header */
        Fs__Prices__PriceObservation *obs = row_to_obs(&rec, name);
        if (!obs) {
            rc = -2;
            break;
        }
        if (n == cap)
            rows = fs_realloc(rows, sizeof *rows * (size_t)(cap = cap ? cap * 2 : 1024));
        rows[n++] = obs;
    }
    if (rc == -1)
        fprintf(stderr, "flightshark rpc: %s\n", err);
    free(err);
    fs_csv_close(csv);
    if (rc < 0) {
        for (long i = 0; i < n; i++)
            fs_pb_free(&rows[i]->base);
        free(rows);
        return -1;
    }
    *out = rows;
    return n;
}

typedef struct totals {
    long rows, accepted, duplicates, invalid, batches;
} totals_t;

static int send_batch(fs_rpc_client_t *c, const opts_t *o, Fs__Prices__PriceObservation **rows, size_t n,
                      totals_t *t)
{
    Fs__Prices__PriceBatch batch = FS__PRICES__PRICE_BATCH__INIT;
    batch.n_observations = n;
    batch.observations = rows;
    batch.has_wait_commit = true;
    batch.wait_commit = true;
    ProtobufCMessage *reply;
    int rc = call(c, o, "IngestPrices", &batch.base, &fs__prices__price_batch_reply__descriptor, &reply);
    if (rc != 0)
        return rc;
    Fs__Prices__PriceBatchReply *r = (Fs__Prices__PriceBatchReply *)reply;
    t->accepted += r->accepted;
    t->duplicates += r->duplicates;
    t->invalid += r->invalid;
    t->batches++;
    t->rows += (long)n;
    protobuf_c_message_free_unpacked(reply, NULL);
    return 0;
}

static int cmd_ingest(fs_rpc_client_t *c, const opts_t *o)
{
    if (o->nargs != 2) {
        fprintf(stderr, "flightshark rpc: ingest needs a CSV file (or - for stdin)\n");
        return EXIT_USAGE;
    }
    Fs__Prices__PriceObservation **rows;
    long n = read_rows(o->args[1], &rows);
    if (n < 0)
        return EXIT_USAGE;
    totals_t t = {0};
    int rc = 0;
    for (long i = 0; i < n && rc == 0; i += o->batch)
        rc = send_batch(c, o, rows + i, (size_t)(n - i < o->batch ? n - i : o->batch), &t);
    printf("%ld of %ld rows committed in %ld batches: %ld accepted, %ld duplicates, %ld invalid\n", t.rows, n,
           t.batches, t.accepted, t.duplicates, t.invalid);
    for (long i = 0; i < n; i++)
        fs_pb_free(&rows[i]->base);
    free(rows);
    return rc;
}

/*--- command ---------------------------------------------------------------------------------*/

static int run_command(const opts_t *o)
{
    static const struct {
        const char *name;
        int (*fn)(fs_rpc_client_t *c, const opts_t *o);
    } cmds[] = {{"ping", cmd_ping}, {"airport", cmd_airport}, {"search", cmd_search}, {"ingest", cmd_ingest}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(o->args[0], cmds[i].name) != 0)
            continue;
        char *err = NULL;
        fs_rpc_client_t *c = fs_rpc_client_connect(o->host, o->port, o->timeout_ms, &err);
        if (!c) {
            fprintf(stderr, "flightshark rpc: %s\n", err);
            free(err);
            return EXIT_TRANSPORT;
        }
        if (o->token && *o->token)
            fs_rpc_client_set_token(c, o->token);
        int rc = cmds[i].fn(c, o);
        fs_rpc_client_close(c);
        return rc;
    }
    fprintf(stderr, "flightshark rpc: unknown command '%s'\n\n", o->args[0]);
    usage(stderr);
    return EXIT_USAGE;
}

static int run(int argc, char **argv)
{
    if (fs_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (fs_cli_load_config(NULL, 0, false) != 0)
        return EXIT_USAGE;
    opts_t o = {.timeout_ms = DEFAULT_TIMEOUT_MS, .batch = DEFAULT_BATCH};
    if (parse_args(argc, argv, &o) != 0)
        return EXIT_USAGE;
    if (o.nargs < 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!o.host)
        o.host = default_host();
    if (!o.port)
        o.port = fs_cfg->rpc_port;
    if (!o.token)
        o.token = fs_cfg->rpc_token;
    return run_command(&o);
}

const fs_command_t fs_cmd_rpc = {"rpc", "call the internal RPC (ping, airport, search, ingest)", run};
