// deps: netns/async.c netns/conf.c netns/exec.c netns/helper.c
// deps: netns/iptables.c netns/leftovers.c netns/nsfs.c netns/state.c
// deps: client/util.c
/* Driver and benchmark for netns/, through its agent-side API (netns_add /
 * netns_del on a libuv loop, each spawning `nomclient netns-helper`).
 *
 *   bench_netns [opts] add ALLOC [HOST:CONTAINER[/proto]]...  one ADD
 *   bench_netns [opts] del ALLOC                              one DEL
 *   bench_netns [opts] request add|del ALLOC [ports]...  print the request
 *   bench_netns [opts] leftovers [-clean] [OWNED]...
 *   bench_netns [opts] fingerprint | check-mode
 *   bench_netns [opts] bench N PARALLEL     N ADDs then N DELs, at most
 *                                           PARALLEL helpers at a time
 * opts: -helper PATH (default ./nomclient) -bridge NAME -subnet CIDR
 *       -network NAME -state DIR -cni-path P -cni-config-dir D -mode M
 *       -timeout MS -netns NAME
 * add/del print the result as JSON and exit 0/1. As root only.
 * Run: make build/bench/bench_netns && sudo build/bench/bench_netns ... */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netns/netns.h"
#include "netns/netns_internal.h"

static struct netns_config cfg = {
    .helper_path = "./nomclient",
    .state_dir = "/tmp/bench-netns/state",
};
static const char *mode = "bridge";
static const char *netns_name;

struct one {
    int status;
    json_t *out;
};

static void on_done(const struct netns_result *res, void *arg)
{
    struct one *o = arg;
    o->status = res->status;
    o->out = json_pack("{s:i, s:s, s:s?, s:s?, s:s?, s:b, s:O?, s:O}", "Status",
                       res->status, "Message", res->message, "AllocID",
                       res->alloc_id, "IP", res->ip, "Netns", res->netns_path,
                       "Reused", res->reused, "Result", res->cni_result,
                       "Timings", res->timings);
}

static int parse_ports(int argc, char **argv, struct netns_port_mapping *p,
                       size_t max)
{
    size_t n = 0;
    for (int i = 0; i < argc && n < max; i++, n++) {
        char *colon = strchr(argv[i], ':');
        char *slash = strchr(argv[i], '/');
        p[n].host_port = atoi(argv[i]);
        p[n].container_port = colon ? atoi(colon + 1) : p[n].host_port;
        p[n].protocol = slash ? slash + 1 : "tcp";
    }
    return (int)n;
}

static int run_one(bool add, const char *alloc, int argc, char **argv)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct netns_port_mapping ports[32] = {0};
    struct netns_setup setup = {.alloc_id = alloc,
                                .mode = mode,
                                .netns_name = netns_name,
                                .ports = ports};
    setup.nports = (size_t)parse_ports(argc, argv, ports, 32);
    struct one o = {.status = -1};
    struct nc_error err = {0};
    int r = add ? netns_add(&loop, &cfg, &setup, on_done, &o, &err)
                : netns_del(&loop, &cfg, &setup, NULL, on_done, &o, &err);
    if (r < 0) {
        json_t *j = json_pack("{s:i, s:s}", "Status", r, "Message", err.msg);
        char *t = json_dumps(j, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
        json_decref(j);
        uv_loop_close(&loop);
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    char *t = json_dumps(o.out, JSON_COMPACT);
    printf("%s\n", t);
    free(t);
    json_decref(o.out);
    return o.status == 0 ? 0 : 1;
}

static int print_request(const char *cmd, const char *alloc, int argc,
                         char **argv)
{
    struct netns_port_mapping ports[32] = {0};
    struct netns_setup setup = {.alloc_id = alloc,
                                .mode = mode,
                                .netns_name = netns_name,
                                .ports = ports};
    setup.nports = (size_t)parse_ports(argc, argv, ports, 32);
    json_t *list = NULL;
    struct nc_error err = {0};
    bool add = strcmp(cmd, "add") == 0;
    if (netns_conflist_for_mode(&cfg, mode, &list, &err) < 0 && add) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    struct netns_request req;
    int r = netns_request_build(&req, add ? "ADD" : "DEL", &cfg, &setup, list,
                                NULL, &err);
    json_decref(list);
    if (r < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    json_t *j = netns_request_to_json(&req);
    char *t = json_dumps(j, JSON_INDENT(2));
    printf("%s\n", t);
    free(t);
    json_decref(j);
    netns_request_free(&req);
    return 0;
}

/* ---- bench --------------------------------------------------------------- */

struct bench {
    uv_loop_t loop;
    bool add;
    int n, parallel, next, running, failed;
    char (*ids)[40];
    json_t **timings;
    struct netns_port_mapping port;
};

static void bench_next(struct bench *b);

static void bench_done(const struct netns_result *res, void *arg)
{
    struct bench *b = arg;
    b->running--;
    int i = atoi(res->alloc_id + strlen(res->alloc_id) - 4);
    if (res->status < 0) {
        fprintf(stderr, "%s %s: %s\n", b->add ? "ADD" : "DEL", res->alloc_id,
                res->message);
        b->failed++;
    }
    b->timings[i] = json_incref(res->timings);
    bench_next(b);
}

static void bench_next(struct bench *b)
{
    while (b->running < b->parallel && b->next < b->n) {
        int i = b->next++;
        struct netns_setup s = {.alloc_id = b->ids[i], .mode = mode};
        b->port.host_port = 29000 + i;
        b->port.container_port = 8080;
        s.ports = &b->port;
        s.nports = b->add ? 1 : 0;
        struct nc_error err = {0};
        int r = b->add
                    ? netns_add(&b->loop, &cfg, &s, bench_done, b, &err)
                    : netns_del(&b->loop, &cfg, &s, NULL, bench_done, b, &err);
        if (r < 0) {
            fprintf(stderr, "%s\n", err.msg);
            b->failed++;
        } else {
            b->running++;
        }
    }
}

static int64_t tget(const json_t *t, const char *k)
{
    return json_integer_value(json_object_get(t, k));
}

/* Sums per-plugin times by type over all runs. */
static void summary(const char *what, struct bench *b, double wall_ms)
{
    int64_t total = 0, overhead = 0, spawn = 0, wallsum = 0, lock = 0,
            state = 0, netns = 0, admin = 0, sweep = 0, startup = 0, ex = 0,
            syncwait = 0;
    json_t *by_type = json_object();
    for (int i = 0; i < b->n; i++) {
        json_t *t = b->timings[i];
        total += tget(t, "TotalUs");
        overhead += tget(t, "OverheadUs");
        spawn += tget(t, "SpawnUs");
        wallsum += tget(t, "WallUs");
        lock += tget(t, "LockUs");
        state += tget(t, "StateUs");
        netns += tget(t, "NetnsUs");
        admin += tget(t, "AdminRuleUs");
        sweep += tget(t, "SweepUs");
        startup += tget(t, "StartupUs");
        syncwait += tget(t, "StateSyncWaitUs");
        ex += tget(t, "ExitUs");
        size_t k;
        json_t *p;
        json_array_foreach(json_object_get(t, "Plugins"), k, p)
        {
            const char *type = json_string_value(json_object_get(p, "Type"));
            json_t *v = json_object_get(by_type, type);
            json_object_set_new(
                by_type, type,
                json_integer(json_integer_value(v) + tget(p, "Us")));
        }
    }
    double n = b->n;
    printf("  %s x%d, %d at a time: wall %.1f ms (%.1f ms per alloc)\n", what,
           b->n, b->parallel, wall_ms, wall_ms / n);
    printf("    per alloc: agent-side %.2f ms = helper %.2f ms + spawn/pipes "
           "%.2f ms\n",
           wallsum / n / 1000, total / n / 1000, (wallsum - total) / n / 1000);
    printf("    helper: plugins+iptables %.2f ms, ours %.2f ms (lock wait "
           "%.2f, state %.2f, netns %.2f)\n",
           (total - overhead) / n / 1000, overhead / n / 1000, lock / n / 1000,
           state / n / 1000, netns / n / 1000);
    printf("    spawn to helper main %.2f ms, helper output to callback %.2f "
           "ms, waiting for the intent's fsync %.2f ms\n",
           startup / n / 1000, ex / n / 1000, syncwait / n / 1000);
    printf(
        "    posix_spawn call %.3f ms, NOMAD-ADMIN rule %.2f ms, sweep %.2f ms\n",
        spawn / n / 1000, admin / n / 1000, sweep / n / 1000);
    const char *type;
    json_t *v;
    printf("    plugins:");
    json_object_foreach(by_type, type, v)
        printf(" %s %.2f ms", type, json_integer_value(v) / n / 1000);
    printf("\n");
    json_decref(by_type);
}

static int run_bench(int n, int parallel)
{
    struct bench b = {.n = n, .parallel = parallel};
    b.ids = xcalloc((size_t)n, sizeof(*b.ids));
    b.timings = xcalloc((size_t)n, sizeof(*b.timings));
    char prefix[9];
    snprintf(prefix, sizeof(prefix), "%08x", (unsigned)getpid());
    for (int i = 0; i < n; i++)
        snprintf(b.ids[i], sizeof(b.ids[i]), "bench-%s-%04d", prefix, i);
    int failed = 0;
    for (int phase = 0; phase < 2; phase++) {
        b.add = phase == 0;
        b.next = b.running = b.failed = 0;
        uv_loop_init(&b.loop);
        uint64_t t0 = nc_now_mono_ns();
        bench_next(&b);
        uv_run(&b.loop, UV_RUN_DEFAULT);
        double ms = (double)(nc_now_mono_ns() - t0) / 1e6;
        uv_loop_close(&b.loop);
        summary(b.add ? "ADD" : "DEL", &b, ms);
        failed += b.failed;
        for (int i = 0; i < n; i++) {
            json_decref(b.timings[i]);
            b.timings[i] = NULL;
        }
    }
    free(b.ids);
    free(b.timings);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (strcmp(o, "-helper") == 0)
            cfg.helper_path = v;
        else if (strcmp(o, "-bridge") == 0)
            cfg.bridge_name = v;
        else if (strcmp(o, "-subnet") == 0)
            cfg.subnet = v;
        else if (strcmp(o, "-network") == 0)
            cfg.network_name = v;
        else if (strcmp(o, "-state") == 0)
            cfg.state_dir = v;
        else if (strcmp(o, "-cni-path") == 0)
            cfg.cni_path = v;
        else if (strcmp(o, "-cni-config-dir") == 0)
            cfg.cni_config_dir = v;
        else if (strcmp(o, "-mode") == 0)
            mode = v;
        else if (strcmp(o, "-timeout") == 0)
            cfg.plugin_timeout_ms = atoi(v);
        else if (strcmp(o, "-netns") == 0)
            netns_name = v;
        else
            break;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: see bench/bench_netns.c\n");
        return 2;
    }
    const char *cmd = argv[i++];
    if ((strcmp(cmd, "add") == 0 || strcmp(cmd, "del") == 0) && i < argc)
        return run_one(cmd[0] == 'a', argv[i], argc - i - 1, argv + i + 1);
    if (strcmp(cmd, "request") == 0 && i + 1 < argc)
        return print_request(argv[i], argv[i + 1], argc - i - 2, argv + i + 2);
    if (strcmp(cmd, "leftovers") == 0) {
        bool clean = i < argc && strcmp(argv[i], "-clean") == 0;
        struct strlist owned = {0};
        for (int k = i + clean; k < argc; k++)
            strlist_add(&owned, argv[k]);
        json_t *j = netns_leftovers(&cfg, &owned, clean);
        char *t = json_dumps(j, JSON_INDENT(2));
        printf("%s\n", t);
        free(t);
        json_decref(j);
        strlist_free(&owned);
        return 0;
    }
    if (strcmp(cmd, "fingerprint") == 0) {
        json_t *j = netns_fingerprint(&cfg);
        char *t = json_dumps(j, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
        json_decref(j);
        return 0;
    }
    if (strcmp(cmd, "check-mode") == 0) {
        struct nc_error err = {0};
        int r = netns_mode_check(&cfg, mode, &err);
        printf("%s\n", r < 0 ? err.msg : "ok");
        return r < 0;
    }
    if (strcmp(cmd, "bench") == 0 && i + 1 < argc)
        return run_bench(atoi(argv[i]), atoi(argv[i + 1]));
    fprintf(stderr, "usage: see bench/bench_netns.c\n");
    return 2;
}
