// deps: client/drivers/docker_api.c client/curl_uv.c client/util.c
/* The Docker Engine API client against a fake Engine run by a thread of
 * this test on a unix socket (and TCP): JSON answers, 204, the daemon's
 * messages on 404/409/500, a 500 that is not JSON, an answer cut short, a
 * daemon that never answers, one that closes without answering, no
 * socket, streams (chunks in order as they come, a stall caught by the
 * idle timeout, an error status on a stream), a body uploaded from a file,
 * cancel, close and new calls from inside a stream's callback, the
 * blocking call; then the pure parts: the multiplexed stream split at
 * every byte, a 2 MiB frame, bad headers, the progress stream, the
 * X-Registry-Auth header against a vector computed by hand, query
 * escaping. With NOMCLIENT_TEST_DOCKER_ENDPOINT set (a daemon the caller
 * started for the test), a few calls go to the real Engine too. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/curl_uv.h"
#include "client/drivers/docker_api.h"

/* ---- the fake Engine ---- */

#define MAX_CONNS 64

struct fake {
    char dir[64];
    char sock[128];
    char endpoint[160];
    char tcp_endpoint[64];
    int lfd, tfd;
    int stop[2]; /* written once at the end: every thread returns */
    int step[2]; /* the test lets /stream send its next chunk */
    pthread_t acceptor;
    pthread_mutex_t mu;
    pthread_t conns[MAX_CONNS];
    size_t nconns;
    int eofs; /* connections the client closed */
    int requests;
};

struct conn {
    struct fake *f;
    int fd;
    char in[65536];
    size_t len; /* bytes in `in` not consumed yet */
};

struct request {
    char method[16];
    char target[1024];
    long content_length;
    char ctype[128];
    char auth[1024];
    char agent[128];
};

/* Waits for fd readable or the stop pipe; false on stop. */
static bool wait_readable(struct fake *f, int fd)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                          {.fd = f->stop[0], .events = POLLIN}};
    while (poll(p, 2, -1) < 0)
        if (errno != EINTR)
            return false;
    return !(p[1].revents & POLLIN);
}

/* Reads more into c->in; false on EOF, error or stop. */
static bool conn_fill(struct conn *c)
{
    if (c->len == sizeof(c->in) || !wait_readable(c->f, c->fd))
        return false;
    ssize_t n = read(c->fd, c->in + c->len, sizeof(c->in) - c->len);
    if (n <= 0) {
        if (n == 0) {
            pthread_mutex_lock(&c->f->mu);
            c->f->eofs++;
            pthread_mutex_unlock(&c->f->mu);
        }
        return false;
    }
    c->len += (size_t)n;
    return true;
}

static void conn_consume(struct conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->len - n);
    c->len -= n;
}

static void header_value(const char *hdrs, const char *name, char *out,
                         size_t outlen)
{
    out[0] = '\0';
    for (const char *l = hdrs; l && *l; l = strstr(l, "\r\n")) {
        if (l[0] == '\r')
            l += 2;
        if (strncasecmp(l, name, strlen(name)) == 0 && l[strlen(name)] == ':') {
            const char *v = l + strlen(name) + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t n = e ? (size_t)(e - v) : strlen(v);
            if (n >= outlen)
                n = outlen - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return;
        }
    }
}

static bool read_request(struct conn *c, struct request *r)
{
    char *end;
    while (!(end = memmem(c->in, c->len, "\r\n\r\n", 4)))
        if (!conn_fill(c))
            return false;
    size_t hlen = (size_t)(end - c->in) + 4;
    char *hdrs = strndup(c->in, hlen);
    memset(r, 0, sizeof(*r));
    sscanf(hdrs, "%15s %1023s", r->method, r->target);
    char v[64];
    header_value(strstr(hdrs, "\r\n"), "Content-Length", v, sizeof(v));
    r->content_length = *v ? atol(v) : 0;
    header_value(strstr(hdrs, "\r\n"), "Content-Type", r->ctype,
                 sizeof(r->ctype));
    header_value(strstr(hdrs, "\r\n"), "X-Registry-Auth", r->auth,
                 sizeof(r->auth));
    header_value(strstr(hdrs, "\r\n"), "User-Agent", r->agent,
                 sizeof(r->agent));
    free(hdrs);
    conn_consume(c, hlen);
    pthread_mutex_lock(&c->f->mu);
    c->f->requests++;
    pthread_mutex_unlock(&c->f->mu);
    return true;
}

/* Reads the request's body, hashing it; keeps the first keep-1 bytes. */
static bool read_body(struct conn *c, long n, struct nc_sha256 *sha, char *keep,
                      size_t keeplen)
{
    size_t kept = 0;
    while (n > 0) {
        if (!c->len && !conn_fill(c))
            return false;
        size_t take = c->len < (size_t)n ? c->len : (size_t)n;
        if (sha)
            nc_sha256_add(sha, c->in, take);
        if (keep && kept + 1 < keeplen) {
            size_t k = take < keeplen - 1 - kept ? take : keeplen - 1 - kept;
            memcpy(keep + kept, c->in, k);
            kept += k;
        }
        conn_consume(c, take);
        n -= (long)take;
    }
    if (keep)
        keep[kept] = '\0';
    return true;
}

static bool send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

static bool respond(int fd, int status, const char *ctype, const char *body)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nApi-Version: 1.41\r\n%s%s%s"
                     "Content-Length: %zu\r\n\r\n",
                     status, ctype ? "Content-Type: " : "", ctype ? ctype : "",
                     ctype ? "\r\n" : "", body ? strlen(body) : 0);
    return send_all(fd, head, (size_t)n) &&
           (!body || send_all(fd, body, strlen(body)));
}

static bool send_chunk(int fd, const void *p, size_t n)
{
    char h[32];
    int k = snprintf(h, sizeof(h), "%zx\r\n", n);
    return send_all(fd, h, (size_t)k) && send_all(fd, p, n) &&
           send_all(fd, "\r\n", 2);
}

static bool chunked_head(int fd, const char *ctype)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n",
                     ctype);
    return send_all(fd, head, (size_t)n);
}

/* Holds the connection until the client closes it (or the test ends). */
static void hold(struct conn *c)
{
    while (conn_fill(c))
        c->len = 0;
}

#define JSON "application/json"

/* One request's answer; false ends the connection. */
static bool serve(struct conn *c, const struct request *r)
{
    const char *t = r->target;
    int fd = c->fd;
    if (!nc_str_has_prefix(t, "/v1.41/"))
        return respond(fd, 400, JSON, "{\"message\":\"no version\"}");
    t += strlen("/v1.41");
    char body[4096];
    if (!read_body(c, r->content_length, NULL, body, sizeof(body)))
        return false;
    if (strcmp(t, "/version") == 0)
        return respond(fd, 200, JSON,
                       "{\"Version\":\"20.10.24\",\"ApiVersion\":\"1.41\","
                       "\"Os\":\"linux\"}");
    if (nc_str_has_prefix(t, "/containers/") && nc_str_has_suffix(t, "/start"))
        return respond(fd, 204, NULL, NULL);
    if (strcmp(t, "/containers/missing/json") == 0)
        return respond(fd, 404, JSON,
                       "{\"message\":\"No such container: missing\"}");
    if (strcmp(t, "/containers/create?name=dup") == 0)
        return respond(fd, 409, JSON,
                       "{\"message\":\"Conflict. The container name "
                       "\\\"/dup\\\" is already in use\"}");
    if (strcmp(t, "/boom") == 0)
        return respond(fd, 500, JSON, "{\"message\":\"boom\"}\n");
    if (strcmp(t, "/nomessage") == 0)
        return respond(fd, 500, JSON, "{\"cause\":\"none\"}");
    if (strcmp(t, "/garbage") == 0)
        return respond(fd, 500, "text/html", "<html>oops</html>");
    if (strcmp(t, "/cut") == 0) {
        const char *h = "HTTP/1.1 200 OK\r\nContent-Type: application/json"
                        "\r\nContent-Length: 100\r\n\r\n{\"Id\":\"abc";
        send_all(fd, h, strlen(h));
        return false;
    }
    if (strcmp(t, "/nothing") == 0)
        return false;
    if (nc_str_has_prefix(t, "/hang")) {
        hold(c);
        return false;
    }
    if (strcmp(t, "/stall") == 0) {
        if (chunked_head(fd, JSON) && send_chunk(fd, "{\"status\":1}\n", 13))
            hold(c);
        return false;
    }
    if (strcmp(t, "/stream") == 0 || strcmp(t, "/stream-free") == 0) {
        bool step = strcmp(t, "/stream") == 0;
        if (!chunked_head(fd, "application/vnd.docker.raw-stream"))
            return false;
        for (int i = 0; i < 5; i++) {
            char chunk[32];
            int n = snprintf(chunk, sizeof(chunk), "chunk-%d\n", i);
            if (!send_chunk(fd, chunk, (size_t)n))
                return false;
            /* the next one only once the client has seen this one */
            char b;
            if (step && (!wait_readable(c->f, c->f->step[0]) ||
                         read(c->f->step[0], &b, 1) != 1))
                return false;
        }
        return send_all(fd, "0\r\n\r\n", 5);
    }
    if (strcmp(t, "/stream-cut") == 0) { /* no last chunk */
        chunked_head(fd, "application/vnd.docker.raw-stream");
        send_chunk(fd, "\1\0\0\0\0\0\0\10half", 12);
        return false;
    }
    if (strcmp(t, "/big-error") == 0) { /* a stream's error over 64 KiB */
        char *big = malloc(100000);
        memset(big, 'e', 99999);
        big[99999] = '\0';
        bool ok = respond(fd, 500, "text/plain", big);
        free(big);
        return ok;
    }
    if (strcmp(t, "/endless") == 0) { /* until the client goes */
        if (!chunked_head(fd, "text/plain"))
            return false;
        char blob[4096];
        memset(blob, 'x', sizeof(blob));
        while (send_chunk(fd, blob, sizeof(blob)))
            ;
        return false;
    }
    if (nc_str_has_prefix(t, "/logs?")) { /* multiplexed, split oddly */
        static const unsigned char frames[] = {
            1,    0, 0, 0, 0, 0, 0, 6, 'h', 'e', 'l', 'l', 'o',
            '\n', 2, 0, 0, 0, 0, 0, 0, 5,   'o', 'o', 'p', 's',
            '\n', 1, 0, 0, 0, 0, 0, 0, 3,   'b', 'y', 'e'};
        if (!chunked_head(fd, "application/vnd.docker.raw-stream") ||
            !send_chunk(fd, frames, 3) || !send_chunk(fd, frames + 3, 17) ||
            !send_chunk(fd, frames + 20, sizeof(frames) - 20))
            return false;
        return send_all(fd, "0\r\n\r\n", 5);
    }
    if (nc_str_has_prefix(t, "/images/create?fromImage=")) {
        if (strstr(t, "missing"))
            return respond(fd, 404, JSON,
                           "{\"message\":\"pull access denied for missing\"}");
        const char *lines =
            "{\"status\":\"Pulling from library/busybox\",\"id\":\"1\"}\r\n"
            "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1,"
            "\"total\":2},\"id\":\"a\"}\r\n"
            "{\"errorDetail\":{\"message\":\"unexpected EOF\"},"
            "\"error\":\"unexpected EOF\"}\r\n";
        if (!chunked_head(fd, JSON) || !send_chunk(fd, lines, 30) ||
            !send_chunk(fd, lines + 30, strlen(lines) - 30))
            return false;
        return send_all(fd, "0\r\n\r\n", 5);
    }
    if (strcmp(t, "/echo") == 0 || nc_str_has_prefix(t, "/echo?")) {
        json_t *o = json_pack("{ssssssssssss}", "method", r->method, "target",
                              r->target, "ctype", r->ctype, "auth", r->auth,
                              "agent", r->agent, "body", body);
        char *s = json_dumps(o, JSON_COMPACT);
        bool ok = respond(fd, 200, JSON, s);
        free(s);
        json_decref(o);
        return ok;
    }
    return respond(fd, 404, JSON, "{\"message\":\"page not found\"}");
}

/* POST /images/load: the body is hashed, not kept (it may be large). */
static bool serve_load(struct conn *c, const struct request *r)
{
    struct nc_sha256 sha;
    nc_sha256_init(&sha);
    if (!read_body(c, r->content_length, &sha, NULL, 0))
        return false;
    char hex[65];
    nc_sha256_hex(&sha, hex);
    char out[512];
    snprintf(out, sizeof(out),
             "{\"len\":%ld,\"sha256\":\"%s\",\"ctype\":\"%s\",\"method\":"
             "\"%s\"}",
             r->content_length, hex, r->ctype, r->method);
    return respond(c->fd, 200, JSON, out);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct request r;
    while (read_request(c, &r)) {
        bool load = strstr(r.target, "/images/load") != NULL;
        if (!(load ? serve_load(c, &r) : serve(c, &r)))
            break;
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        struct pollfd p[3] = {{.fd = f->lfd, .events = POLLIN},
                              {.fd = f->tfd, .events = POLLIN},
                              {.fd = f->stop[0], .events = POLLIN}};
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[2].revents)
            break;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            int fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            pthread_mutex_lock(&f->mu);
            if (f->nconns == MAX_CONNS) {
                pthread_mutex_unlock(&f->mu);
                close(fd);
                continue;
            }
            struct conn *c = calloc(1, sizeof(*c));
            c->f = f;
            c->fd = fd;
            pthread_create(&f->conns[f->nconns++], NULL, conn_main, c);
            pthread_mutex_unlock(&f->mu);
        }
    }
    return NULL;
}

static void sun_path_set(struct sockaddr_un *sa, const char *path)
{
    assert_true(strlen(path) < sizeof(sa->sun_path));
    memcpy(sa->sun_path, path, strlen(path) + 1);
}

static struct fake *fake_start(void)
{
    struct fake *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/ncdkXXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%s/docker.sock", f->dir);
    snprintf(f->endpoint, sizeof(f->endpoint), "unix://%s", f->sock);
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    sun_path_set(&sa, f->sock);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->lfd, 64), 0);
    f->tfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in in = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->tfd, (struct sockaddr *)&in, sizeof(in)), 0);
    assert_int_equal(listen(f->tfd, 64), 0);
    socklen_t len = sizeof(in);
    getsockname(f->tfd, (struct sockaddr *)&in, &len);
    snprintf(f->tcp_endpoint, sizeof(f->tcp_endpoint), "tcp://127.0.0.1:%d",
             ntohs(in.sin_port));
    assert_int_equal(pipe2(f->stop, O_CLOEXEC), 0);
    assert_int_equal(pipe2(f->step, O_CLOEXEC), 0);
    pthread_mutex_init(&f->mu, NULL);
    pthread_create(&f->acceptor, NULL, accept_main, f);
    return f;
}

static void fake_stop(struct fake *f)
{
    assert_int_equal(write(f->stop[1], "x", 1), 1);
    pthread_join(f->acceptor, NULL);
    for (size_t i = 0; i < f->nconns; i++)
        pthread_join(f->conns[i], NULL);
    close(f->lfd);
    close(f->tfd);
    close(f->stop[0]);
    close(f->stop[1]);
    close(f->step[0]);
    close(f->step[1]);
    unlink(f->sock);
    rmdir(f->dir);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static int fake_eofs(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->eofs;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* ---- replies, kept for the asserts ---- */

struct got {
    int calls;
    long status;
    json_t *json;
    char *body;
    size_t body_len;
    char *error;
    bool timed_out, unreachable;
    struct nc_buf data; /* streamed */
    int pieces;
};

static void got_reset(struct got *g)
{
    json_decref(g->json);
    free(g->body);
    free(g->error);
    nc_buf_free(&g->data);
    memset(g, 0, sizeof(*g));
}

static void on_done(void *arg, const struct docker_reply *r)
{
    struct got *g = arg;
    g->calls++;
    g->status = r->status;
    g->json = r->json ? json_incref((json_t *)r->json) : NULL;
    g->body = xstrndup(r->body, r->body_len);
    g->body_len = r->body_len;
    g->error = xstrdup(r->error);
    g->timed_out = r->timed_out;
    g->unreachable = docker_reply_unreachable(r);
}

static void on_chunk(void *arg, const char *p, size_t n)
{
    struct got *g = arg;
    nc_buf_append(&g->data, p, n);
    g->pieces++;
}

struct env {
    uv_loop_t loop;
    struct fake *f;
    struct docker_api *api;
};

static int setup(void **state)
{
    char why[256];
    if (!curl_uv_available(why, sizeof(why))) {
        fprintf(stderr, "libcurl: %s\n", why);
        return -1;
    }
    struct env *e = calloc(1, sizeof(*e));
    uv_loop_init(&e->loop);
    e->f = fake_start();
    struct nc_error err = {0};
    if (docker_api_open(&e->api, &e->loop, e->f->endpoint, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    docker_api_close(e->api);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    fake_stop(e->f);
    free(e);
    return 0;
}

/* Runs the loop until g has its callback. */
static void wait_for(struct env *e, struct got *g)
{
    while (!g->calls)
        assert_true(uv_run(&e->loop, UV_RUN_ONCE) || g->calls);
}

static void call(struct env *e, const char *method, const char *path,
                 struct got *g)
{
    struct docker_call_opts o = {
        .method = method, .path = path, .timeout_ms = 5000};
    assert_int_equal(docker_call(e->api, &o, on_done, g, NULL), 0);
    wait_for(e, g);
    assert_int_equal(g->calls, 1);
}

/* ---- answers ---- */

static void test_answers(void **state)
{
    struct env *e = *state;
    struct got g = {0};

    call(e, NULL, "/version", &g);
    assert_int_equal(g.status, 200);
    assert_null(g.error);
    assert_false(g.unreachable);
    assert_string_equal(json_string_value(json_object_get(g.json, "Version")),
                        "20.10.24");
    got_reset(&g);

    call(e, "POST", "/containers/abc/start", &g);
    assert_int_equal(g.status, 204);
    assert_null(g.error);
    assert_null(g.json);
    assert_int_equal(g.body_len, 0);
    got_reset(&g);

    call(e, "GET", "/containers/missing/json", &g);
    assert_int_equal(g.status, 404);
    assert_string_equal(g.error, "No such container: missing");
    assert_non_null(g.json);
    assert_false(g.unreachable);
    got_reset(&g);

    call(e, "POST", "/containers/create?name=dup", &g);
    assert_int_equal(g.status, 409);
    assert_string_equal(g.error, "Conflict. The container name \"/dup\" is "
                                 "already in use");
    got_reset(&g);

    call(e, "GET", "/boom", &g);
    assert_int_equal(g.status, 500);
    assert_string_equal(g.error, "boom");
    got_reset(&g);

    call(e, "GET", "/nomessage", &g);
    assert_int_equal(g.status, 500);
    assert_string_equal(g.error,
                        "Docker daemon answered 500 to GET /nomessage with "
                        "no message");
    got_reset(&g);

    call(e, "GET", "/garbage", &g);
    assert_int_equal(g.status, 500);
    assert_null(g.json);
    assert_string_equal(g.error,
                        "Docker daemon answered 500 with a body that is not "
                        "JSON");
    assert_string_equal(g.body, "<html>oops</html>");
    got_reset(&g);

    /* the answer breaks after its status: not a success, not unreachable */
    call(e, "GET", "/cut", &g);
    assert_int_equal(g.status, 200);
    assert_null(g.json);
    assert_string_equal(g.error,
                        "Docker daemon closed the connection in the middle "
                        "of its answer to GET /cut (HTTP 200)");
    assert_false(g.unreachable);
    got_reset(&g);

    call(e, "DELETE", "/nothing", &g);
    assert_int_equal(g.status, 0);
    assert_non_null(strstr(g.error, "closed the connection without "
                                    "answering DELETE /nothing"));
    assert_non_null(strstr(g.error, e->f->endpoint));
    assert_true(g.unreachable);
    got_reset(&g);

    /* what is sent: method, version prefix, query as escaped, headers,
     * the JSON body */
    char *q = docker_query_escape("web task/1&x");
    char *path = xasprintf("/echo?name=%s", q);
    char *auth = docker_registry_auth("u", "p", NULL, NULL);
    char *hdr = xasprintf("X-Registry-Auth: %s", auth);
    const char *hdrs[] = {hdr, NULL};
    json_t *body = json_pack("{si}", "Memory", 268435456);
    struct docker_call_opts o = {.method = "PUT",
                                 .path = path,
                                 .body = body,
                                 .headers = hdrs,
                                 .timeout_ms = 5000};
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), 0);
    assert_int_equal(docker_api_in_flight(e->api), 1);
    wait_for(e, &g);
    assert_int_equal(docker_api_in_flight(e->api), 0);
    assert_null(g.error);
    const json_t *j = g.json;
    assert_string_equal(json_string_value(json_object_get(j, "method")), "PUT");
    assert_string_equal(json_string_value(json_object_get(j, "target")),
                        "/v1.41/echo?name=web%20task%2F1%26x");
    assert_string_equal(json_string_value(json_object_get(j, "ctype")),
                        "application/json");
    assert_string_equal(json_string_value(json_object_get(j, "auth")), auth);
    assert_string_equal(json_string_value(json_object_get(j, "agent")),
                        "nomclient");
    assert_string_equal(json_string_value(json_object_get(j, "body")),
                        "{\"Memory\":268435456}");
    got_reset(&g);
    json_decref(body);
    free(q);
    free(path);
    free(auth);
    free(hdr);
}

static void test_tcp(void **state)
{
    struct env *e = *state;
    struct docker_api *api = NULL;
    struct nc_error err = {0};
    assert_int_equal(docker_api_open(&api, &e->loop, e->f->tcp_endpoint, &err),
                     0);
    assert_string_equal(docker_api_endpoint(api), e->f->tcp_endpoint);
    struct got g = {0};
    struct docker_call_opts o = {.path = "/version", .timeout_ms = 5000};
    assert_int_equal(docker_call(api, &o, on_done, &g, NULL), 0);
    wait_for(e, &g);
    assert_int_equal(g.status, 200);
    assert_null(g.error);
    got_reset(&g);
    docker_api_close(api);

    /* nobody on that port: the daemon is away */
    char ep[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&in, sizeof(in));
    socklen_t len = sizeof(in);
    getsockname(fd, (struct sockaddr *)&in, &len);
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", ntohs(in.sin_port));
    assert_int_equal(docker_api_open(&api, &e->loop, ep, &err), 0);
    assert_int_equal(docker_call(api, &o, on_done, &g, NULL), 0);
    wait_for(e, &g);
    close(fd);
    assert_int_equal(g.status, 0);
    char want[160];
    snprintf(want, sizeof(want),
             "cannot connect to the Docker daemon at %s: Connection refused",
             ep);
    assert_string_equal(g.error, want);
    assert_true(g.unreachable);
    got_reset(&g);
    docker_api_close(api);
}

static void test_endpoints(void **state)
{
    struct env *e = *state;
    static const char *const bad[] = {
        "http://localhost:2375",
        "unix://var/run/docker.sock",
        "unix://",
        "tcp://host",
        "tcp://:2375",
        "tcp://h:0",
        "tcp://h:99999",
        "tcp://h:1/x",
        "tcp://[::1]",
        "npipe:////./pipe/docker_engine",
        "fd://",
        "/var/run/docker.sock",
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(bad); i++) {
        struct docker_api *api = (void *)1;
        struct nc_error err = {0};
        assert_int_equal(docker_api_open(&api, &e->loop, bad[i], &err),
                         -EINVAL);
        assert_null(api);
        assert_non_null(strstr(err.msg, bad[i]));
    }
    struct nc_error err = {0};
    struct docker_api *api = NULL;
    docker_api_open(&api, &e->loop, "ftp://x", &err);
    assert_string_equal(err.msg,
                        "Docker endpoint \"ftp://x\" is not supported: use "
                        "unix:///path/to/docker.sock or tcp://host:port");
    static const char *const good[] = {"tcp://[::1]:2375",
                                       "tcp://docker.internal:2376",
                                       "unix:///run/docker.sock"};
    for (size_t i = 0; i < NC_ARRAY_LEN(good); i++) {
        assert_int_equal(docker_api_open(&api, &e->loop, good[i], &err), 0);
        assert_string_equal(docker_api_endpoint(api), good[i]);
        docker_api_close(api);
    }
    assert_int_equal(docker_api_open(&api, &e->loop, NULL, &err), 0);
    assert_string_equal(docker_api_endpoint(api),
                        "unix:///var/run/docker.sock");
    docker_api_close(api);

    /* what a call refuses before sending anything */
    struct got g = {0};
    struct docker_call_opts o = {.path = "containers/json"};
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), -EINVAL);
    o.path = "/containers/json?all=1 HTTP/1.1\r\nX: y";
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), -EINVAL);
    o.path = "/version";
    o.method = "get";
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), -EINVAL);
    o.method = NULL;
    const char *evil[] = {"X-Registry-Auth: a\r\nX-Evil: 1", NULL};
    o.headers = evil;
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), -EINVAL);
    o.headers = NULL;
    o.body_file = "/nonexistent/image.tar";
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), -ENOENT);
    o.body_file = "/tmp";
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), -EINVAL);
    assert_int_equal(docker_api_in_flight(e->api), 0);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(g.calls, 0);
}

static void test_unreachable(void **state)
{
    struct env *e = *state;
    struct docker_api *api = NULL;
    struct nc_error err = {0};
    char ep[200];
    snprintf(ep, sizeof(ep), "unix://%s/none.sock", e->f->dir);
    assert_int_equal(docker_api_open(&api, &e->loop, ep, &err), 0);
    struct got g = {0};
    struct docker_call_opts o = {.method = "POST",
                                 .path = "/containers/create?name=x",
                                 .timeout_ms = 5000};
    assert_int_equal(docker_call(api, &o, on_done, &g, NULL), 0);
    wait_for(e, &g);
    char want[300];
    snprintf(want, sizeof(want),
             "cannot connect to the Docker daemon at %s: No such file or "
             "directory",
             ep);
    assert_string_equal(g.error, want);
    assert_int_equal(g.status, 0);
    assert_true(g.unreachable);
    got_reset(&g);
    docker_api_close(api);

    /* a socket file nobody listens on */
    snprintf(ep, sizeof(ep), "unix://%s/dead.sock", e->f->dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    sun_path_set(&sa, ep + 7);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(docker_api_open(&api, &e->loop, ep, &err), 0);
    assert_int_equal(docker_call(api, &o, on_done, &g, NULL), 0);
    wait_for(e, &g);
    snprintf(want, sizeof(want),
             "cannot connect to the Docker daemon at %s: Connection refused",
             ep);
    assert_string_equal(g.error, want);
    assert_true(g.unreachable);
    got_reset(&g);
    docker_api_close(api);
    close(fd);
    unlink(sa.sun_path);

    /* the blocking call says the same */
    long status = -1;
    json_t *j = (void *)1;
    snprintf(ep, sizeof(ep), "unix://%s/none.sock", e->f->dir);
    assert_int_equal(
        docker_call_sync(ep, "GET", "/version", NULL, 2000, &status, &j, &err),
        -ENOENT);
    assert_int_equal(status, 0);
    assert_null(j);
    assert_non_null(strstr(err.msg, "cannot connect to the Docker daemon"));

    /* a reply built by hand, as a driver's test would */
    struct docker_reply r = {.status = 0, .error = "x"};
    assert_true(docker_reply_unreachable(&r));
    r.status = 500;
    assert_false(docker_reply_unreachable(&r));
    r = (struct docker_reply){.status = 0, .error = NULL};
    assert_false(docker_reply_unreachable(&r));
    assert_false(docker_reply_unreachable(NULL));
}

static void test_timeouts(void **state)
{
    struct env *e = *state;
    struct got g = {0};
    /* a daemon that takes the request and never answers */
    uint64_t t0 = nc_now_mono_ns();
    struct docker_call_opts o = {
        .method = "POST", .path = "/hang?x=1", .timeout_ms = 300};
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), 0);
    wait_for(e, &g);
    uint64_t ms = (nc_now_mono_ns() - t0) / 1000000;
    assert_true(ms >= 290 && ms < 3000);
    assert_true(g.timed_out);
    assert_int_equal(g.status, 0);
    assert_string_equal(g.error,
                        "Docker API call POST /hang timed out after 300ms");
    assert_true(g.unreachable); /* no status: the daemon is not answering */
    got_reset(&g);

    /* a stream that stops sending: the idle timeout, not the whole one */
    t0 = nc_now_mono_ns();
    o = (struct docker_call_opts){.method = "POST",
                                  .path = "/stall",
                                  .idle_timeout_ms = 300,
                                  .on_data = on_chunk,
                                  .data_arg = &g};
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), 0);
    wait_for(e, &g);
    ms = (nc_now_mono_ns() - t0) / 1000000;
    assert_true(ms >= 290 && ms < 3000);
    assert_true(g.timed_out);
    assert_int_equal(g.status, 200);
    assert_false(g.unreachable);
    assert_string_equal(g.data.data, "{\"status\":1}\n");
    assert_string_equal(g.error,
                        "Docker API call POST /stall timed out: no data for "
                        "300ms");
    got_reset(&g);

    /* an idle limit does not end a stream that keeps coming */
    o = (struct docker_call_opts){.path = "/stream-free",
                                  .idle_timeout_ms = 200,
                                  .on_data = on_chunk,
                                  .data_arg = &g};
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), 0);
    wait_for(e, &g);
    assert_null(g.error);
    assert_string_equal(g.data.data,
                        "chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n");
    got_reset(&g);

    /* the timer of a finished call is gone: nothing fires later */
    uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(g.calls, 0);
}

/* /stream sends chunk i+1 only after the test saw chunk i: a client that
 * kept the body until the end would never get an answer. */
struct stepper {
    struct got g;
    struct fake *f;
    size_t acked;
};

static void on_step(void *arg, const char *p, size_t n)
{
    struct stepper *s = arg;
    on_chunk(&s->g, p, n);
    size_t lines = 0;
    for (size_t i = 0; i < s->g.data.len; i++)
        lines += s->g.data.data[i] == '\n';
    for (; s->acked < lines; s->acked++)
        assert_int_equal(write(s->f->step[1], "n", 1), 1);
}

static void test_stream(void **state)
{
    struct env *e = *state;
    struct stepper s = {.f = e->f};
    struct docker_call_opts o = {.path = "/stream",
                                 .timeout_ms = 5000,
                                 .on_data = on_step,
                                 .data_arg = &s};
    assert_int_equal(docker_call(e->api, &o, on_done, &s.g, NULL), 0);
    wait_for(e, &s.g);
    assert_null(s.g.error);
    assert_int_equal(s.g.status, 200);
    assert_int_equal(s.g.body_len, 0); /* streamed, not kept */
    assert_null(s.g.json);
    assert_string_equal(s.g.data.data,
                        "chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n");
    assert_true(s.g.pieces >= 5);
    got_reset(&s.g);

    /* an error status on a stream: the message, nothing streamed */
    struct got g = {0};
    o = (struct docker_call_opts){.method = "POST",
                                  .path = "/images/create?fromImage=missing",
                                  .on_data = on_chunk,
                                  .data_arg = &g};
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), 0);
    wait_for(e, &g);
    assert_int_equal(g.status, 404);
    assert_string_equal(g.error, "pull access denied for missing");
    assert_int_equal(g.pieces, 0);
    got_reset(&g);

    /* a stream the daemon drops before its end */
    o = (struct docker_call_opts){
        .path = "/stream-cut", .on_data = on_chunk, .data_arg = &g};
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), 0);
    wait_for(e, &g);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.data.len, 12);
    assert_string_equal(g.error,
                        "Docker daemon closed the connection in the middle "
                        "of its answer to GET /stream-cut (HTTP 200)");
    assert_false(g.unreachable);
    got_reset(&g);

    /* an error's text kept for a stream is bounded */
    o.path = "/big-error";
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), 0);
    wait_for(e, &g);
    assert_int_equal(g.status, 500);
    assert_int_equal(g.pieces, 0);
    assert_int_equal(g.body_len, 65536);
    assert_string_equal(g.error, "Docker daemon's answer to GET /big-error "
                                 "is longer than 65536 bytes");
    got_reset(&g);
}

/* The multiplexed logs through the demuxer, as the driver will. */
struct logs {
    struct got g;
    struct docker_demux d;
    struct nc_buf out, err;
    int rc;
};

static void logs_out(void *arg, int stream, const char *p, size_t n)
{
    struct logs *l = arg;
    nc_buf_append(stream == 2 ? &l->err : &l->out, p, n);
}

static void on_logs(void *arg, const char *p, size_t n)
{
    struct logs *l = arg;
    if (!l->rc)
        l->rc = docker_demux_feed(&l->d, p, n, logs_out, l);
}

struct pull {
    struct got g;
    struct docker_progress p;
    int objects;
};

static void pull_obj(void *arg, const json_t *obj)
{
    struct pull *pl = arg;
    pl->objects++;
    assert_true(json_is_object(obj));
}

static void on_pull(void *arg, const char *p, size_t n)
{
    struct pull *pl = arg;
    docker_progress_feed(&pl->p, p, n, pull_obj, pl);
}

static void test_stream_parsers(void **state)
{
    struct env *e = *state;
    struct logs l = {0};
    struct docker_call_opts o = {.path = "/logs?follow=1&stdout=1&stderr=1",
                                 .on_data = on_logs,
                                 .data_arg = &l};
    assert_int_equal(docker_call(e->api, &o, on_done, &l.g, NULL), 0);
    wait_for(e, &l.g);
    assert_null(l.g.error);
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.out.data, "hello\nbye");
    assert_string_equal(l.err.data, "oops\n");
    got_reset(&l.g);
    nc_buf_free(&l.out);
    nc_buf_free(&l.err);

    struct pull pl = {0};
    o = (struct docker_call_opts){.method = "POST",
                                  .path = "/images/create?fromImage=busybox",
                                  .idle_timeout_ms = 5000,
                                  .on_data = on_pull,
                                  .data_arg = &pl};
    assert_int_equal(docker_call(e->api, &o, on_done, &pl.g, NULL), 0);
    wait_for(e, &pl.g);
    assert_null(pl.g.error); /* the HTTP call worked; the pull did not */
    assert_int_equal(docker_progress_feed(&pl.p, NULL, 0, pull_obj, &pl), 0);
    assert_int_equal(pl.objects, 3);
    assert_string_equal(pl.p.error, "unexpected EOF");
    free(pl.p.error);
    docker_progress_free(&pl.p);
    got_reset(&pl.g);
}

/* ---- a body from a file ---- */

static void test_body_file(void **state)
{
    struct env *e = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/image.tar", e->f->dir);
    size_t size = (3u << 20) + 12345; /* not a multiple of any buffer */
    unsigned char *data = malloc(size);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < size; i++) { /* xorshift: every byte value */
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        data[i] = (unsigned char)x;
    }
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, size, fp), size);
    fclose(fp);
    struct nc_sha256 sha;
    nc_sha256_init(&sha);
    nc_sha256_add(&sha, data, size);
    char hex[65];
    nc_sha256_hex(&sha, hex);
    free(data);

    struct got g = {0};
    struct docker_call_opts o = {.method = "POST",
                                 .path = "/images/load?quiet=1",
                                 .body_file = path,
                                 .timeout_ms = 20000,
                                 .idle_timeout_ms = 5000};
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), 0);
    wait_for(e, &g);
    assert_null(g.error);
    assert_int_equal(json_integer_value(json_object_get(g.json, "len")),
                     (json_int_t)size);
    assert_string_equal(json_string_value(json_object_get(g.json, "sha256")),
                        hex);
    assert_string_equal(json_string_value(json_object_get(g.json, "ctype")),
                        "application/x-tar");
    assert_string_equal(json_string_value(json_object_get(g.json, "method")),
                        "POST");
    got_reset(&g);

    /* an empty file and another method */
    fp = fopen(path, "wb");
    fclose(fp);
    o.method = "PUT";
    assert_int_equal(docker_call(e->api, &o, on_done, &g, NULL), 0);
    wait_for(e, &g);
    assert_null(g.error);
    assert_int_equal(json_integer_value(json_object_get(g.json, "len")), 0);
    assert_string_equal(json_string_value(json_object_get(g.json, "method")),
                        "PUT");
    got_reset(&g);
    unlink(path);
}

/* ---- cancel, close, and calls made from inside a stream ---- */

static void never(void *arg, const struct docker_reply *r)
{
    (void)arg, (void)r;
    fail_msg("a callback after cancel or close");
}

static void test_cancel_close(void **state)
{
    struct env *e = *state;
    struct docker_call *c = NULL;
    struct docker_call_opts o = {.path = "/hang"};
    assert_int_equal(docker_call(e->api, &o, never, NULL, &c), 0);
    assert_non_null(c);
    for (int i = 0; i < 20 && fake_eofs(e->f) == 0; i++)
        uv_run(&e->loop, UV_RUN_NOWAIT);
    docker_call_cancel(e->api, c);
    assert_int_equal(docker_api_in_flight(e->api), 0);
    struct got g = {0};
    call(e, NULL, "/version", &g); /* the client goes on */
    assert_null(g.error);
    got_reset(&g);

    /* close with many calls in flight: no callback, nothing leaked */
    struct docker_api *api = NULL;
    struct nc_error err = {0};
    assert_int_equal(docker_api_open(&api, &e->loop, e->f->endpoint, &err), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(docker_call(api, &o, never, NULL, NULL), 0);
    o.path = "/endless";
    assert_int_equal(docker_call(api, &o, never, NULL, NULL), 0);
    assert_int_equal(docker_api_in_flight(api), 21);
    for (int i = 0; i < 50; i++)
        uv_run(&e->loop, UV_RUN_NOWAIT);
    docker_api_close(api);
    uv_run(&e->loop, UV_RUN_NOWAIT);
}

struct inside {
    struct env *e;
    struct docker_api *api;
    struct docker_call *self;
    int mode; /* 0 cancel self, 1 start a call, 2 close the client */
    int pieces;
    struct got started;
};

static void on_inside(void *arg, const char *p, size_t n)
{
    (void)p, (void)n;
    struct inside *in = arg;
    if (in->pieces++)
        fail_msg("data after a cancel or close from the callback");
    if (in->mode == 0) {
        docker_call_cancel(in->api, in->self);
    } else if (in->mode == 1) {
        struct docker_call_opts o = {.path = "/version", .timeout_ms = 5000};
        assert_int_equal(docker_call(in->api, &o, on_done, &in->started, NULL),
                         0);
        docker_call_cancel(in->api, in->self);
    } else {
        docker_api_close(in->api);
        in->api = NULL;
    }
}

static void test_inside_stream(void **state)
{
    struct env *e = *state;
    for (int mode = 0; mode < 3; mode++) {
        struct inside in = {.e = e, .mode = mode};
        struct nc_error err = {0};
        assert_int_equal(
            docker_api_open(&in.api, &e->loop, e->f->endpoint, &err), 0);
        struct docker_call_opts o = {
            .path = "/endless", .on_data = on_inside, .data_arg = &in};
        assert_int_equal(docker_call(in.api, &o, never, NULL, &in.self), 0);
        while (!in.pieces)
            uv_run(&e->loop, UV_RUN_ONCE);
        if (mode == 1) {
            wait_for(e, &in.started);
            assert_int_equal(in.started.status, 200);
            got_reset(&in.started);
        }
        for (int i = 0; i < 20; i++)
            uv_run(&e->loop, UV_RUN_NOWAIT);
        assert_int_equal(in.pieces, 1);
        if (in.api)
            assert_int_equal(docker_api_in_flight(in.api), 0);
        docker_api_close(in.api);
        uv_run(&e->loop, UV_RUN_NOWAIT);
    }
}

static void test_sync(void **state)
{
    struct env *e = *state;
    long status = 0;
    json_t *j = NULL;
    struct nc_error err = {0};
    assert_int_equal(docker_call_sync(e->f->endpoint, "GET", "/version", NULL,
                                      5000, &status, &j, &err),
                     0);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(j, "ApiVersion")),
                        "1.41");
    json_decref(j);
    j = NULL;
    assert_int_equal(docker_call_sync(e->f->endpoint, "GET",
                                      "/containers/missing/json", NULL, 5000,
                                      &status, &j, &err),
                     0);
    assert_int_equal(status, 404);
    assert_non_null(j);
    assert_string_equal(err.msg, "No such container: missing");
    json_decref(j);
    assert_int_equal(docker_call_sync(e->f->endpoint, "POST", "/hang", NULL,
                                      200, &status, NULL, &err),
                     -ETIMEDOUT);
    assert_string_equal(err.msg,
                        "Docker API call POST /hang timed out after 200ms");
    assert_int_equal(docker_call_sync(e->f->endpoint, "GET", "/cut", NULL, 5000,
                                      &status, NULL, &err),
                     -EIO);
    assert_int_equal(docker_call_sync("http://x", "GET", "/version", NULL, 5000,
                                      &status, NULL, &err),
                     -EINVAL);
}

/* ---- the multiplexed stream ---- */

struct demux_out {
    struct nc_buf seq; /* "1:hello\n|2:oops|" as delivered, joined */
    int last_stream;
    size_t max_piece, total;
};

static void demux_collect(void *arg, int stream, const char *p, size_t n)
{
    struct demux_out *o = arg;
    if (stream != o->last_stream) {
        nc_buf_printf(&o->seq, "|%d:", stream);
        o->last_stream = stream;
    }
    nc_buf_append(&o->seq, p, n);
    if (n > o->max_piece)
        o->max_piece = n;
    o->total += n;
    assert_true(n > 0);
}

static const unsigned char frames[] = {
    1, 0, 0, 0, 0, 0, 0, 6, 'h', 'e', 'l', 'l', 'o', '\n', /* stdout */
    2, 0, 0, 0, 0, 0, 0, 4, 'o', 'o', 'p', 's',            /* stderr */
    0, 0, 0, 0, 0, 0, 0, 2, 'i', 'n',                      /* stdin: 1 */
    1, 0, 0, 0, 0, 0, 0, 0,                                /* empty */
    2, 0, 0, 0, 0, 0, 0, 1, '!',                           /* stderr */
    3, 0, 0, 0, 0, 0, 0, 3, 'e', 'r', 'r',                 /* systemerr */
};
static const char frames_seq[] = "|1:hello\n|2:oops|1:in|2:!|3:err";

static void test_demux(void **state)
{
    (void)state;
    /* in two pieces split at every byte */
    for (size_t cut = 0; cut <= sizeof(frames); cut++) {
        struct docker_demux d = {0};
        struct demux_out o = {0};
        assert_int_equal(
            docker_demux_feed(&d, (const char *)frames, cut, demux_collect, &o),
            0);
        assert_int_equal(docker_demux_feed(&d, (const char *)frames + cut,
                                           sizeof(frames) - cut, demux_collect,
                                           &o),
                         0);
        assert_string_equal(o.seq.data, frames_seq);
        assert_int_equal(d.have, 0);
        assert_int_equal(d.left, 0);
        nc_buf_free(&o.seq);
    }
    /* one byte at a time */
    struct docker_demux d = {0};
    struct demux_out o = {0};
    for (size_t i = 0; i < sizeof(frames); i++)
        assert_int_equal(docker_demux_feed(&d, (const char *)frames + i, 1,
                                           demux_collect, &o),
                         0);
    assert_string_equal(o.seq.data, frames_seq);
    assert_int_equal(o.max_piece, 1);
    nc_buf_free(&o.seq);
    /* nothing fed: nothing out */
    assert_int_equal(docker_demux_feed(&d, "", 0, demux_collect, &o), 0);
}

static void test_demux_big_frame(void **state)
{
    (void)state;
    size_t big = 2u << 20; /* 2 MiB, over any buffer a parser might keep */
    size_t piece = 65536;
    char *buf = malloc(piece);
    memset(buf, 'z', piece);
    struct docker_demux d = {0};
    struct demux_out o = {0};
    unsigned char hdr[8] = {1,
                            0,
                            0,
                            0,
                            (unsigned char)(big >> 24),
                            (unsigned char)(big >> 16),
                            (unsigned char)(big >> 8),
                            (unsigned char)big};
    assert_int_equal(
        docker_demux_feed(&d, (const char *)hdr, 8, demux_collect, &o), 0);
    for (size_t sent = 0; sent < big; sent += piece)
        assert_int_equal(docker_demux_feed(&d, buf, piece, demux_collect, &o),
                         0);
    assert_int_equal(o.total, big);
    assert_true(o.max_piece <= piece); /* passed through, never gathered */
    /* the next frame, a header straddling the pieces */
    assert_int_equal(docker_demux_feed(&d, "\2\0\0", 3, demux_collect, &o), 0);
    assert_int_equal(
        docker_demux_feed(&d, "\0\0\0\0\2ok", 7, demux_collect, &o), 0);
    assert_int_equal(o.total, big + 2);
    assert_true(nc_str_has_suffix(o.seq.data, "zz|2:ok"));
    nc_buf_free(&o.seq);
    free(buf);
    /* the largest length a header can say is just a count */
    struct docker_demux d2 = {0};
    assert_int_equal(docker_demux_feed(&d2, "\1\0\0\0\xff\xff\xff\xff", 8,
                                       demux_collect, &o),
                     0);
    assert_int_equal(d2.left, 0xffffffffu);
}

static void test_demux_bad(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t n;
        size_t good; /* payload bytes out before the bad header */
    } cases[] = {
        {"hello world\n", 12, 0},               /* a tty stream */
        {"\4\0\0\0\0\0\0\1x", 9, 0},            /* stream 4 */
        {"\1\1\0\0\0\0\0\1x", 9, 0},            /* reserved byte set */
        {"\1\0\0\1\0\0\0\1x", 9, 0},            /* the third */
        {"\1\0\0\0\0\0\0\2ok{\"a\":1}", 18, 2}, /* good, then JSON */
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        struct docker_demux d = {0};
        struct demux_out o = {0};
        assert_int_equal(docker_demux_feed(&d, cases[i].bytes, cases[i].n,
                                           demux_collect, &o),
                         -EPROTO);
        assert_int_equal(o.total, cases[i].good);
        /* and stays so: a good frame after is not taken */
        assert_int_equal(docker_demux_feed(&d, (const char *)frames,
                                           sizeof(frames), demux_collect, &o),
                         -EPROTO);
        assert_int_equal(o.total, cases[i].good);
        nc_buf_free(&o.seq);
    }
}

/* ---- the progress stream ---- */

struct prog_out {
    int n;
    struct nc_buf statuses;
};

static void prog_collect(void *arg, const json_t *obj)
{
    struct prog_out *o = arg;
    o->n++;
    const char *s = json_string_value(json_object_get(obj, "status"));
    nc_buf_printf(&o->statuses, "%s;", s ? s : "-");
}

static const char progress[] =
    "{\"status\":\"Pulling from library/redis\",\"id\":\"7\"}\r\n"
    "\n"
    "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1024,"
    "\"total\":4096},\"progress\":\"[==>  ]\",\"id\":\"a1\"}\r\n"
    "   \r\n"
    "{\"status\":\"Digest: sha256:0123\"}\n"
    "{\"errorDetail\":{\"message\":\"Get https://r/v2/: dial tcp: i/o "
    "timeout\"},\"error\":\"Get https://r/v2/: i/o timeout\"}\r\n"
    "{\"error\":\"second\"}\n";

static void test_progress(void **state)
{
    (void)state;
    size_t n = strlen(progress);
    for (size_t cut = 0; cut <= n; cut++) {
        struct docker_progress p = {0};
        struct prog_out o = {0};
        assert_int_equal(
            docker_progress_feed(&p, progress, cut, prog_collect, &o), 0);
        if (n - cut)
            assert_int_equal(docker_progress_feed(&p, progress + cut, n - cut,
                                                  prog_collect, &o),
                             0);
        assert_int_equal(docker_progress_feed(&p, NULL, 0, prog_collect, &o),
                         0);
        assert_int_equal(o.n, 5);
        assert_string_equal(o.statuses.data,
                            "Pulling from library/redis;Downloading;"
                            "Digest: sha256:0123;-;-;");
        /* errorDetail's message first; the first failure kept */
        assert_string_equal(p.error,
                            "Get https://r/v2/: dial tcp: i/o timeout");
        free(p.error);
        docker_progress_free(&p);
        nc_buf_free(&o.statuses);
    }
    /* a byte at a time, the last line without its newline */
    struct docker_progress p = {0};
    struct prog_out o = {0};
    const char *s = "{\"status\":\"a\"}\n{\"error\":\"pull failed\"}";
    for (size_t i = 0; s[i]; i++)
        assert_int_equal(docker_progress_feed(&p, s + i, 1, prog_collect, &o),
                         0);
    assert_int_equal(o.n, 1);
    assert_null(p.error);
    assert_int_equal(docker_progress_feed(&p, NULL, 0, prog_collect, &o), 0);
    assert_int_equal(o.n, 2);
    assert_string_equal(p.error, "pull failed");
    free(p.error);
    docker_progress_free(&p);
    nc_buf_free(&o.statuses);

    /* an error with no text still fails */
    p = (struct docker_progress){0};
    assert_int_equal(
        docker_progress_feed(&p, "{\"error\":{}}\n", 13, NULL, NULL), 0);
    assert_string_equal(p.error,
                        "Docker daemon reported an error without a message");
    free(p.error);
    docker_progress_free(&p);
}

static void test_progress_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {"not json\n", "[1,2]\n", "\"str\"\n",
                                      "{\"a\":\n", "{}{}\n"};
    for (size_t i = 0; i < NC_ARRAY_LEN(bad); i++) {
        struct docker_progress p = {0};
        struct prog_out o = {0};
        assert_int_equal(docker_progress_feed(&p, "{\"status\":\"ok\"}\n", 16,
                                              prog_collect, &o),
                         0);
        assert_int_equal(
            docker_progress_feed(&p, bad[i], strlen(bad[i]), prog_collect, &o),
            -EPROTO);
        assert_non_null(p.error);
        assert_true(nc_str_has_prefix(
            p.error, "Docker daemon sent a progress line that is not a JSON "
                     "object: "));
        /* and stays failed */
        assert_int_equal(docker_progress_feed(&p, "{}\n", 3, prog_collect, &o),
                         -EPROTO);
        assert_int_equal(o.n, 1);
        free(p.error);
        docker_progress_free(&p);
        nc_buf_free(&o.statuses);
    }
    /* a line over 64 KiB, in pieces and in one */
    for (int one = 0; one < 2; one++) {
        struct docker_progress p = {0};
        size_t len = DOCKER_PROGRESS_MAX_LINE + 10;
        char *big = malloc(len + 1);
        memset(big, ' ', len);
        big[len] = '\n';
        int r = 0;
        if (one) {
            r = docker_progress_feed(&p, big, len + 1, NULL, NULL);
        } else {
            for (size_t i = 0; i < len && !r; i += 1000)
                r = docker_progress_feed(
                    &p, big + i, len - i < 1000 ? len - i : 1000, NULL, NULL);
        }
        assert_int_equal(r, -EMSGSIZE);
        assert_string_equal(p.error, "Docker daemon sent a progress line "
                                     "longer than 65536 bytes");
        assert_true(p.cap <= DOCKER_PROGRESS_MAX_LINE + 1);
        free(p.error);
        docker_progress_free(&p);
        free(big);
    }
    /* a line of exactly the limit is fine */
    struct docker_progress p = {0};
    size_t len = DOCKER_PROGRESS_MAX_LINE;
    char *line = malloc(len + 1);
    memset(line, ' ', len);
    memcpy(line, "{\"status\":\"x\"}", 14);
    line[len] = '\n';
    struct prog_out o = {0};
    assert_int_equal(docker_progress_feed(&p, line, 100, prog_collect, &o), 0);
    assert_int_equal(
        docker_progress_feed(&p, line + 100, len + 1 - 100, prog_collect, &o),
        0);
    assert_int_equal(o.n, 1);
    free(line);
    docker_progress_free(&p);
    nc_buf_free(&o.statuses);
}

/* ---- small helpers ---- */

static void test_registry_auth(void **state)
{
    (void)state;
    /* computed with Python: base64.urlsafe_b64encode of the JSON Go's
     * encoding/json writes, <, > and & escaped */
    char *a = docker_registry_auth("ci-bot", "a??b~~", "ci@example.com",
                                   "https://registry.example.com:5000");
    assert_string_equal(
        a, "eyJ1c2VybmFtZSI6ImNpLWJvdCIsInBhc3N3b3JkIjoiYT8_Yn5-IiwiZW1haWwi"
           "OiJjaUBleGFtcGxlLmNvbSIsInNlcnZlcmFkZHJlc3MiOiJodHRwczovL3JlZ2lz"
           "dHJ5LmV4YW1wbGUuY29tOjUwMDAifQ==");
    free(a);
    a = docker_registry_auth("ci-bot", "p?>?", "ci@example.com",
                             "https://registry.example.com:5000");
    assert_string_equal(
        a, "eyJ1c2VybmFtZSI6ImNpLWJvdCIsInBhc3N3b3JkIjoicD9cdTAwM2U_IiwiZW1h"
           "aWwiOiJjaUBleGFtcGxlLmNvbSIsInNlcnZlcmFkZHJlc3MiOiJodHRwczovL3Jl"
           "Z2lzdHJ5LmV4YW1wbGUuY29tOjUwMDAifQ==");
    free(a);
    a = docker_registry_auth("u", "p", NULL, ""); /* {"username":"u",...} */
    assert_string_equal(a, "eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAifQ==");
    free(a);
    a = docker_registry_auth(NULL, NULL, NULL, NULL);
    assert_string_equal(a, "e30="); /* {} */
    free(a);
    /* quotes and control characters stay inside their string */
    a = docker_registry_auth("a\"b\\c\n\x01", NULL, NULL, NULL);
    /* {"username":"a\"b\\c\n\u0001"} */
    assert_string_equal(a, "eyJ1c2VybmFtZSI6ImFcImJcXGNcblx1MDAwMSJ9");
    free(a);
}

static void test_query_escape(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"", ""},
        {"web-0b3f.task_1~", "web-0b3f.task_1~"},
        {"a b/c?d=e&f#g", "a%20b%2Fc%3Fd%3De%26f%23g"},
        {"{\"label\":[\"x=y\"]}", "%7B%22label%22%3A%5B%22x%3Dy%22%5D%7D"},
        {"\xc3\xa9\x7f\x01+", "%C3%A9%7F%01%2B"},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        char *s = docker_query_escape(cases[i][0]);
        assert_string_equal(s, cases[i][1]);
        free(s);
    }
    assert_null(docker_query_escape(NULL));
}

/* ---- a real Engine, when the caller started one ---- */

static void test_real_engine(void **state)
{
    (void)state;
    const char *ep = getenv("NOMCLIENT_TEST_DOCKER_ENDPOINT");
    if (!ep || !*ep)
        skip();
    long status = 0;
    json_t *j = NULL;
    struct nc_error err = {0};
    assert_int_equal(
        docker_call_sync(ep, "GET", "/version", NULL, 5000, &status, &j, &err),
        0);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(j, "ApiVersion")),
                        "1.41");
    json_decref(j);
    j = NULL;
    assert_int_equal(docker_call_sync(ep, "GET",
                                      "/containers/nc-no-such-container/json",
                                      NULL, 5000, &status, &j, &err),
                     0);
    assert_int_equal(status, 404);
    assert_string_equal(err.msg, "No such container: nc-no-such-container");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_parsers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inside_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync, setup, teardown),
        cmocka_unit_test(test_demux),
        cmocka_unit_test(test_demux_big_frame),
        cmocka_unit_test(test_demux_bad),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_progress_bad),
        cmocka_unit_test(test_registry_auth),
        cmocka_unit_test(test_query_escape),
        cmocka_unit_test(test_real_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
