/* flightshark-bench: HTTP load generator for Flightshark and its nginx baseline.
 * See docs/BENCHMARKS.md and `flightshark-bench --help`. */
#include "bench/loadgen.h"
#include "bench/report.h"
#include "bench/scenario.h"

#include "runtime/alloc.h"

#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cli {
    const char *scenario, *url, *label;
    int connections, threads;
    double duration_s, warmup_s, rate, timeout_s;
    bool has_duration, has_warmup, has_rate;
    long long requests;
    unsigned long long seed;
    bool json, tsv, describe;
} cli_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: flightshark-bench [options] URL\n"
            "       flightshark-bench --scenario FILE --describe\n\n"
            "URL is http://HOST:PORT[/PATH]; without --scenario the run is a GET of PATH.\n"
            "For the internal RPC, rpc://HOST:PORT[/METHOD] (default Ping), or a scenario with\n"
            "protocol = rpc.\n\n"
            "  -s, --scenario FILE   request mix, connections, duration, ... (bench/scenarios/*.scn)\n"
            "  -c, --connections N   keep-alive connections (scenario, else 10)\n"
            "  -t, --threads N       generator threads, one event loop each (scenario, else 1)\n"
            "  -d, --duration D      measured time: 10s, 500ms, 2m (scenario, else 10s)\n"
            "  -w, --warmup D        discarded time before measuring (scenario, else 1s)\n"
            "  -R, --rate N          open loop at N req/s in total, latency from intended send time;\n"
            "                        0 = closed loop (scenario, else 0)\n"
            "  -n, --requests N      closed loop, stop after N responses (no warm-up); -d is then a cap\n"
            "      --timeout D       per request (scenario, else 5s)\n"
            "      --seed N          request mix seed (default 1)\n"
            "      --label TEXT      name of the target in the report (e.g. nginx)\n"
            "      --json            print one JSON document\n"
            "      --tsv             print: rps p50 p90 p99 p99.9 max (µs) errors responses\n"
            "      --describe        print the scenario as shell variables and exit\n");
}

static double duration_arg(const char *v, const char *name)
{
    double d;
    if (fs_scn_parse_duration(v, &d) != 0) {
        fprintf(stderr, "flightshark-bench: bad %s '%s' (use 10s, 500ms, 2m)\n", name, v);
        exit(2);
    }
    return d;
}

static long long number_arg(const char *v, const char *name)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end || n < 0) {
        fprintf(stderr, "flightshark-bench: bad %s '%s'\n", name, v);
        exit(2);
    }
    return n;
}

static void parse_args(int argc, char **argv, cli_t *c)
{
    enum { O_TIMEOUT = 256, O_SEED, O_LABEL, O_JSON, O_TSV, O_DESCRIBE };
    static const struct option opts[] = {
        {"scenario", 1, NULL, 's'},        {"connections", 1, NULL, 'c'},   {"threads", 1, NULL, 't'},
        {"duration", 1, NULL, 'd'},        {"warmup", 1, NULL, 'w'},        {"rate", 1, NULL, 'R'},
        {"requests", 1, NULL, 'n'},        {"timeout", 1, NULL, O_TIMEOUT}, {"seed", 1, NULL, O_SEED},
        {"label", 1, NULL, O_LABEL},       {"json", 0, NULL, O_JSON},       {"tsv", 0, NULL, O_TSV},
        {"describe", 0, NULL, O_DESCRIBE}, {"help", 0, NULL, 'h'},          {0}};
    int o;
    while ((o = getopt_long(argc, argv, "s:c:t:d:w:R:n:h", opts, NULL)) != -1) {
        switch (o) {
        case 's':
            c->scenario = optarg;
            break;
        case 'c':
            c->connections = (int)number_arg(optarg, "connections");
            break;
        case 't':
            c->threads = (int)number_arg(optarg, "threads");
            break;
        case 'd':
            c->duration_s = duration_arg(optarg, "duration");
            c->has_duration = true;
            break;
        case 'w':
            c->warmup_s = duration_arg(optarg, "warm-up");
            c->has_warmup = true;
            break;
        case 'R':
            c->rate = (double)number_arg(optarg, "rate");
            c->has_rate = true;
            break;
        case 'n':
            c->requests = number_arg(optarg, "requests");
            break;
        case O_TIMEOUT:
            c->timeout_s = duration_arg(optarg, "timeout");
            break;
        case O_SEED:
            c->seed = (unsigned long long)number_arg(optarg, "seed");
            break;
        case O_LABEL:
            c->label = optarg;
            break;
        case O_JSON:
            c->json = true;
            break;
        case O_TSV:
            c->tsv = true;
            break;
        case O_DESCRIBE:
            c->describe = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc)
        c->url = argv[optind++];
    if (optind < argc || (!c->url && !c->describe)) {
        usage(stderr);
        exit(2);
    }
}

/* Splits http://HOST:PORT/PATH (or rpc://HOST:PORT/METHOD, *rpc then set). Returns 0, or -1
 * when the URL is neither. */
static int split_url(const char *url, char **host, char **port, char **path, bool *rpc)
{
    *rpc = strncmp(url, "rpc://", 6) == 0;
    if (strncmp(url, "http://", 7) != 0 && !*rpc)
        return -1;
    const char *h = url + (*rpc ? 6 : 7), *slash = strchr(h, '/');
    const char *end = slash ? slash : h + strlen(h);
    const char *colon = memchr(h, ':', (size_t)(end - h));
    if (end == h || colon == h)
        return -1;
    *host = fs_strndup(h, (size_t)((colon ? colon : end) - h));
    *port = colon ? fs_strndup(colon + 1, (size_t)(end - colon - 1)) : fs_strdup("80");
    *path = fs_strdup(slash ? slash : "/");
    return 0;
}

static void shell_var(const char *name, const char *value)
{
    printf("%s='", name);
    for (const char *c = value ? value : ""; *c; c++)
        fputs(*c == '\'' ? "'\\''" : (char[]){*c, 0}, stdout);
    printf("'\n");
}

static int describe(const fs_scenario_t *s)
{
    char *err = NULL, *first = fs_scn_first_target(s, &err);
    if (!first) {
        fprintf(stderr, "flightshark-bench: %s\n", err);
        free(err);
        return 1;
    }
    shell_var("NAME", s->name);
    shell_var("DESCRIPTION", s->description);
    printf("CONNECTIONS=%d\nTHREADS=%d\nDURATION=%g\nWARMUP=%g\nRATE=%g\nREFERENCE_SIZE=%zu\n",
           s->connections, s->threads, s->duration_s, s->warmup_s, s->rate, s->reference_size);
    shell_var("FIRST_PATH", first);
    free(first);
    return 0;
}

/* Merges the scenario with the command line (the command line wins) into run options. */
static void make_opts(const cli_t *c, const fs_scenario_t *s, fs_bench_opts_t *o)
{
    o->scn = s;
    o->proto = fs_bench_proto_find(s->protocol);
    o->connections = c->connections ? c->connections : s->connections;
    o->threads = c->threads ? c->threads : (s->threads ? s->threads : 1);
    if (o->threads > o->connections)
        o->threads = o->connections;
    o->duration_s = c->has_duration ? c->duration_s : s->duration_s;
    o->warmup_s = c->has_warmup ? c->warmup_s : s->warmup_s;
    o->rate = c->has_rate ? c->rate : s->rate;
    o->timeout_s = c->timeout_s > 0 ? c->timeout_s : s->timeout_s;
    o->seed = c->seed ? c->seed : 1;
    if (c->requests > 0) {
        o->requests = (uint64_t)c->requests;
        o->rate = 0;
        o->warmup_s = 0;
        if (!c->has_duration)
            o->duration_s = 3600;
    }
}

static int resolve(const char *host, const char *port, struct addrinfo **out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(host, port, &hints, out);
    if (rc != 0)
        fprintf(stderr, "flightshark-bench: cannot resolve %s:%s: %s\n", host, port, gai_strerror(rc));
    return rc == 0 ? 0 : -1;
}

static void print_result(const cli_t *c, const fs_bench_run_info_t *info, const fs_bench_result_t *r)
{
    if (c->json) {
        json_t *j = fs_bench_report_json(info, r);
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        fputc('\n', stdout);
        json_decref(j);
    } else if (c->tsv) {
        fs_bench_report_tsv(stdout, r);
    } else {
        fs_bench_report_text(stdout, info, r);
    }
}

static int run(const cli_t *c, fs_scenario_t *s, const char *host, const char *port)
{
    struct addrinfo *ai;
    if (resolve(host, port, &ai) != 0)
        return 1;
    char *authority = fs_sprintf("%s:%s", host, port), *err = NULL;
    fs_bench_opts_t o = {0};
    make_opts(c, s, &o);
    o.addr = ai->ai_addr;
    o.addrlen = ai->ai_addrlen;
    fs_bench_result_t r;
    int rc = fs_scn_render(s, o.proto, authority, &err);
    if (rc == 0)
        rc = fs_bench_run(&o, &r, &err);
    if (rc == 0) {
        fs_bench_run_info_t info = {
            .scenario = s->name, .target = c->url, .label = c->label, .protocol = s->protocol, .opts = &o};
        print_result(c, &info, &r);
        fs_bench_result_free(&r);
    } else {
        fprintf(stderr, "flightshark-bench: %s\n", err);
    }
    free(err);
    free(authority);
    freeaddrinfo(ai);
    return rc == 0 ? 0 : 1;
}

/* The ad-hoc run: a GET of the URL's path, or an RPC call of the method it names (no payload). */
static void single_request(fs_scenario_t *s, const char *path, bool rpc)
{
    if (!rpc) {
        fs_scn_single(s, path);
        return;
    }
    fs_scn_single(s, path[1] ? path + 1 : "Ping");
    free(s->protocol);
    s->protocol = fs_strdup("rpc");
}

int main(int argc, char **argv)
{
    cli_t c = {0};
    parse_args(argc, argv, &c);
    char *host = NULL, *port = NULL, *path = NULL, *err = NULL;
    bool rpc = false;
    if (c.url && split_url(c.url, &host, &port, &path, &rpc) != 0) {
        fprintf(stderr, "flightshark-bench: URL must look like http://HOST:PORT/PATH or rpc://HOST:PORT/METHOD, got '%s'\n",
                c.url);
        return 2;
    }
    fs_scenario_t s;
    int rc = 0;
    if (c.scenario && fs_scn_load(c.scenario, &s, &err) != 0) {
        fprintf(stderr, "flightshark-bench: %s\n", err);
        rc = 2;
    } else if (!c.scenario && c.describe) {
        fprintf(stderr, "flightshark-bench: --describe needs --scenario\n");
        rc = 2;
    } else {
        if (!c.scenario)
            single_request(&s, path, rpc);
        if (c.url && (strcmp(s.protocol, "rpc") == 0) != rpc) {
            fprintf(stderr, "flightshark-bench: the scenario speaks %s; the URL must start with %s://\n", s.protocol,
                    s.protocol);
            rc = 2;
        } else {
            rc = c.describe ? describe(&s) : run(&c, &s, host, port);
        }
        fs_scn_free(&s);
    }
    free(err);
    free(host);
    free(port);
    free(path);
    return rc;
}
