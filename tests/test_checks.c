// deps: checks/ client/util.c
// deps: client/curl_uv.c
/* The check engine: the pure parts (thresholds, check_restart, status
 * mapping, schedule arithmetic, validation, response handling, JSON) and
 * real probes against loopback servers run by a thread of this test
 * (HTTP 200/429/500, TCP accepted/refused, timeouts, no doubled probes,
 * update keeping state, removal and engine close with probes in flight). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "checks/checks.h"

#define SEC 1000000000LL

/* ---- thresholds ---- */

/* Runs results given as a string of p/w/c and returns the reported
 * statuses as the same letters. */
static void run_thresholds(enum chk_status initial, int sbp, int fbw, int fbc,
                           const char *results, char *out)
{
    struct chk_threshold_state st = {.status = initial};
    struct chk_thresholds t = {sbp, fbw, fbc};
    size_t i = 0;
    for (; results[i]; i++) {
        enum chk_status r = results[i] == 'p'   ? CHK_PASSING
                            : results[i] == 'w' ? CHK_WARNING
                                                : CHK_CRITICAL;
        enum chk_status s = chk_threshold_apply(&st, &t, r);
        out[i] = s == CHK_PASSING ? 'p' : s == CHK_WARNING ? 'w' : 'c';
    }
    out[i] = '\0';
}

static void test_thresholds(void **state)
{
    (void)state;
    static const struct {
        enum chk_status initial;
        int sbp, fbw, fbc;
        const char *results, *reported, *why;
    } cases[] = {
        {CHK_CRITICAL, 0, 0, 0, "pcwpc", "pcwpc", "no thresholds"},
        {CHK_CRITICAL, 3, 0, 0, "ppcpppp", "cccccpp",
         "success_before_passing 3: three passes in a row"},
        {CHK_PASSING, 0, 0, 2, "pcpccc", "ppppcc",
         "failures_before_critical 2 (warning defaults to the same)"},
        {CHK_PASSING, 0, 1, 3, "cccp", "wwcp",
         "failures_before_warning 1 < failures_before_critical 3"},
        {CHK_CRITICAL, 2, 0, 0, "wwp", "cwp",
         "a warning counts as a success and is reported as warning"},
        {CHK_PASSING, 2, 0, 2, "cpcc", "pppc",
         "initial passing stays until failures reach the threshold"},
        {CHK_WARNING, 1, 0, 0, "p", "p", "initial warning"},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        char out[64];
        run_thresholds(cases[i].initial, cases[i].sbp, cases[i].fbw,
                       cases[i].fbc, cases[i].results, out);
        if (strcmp(out, cases[i].reported) != 0)
            fail_msg("%s: %s gave %s, want %s", cases[i].why, cases[i].results,
                     out, cases[i].reported);
    }
}

static void test_restart(void **state)
{
    (void)state;
    struct chk_restart_def r = {.limit = 3};
    int n = 0;
    /* inside grace nothing counts */
    assert_false(chk_restart_apply(&n, &r, CHK_CRITICAL, true));
    assert_false(chk_restart_apply(&n, &r, CHK_CRITICAL, true));
    assert_int_equal(n, 0);
    assert_false(chk_restart_apply(&n, &r, CHK_CRITICAL, false));
    assert_false(chk_restart_apply(&n, &r, CHK_WARNING, false));
    assert_true(chk_restart_apply(&n, &r, CHK_CRITICAL, false));
    assert_int_equal(n, 0); /* reset after a restart */
    /* a pass resets the count */
    assert_false(chk_restart_apply(&n, &r, CHK_CRITICAL, false));
    assert_false(chk_restart_apply(&n, &r, CHK_CRITICAL, false));
    assert_false(chk_restart_apply(&n, &r, CHK_PASSING, false));
    assert_false(chk_restart_apply(&n, &r, CHK_CRITICAL, false));
    assert_false(chk_restart_apply(&n, &r, CHK_CRITICAL, false));
    assert_true(chk_restart_apply(&n, &r, CHK_CRITICAL, false));
    /* ignore_warnings: a warning is healthy */
    r.ignore_warnings = true;
    n = 0;
    assert_false(chk_restart_apply(&n, &r, CHK_CRITICAL, false));
    assert_false(chk_restart_apply(&n, &r, CHK_CRITICAL, false));
    assert_false(chk_restart_apply(&n, &r, CHK_WARNING, false));
    assert_int_equal(n, 0);
    /* limit 1: the first unhealthy result after grace */
    r.limit = 1;
    assert_true(chk_restart_apply(&n, &r, CHK_CRITICAL, false));
    /* limit 0: never */
    r.limit = 0;
    for (int i = 0; i < 10; i++)
        assert_false(chk_restart_apply(&n, &r, CHK_CRITICAL, false));
}

static void test_status_mapping(void **state)
{
    (void)state;
    assert_int_equal(chk_http_status(200), CHK_PASSING);
    assert_int_equal(chk_http_status(204), CHK_PASSING);
    assert_int_equal(chk_http_status(299), CHK_PASSING);
    assert_int_equal(chk_http_status(429), CHK_WARNING);
    assert_int_equal(chk_http_status(199), CHK_CRITICAL);
    assert_int_equal(chk_http_status(301), CHK_CRITICAL);
    assert_int_equal(chk_http_status(404), CHK_CRITICAL);
    assert_int_equal(chk_http_status(500), CHK_CRITICAL);
    assert_int_equal(chk_http_status(503), CHK_CRITICAL);
    assert_string_equal(chk_status_name(CHK_PASSING), "passing");
    assert_string_equal(chk_status_name(CHK_WARNING), "warning");
    assert_string_equal(chk_status_name(CHK_CRITICAL), "critical");
    enum chk_status s;
    assert_int_equal(chk_status_parse("warning", &s), 0);
    assert_int_equal(s, CHK_WARNING);
    assert_int_equal(chk_status_parse("ok", &s), -EINVAL);
}

/* ---- schedule ---- */

static void test_schedule_stagger(void **state)
{
    (void)state;
    /* within min(interval, cap), spread out */
    uint64_t seen_low = 0, seen_high = 0;
    for (uint64_t r = 0; r < 10000; r++) {
        uint64_t rnd = r * 2654435761u;
        uint64_t d = chk_schedule_first(5000, 1000, 5000, rnd);
        assert_true(d >= 5000 && d < 6000);
        seen_low += d < 5500;
        seen_high += d >= 5500;
        d = chk_schedule_first(5000, 60000, 5000, rnd);
        assert_true(d >= 5000 && d < 10000);
    }
    assert_true(seen_low > 4000 && seen_high > 4000);
    /* a thousand checks added at once never land in one millisecond */
    unsigned buckets[1000] = {0};
    for (uint64_t i = 0; i < 1000; i++) {
        uint64_t rnd;
        nc_random_bytes(&rnd, sizeof(rnd));
        buckets[chk_schedule_first(0, 1000, 5000, rnd)]++;
    }
    for (int i = 0; i < 1000; i++)
        assert_true(buckets[i] < 12);
}

static void test_schedule_no_drift(void **state)
{
    (void)state;
    uint64_t missed;
    /* the probe ran late and took 300 ms: the next slot is still due+1000 */
    assert_int_equal(chk_schedule_next(1000, 1000, 1350, &missed), 2000);
    assert_int_equal(missed, 0);
    /* after 100 slots the schedule is exactly anchored */
    uint64_t due = 1234;
    for (int i = 0; i < 100; i++) {
        uint64_t now = due + (uint64_t)(i % 7) * 50; /* latency/lateness */
        due = chk_schedule_next(due, 1000, now, &missed);
        assert_int_equal(missed, 0);
    }
    assert_int_equal(due, 1234 + 100 * 1000);
    /* a stalled loop: slots passed over are skipped, not run in a burst */
    assert_int_equal(chk_schedule_next(1000, 1000, 4500, &missed), 5000);
    assert_int_equal(missed, 3);
    assert_int_equal(chk_schedule_next(1000, 1000, 2000, &missed), 3000);
    assert_int_equal(missed, 1);
}

/* ---- validation ---- */

static struct chk_def base_def(void)
{
    return (struct chk_def){
        .id = "web",
        .type = CHK_TYPE_HTTP,
        .address = "127.0.0.1",
        .port = 8080,
        .path = "/health",
        .interval_ns = 10 * SEC,
        .timeout_ns = 2 * SEC,
    };
}

static void expect_invalid(const struct chk_def *d, const char *msg)
{
    struct nc_error err = {0};
    assert_int_equal(chk_validate(d, &err), -EINVAL);
    if (!strstr(err.msg, msg))
        fail_msg("error \"%s\" does not contain \"%s\"", err.msg, msg);
}

static void test_validation(void **state)
{
    (void)state;
    struct chk_def d = base_def();
    struct nc_error err = {0};
    assert_int_equal(chk_validate(&d, &err), 0);
    d.interval_ns = 0;
    expect_invalid(&d, "interval: missing required value interval");
    d.interval_ns = 500000000;
    expect_invalid(&d, "interval: minimum check interval is 1s (got 500ms)");
    d = base_def();
    d.timeout_ns = 0;
    expect_invalid(&d, "timeout: missing required value timeout");
    d.timeout_ns = 999999999;
    expect_invalid(&d, "minimum check timeout is 1s");
    d = base_def();
    d.port = 0;
    expect_invalid(&d, "port: 0 is out of range");
    d.port = 70000;
    expect_invalid(&d, "port: 70000 is out of range");
    d = base_def();
    d.address = "example.com";
    expect_invalid(&d, "address: \"example.com\" is not an IPv4 or IPv6");
    d.address = "";
    expect_invalid(&d, "address: required");
    d.address = "::1";
    assert_int_equal(chk_validate(&d, &err), 0);
    d.address = "[fe80::1]";
    assert_int_equal(chk_validate(&d, &err), 0);
    d = base_def();
    d.method = "G ET";
    expect_invalid(&d, "method: invalid HTTP method \"G ET\"");
    d.method = "PURGE";
    assert_int_equal(chk_validate(&d, &err), 0);
    d = base_def();
    d.protocol = (enum chk_protocol)7;
    expect_invalid(&d, "protocol: must be http or https");
    d = base_def();
    d.path = NULL;
    expect_invalid(&d, "path: http type must have http check path");
    d.path = "health";
    expect_invalid(&d, "path: \"health\" must start with \"/\"");
    d.path = "/a b";
    expect_invalid(&d, "path: invalid character 0x20");
    d = base_def();
    d.type = CHK_TYPE_NONE;
    expect_invalid(&d, "type: must be http, tcp, grpc or script");
    d = base_def();
    d.id = "";
    expect_invalid(&d, "id: must not be empty");
    d = base_def();
    struct chk_header bad[] = {{"X-A", "1\r\nInjected: yes"}};
    d.headers = bad;
    d.nheaders = 1;
    expect_invalid(&d, "header \"X-A\": value must not contain CR or LF");
    struct chk_header badname[] = {{"X A", "1"}};
    d.headers = badname;
    expect_invalid(&d, "header \"X A\": invalid header name");
    d = base_def();
    d.success_before_passing = -1;
    expect_invalid(&d, "success_before_passing: must be greater than or equal "
                       "to 0 but found -1");
    d = base_def();
    d.on_update = "sometimes";
    expect_invalid(&d, "on_update: must be");
    d.on_update = "ignore";
    d.check_restart.limit = 3;
    expect_invalid(&d, "\"ignore\" is not supported with check_restart");
    d.on_update = "ignore_warnings";
    expect_invalid(&d, "requires check_restart.ignore_warnings");
    d.check_restart.ignore_warnings = true;
    assert_int_equal(chk_validate(&d, &err), 0);
    /* tcp checks need no path */
    d = base_def();
    d.type = CHK_TYPE_TCP;
    d.path = NULL;
    assert_int_equal(chk_validate(&d, &err), 0);
}

/* ---- response handling ---- */

static char *feed(const char *resp, size_t len, size_t chunk,
                  struct chk_result *r)
{
    struct nc_buf out = {0};
    chk_http_feed_for_test(resp, len, chunk, r, &out);
    return nc_buf_take(&out);
}

#define FEED(s, chunk, r) feed(s, sizeof(s) - 1, chunk, r)

static void test_response_handling(void **state)
{
    (void)state;
    struct chk_result r;
    char *o = FEED("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, &r);
    assert_int_equal(r.status, CHK_PASSING);
    assert_int_equal(r.http_code, 200);
    assert_string_equal(o, "HTTP GET http://127.0.0.1:80/: 200 OK Output: ok");
    free(o);
    /* one byte at a time gives the same */
    o = FEED(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown", 1,
        &r);
    assert_int_equal(r.status, CHK_CRITICAL);
    assert_string_equal(o, "HTTP GET http://127.0.0.1:80/: 503 Service "
                           "Unavailable Output: down");
    free(o);
    o = FEED("HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n", 7,
             &r);
    assert_int_equal(r.status, CHK_WARNING);
    free(o);
    /* chunked, and a body ended by the connection closing */
    o = FEED("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
             5, &r);
    assert_string_equal(o,
                        "HTTP GET http://127.0.0.1:80/: 200 OK Output: abcde");
    free(o);
    o = FEED("HTTP/1.0 200 OK\r\n\r\nuntil close", 0, &r);
    assert_int_equal(r.status, CHK_PASSING);
    assert_non_null(strstr(o, "Output: until close"));
    free(o);
    /* an interim 100 Continue is skipped */
    o = FEED("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 3,
             &r);
    assert_int_equal(r.http_code, 204);
    assert_int_equal(r.status, CHK_PASSING);
    free(o);
    /* no reason phrase: the standard one */
    o = FEED("HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n", 0, &r);
    assert_non_null(strstr(o, ": 500 Internal Server Error Output: "));
    free(o);
    /* malformed, and closed before the status line */
    o = FEED("SSH-2.0-OpenSSH_9.2\r\n", 0, &r);
    assert_int_equal(r.status, CHK_CRITICAL);
    assert_int_equal(r.http_code, 0);
    assert_non_null(strstr(o, "malformed HTTP response"));
    free(o);
    o = FEED("HTTP/1.1 200 O", 0, &r);
    assert_int_equal(r.status, CHK_CRITICAL);
    assert_non_null(strstr(o, "EOF"));
    free(o);
    o = feed("", 0, 0, &r);
    assert_int_equal(r.status, CHK_CRITICAL);
    free(o);
    /* the status decides when the body is cut short (as Consul) */
    o = FEED("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", 0, &r);
    assert_int_equal(r.status, CHK_PASSING);
    free(o);
    /* invalid UTF-8 and NULs never reach the JSON output raw */
    o = feed("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\na\0\xff"
             "b",
             42, 0, &r);
    assert_non_null(strstr(o, "Output: a\xef\xbf\xbd\xef\xbf\xbd"
                              "b"));
    json_t *j = json_string(o);
    assert_non_null(j);
    json_decref(j);
    free(o);
}

static void test_body_cap(void **state)
{
    (void)state;
    /* 1 MiB body: 4 KiB kept, the status read */
    size_t n = 1 << 20;
    struct nc_buf b = {0};
    nc_buf_printf(&b, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
    for (size_t i = 0; i < n; i++)
        nc_buf_putc(&b, (char)('a' + i % 26));
    struct chk_result r;
    char *o = feed(b.data, b.len, 1000, &r);
    assert_int_equal(r.status, CHK_PASSING);
    const char *body = strstr(o, "Output: ") + 8;
    assert_int_equal(strlen(body), CHK_OUTPUT_MAX);
    free(o);
    nc_buf_free(&b);
}

/* ---- engine against loopback servers ---- */

struct server {
    int fd, port;
    pthread_t thread;
    const char *response; /* NULL: accept and never answer */
    volatile int stop;
    volatile int accepted;
    pthread_mutex_t lock;
    char last_request[4096]; /* what the last probe sent */
};

static void *server_main(void *arg)
{
    struct server *s = arg;
    int held[64];
    int nheld = 0;
    while (!s->stop) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        s->accepted++;
        if (!s->response) {
            if (nheld < 64)
                held[nheld++] = c; /* hangs: never answers */
            else
                close(c);
            continue;
        }
        char buf[4096];
        size_t got = 0;
        while (got < sizeof(buf) - 1) {
            ssize_t r = read(c, buf + got, sizeof(buf) - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            buf[got] = '\0';
            if (strstr(buf, "\r\n\r\n"))
                break;
        }
        pthread_mutex_lock(&s->lock);
        memcpy(s->last_request, buf, got + 1);
        pthread_mutex_unlock(&s->lock);
        ssize_t w = write(c, s->response, strlen(s->response));
        (void)w;
        close(c);
    }
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    return NULL;
}

static void server_start(struct server *s, const char *response)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->response = response;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 64), 0);
    socklen_t len = sizeof(a);
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, server_main, s);
}

static void server_stop(struct server *s)
{
    s->stop = 1;
    shutdown(s->fd, SHUT_RDWR); /* wakes accept() */
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* A port with nothing listening: bound, never listened on. */
static int closed_port(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    bind(*fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(*fd, (struct sockaddr *)&a, &len);
    return ntohs(a.sin_port);
}

#define MAX_SEEN 64

struct seen {
    struct chk_engine *e;
    int results;
    struct {
        char id[32];
        enum chk_status status;
        int code;
        bool timed_out;
        int64_t latency_ns;
        char output[256];
    } r[MAX_SEEN];
    int changes, restarts;
    enum chk_status last_old, last_new;
    const char *remove_on_result; /* chk_remove from inside the callback */
    bool close_on_result;
};

static void on_result(void *arg, struct chk *c, const struct chk_result *res)
{
    struct seen *s = arg;
    if (s->results < MAX_SEEN) {
        snprintf(s->r[s->results].id, sizeof(s->r[0].id), "%s", chk_id(c));
        s->r[s->results].status = res->status;
        s->r[s->results].code = res->http_code;
        s->r[s->results].timed_out = res->timed_out;
        s->r[s->results].latency_ns = res->latency_ns;
        snprintf(s->r[s->results].output, sizeof(s->r[0].output), "%s",
                 res->output);
    }
    s->results++;
    if (s->remove_on_result && strcmp(chk_id(c), s->remove_on_result) == 0)
        assert_int_equal(chk_remove(s->e, chk_id(c)), 0);
    if (s->close_on_result) {
        chk_engine_close(s->e);
        s->e = NULL;
    }
}

static void on_change(void *arg, struct chk *c, enum chk_status old,
                      enum chk_status now)
{
    struct seen *s = arg;
    s->changes++;
    s->last_old = old;
    s->last_new = now;
}

static void on_restart(void *arg, struct chk *c)
{
    struct seen *s = arg;
    s->restarts++;
}

static const struct chk_callbacks callbacks = {
    .on_result = on_result,
    .on_status_change = on_change,
    .on_restart = on_restart,
};

static void stop_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Runs the loop until `want` results or `ms` elapsed. */
static void run_until(uv_loop_t *loop, struct seen *s, int want, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uint64_t end = uv_now(loop) + ms;
    while (s->results < want && uv_now(loop) < end) {
        uv_timer_start(&t, stop_cb, 20, 0);
        uv_run(loop, UV_RUN_DEFAULT);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void engine_start(uv_loop_t *loop, struct seen *s)
{
    uv_loop_init(loop);
    memset(s, 0, sizeof(*s));
    assert_int_equal(chk_engine_new(&s->e, loop, &callbacks, s), 0);
}

static void engine_finish(uv_loop_t *loop, struct seen *s)
{
    if (s->e)
        chk_engine_close(s->e);
    s->e = NULL;
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

static struct chk_def loop_def(const char *id, enum chk_type type, int port)
{
    struct chk_def d = base_def();
    d.id = id;
    d.type = type;
    d.port = port;
    d.interval_ns = SEC;
    d.timeout_ns = SEC;
    return d;
}

static int find_result(const struct seen *s, const char *id)
{
    for (int i = 0; i < s->results && i < MAX_SEEN; i++)
        if (strcmp(s->r[i].id, id) == 0)
            return i;
    return -1;
}

/* The first result of `id` timed out after [lo_ms, hi_ms) with Consul's
 * wording for a 1s timeout on http(s)://127.0.0.1:port/health. */
static void expect_timeout(const struct seen *s, const char *id,
                           const char *scheme, int port, int64_t lo_ms,
                           int64_t hi_ms)
{
    int i = find_result(s, id);
    assert_true(i >= 0);
    assert_int_equal(s->r[i].status, CHK_CRITICAL);
    assert_true(s->r[i].timed_out);
    assert_true(s->r[i].latency_ns >= lo_ms * 1000000);
    assert_true(s->r[i].latency_ns < hi_ms * 1000000);
    char want[128];
    snprintf(want, sizeof(want),
             "HTTP GET %s://127.0.0.1:%d/health: timeout after 1s", scheme,
             port);
    assert_string_equal(s->r[i].output, want);
}

static void test_live_http_and_tcp(void **state)
{
    (void)state;
    struct server ok, busy, bad;
    server_start(&ok, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhealthy");
    server_start(&busy, "HTTP/1.1 429 Too Many Requests\r\nContent-Length: "
                        "0\r\n\r\n");
    server_start(&bad, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: "
                       "4\r\n\r\noops");
    int cfd;
    int refused = closed_port(&cfd);
    uv_loop_t loop;
    struct seen s;
    engine_start(&loop, &s);
    struct nc_error err;
    struct chk_def defs[] = {
        loop_def("ok", CHK_TYPE_HTTP, ok.port),
        loop_def("busy", CHK_TYPE_HTTP, busy.port),
        loop_def("bad", CHK_TYPE_HTTP, bad.port),
        loop_def("tcp-ok", CHK_TYPE_TCP, ok.port),
        loop_def("tcp-refused", CHK_TYPE_TCP, refused),
        loop_def("http-refused", CHK_TYPE_HTTP, refused),
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(defs); i++)
        assert_int_equal(chk_add(s.e, &defs[i], &err), 0);
    assert_int_equal(chk_add(s.e, &defs[0], &err), -EEXIST);
    assert_int_equal(chk_engine_count(s.e), 6);
    run_until(&loop, &s, 6, 3000);
    assert_true(s.results >= 6);
    char want[128];
    int i = find_result(&s, "ok");
    assert_true(i >= 0);
    assert_int_equal(s.r[i].status, CHK_PASSING);
    assert_int_equal(s.r[i].code, 200);
    snprintf(want, sizeof(want),
             "HTTP GET http://127.0.0.1:%d/health: 200 OK Output: healthy",
             ok.port);
    assert_string_equal(s.r[i].output, want);
    i = find_result(&s, "busy");
    assert_int_equal(s.r[i].status, CHK_WARNING);
    i = find_result(&s, "bad");
    assert_int_equal(s.r[i].status, CHK_CRITICAL);
    assert_non_null(
        strstr(s.r[i].output, "500 Internal Server Error Output: oops"));
    i = find_result(&s, "tcp-ok");
    assert_int_equal(s.r[i].status, CHK_PASSING);
    snprintf(want, sizeof(want), "TCP connect 127.0.0.1:%d: Success", ok.port);
    assert_string_equal(s.r[i].output, want);
    i = find_result(&s, "tcp-refused");
    assert_int_equal(s.r[i].status, CHK_CRITICAL);
    snprintf(want, sizeof(want),
             "dial tcp 127.0.0.1:%d: connect: connection refused", refused);
    assert_string_equal(s.r[i].output, want);
    i = find_result(&s, "http-refused");
    assert_int_equal(s.r[i].status, CHK_CRITICAL);
    assert_non_null(strstr(s.r[i].output, "connection refused"));
    /* reported status follows (no thresholds): ok passing, busy warning */
    assert_int_equal(chk_get_status(chk_find(s.e, "ok")), CHK_PASSING);
    assert_int_equal(chk_get_status(chk_find(s.e, "busy")), CHK_WARNING);
    assert_int_equal(chk_get_status(chk_find(s.e, "bad")), CHK_CRITICAL);
    assert_true(s.changes >= 3); /* ok, busy and tcp-ok left critical */

    /* JSON shape */
    json_t *all = chk_engine_to_json(s.e);
    assert_int_equal(json_object_size(all), 6);
    json_t *j = json_object_get(all, "ok");
    assert_string_equal(json_string_value(json_object_get(j, "ID")), "ok");
    assert_string_equal(json_string_value(json_object_get(j, "Status")),
                        "passing");
    assert_non_null(
        strstr(json_string_value(json_object_get(j, "Output")), "200 OK"));
    assert_true(json_is_string(json_object_get(j, "Timestamp")));
    assert_true(json_integer_value(json_object_get(j, "Latency")) > 0);
    assert_true(json_array_size(json_object_get(j, "History")) >= 1);
    json_t *h0 = json_array_get(json_object_get(j, "History"), 0);
    assert_string_equal(json_string_value(json_object_get(h0, "Status")),
                        "passing");
    assert_int_equal(json_integer_value(json_object_get(h0, "Code")), 200);
    json_t *k = json_object_get(j, "Counters");
    assert_true(json_integer_value(json_object_get(k, "Probes")) >= 1);
    assert_true(json_integer_value(json_object_get(k, "Passing")) >= 1);
    assert_int_equal(json_integer_value(json_object_get(k, "Critical")), 0);
    assert_true(json_is_integer(json_object_get(k, "Skipped")));
    assert_true(json_is_integer(json_object_get(k, "Timeouts")));
    snprintf(want, sizeof(want), "http://127.0.0.1:%d/health", ok.port);
    assert_string_equal(json_string_value(json_object_get(j, "URL")), want);
    assert_string_equal(json_string_value(json_object_get(j, "Type")), "http");
    json_decref(all);

    engine_finish(&loop, &s);
    server_stop(&ok);
    server_stop(&busy);
    server_stop(&bad);
    close(cfd);
}

static void test_timeout_and_skip(void **state)
{
    (void)state;
    struct server hang;
    server_start(&hang, NULL);
    uv_loop_t loop;
    struct seen s;
    engine_start(&loop, &s);
    struct nc_error err;
    struct chk_def d = loop_def("hang", CHK_TYPE_HTTP, hang.port);
    assert_int_equal(chk_add(s.e, &d, &err), 0);
    /* timeout longer than the interval: the next slot finds the probe
     * running and skips, never runs two at once */
    struct chk_def d2 = loop_def("slow", CHK_TYPE_HTTP, hang.port);
    d2.timeout_ns = 2500000000LL;
    assert_int_equal(chk_add(s.e, &d2, &err), 0);
    run_until(&loop, &s, 1000, 3700); /* slow's first result is by 3.5s */
    /* the whole probe is bounded by its timeout, which runs from the
     * scheduled time (so it may end a few ms before 1s of latency) */
    expect_timeout(&s, "hang", "http", hang.port, 950, 1150);
    int i = find_result(&s, "slow");
    assert_true(i >= 0);
    assert_true(s.r[i].latency_ns >= 2450000000LL);
    assert_true(s.r[i].latency_ns < 2650000000LL);
    struct chk_counters k;
    chk_get_counters(chk_find(s.e, "slow"), &k);
    assert_int_equal(k.probes, 1);
    assert_int_equal(k.timeouts, 1);
    assert_true(k.skipped >= 2); /* slots at +1s and +2s */
    engine_finish(&loop, &s);
    server_stop(&hang);
}

static void test_update_remove_close(void **state)
{
    (void)state;
    struct server ok, hang;
    server_start(&ok, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    server_start(&hang, NULL);
    uv_loop_t loop;
    struct seen s;
    engine_start(&loop, &s);
    struct nc_error err;
    struct chk_def d = loop_def("u", CHK_TYPE_HTTP, ok.port);
    assert_int_equal(chk_add(s.e, &d, &err), 0);
    run_until(&loop, &s, 1, 3000);
    assert_int_equal(chk_get_status(chk_find(s.e, "u")), CHK_PASSING);
    struct chk_counters before;
    chk_get_counters(chk_find(s.e, "u"), &before);
    /* new path and headers: status, counters and history kept */
    struct chk_header hs[] = {
        {"X-Token", "a"}, {"Connection", "keep-alive"}, {"X-Token", "b"}};
    d.path = "/v2/health";
    d.headers = hs;
    d.nheaders = 3;
    assert_int_equal(chk_update(s.e, &d, &err), 0);
    assert_int_equal(chk_get_status(chk_find(s.e, "u")), CHK_PASSING);
    struct chk_counters after;
    chk_get_counters(chk_find(s.e, "u"), &after);
    assert_int_equal(after.probes, before.probes);
    json_t *j = chk_to_json(chk_find(s.e, "u"));
    assert_non_null(
        strstr(json_string_value(json_object_get(j, "URL")), "/v2/health"));
    assert_int_equal(json_array_size(json_object_get(j, "History")),
                     before.probes);
    json_decref(j);
    /* the request bytes: multi-valued header, Host, framing our own */
    int had = s.results;
    run_until(&loop, &s, had + 1, 3000);
    pthread_mutex_lock(&ok.lock);
    char req[4096];
    memcpy(req, ok.last_request, sizeof(req));
    pthread_mutex_unlock(&ok.lock);
    assert_non_null(strstr(req, "GET /v2/health HTTP/1.1\r\n"));
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", ok.port);
    assert_non_null(strstr(req, host));
    assert_non_null(strstr(req, "\r\nX-Token: a\r\nX-Token: b\r\n"));
    assert_non_null(strstr(req, "\r\nUser-Agent: Consul Health Check\r\n"));
    assert_non_null(strstr(req, "\r\nConnection: close\r\n\r\n"));
    assert_null(strstr(req, "keep-alive"));
    /* invalid update: refused, the old definition stays */
    d.interval_ns = 10;
    assert_int_equal(chk_update(s.e, &d, &err), -EINVAL);
    d.id = "nope";
    d.interval_ns = SEC;
    assert_int_equal(chk_update(s.e, &d, &err), -ENOENT);
    assert_int_equal(chk_remove(s.e, "nope"), -ENOENT);
    /* removal from inside its own result callback */
    s.remove_on_result = "u";
    had = s.results;
    run_until(&loop, &s, had + 1, 3000);
    assert_null(chk_find(s.e, "u"));
    assert_int_equal(chk_engine_count(s.e), 0);
    /* close with probes in flight: hanging http and https probes */
    struct chk_def h = loop_def("hang", CHK_TYPE_HTTP, hang.port);
    assert_int_equal(chk_add(s.e, &h, &err), 0);
    h.id = "hang-tcp";
    h.type = CHK_TYPE_TCP;
    assert_int_equal(chk_add(s.e, &h, &err), 0);
    run_until(&loop, &s, 1000, 1100); /* both probes started */
    engine_finish(&loop, &s);
    server_stop(&ok);
    server_stop(&hang);
}

static void test_restart_live(void **state)
{
    (void)state;
    int cfd;
    int refused = closed_port(&cfd);
    uv_loop_t loop;
    struct seen s;
    engine_start(&loop, &s);
    struct nc_error err;
    struct chk_def d = loop_def("r", CHK_TYPE_TCP, refused);
    d.check_restart.limit = 2;
    d.check_restart.grace_ns = 0;
    assert_int_equal(chk_add(s.e, &d, &err), 0);
    run_until(&loop, &s, 2, 4000);
    assert_int_equal(s.results, 2);
    assert_int_equal(s.restarts, 1);
    assert_int_equal(chk_reset_grace(s.e, "r"), 0);
    assert_int_equal(chk_reset_grace(s.e, "x"), -ENOENT);
    /* closing the engine from a callback */
    s.close_on_result = true;
    run_until(&loop, &s, 3, 3000);
    assert_null(s.e);
    engine_finish(&loop, &s);
    close(cfd);
}

/* A listener whose accept queue is full drops SYNs: the tcp probe's
 * connect never completes and times out at the deadline, probe after
 * probe on the same kept socket. */
static void test_tcp_connect_timeout(void **state)
{
    (void)state;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 0), 0);
    socklen_t len = sizeof(a);
    getsockname(l, (struct sockaddr *)&a, &len);
    int fill[4];
    for (int i = 0; i < 4; i++) { /* nobody accepts: the queue fills */
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&a, sizeof(a));
    }
    usleep(100000);
    uv_loop_t loop;
    struct seen s;
    engine_start(&loop, &s);
    struct nc_error err;
    struct chk_def d = loop_def("syn", CHK_TYPE_TCP, ntohs(a.sin_port));
    assert_int_equal(chk_add(s.e, &d, &err), 0);
    run_until(&loop, &s, 2, 3500);
    assert_int_equal(s.results, 2);
    char want[96];
    snprintf(want, sizeof(want), "dial tcp 127.0.0.1:%d: timeout after 1s",
             ntohs(a.sin_port));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s.r[i].status, CHK_CRITICAL);
        assert_true(s.r[i].timed_out);
        assert_string_equal(s.r[i].output, want);
        assert_true(s.r[i].latency_ns >= 950000000LL &&
                    s.r[i].latency_ns < 1150000000LL);
    }
    engine_finish(&loop, &s);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(l);
}

/* IPv6 literals, bracketed or not, reach a [::1] listener (skipped when
 * the machine has no IPv6 loopback). */
static void test_ipv6(void **state)
{
    (void)state;
    int l = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::1", &a.sin6_addr);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(l, 16) < 0) {
        if (l >= 0)
            close(l);
        skip();
    }
    socklen_t len = sizeof(a);
    getsockname(l, (struct sockaddr *)&a, &len);
    int port = ntohs(a.sin6_port);
    uv_loop_t loop;
    struct seen s;
    engine_start(&loop, &s);
    struct nc_error err;
    struct chk_def d = loop_def("v6", CHK_TYPE_TCP, port);
    d.address = "::1";
    assert_int_equal(chk_add(s.e, &d, &err), 0);
    d.id = "v6-bracketed";
    d.address = "[::1]";
    assert_int_equal(chk_add(s.e, &d, &err), 0);
    run_until(&loop, &s, 2, 2500);
    assert_int_equal(s.results, 2);
    char want[64];
    snprintf(want, sizeof(want), "TCP connect [::1]:%d: Success", port);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s.r[i].status, CHK_PASSING);
        assert_string_equal(s.r[i].output, want);
    }
    engine_finish(&loop, &s);
    close(l);
}

/* HTTPS through the dlopen'd libcurl: a target that never completes the
 * TLS handshake times out at the deadline, a closed port is critical, and
 * the engine closes cleanly with a transfer in flight. */
static void test_https(void **state)
{
    (void)state;
    struct server hang;
    server_start(&hang, NULL);
    int cfd;
    int refused = closed_port(&cfd);
    uv_loop_t loop;
    struct seen s;
    engine_start(&loop, &s);
    struct nc_error err;
    struct chk_def d = loop_def("tls-hang", CHK_TYPE_HTTP, hang.port);
    d.protocol = CHK_PROTO_HTTPS;
    assert_int_equal(chk_add(s.e, &d, &err), 0);
    d = loop_def("tls-refused", CHK_TYPE_HTTP, refused);
    d.protocol = CHK_PROTO_HTTPS;
    assert_int_equal(chk_add(s.e, &d, &err), 0);
    run_until(&loop, &s, 1000, 2300);
    expect_timeout(&s, "tls-hang", "https", hang.port, 900, 1200);
    int i = find_result(&s, "tls-refused");
    assert_true(i >= 0);
    assert_int_equal(s.r[i].status, CHK_CRITICAL);
    assert_non_null(strstr(s.r[i].output, "HTTP GET https://127.0.0.1:"));
    /* close while the hanging transfer is in flight */
    json_t *j = chk_to_json(chk_find(s.e, "tls-hang"));
    assert_string_equal(json_string_value(json_object_get(j, "Protocol")),
                        "https");
    json_decref(j);
    engine_finish(&loop, &s);
    server_stop(&hang);
    close(cfd);
}

static int count_fds(void)
{
    int n = 0;
    uv_fs_t req;
    if (uv_fs_scandir(NULL, &req, "/proc/self/fd", 0, NULL) >= 0) {
        uv_dirent_t ent;
        while (uv_fs_scandir_next(&req, &ent) != UV_EOF)
            n++;
    }
    uv_fs_req_cleanup(&req);
    return n;
}

/* A check keeps its socket between probes (connect(AF_UNSPEC)): a target
 * that refused and then listens is seen at once, and nothing is left open
 * once the engine is gone. */
static void test_socket_reuse(void **state)
{
    (void)state;
    int fds_before = count_fds();
    int lfd;
    int port = closed_port(&lfd);
    uv_loop_t loop;
    struct seen s;
    engine_start(&loop, &s);
    struct nc_error err;
    struct chk_def d = loop_def("flip", CHK_TYPE_TCP, port);
    assert_int_equal(chk_add(s.e, &d, &err), 0);
    run_until(&loop, &s, 2, 3500);
    assert_int_equal(s.results, 2);
    assert_int_equal(s.r[0].status, CHK_CRITICAL);
    assert_int_equal(s.r[1].status, CHK_CRITICAL);
    assert_int_equal(listen(lfd, 16), 0); /* the service comes up */
    run_until(&loop, &s, 4, 3500);
    assert_int_equal(s.results, 4);
    assert_int_equal(s.r[2].status, CHK_PASSING);
    assert_int_equal(s.r[3].status, CHK_PASSING);
    assert_int_equal(chk_get_status(chk_find(s.e, "flip")), CHK_PASSING);
    close(lfd); /* and goes away again */
    run_until(&loop, &s, 5, 2500);
    assert_int_equal(s.r[4].status, CHK_CRITICAL);
    engine_finish(&loop, &s);
    assert_int_equal(count_fds(), fds_before);
}

int main(void)
{
    nc_log_setup(NC_LOG_WARN, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_schedule_stagger),
        cmocka_unit_test(test_schedule_no_drift),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_response_handling),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_live_http_and_tcp),
        cmocka_unit_test(test_timeout_and_skip),
        cmocka_unit_test(test_update_remove_close),
        cmocka_unit_test(test_restart_live),
        cmocka_unit_test(test_socket_reuse),
        cmocka_unit_test(test_https),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_tcp_connect_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
