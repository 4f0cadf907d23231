// deps: client/services/consul_view.c client/services/consul_diff.c
// deps: client/services/consul_request.c client/services/consul_loop.c
// deps: client/services/consul_sync.c client/services/consul_status.c
// deps: client/curl_uv.c client/services/services.c client/alloc/alloc.c
// deps: client/job/ client/hcl/
// deps: client/util.c
/* bench_consul - the Consul sync loop (client/services/consul_*.c) against
 * a Consul agent API at 127.0.0.1:PORT (bench/bench_consul.sh starts
 * tests/integration/consul_fake.py there).
 *
 * The desired state is synthetic: N services with C TTL checks each, built
 * here as services.c would build them for running allocations, handed to
 * the real sync loop on a real libuv loop with real libcurl requests. No
 * task runs. Figures: converging from an empty Consul, a no-change
 * reconcile pass (its duration, the time spent parsing and diffing, and the
 * write requests it sent: must be 0), check status updates per second
 * sustained while every status flips, and the cost of consul_sync_update.
 *
 *   bench_consul PORT [services] [checks per service] [seconds of flips] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/services/services.h"
#include "client/config.h"

/* services.c's rebuild is not used here; this keeps alloc_checks.c and the
 * check engine out of the link. */
void alloc_checks_each(const struct alloc_checks *ac, const char *alloc_id,
                       const char *task, const char *service,
                       alloc_checks_each_fn fn, void *arg)
{
    (void)ac, (void)alloc_id, (void)task, (void)service, (void)fn, (void)arg;
}

static struct {
    uv_loop_t loop;
    struct consul_sync *sync;
    int passes, passes_ok;
    bool waiting_pass;
    uint64_t target_updates; /* CheckUpdates counter to reach */
    bool waiting_updates;
    bool waiting_idle;
    uint64_t done_ns;
} B;

static json_t *status(void)
{
    return consul_sync_status(B.sync);
}

static json_int_t counter(const char *name)
{
    json_t *st = status();
    json_int_t v = json_integer_value(
        json_object_get(json_object_get(st, "Counters"), name));
    json_decref(st);
    return v;
}

static bool idle(void)
{
    json_t *st = status();
    bool r = json_integer_value(json_object_get(st, "InFlight")) == 0 &&
             json_integer_value(json_object_get(st, "Queued")) == 0;
    json_decref(st);
    return r;
}

static void on_pass(void *arg, bool ok)
{
    (void)arg;
    B.passes++;
    B.passes_ok += ok;
    if (B.waiting_pass) {
        B.waiting_pass = false;
        B.done_ns = nc_now_mono_ns();
        uv_stop(&B.loop);
    }
}

/* Every millisecond: has the awaited condition come true? (Looking after
 * every loop iteration would cost the loop more than it measures.) */
static void on_check(uv_timer_t *h)
{
    (void)h;
    if (B.waiting_updates &&
        (uint64_t)counter("CheckUpdates") >= B.target_updates) {
        B.waiting_updates = false;
        B.done_ns = nc_now_mono_ns();
        uv_stop(&B.loop);
    } else if (B.waiting_idle && B.passes && idle()) {
        B.waiting_idle = false;
        B.done_ns = nc_now_mono_ns();
        uv_stop(&B.loop);
    }
}

static void set_status_all(struct svc_set *set, const char *st)
{
    for (size_t i = 0; i < set->n; i++)
        for (size_t k = 0; k < set->regs[i].nchecks; k++) {
            free(set->regs[i].checks[k].status);
            set->regs[i].checks[k].status = xstrdup(st);
        }
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct svc_reg *)a)->id,
                  ((const struct svc_reg *)b)->id);
}

static void build(struct svc_set *set, int nsvc, int nchk)
{
    set->regs = xcalloc((size_t)nsvc, sizeof(*set->regs));
    set->n = set->cap = (size_t)nsvc;
    char alloc[37];
    for (int i = 0; i < nsvc; i++) {
        struct svc_reg *r = &set->regs[i];
        if (i % 4 == 0)
            nc_uuid(alloc); /* four services per allocation */
        r->name = xasprintf("bench-%04d", i);
        r->id = xasprintf("_nomad-task-%s-web-%s-http", alloc, r->name);
        r->provider = xstrdup("consul");
        r->namespace_ = xstrdup("default");
        r->job_id = xstrdup("bench");
        r->alloc_id = xstrdup(alloc);
        r->group = xstrdup("web");
        r->task = xstrdup("web");
        r->address = xasprintf("10.255.%d.%d", i / 250, i % 250 + 2);
        r->port = 20000 + i;
        r->address_mode = xstrdup("host");
        r->address_why = xstrdup("synthetic");
        strlist_add(&r->tags, "bench");
        strlist_add(&r->tags, i % 2 ? "odd" : "even");
        kv_set(&r->meta, "version", "1");
        r->nchecks = (size_t)nchk;
        r->checks = nchk ? xcalloc((size_t)nchk, sizeof(*r->checks)) : NULL;
        for (int k = 0; k < nchk; k++) {
            struct svc_check *c = &r->checks[k];
            c->id = xasprintf("_nomad-check-%s-%d", alloc, i * nchk + k);
            c->name = xasprintf("check %d of %s", k, r->name);
            c->type = xstrdup(k % 2 ? "tcp" : "http");
            c->interval_ns = 10 * 1000000000LL;
            c->timeout_ns = 2 * 1000000000LL;
            c->status = xstrdup("passing");
            c->output = xasprintf("HTTP GET http://%s:%d/health: 200 OK",
                                  r->address, r->port);
        }
    }
    qsort(set->regs, set->n, sizeof(*set->regs), by_id);
}

/* The fake's own counters, over a plain blocking socket (outside the
 * loop's runs). */
static json_t *fake_stats(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        return json_object();
    }
    const char req[] = "GET /fake/stats HTTP/1.0\r\n\r\n";
    if (write(fd, req, sizeof(req) - 1) < 0) {
        close(fd);
        return json_object();
    }
    struct nc_buf b = {0};
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        nc_buf_append(&b, buf, (size_t)n);
    close(fd);
    const char *body = b.data ? strstr(b.data, "\r\n\r\n") : NULL;
    json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
    nc_buf_free(&b);
    return j ? j : json_object();
}

static double fake_num(json_t *st, const char *k)
{
    return json_number_value(json_object_get(st, k));
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void run_until_pass(void)
{
    B.waiting_pass = true;
    uv_run(&B.loop, UV_RUN_DEFAULT);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_consul PORT [services] [checks] "
                        "[seconds]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    int nsvc = argc > 2 ? atoi(argv[2]) : 1000;
    int nchk = argc > 3 ? atoi(argv[3]) : 2;
    double flip_secs = argc > 4 ? atof(argv[4]) : 3.0;
    nc_log_setup(NC_LOG_WARN, false);
    uv_loop_init(&B.loop);
    uv_timer_t check;
    uv_timer_init(&B.loop, &check);
    uv_timer_start(&check, on_check, 1, 1);
    uv_unref((uv_handle_t *)&check);

    struct agent_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    cfg.consul.address = addr;
    cfg.consul.verify_ssl = true;
    cfg.consul.configured = true;
    struct node node;
    memset(&node, 0, sizeof(node));
    struct nc_error err = {0};
    if (consul_sync_open(&B.sync, &B.loop, &cfg, &node, &err) < 0) {
        fprintf(stderr, "bench_consul: %s\n", err.msg);
        return 1;
    }
    struct consul_sync_tuning t;
    consul_sync_get_tuning(B.sync, &t);
    t.periodic_ns = 3600ull * 1000000000ull; /* only the passes asked for */
    t.coalesce_ns = 0;
    t.on_pass = on_pass;
    consul_sync_set_tuning(B.sync, &t);

    struct svc_set set = {0};
    build(&set, nsvc, nchk);
    printf("synthetic desired state: %d services x %d TTL checks, driven "
           "through the real sync loop (client/services/consul_*.c) and libcurl on a "
           "libuv loop; no tasks run\n",
           nsvc, nchk);
    printf("max %u requests in flight, one keep-alive connection each\n",
           t.max_in_flight);

    /* 1. from an empty Consul */
    json_t *f0 = fake_stats(port);
    uint64_t t0 = nc_now_mono_ns();
    double c0 = cpu_seconds();
    consul_sync_update(B.sync, &set);
    B.waiting_idle = true;
    uv_run(&B.loop, UV_RUN_DEFAULT);
    double conv_ms = (double)(B.done_ns - t0) / 1e6;
    double conv_cpu = cpu_seconds() - c0;
    json_t *f1 = fake_stats(port);
    printf("converge from empty: %.1f ms (%d pass(es), %.0f requests to the "
           "fake: %lld registrations, %lld check updates for the first "
           "output; agent CPU %.0f ms, fake CPU %.0f ms)\n",
           conv_ms, B.passes,
           fake_num(f1, "requests") - fake_num(f0, "requests"),
           (long long)counter("Registrations"),
           (long long)counter("CheckUpdates"), conv_cpu * 1e3,
           (fake_num(f1, "cpu_seconds") - fake_num(f0, "cpu_seconds")) * 1e3);
    if (fake_num(f1, "services") != nsvc)
        printf("  WARNING: the fake holds %.0f services, not %d\n",
               fake_num(f1, "services"), nsvc);
    json_decref(f0);

    /* 2. no-change passes */
    enum { PASSES = 20 };
    uint64_t dur[PASSES], diff[PASSES];
    json_int_t writes = 0, bytes = 0;
    json_t *fa = fake_stats(port);
    for (int i = 0; i < PASSES; i++) {
        consul_sync_reconcile_now(B.sync);
        run_until_pass();
        json_t *st = status();
        json_t *lp = json_object_get(st, "LastPass");
        dur[i] =
            (uint64_t)json_integer_value(json_object_get(lp, "DurationNs"));
        diff[i] = (uint64_t)json_integer_value(json_object_get(lp, "DiffNs"));
        writes += json_integer_value(json_object_get(lp, "Writes"));
        bytes = json_integer_value(json_object_get(lp, "ReadBytes"));
        json_decref(st);
    }
    json_t *fb = fake_stats(port);
    double fake_writes = fake_num(fb, "writes") - fake_num(fa, "writes");
    qsort(dur, PASSES, sizeof(dur[0]), cmp_u64);
    qsort(diff, PASSES, sizeof(diff[0]), cmp_u64);
    printf("no-change reconcile pass (%d runs): median %.2f ms, p90 %.2f ms, "
           "max %.2f ms (2 GETs of %.0f KB + parse + diff; the first run "
           "waits for the fake to serialise its listings again after the "
           "writes of step 1); parse + diff alone: median %.2f ms, max "
           "%.2f ms; write requests: %lld sent by the loop, %.0f seen by "
           "the fake -> %s\n",
           PASSES, dur[PASSES / 2] / 1e6, dur[PASSES * 9 / 10] / 1e6,
           dur[PASSES - 1] / 1e6, bytes / 1024.0, diff[PASSES / 2] / 1e6,
           diff[PASSES - 1] / 1e6, (long long)writes, fake_writes,
           writes == 0 && fake_writes == 0 ? "OK, none" : "FAIL");
    printf("  goal: a no-change pass under 10 ms (median): %s\n",
           dur[PASSES / 2] < 10000000 ? "met" : "MISSED");
    json_decref(fa);

    /* 3. every status flips, again and again */
    uint64_t start = nc_now_mono_ns(), flips = 0;
    json_t *fc = fake_stats(port);
    double cc = cpu_seconds();
    uint64_t per_round = (uint64_t)nsvc * (uint64_t)nchk;
    while (nc_now_mono_ns() - start < (uint64_t)(flip_secs * 1e9)) {
        set_status_all(&set, flips % 2 ? "passing" : "critical");
        B.target_updates = (uint64_t)counter("CheckUpdates") + per_round;
        B.waiting_updates = true;
        consul_sync_update(B.sync, &set);
        uv_run(&B.loop, UV_RUN_DEFAULT);
        flips++;
    }
    double secs = (double)(nc_now_mono_ns() - start) / 1e9;
    double ccpu = cpu_seconds() - cc;
    json_t *fd = fake_stats(port);
    double fake_cpu = fake_num(fd, "cpu_seconds") - fake_num(fc, "cpu_seconds");
    double updates = (double)(flips * per_round);
    printf("check updates sustained: %.0f/s (%llu rounds of %llu status "
           "flips in %.2f s; agent CPU %.0f%% of one core = %.0f updates per "
           "agent CPU second; fake CPU %.0f%% of one core%s)\n",
           updates / secs, (unsigned long long)flips,
           (unsigned long long)per_round, secs, 100 * ccpu / secs,
           ccpu > 0 ? updates / ccpu : 0, 100 * fake_cpu / secs,
           fake_cpu / secs > 0.9 ? ": the fake is the bottleneck here"
                                 : ": not the bottleneck");

    /* 4. the cost of an update with nothing changed */
    uint64_t u0 = nc_now_mono_ns();
    for (int i = 0; i < 10; i++)
        consul_sync_update(B.sync, &set);
    printf("consul_sync_update with nothing changed: %.2f ms for %d "
           "registrations\n",
           (double)(nc_now_mono_ns() - u0) / 10e6, nsvc);
    json_decref(fb);
    json_decref(fc);
    json_decref(fd);
    json_decref(f1);

    consul_sync_close(B.sync);
    uv_close((uv_handle_t *)&check, NULL);
    uv_run(&B.loop, UV_RUN_DEFAULT);
    uv_loop_close(&B.loop);
    services_clear(&set);
    return 0;
}
