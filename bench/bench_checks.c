// deps: checks/ client/util.c
// deps: client/curl_uv.c
/* bench_checks - the health-check engine outside the agent, three modes:
 *
 *   bench_checks run [-duration 5s] [-rss-every 1s] CHECK...
 *       runs the given checks and prints one JSON line per result
 *       ({"event":"result",...}), status change, restart and RSS
 *       ({"event":"rss","kb":N} every -rss-every), then the
 *       engine's JSON ({"event":"final","checks":{...}}). A CHECK is
 *       "id=a,type=http,address=127.0.0.1,port=80,path=/,interval=1s,
 *       timeout=1s" plus optional protocol=https, method=, header=N:V
 *       (repeatable), body=, skip_verify=1, success_before_passing=,
 *       failures_before_critical=, failures_before_warning=, initial=,
 *       restart_limit=, restart_grace=, ignore_warnings=1.
 *       Used by tests/integration/test_checks.sh.
 *
 *   bench_checks serve HTTP_PORT TCP_PORT STATS_FILE
 *       a small epoll target: "200 OK" to any request on HTTP_PORT,
 *       accept-and-close on TCP_PORT; on SIGUSR1 writes what it saw since
 *       the last SIGUSR1 to STATS_FILE (connections per port, and the
 *       interval jitter per target address 127.x.y.z: |gap - 1s|).
 *
 *   bench_checks uvtcp N SECONDS HTTP_PORT
 *       the same N http checks with a naive libuv probe (uv_tcp_t per
 *       probe), the baseline the engine's raw-socket probe is measured by.
 *
 *   bench_checks engine N SECONDS HTTP_PORT TCP_PORT
 *       N http and N tcp checks at 1s against 127.1.x.y (one address per
 *       check, so the target can tell them apart); after a warm-up of
 *       one interval plus the stagger, measures SECONDS and prints one
 *       line of key=value figures for bench_checks.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "checks/checks.h"

/* ---- shared ---- */

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static long rss_kb(void)
{
    char *s = nc_read_file("/proc/self/status", NULL, 0);
    long kb = -1;
    char *p = s ? strstr(s, "VmRSS:") : NULL;
    if (p)
        kb = strtol(p + 6, NULL, 10);
    free(s);
    return kb;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void run_for(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, stop_loop, ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* ---- run: checks from the command line, results as JSON lines ---- */

struct spec {
    struct chk_def def;
    struct chk_header headers[16];
    char *strings[64];
    size_t nstrings;
};

static char *keep(struct spec *s, const char *v)
{
    char *p = xstrdup(v);
    if (s->nstrings < NC_ARRAY_LEN(s->strings))
        s->strings[s->nstrings++] = p;
    return p;
}

static int parse_int(const char *v, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || end == v || n < -1000000 || n > 1000000)
        return -EINVAL;
    *out = (int)n;
    return 0;
}

static int parse_spec(struct spec *s, char *text)
{
    struct chk_def *d = &s->def;
    d->type = CHK_TYPE_HTTP;
    d->address = "127.0.0.1";
    d->interval_ns = d->timeout_ns = 1000000000LL;
    d->headers = s->headers;
    for (char *save, *kv = strtok_r(text, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *v = strchr(kv, '=');
        if (!v)
            return -EINVAL;
        *v++ = '\0';
        int r = 0;
        if (!strcmp(kv, "id"))
            d->id = keep(s, v);
        else if (!strcmp(kv, "type"))
            d->type = !strcmp(v, "tcp")    ? CHK_TYPE_TCP
                      : !strcmp(v, "http") ? CHK_TYPE_HTTP
                                           : CHK_TYPE_NONE;
        else if (!strcmp(kv, "address"))
            d->address = keep(s, v);
        else if (!strcmp(kv, "port"))
            r = parse_int(v, &d->port);
        else if (!strcmp(kv, "protocol"))
            d->protocol =
                !strcmp(v, "https") ? CHK_PROTO_HTTPS : CHK_PROTO_HTTP;
        else if (!strcmp(kv, "method"))
            d->method = keep(s, v);
        else if (!strcmp(kv, "path"))
            d->path = keep(s, v);
        else if (!strcmp(kv, "body"))
            d->body = keep(s, v);
        else if (!strcmp(kv, "header") && d->nheaders < 16) {
            char *colon = strchr(v, ':');
            if (!colon)
                return -EINVAL;
            *colon = '\0';
            s->headers[d->nheaders].name = keep(s, v);
            s->headers[d->nheaders++].value = keep(s, colon + 1);
        } else if (!strcmp(kv, "skip_verify"))
            d->tls_skip_verify = !strcmp(v, "1");
        else if (!strcmp(kv, "interval"))
            r = nc_parse_duration(v, &d->interval_ns);
        else if (!strcmp(kv, "timeout"))
            r = nc_parse_duration(v, &d->timeout_ns);
        else if (!strcmp(kv, "success_before_passing"))
            r = parse_int(v, &d->success_before_passing);
        else if (!strcmp(kv, "failures_before_critical"))
            r = parse_int(v, &d->failures_before_critical);
        else if (!strcmp(kv, "failures_before_warning"))
            r = parse_int(v, &d->failures_before_warning);
        else if (!strcmp(kv, "initial"))
            r = chk_status_parse(v, &d->initial_status);
        else if (!strcmp(kv, "restart_limit"))
            r = parse_int(v, &d->check_restart.limit);
        else if (!strcmp(kv, "restart_grace"))
            r = nc_parse_duration(v, &d->check_restart.grace_ns);
        else if (!strcmp(kv, "ignore_warnings"))
            d->check_restart.ignore_warnings = !strcmp(v, "1");
        else
            r = -EINVAL;
        if (r < 0)
            return r;
    }
    return 0;
}

static void print_json(json_t *j)
{
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (txt) {
        puts(txt);
        fflush(stdout);
        free(txt);
    }
}

static void run_on_result(void *arg, struct chk *c, const struct chk_result *r)
{
    print_json(json_pack("{s:s, s:s, s:s, s:s, s:i, s:b, s:f, s:f, s:s}",
                         "event", "result", "id", chk_id(c), "status",
                         chk_status_name(r->status), "output", r->output,
                         "code", r->http_code, "timed_out", r->timed_out,
                         "latency_ms", (double)r->latency_ns / 1e6,
                         "lateness_ms", (double)r->lateness_ns / 1e6,
                         "check_status", chk_status_name(chk_get_status(c))));
}

static void run_on_change(void *arg, struct chk *c, enum chk_status old,
                          enum chk_status now)
{
    print_json(json_pack("{s:s, s:s, s:s, s:s}", "event", "status", "id",
                         chk_id(c), "old", chk_status_name(old), "new",
                         chk_status_name(now)));
}

static struct chk_engine *run_engine;

/* as the agent would: restart the task, then start the grace again */
static void run_on_restart(void *arg, struct chk *c)
{
    print_json(json_pack("{s:s, s:s}", "event", "restart", "id", chk_id(c)));
    chk_reset_grace(run_engine, chk_id(c));
}

static void print_rss(uv_timer_t *t)
{
    print_json(json_pack("{s:s, s:i}", "event", "rss", "kb", (int)rss_kb()));
}

static int mode_run(int argc, char **argv)
{
    int64_t duration = 5000000000LL, rss_every = 0;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct chk_callbacks cb = {.on_result = run_on_result,
                               .on_status_change = run_on_change,
                               .on_restart = run_on_restart};
    struct chk_engine *engine = NULL;
    int rc = 0;
    if (chk_engine_new(&engine, &loop, &cb, NULL) < 0)
        return 1;
    run_engine = engine;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-duration") && i + 1 < argc) {
            if (nc_parse_duration(argv[++i], &duration) < 0)
                return 2;
            continue;
        }
        if (!strcmp(argv[i], "-rss-every") && i + 1 < argc) {
            if (nc_parse_duration(argv[++i], &rss_every) < 0)
                return 2;
            continue;
        }
        struct spec s = {0};
        char *text = xstrdup(argv[i]);
        struct nc_error err = {0};
        int r = parse_spec(&s, text);
        if (r < 0) {
            print_json(json_pack("{s:s, s:s, s:s}", "event", "error", "spec",
                                 argv[i], "error", "bad check spec"));
            rc = 2;
        } else if ((r = chk_add(engine, &s.def, &err)) < 0) {
            print_json(json_pack("{s:s, s:s, s:s}", "event", "error", "id",
                                 s.def.id ? s.def.id : "", "error", err.msg));
            rc = 2;
        }
        for (size_t k = 0; k < s.nstrings; k++)
            free(s.strings[k]);
        free(text);
    }
    if (rc == 0) {
        uv_timer_t rss;
        uv_timer_init(&loop, &rss);
        if (rss_every > 0)
            uv_timer_start(&rss, print_rss, (uint64_t)(rss_every / 1000000),
                           (uint64_t)(rss_every / 1000000));
        run_for(&loop, (uint64_t)(duration / 1000000));
        uv_close((uv_handle_t *)&rss, NULL);
        json_t *all = chk_engine_to_json(engine);
        print_json(json_pack("{s:s, s:o}", "event", "final", "checks", all));
    }
    chk_engine_close(engine);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}

/* ---- serve: an epoll target ---- */

#define MAX_TARGETS 65536

struct target_stats {
    uint64_t last_ns;
    uint64_t conns;
};

static volatile sig_atomic_t dump_requested;
static void on_usr1(int sig)
{
    dump_requested = 1;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(fd, 4096) < 0) {
        perror("bench_checks serve: listen");
        close(fd);
        return -1;
    }
    return fd;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t percentile(uint64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof(*v), cmp_u64);
    size_t i = (size_t)ceil(p * (double)n) - 1;
    return v[i < n ? i : n - 1];
}

static int mode_serve(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    raise_nofile();
    int lh = listen_on(atoi(argv[0])), lt = listen_on(atoi(argv[1]));
    if (lh < 0 || lt < 0)
        return 1;
    const char *stats_path = argv[2];
    signal(SIGUSR1, on_usr1);
    signal(SIGPIPE, SIG_IGN);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lh};
    epoll_ctl(ep, EPOLL_CTL_ADD, lh, &ev);
    ev.data.fd = lt;
    epoll_ctl(ep, EPOLL_CTL_ADD, lt, &ev);
    static struct target_stats tg[2][MAX_TARGETS];
    size_t jcap = 1 << 20, jn = 0;
    uint64_t *jitter = xmalloc(jcap * sizeof(*jitter));
    uint64_t conns[2] = {0, 0};
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                               "Connection: close\r\n\r\nok";
    char buf[4096];
    for (;;) {
        if (dump_requested) {
            dump_requested = 0;
            FILE *f = fopen(stats_path, "w");
            if (f) {
                uint64_t p50 = percentile(jitter, jn, 0.5);
                uint64_t p99 = percentile(jitter, jn, 0.99);
                fprintf(f,
                        "http_conns=%llu tcp_conns=%llu jitter_n=%zu "
                        "jitter_p50_ms=%.2f jitter_p99_ms=%.2f\n",
                        (unsigned long long)conns[0],
                        (unsigned long long)conns[1], jn, (double)p50 / 1e6,
                        (double)p99 / 1e6);
                fclose(f);
            }
            conns[0] = conns[1] = 0;
            jn = 0;
            memset(tg, 0, sizeof(tg));
        }
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lh || fd == lt) {
                int kind = fd == lt;
                for (;;) {
                    int cfd =
                        accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0)
                        break;
                    conns[kind]++;
                    struct sockaddr_in me;
                    socklen_t ml = sizeof(me);
                    if (getsockname(cfd, (struct sockaddr *)&me, &ml) == 0) {
                        uint32_t idx = ntohl(me.sin_addr.s_addr) & 0xffff;
                        uint64_t now = mono_ns();
                        struct target_stats *t = &tg[kind][idx];
                        if (t->last_ns && jn < jcap) {
                            uint64_t gap = now - t->last_ns;
                            jitter[jn++] = gap > 1000000000ull
                                               ? gap - 1000000000ull
                                               : 1000000000ull - gap;
                        }
                        t->last_ns = now;
                        t->conns++;
                    }
                    if (kind == 1) {
                        close(cfd);
                        continue;
                    }
                    ev.events = EPOLLIN;
                    ev.data.fd = cfd;
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r > 0 && memmem(buf, (size_t)r, "\r\n\r\n", 4)) {
                ssize_t w = write(fd, resp, sizeof(resp) - 1);
                (void)w;
                close(fd);
            } else if (r == 0 || (r < 0 && errno != EAGAIN)) {
                close(fd);
            }
        }
    }
}

/* ---- engine: N http + N tcp checks at 1s ---- */

struct bench {
    uint64_t *lateness;
    size_t n, cap;
    bool measuring;
};

static void bench_on_result(void *arg, struct chk *c,
                            const struct chk_result *r)
{
    struct bench *b = arg;
    if (!b->measuring)
        return;
    if (b->n < b->cap)
        b->lateness[b->n++] = r->lateness_ns > 0 ? (uint64_t)r->lateness_ns : 0;
}

static void sum_counters(struct chk_engine *e, int n, uint64_t *probes,
                         uint64_t *failed, uint64_t *skipped)
{
    *probes = *failed = *skipped = 0;
    char id[32];
    for (int i = 0; i < 2 * n; i++) {
        snprintf(id, sizeof(id), "%c%d", i < n ? 'h' : 't', i % n);
        struct chk *c = chk_find(e, id);
        struct chk_counters k;
        if (!c)
            continue;
        chk_get_counters(c, &k);
        *probes += k.probes;
        *failed += k.critical + k.warning;
        *skipped += k.skipped;
    }
}

static int mode_engine(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int n = atoi(argv[0]), secs = atoi(argv[1]);
    int hport = atoi(argv[2]), tport = atoi(argv[3]);
    const char *kinds = argc > 4 ? argv[4] : "both";
    bool want_http = strcmp(kinds, "tcp") != 0;
    bool want_tcp = strcmp(kinds, "http") != 0;
    raise_nofile();
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct bench b = {.cap = (size_t)n * 2 * (size_t)(secs + 2)};
    b.lateness = xcalloc(b.cap, sizeof(*b.lateness));
    long rss0 = rss_kb();
    struct mallinfo2 m0 = mallinfo2();
    struct chk_engine *e;
    struct chk_callbacks cb = {.on_result = bench_on_result};
    if (chk_engine_new(&e, &loop, &cb, &b) < 0)
        return 1;
    for (int i = 0; i < 2 * n; i++) {
        int k = i % n;
        if ((i < n && !want_http) || (i >= n && !want_tcp))
            continue;
        char id[32], addr[32];
        snprintf(id, sizeof(id), "%c%d", i < n ? 'h' : 't', k);
        snprintf(addr, sizeof(addr), "127.1.%d.%d", (k + 1) >> 8,
                 (k + 1) & 255);
        struct chk_def d = {
            .id = id,
            .type = i < n ? CHK_TYPE_HTTP : CHK_TYPE_TCP,
            .address = addr,
            .port = i < n ? hport : tport,
            .path = "/health",
            .interval_ns = 1000000000LL,
            .timeout_ns = 1000000000LL,
        };
        struct nc_error err;
        if (chk_add(e, &d, &err) < 0) {
            fprintf(stderr, "chk_add: %s\n", err.msg);
            return 1;
        }
    }
    /* warm-up: every check has run at least once (stagger < 1s) */
    run_for(&loop, 2000);
    long rss1 = rss_kb();
    struct mallinfo2 m1 = mallinfo2();
    uint64_t p0, f0, s0, p1, f1, s1;
    sum_counters(e, n, &p0, &f0, &s0);
    double cpu0 = cpu_seconds();
    b.measuring = true;
    run_for(&loop, (uint64_t)secs * 1000);
    b.measuring = false;
    double cpu1 = cpu_seconds();
    sum_counters(e, n, &p1, &f1, &s1);
    uint64_t probes = p1 - p0;
    double us = probes ? (cpu1 - cpu0) * 1e6 / (double)probes : 0;
    uint64_t l50 = percentile(b.lateness, b.n, 0.5);
    uint64_t l99 = percentile(b.lateness, b.n, 0.99);
    long rss2 = rss_kb();
    printf("probes=%llu failed=%llu skipped=%llu cpu_s=%.3f us_per_probe=%.1f "
           "rss_kb=%ld lateness_p50_ms=%.2f lateness_p99_ms=%.2f "
           "rss_per_check_b=%.0f heap_per_check_b=%.0f\n",
           (unsigned long long)probes, (unsigned long long)(f1 - f0),
           (unsigned long long)(s1 - s0), cpu1 - cpu0, us, rss2,
           (double)l50 / 1e6, (double)l99 / 1e6,
           (double)(rss1 - rss0) * 1024.0 / (double)chk_engine_count(e),
           (double)(m1.uordblks - m0.uordblks) / (double)chk_engine_count(e));
    fflush(stdout);
    chk_engine_close(e);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(b.lateness);
    return 0;
}

/* ---- uvtcp: the naive libuv probe, for comparison ---- */

/* What a straightforward libuv HTTP probe costs: a uv_tcp_t per probe
 * (init, connect, write, read_start, close and its callback), a repeating
 * uv_timer per check, the response scanned for its status line; SO_LINGER
 * 0 only so that 2,000 probes a second do not exhaust ephemeral ports. */
struct naive {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_timer_t timer;
    struct sockaddr_in addr;
    uint64_t started, due;
    bool busy;
    uint64_t *probes, *failed;
    struct bench *b;
};

static char naive_req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Connection: close\r\n\r\n";
static char naive_buf[4096];

static void naive_closed(uv_handle_t *h)
{
    ((struct naive *)h->data)->busy = false;
}

static void naive_done(struct naive *p, bool ok)
{
    if (!ok)
        (*p->failed)++;
    (*p->probes)++;
    int fd;
    if (uv_fileno((uv_handle_t *)&p->tcp, &fd) == 0) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    uv_close((uv_handle_t *)&p->tcp, naive_closed);
}

static void naive_alloc(uv_handle_t *h, size_t n, uv_buf_t *buf)
{
    *buf = uv_buf_init(naive_buf, sizeof(naive_buf));
}

static void naive_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct naive *p = st->data;
    if (n == 0)
        return;
    uv_read_stop(st);
    naive_done(p, n > 12 && memcmp(buf->base + 9, "200", 3) == 0);
}

static void naive_written(uv_write_t *w, int status) {}

static void naive_connected(uv_connect_t *req, int status)
{
    struct naive *p = req->data;
    if (status < 0) {
        naive_done(p, false);
        return;
    }
    uv_buf_t b = uv_buf_init(naive_req, sizeof(naive_req) - 1);
    uv_write(&p->wreq, (uv_stream_t *)&p->tcp, &b, 1, naive_written);
    uv_read_start((uv_stream_t *)&p->tcp, naive_alloc, naive_read);
}

static void naive_tick(uv_timer_t *t)
{
    struct naive *p = t->data;
    uint64_t now = uv_hrtime();
    if (p->b->measuring && p->b->n < p->b->cap && p->due)
        p->b->lateness[p->b->n++] = now > p->due ? now - p->due : 0;
    p->due = (uv_now(t->loop) + 1000) * 1000000ull;
    if (p->busy)
        return;
    p->busy = true;
    uv_tcp_init(t->loop, &p->tcp);
    p->tcp.data = p->creq.data = p->wreq.data = p;
    uv_tcp_connect(&p->creq, &p->tcp, (struct sockaddr *)&p->addr,
                   naive_connected);
}

static int mode_uvtcp(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int n = atoi(argv[0]), secs = atoi(argv[1]), port = atoi(argv[2]);
    raise_nofile();
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct bench b = {.cap = (size_t)n * (size_t)(secs + 2)};
    b.lateness = xcalloc(b.cap, sizeof(*b.lateness));
    uint64_t probes = 0, failed = 0;
    long rss0 = rss_kb();
    struct naive *all = xcalloc((size_t)n, sizeof(*all));
    for (int i = 0; i < n; i++) {
        struct naive *p = &all[i];
        char addr[32];
        snprintf(addr, sizeof(addr), "127.1.%d.%d", (i + 1) >> 8,
                 (i + 1) & 255);
        uv_ip4_addr(addr, port, &p->addr);
        p->probes = &probes;
        p->failed = &failed;
        p->b = &b;
        uv_timer_init(&loop, &p->timer);
        p->timer.data = p;
        uint64_t rnd;
        nc_random_bytes(&rnd, sizeof(rnd));
        uv_timer_start(&p->timer, naive_tick, rnd % 1000, 1000);
    }
    run_for(&loop, 2000);
    long rss1 = rss_kb();
    uint64_t p0 = probes, f0 = failed;
    double cpu0 = cpu_seconds();
    b.measuring = true;
    run_for(&loop, (uint64_t)secs * 1000);
    b.measuring = false;
    double cpu1 = cpu_seconds();
    uint64_t done = probes - p0;
    uint64_t l50 = percentile(b.lateness, b.n, 0.5);
    uint64_t l99 = percentile(b.lateness, b.n, 0.99);
    printf("probes=%llu failed=%llu skipped=0 cpu_s=%.3f us_per_probe=%.1f "
           "rss_kb=%ld lateness_p50_ms=%.2f lateness_p99_ms=%.2f "
           "rss_per_check_b=%.0f heap_per_check_b=%.0f\n",
           (unsigned long long)done, (unsigned long long)(failed - f0),
           cpu1 - cpu0, done ? (cpu1 - cpu0) * 1e6 / (double)done : 0, rss_kb(),
           (double)l50 / 1e6, (double)l99 / 1e6,
           (double)(rss1 - rss0) * 1024.0 / n, (double)sizeof(*all));
    fflush(stdout);
    for (int i = 0; i < n; i++)
        uv_close((uv_handle_t *)&all[i].timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT); /* probes in flight finish */
    uv_loop_close(&loop);
    free(all);
    free(b.lateness);
    return 0;
}

int main(int argc, char **argv)
{
    nc_log_setup(NC_LOG_WARN, false);
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && !strcmp(argv[1], "run"))
        return mode_run(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "serve"))
        return mode_serve(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "engine"))
        return mode_engine(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "uvtcp"))
        return mode_uvtcp(argc - 2, argv + 2);
    fprintf(stderr,
            "usage: bench_checks run|serve|engine|uvtcp ... (see source)\n");
    return 2;
}
