// deps: client/api/http_server.c client/tls.c client/util.c
/* The HTTP server: request parsing, limits and responses through the
 * socket-free path, and a real server on 127.0.0.1 driven by a client
 * thread (keep-alive, pipelining, timeouts, stop). Run with cwd = tests/. */
#include <arpa/inet.h>
#include <errno.h>
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

#include "client/api/api.h"
#include "client/tls.h"

static void echo(void *ctx, const struct http_request *req,
                 struct http_response *resp)
{
    (void)ctx;
    if (strcmp(req->path, "/missing") == 0) {
        http_response_error(resp, 404, "no such thing: %s", req->path);
        return;
    }
    const char *ua = kv_get(&req->headers, "x-test");
    json_t *q = json_object();
    for (size_t i = 0; i < req->query.n; i++)
        json_object_set_new(q, req->query.items[i].key,
                            json_string(req->query.items[i].value));
    http_response_json(resp, 200,
                       json_pack("{s:s, s:s, s:o, s:s%, s:s}", "method",
                                 req->method, "path", req->path, "query", q,
                                 "body", req->body, req->body_len, "x",
                                 ua ? ua : ""));
}

static char *feed(const char *req, int *rc)
{
    struct nc_buf out = {0};
    *rc = http_server_feed_for_test(req, strlen(req), echo, NULL, &out);
    nc_buf_puts(&out, "");
    return nc_buf_take(&out);
}

static void test_parse_and_respond(void **state)
{
    (void)state;
    int rc;
    char *out = feed("GET /v1/a%20b?x=1&y=two+words&pretty HTTP/1.1\r\nHost: h\r\nX-Test: yes\r\n\r\n", &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "Content-Type: application/json"));
    assert_non_null(strstr(out, "\"path\": \"/v1/a b\""));
    assert_non_null(strstr(out, "\"y\": \"two words\""));
    assert_non_null(strstr(out, "\"x\": \"yes\""));
    free(out);
    out = feed("POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &rc);
    assert_non_null(strstr(out, "\"body\":\"hello\""));
    free(out);
    out = feed("POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", &rc);
    assert_non_null(strstr(out, "\"body\":\"abcde\""));
    free(out);
    out = feed("GET /missing HTTP/1.1\r\n\r\n", &rc);
    assert_non_null(strstr(out, "HTTP/1.1 404 Not Found"));
    assert_non_null(strstr(out, "{\"error\":\"no such thing: /missing\"}"));
    free(out);
    out = feed("HEAD /h HTTP/1.1\r\n\r\n", &rc);
    assert_non_null(strstr(out, "Content-Length: "));
    assert_null(strstr(out, "\"method\""));
    free(out);
}

static void test_pipelining(void **state)
{
    (void)state;
    int rc;
    char *out = feed("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\nConnection: close\r\n\r\n", &rc);
    char *a = strstr(out, "\"/1\""), *b = strstr(out, "\"/2\""), *c = strstr(out, "\"/3\"");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(a < b && b < c);
    assert_int_equal(rc, -EPROTO); /* closed after the last */
    assert_non_null(strstr(out, "Connection: close"));
    free(out);
}

static void test_limits(void **state)
{
    (void)state;
    int rc;
    char *out = feed("BLAH\r\n\r\n", &rc);
    assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request"));
    assert_non_null(strstr(out, "{\"error\":\"bad request: "));
    assert_int_equal(rc, -EPROTO);
    free(out);
    struct nc_buf big = {0};
    nc_buf_puts(&big, "GET / HTTP/1.1\r\nX-Big: ");
    for (int i = 0; i < 20000; i++)
        nc_buf_putc(&big, 'a');
    nc_buf_puts(&big, "\r\n\r\n");
    out = feed(big.data, &rc);
    assert_non_null(strstr(out, "HTTP/1.1 431 "));
    free(out);
    nc_buf_free(&big);
    out = feed("POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", &rc);
    assert_non_null(strstr(out, "HTTP/1.1 413 "));
    free(out);
    out = feed("GET /a%00b HTTP/1.1\r\n\r\n", &rc);
    assert_non_null(strstr(out, "HTTP/1.1 400 "));
    free(out);
}

/* ---- a real server on a loop in this thread, clients on another -------- */

struct live {
    uv_loop_t loop;
    struct http_server *srv;
    uv_async_t stop;
    int port;
    bool closed;
};

static void on_closed(void *arg) { ((struct live *)arg)->closed = true; }

static void on_stop(uv_async_t *h)
{
    struct live *l = h->data;
    http_server_stop(l->srv, on_closed, l);
    uv_close((uv_handle_t *)h, NULL);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Reads until `n` responses' worth of "HTTP/1.1 " or EOF. */
static char *read_all(int fd, int want, bool until_eof)
{
    struct nc_buf b = {0};
    nc_buf_puts(&b, "");
    char buf[4096];
    for (;;) {
        int seen = 0;
        for (const char *p = b.data; (p = strstr(p, "HTTP/1.1 ")); p++)
            seen++;
        if (!until_eof && seen >= want && strstr(b.data, "}"))
            break;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        nc_buf_append(&b, buf, (size_t)n);
    }
    return nc_buf_take(&b);
}

static void *client(void *arg)
{
    struct live *l = arg;
    int fd = dial(l->port);
    const char *two = "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n";
    if (write(fd, two, strlen(two)) < 0)
        return "write";
    char *out = read_all(fd, 2, false);
    bool ok = strstr(out, "/one") && strstr(out, "/two");
    free(out);
    if (!ok)
        return "pipelined keep-alive answers missing";
    close(fd);
    /* an incomplete request is answered 408 after request_timeout_ms */
    fd = dial(l->port);
    if (write(fd, "GET /slow HTTP/1.1\r\nHost:", 24) < 0)
        return "write";
    out = read_all(fd, 1, true);
    ok = strstr(out, "HTTP/1.1 408 ") != NULL;
    free(out);
    close(fd);
    if (!ok)
        return "no 408 for a slow request";
    /* an idle keep-alive connection is closed */
    fd = dial(l->port);
    out = read_all(fd, 1, true);
    ok = out[0] == '\0';
    free(out);
    close(fd);
    if (!ok)
        return "idle connection got data";
    uv_async_send(&l->stop);
    return NULL;
}

static void test_live_server(void **state)
{
    (void)state;
    struct live l = {0};
    uv_loop_init(&l.loop);
    struct http_server_config cfg = {.bind_addr = "127.0.0.1", .port = 0,
                                     .request_timeout_ms = 200,
                                     .idle_timeout_ms = 300};
    struct nc_error err = {0};
    assert_int_equal(http_server_start(&l.srv, &l.loop, &cfg, echo, NULL, &err), 0);
    l.port = http_server_port(l.srv);
    assert_true(l.port > 0);
    uv_async_init(&l.loop, &l.stop, on_stop);
    l.stop.data = &l;
    pthread_t t;
    pthread_create(&t, NULL, client, &l);
    uv_run(&l.loop, UV_RUN_DEFAULT);
    void *res;
    pthread_join(t, &res);
    if (res)
        fail_msg("%s", (char *)res);
    assert_true(l.closed);
    assert_int_equal(uv_loop_close(&l.loop), 0);
}

/* ---- limits.http_max_conns_per_client ------------------------------------ */

static void *limit_client(void *arg)
{
    struct live *l = arg;
    int held[2] = {dial(l->port), dial(l->port)};
    /* the server counts a connection once it accepted it: a request on
     * each proves both are counted before the third comes */
    for (int i = 0; i < 2; i++) {
        const char *req = "GET /held HTTP/1.1\r\nHost: x\r\n\r\n";
        if (write(held[i], req, strlen(req)) < 0)
            return "write";
        char *out = read_all(held[i], 1, false);
        bool ok = strstr(out, "HTTP/1.1 200 ") != NULL;
        free(out);
        if (!ok)
            return "a connection under the limit was not served";
    }
    int fd = dial(l->port);
    char *out = read_all(fd, 1, true);
    bool ok = strstr(out, "HTTP/1.1 429 Too Many Requests") &&
              strstr(out, "too many concurrent connections");
    free(out);
    close(fd);
    if (!ok)
        return "the third connection from one IP got no 429";
    close(held[0]);
    /* once one is closed, a new connection is served again */
    for (int tries = 0; tries < 50; tries++) {
        fd = dial(l->port);
        const char *req = "GET /again HTTP/1.1\r\nHost: x\r\n\r\n";
        if (write(fd, req, strlen(req)) < 0) {
            close(fd);
            continue;
        }
        out = read_all(fd, 1, false);
        ok = strstr(out, "HTTP/1.1 200 ") != NULL;
        free(out);
        close(fd);
        if (ok)
            break;
        usleep(20000); /* the server has not seen the close yet */
    }
    close(held[1]);
    uv_async_send(&l->stop);
    return ok ? NULL : "no connection served after one closed";
}

static void test_conns_per_client(void **state)
{
    (void)state;
    struct live l = {0};
    uv_loop_init(&l.loop);
    struct http_server_config cfg = {.bind_addr = "127.0.0.1",
                                     .max_conns_per_client = 2};
    struct nc_error err = {0};
    assert_int_equal(http_server_start(&l.srv, &l.loop, &cfg, echo, NULL, &err), 0);
    l.port = http_server_port(l.srv);
    uv_async_init(&l.loop, &l.stop, on_stop);
    l.stop.data = &l;
    pthread_t t;
    pthread_create(&t, NULL, limit_client, &l);
    uv_run(&l.loop, UV_RUN_DEFAULT);
    void *res;
    pthread_join(t, &res);
    if (res)
        fail_msg("%s", (char *)res);
    assert_int_equal(uv_loop_close(&l.loop), 0);
}

/* ---- the TLS layer's names and file errors -------------------------------- */

static void test_tls_settings(void **state)
{
    (void)state;
    char msg[200];
    assert_int_equal(tls_check_min_version("tls12", msg, sizeof(msg)), 0);
    assert_int_equal(tls_check_min_version("tls10", msg, sizeof(msg)), 0);
    assert_int_equal(tls_check_min_version("tls13", msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "unsupported TLS version \"tls13\""));
    assert_int_equal(tls_check_cipher_suites(
                         "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "
                         "TLS_RSA_WITH_AES_256_CBC_SHA",
                         msg, sizeof(msg)),
                     0);
    assert_int_equal(tls_check_cipher_suites("TLS_RSA_WITH_AES_128_GCM_SHA256,"
                                             "TLS_FAKE",
                                             msg, sizeof(msg)),
                     -EINVAL);
    assert_non_null(strstr(msg, "\"TLS_FAKE\""));
    assert_int_equal(tls_check_cipher_suites(",", msg, sizeof(msg)), -EINVAL);

    struct tls_ctx *ctx = NULL;
    struct nc_error err = {0};
    struct tls_settings ts = {.cert_file = "/nonexistent/cert.pem",
                              .key_file = "/nonexistent/key.pem"};
    assert_true(tls_ctx_new(&ctx, true, &ts, &err) < 0);
    assert_non_null(strstr(err.msg, "\"/nonexistent/cert.pem\": No such file"));
    struct tls_settings none = {0};
    assert_true(tls_ctx_new(&ctx, true, &none, &err) < 0);
    assert_non_null(strstr(err.msg, "needs a certificate file"));
    struct tls_settings ca = {.ca_file = "/nonexistent/ca.pem",
                              .verify_peer = true};
    assert_true(tls_ctx_new(&ctx, false, &ca, &err) < 0);
    assert_non_null(strstr(err.msg, "CA file \"/nonexistent/ca.pem\""));
    /* a client without a CA uses the system's store */
    struct tls_settings sys = {.verify_peer = true};
    assert_int_equal(tls_ctx_new(&ctx, false, &sys, &err), 0);
    tls_ctx_free(ctx);
}

/* ---- streamed responses ------------------------------------------------- */

struct streamer {
    uv_loop_t *loop;
    uv_timer_t timer;
    struct http_stream *st;
    int ticks, limit; /* limit < 0: never ends */
    int gone, drains;
    uv_async_t stop;
    struct http_server *srv;
    int port;
    bool closed;
};

static void on_tick(uv_timer_t *t)
{
    struct streamer *s = t->data;
    if (!s->st)
        return;
    char line[32];
    int n = snprintf(line, sizeof(line), "tick %d\n", s->ticks++);
    http_stream_write(s->st, line, (size_t)n);
    if (s->limit >= 0 && s->ticks >= s->limit) {
        http_stream_end(s->st);
        s->st = NULL;
        uv_timer_stop(t);
    }
}

static void st_drain(void *arg) { ((struct streamer *)arg)->drains++; }

static void st_gone(void *arg)
{
    struct streamer *s = arg;
    s->gone++;
    s->st = NULL;
    uv_timer_stop(&s->timer);
}

static void stream_handler(void *ctx, const struct http_request *req,
                           struct http_response *resp)
{
    struct streamer *s = ctx;
    s->ticks = 0;
    s->limit = strcmp(req->path, "/forever") == 0 ? -1 : 3;
    s->st = http_response_stream(resp, "text/plain", st_drain, st_gone, s);
    http_stream_write(s->st, "first\n", 6);
    uv_timer_start(&s->timer, on_tick, 20, 20);
}

static void on_stream_server_closed(void *arg)
{
    ((struct streamer *)arg)->closed = true;
}

static void on_stream_stop(uv_async_t *h)
{
    struct streamer *s = h->data;
    http_server_stop(s->srv, on_stream_server_closed, s);
    uv_close((uv_handle_t *)h, NULL);
    uv_close((uv_handle_t *)&s->timer, NULL);
}

static void *stream_client(void *arg)
{
    struct streamer *s = arg;
    int fd = dial(s->port);
    const char *req = "GET /three HTTP/1.1\r\nHost: x\r\n\r\n";
    if (write(fd, req, strlen(req)) < 0)
        return "write";
    char *out = read_all(fd, 1, true); /* the server closes after the end */
    close(fd);
    bool ok = strstr(out, "Transfer-Encoding: chunked\r\n") &&
              !strstr(out, "Content-Length") &&
              strstr(out, "6\r\nfirst\n\r\n") &&
              strstr(out, "7\r\ntick 2\n\r\n") &&
              nc_str_has_suffix(out, "\r\n0\r\n\r\n");
    free(out);
    if (!ok)
        return "chunked stream not as expected";
    /* a client that goes away mid-stream is noticed */
    fd = dial(s->port);
    req = "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n";
    if (write(fd, req, strlen(req)) < 0)
        return "write";
    char buf[256];
    if (read(fd, buf, sizeof(buf)) <= 0)
        return "no stream data";
    close(fd);
    for (int i = 0; i < 100 && !__atomic_load_n(&s->gone, __ATOMIC_SEQ_CST); i++)
        usleep(10000);
    uv_async_send(&s->stop);
    return NULL;
}

static void test_stream(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct streamer s = {.loop = &loop};
    uv_timer_init(&loop, &s.timer);
    s.timer.data = &s;
    struct http_server_config cfg = {.bind_addr = "127.0.0.1", .port = 0,
                                     .idle_timeout_ms = 100};
    struct nc_error err = {0};
    assert_int_equal(http_server_start(&s.srv, &loop, &cfg, stream_handler,
                                       &s, &err), 0);
    s.port = http_server_port(s.srv);
    uv_async_init(&loop, &s.stop, on_stream_stop);
    s.stop.data = &s;
    pthread_t t;
    pthread_create(&t, NULL, stream_client, &s);
    uv_run(&loop, UV_RUN_DEFAULT);
    void *res;
    pthread_join(t, &res);
    if (res)
        fail_msg("%s", (char *)res);
    assert_int_equal(s.gone, 1); /* the /forever client only */
    assert_true(s.drains > 0);
    assert_true(s.closed);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_listen_error(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct http_server *s = NULL;
    struct http_server_config cfg = {.bind_addr = "not-an-ip", .port = 1};
    struct nc_error err = {0};
    assert_true(http_server_start(&s, &loop, &cfg, echo, NULL, &err) < 0);
    assert_string_equal(err.msg, "invalid bind address \"not-an-ip\"");
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_respond),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_live_server),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_listen_error),
        cmocka_unit_test(test_conns_per_client),
        cmocka_unit_test(test_tls_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
