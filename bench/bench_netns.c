// deps: netns/async.c netns/conf.c netns/exec.c netns/helper.c
// deps: netns/iptables.c netns/leftovers.c netns/nsfs.c netns/state.c
// deps: client/util.c
/* Driver and benchmark for netns/, through its agent-side API (netns_add /
 * netns_del on a libuv loop, answered by one `nomclient netns-helper -serve`).
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

static struct netns_port_mapping ports[32];

/* The setup named on the command line: ALLOC [HOST:CONTAINER[/proto]]... */
static struct netns_setup setup_from(const char *alloc, int argc, char **argv)
{
    struct netns_setup s = {.alloc_id = alloc,
                            .mode = mode,
                            .netns_name = netns_name,
                            .ports = ports};
    for (int i = 0; i < argc && s.nports < NC_ARRAY_LEN(ports); i++) {
        struct netns_port_mapping *p = &ports[s.nports++];
        char *colon = strchr(argv[i], ':');
        char *slash = strchr(argv[i], '/');
        p->host_port = atoi(argv[i]);
        p->container_port = colon ? atoi(colon + 1) : p->host_port;
        p->protocol = slash ? slash + 1 : "tcp";
    }
    return s;
}

/* Prints j and drops it. */
static void print_json(json_t *j, size_t flags)
{
    char *t = json_dumps(j, flags);
    printf("%s\n", t ? t : "null");
    free(t);
    json_decref(j);
}

static int run_one(bool add, const char *alloc, int argc, char **argv)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct netns_setup setup = setup_from(alloc, argc, argv);
    struct one o = {.status = -1};
    struct nc_error err = {0};
    int r = add ? netns_add(&loop, &cfg, &setup, on_done, &o, &err)
                : netns_del(&loop, &cfg, &setup, NULL, on_done, &o, &err);
    if (r == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    else
        o.out = json_pack("{s:i, s:s}", "Status", r, "Message", err.msg);
    netns_loop_done(&loop);
    uv_loop_close(&loop);
    print_json(o.out, JSON_COMPACT);
    return r == 0 && o.status == 0 ? 0 : 1;
}

static int print_request(const char *cmd, const char *alloc, int argc,
                         char **argv)
{
    struct netns_setup setup = setup_from(alloc, argc, argv);
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
    print_json(netns_request_to_json(&req), JSON_INDENT(2));
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

/* Adds every integer of from into sums. */
static void add_all(json_t *sums, const json_t *from)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)from, k, v) if (json_is_integer(v))
        json_object_set_new(
            sums, k, json_integer(tget(sums, k) + json_integer_value(v)));
}

/* Averages of the runs' timings, and per-plugin times by type. */
static void summary(const char *what, struct bench *b, double wall_ms)
{
    json_t *sum = json_object(), *by_type = json_object();
    for (int i = 0; i < b->n; i++) {
        add_all(sum, b->timings[i]);
        size_t k;
        json_t *p;
        json_array_foreach(json_object_get(b->timings[i], "Plugins"), k, p)
        {
            const char *type = json_string_value(json_object_get(p, "Type"));
            json_object_set_new(
                by_type, type,
                json_integer(tget(by_type, type) + tget(p, "Us")));
        }
    }
#define MS(key) ((double)tget(sum, key) / b->n / 1000)
    printf("  %s x%d, %d at a time: wall %.1f ms (%.1f ms per alloc)\n", what,
           b->n, b->parallel, wall_ms, wall_ms / b->n);
    printf("    per alloc: agent-side %.2f ms = helper %.2f ms + pipes "
           "%.2f ms\n",
           MS("WallUs"), MS("TotalUs"), MS("WallUs") - MS("TotalUs"));
    printf("    helper: plugins+iptables %.2f ms, ours %.2f ms (lock wait "
           "%.2f, state %.2f, netns %.2f)\n",
           MS("PluginsUs"), MS("OverheadUs"), MS("LockUs"), MS("StateUs"),
           MS("NetnsUs"));
    printf("    request to its helper thread %.2f ms, answer to callback %.2f "
           "ms, waiting for the intent's fsync %.2f ms\n",
           MS("StartupUs"), MS("ExitUs"), MS("StateSyncWaitUs"));
    printf("    helper start (first request) %.3f ms, NOMAD-ADMIN rule %.2f ms, sweep %.2f "
           "ms\n",
           MS("SpawnUs"), MS("AdminRuleUs"), MS("SweepUs"));
#undef MS
    const char *type;
    json_t *v;
    printf("    plugins:");
    json_object_foreach(by_type, type, v) printf(
        " %s %.2f ms", type, (double)json_integer_value(v) / b->n / 1000);
    printf("\n");
    json_decref(by_type);
    json_decref(sum);
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
        netns_loop_done(&b.loop);
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
    const struct {
        const char *flag;
        const char **value;
    } opts[] = {{"-helper", &cfg.helper_path},
                {"-bridge", &cfg.bridge_name},
                {"-subnet", &cfg.subnet},
                {"-network", &cfg.network_name},
                {"-state", &cfg.state_dir},
                {"-cni-path", &cfg.cni_path},
                {"-cni-config-dir", &cfg.cni_config_dir},
                {"-mode", &mode},
                {"-netns", &netns_name}};
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        bool known = false;
        for (size_t k = 0; k < NC_ARRAY_LEN(opts) && !known; k++)
            if (strcmp(argv[i], opts[k].flag) == 0) {
                *opts[k].value = argv[i + 1];
                known = true;
            }
        if (!known && strcmp(argv[i], "-timeout") == 0)
            cfg.plugin_timeout_ms = atoi(argv[i + 1]);
        else if (!known)
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
        print_json(netns_leftovers(&cfg, &owned, clean), JSON_INDENT(2));
        strlist_free(&owned);
        return 0;
    }
    if (strcmp(cmd, "fingerprint") == 0) {
        print_json(netns_fingerprint(&cfg), JSON_COMPACT);
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
