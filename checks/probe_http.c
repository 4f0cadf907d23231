/* probe_http.c - the plain HTTP probe: request bytes built once per
 * definition, a fresh connection per probe on a raw socket (net.c), the
 * request sent right after connect when the kernel already allows it, the
 * answer read with http-parser into the shared engine buffer, and an RST
 * close as soon as the status and the first CHK_OUTPUT_MAX body bytes are
 * in (or the message is complete). Redirects are not followed.
 *
 * Output, as Consul's HTTP check:
 *   "HTTP GET http://127.0.0.1:8080/health: 503 Service Unavailable
 *    Output: <body>"
 * or "HTTP GET <url>: <error>" when no status line could be read. */
#include "checks/checks_internal.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#define MAX_READS_PER_EVENT 8

/* ---- request ---- */

static bool has_header(const struct chk_def *d, const char *name)
{
    for (size_t i = 0; i < d->nheaders; i++)
        if (strcasecmp(d->headers[i].name, name) == 0)
            return true;
    return false;
}

void chk_http_header_lines(const struct chk *c,
                           void (*emit)(void *arg, const char *name,
                                        const char *value),
                           void *arg)
{
    static const char *const defaults[][2] = {
        {"User-Agent", "Consul Health Check"},
        {"Accept", "text/plain, text/*, */*"},
    };
    const struct chk_def *d = &c->def;
    for (size_t i = 0; i < NC_ARRAY_LEN(defaults); i++)
        if (!has_header(d, defaults[i][0]))
            emit(arg, defaults[i][0], defaults[i][1]);
    for (size_t i = 0; i < d->nheaders; i++) {
        const struct chk_header *h = &d->headers[i];
        /* framing is ours: a caller's value could desynchronise it */
        if (strcasecmp(h->name, "Content-Length") == 0 ||
            strcasecmp(h->name, "Transfer-Encoding") == 0 ||
            strcasecmp(h->name, "Connection") == 0)
            continue;
        emit(arg, h->name, h->value);
    }
    emit(arg, "Connection", "close");
}

static void emit_line(void *arg, const char *name, const char *value)
{
    nc_buf_printf(arg, "%s: %s\r\n", name, value);
}

static void build_request(const struct chk *c, const char *method,
                          const char *path, bool with_body, struct nc_buf *b)
{
    const struct chk_def *d = &c->def;
    b->len = 0;
    nc_buf_printf(b, "%s %s HTTP/1.1\r\n", method, path);
    if (!has_header(d, "Host"))
        nc_buf_printf(b, "Host: %s\r\n", c->target);
    size_t body_len = with_body && d->body ? strlen(d->body) : 0;
    if (body_len)
        nc_buf_printf(b, "Content-Length: %zu\r\n", body_len);
    chk_http_header_lines(c, emit_line, b);
    nc_buf_puts(b, "\r\n");
    if (body_len)
        nc_buf_append(b, d->body, body_len);
}

void chk_http_build_request(struct chk *c)
{
    struct nc_buf b = {0};
    build_request(c, c->def.method, c->def.path, true, &b);
    c->request_len = b.len;
    c->request = nc_buf_take(&b);
}

const char *chk_redirect_method(const struct chk *c, int code)
{
    /* as Go's client: 307 and 308 repeat the request, body included; 301,
     * 302 and 303 continue with GET (HEAD stays HEAD), without the body */
    if (code == 307 || code == 308 || strcmp(c->def.method, "HEAD") == 0)
        return c->def.method;
    return "GET";
}

bool chk_redirect_limit(struct chk *c, int code)
{
    if (c->redirects < CHK_MAX_REDIRECTS)
        return false;
    chk_probe_finishf(c, CHK_CRITICAL, code, false,
                      "%sstopped after %d redirects", c->prefix,
                      CHK_MAX_REDIRECTS);
    return true;
}

bool chk_http_is_redirect(int code)
{
    return code == 301 || code == 302 || code == 303 || code == 307 ||
           code == 308;
}

const char *chk_redirect_path(const struct chk *c, const char *loc)
{
    const char *path = NULL;
    if (loc[0] == '/' && loc[1] != '/') {
        path = loc;
    } else {
        bool tls = c->def.protocol == CHK_PROTO_HTTPS;
        const char *scheme = tls ? "https://" : "http://";
        size_t sl = strlen(scheme), tl = strlen(c->target);
        if (strncasecmp(loc, scheme, sl) != 0)
            return NULL;
        const char *host = loc + sl;
        /* "127.0.0.1:80" may also be written without the default port */
        const char *colon = strrchr(c->target, ':');
        size_t bare = (size_t)(colon - c->target);
        bool dflt = c->def.port == (tls ? 443 : 80);
        if (strncasecmp(host, c->target, tl) == 0 &&
            (host[tl] == '/' || host[tl] == '\0'))
            path = host[tl] ? host + tl : "/";
        else if (dflt && strncasecmp(host, c->target, bare) == 0 &&
                 (host[bare] == '/' || host[bare] == '\0'))
            path = host[bare] ? host + bare : "/";
        if (!path)
            return NULL;
    }
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return NULL; /* never let a Location split the request line */
    return strlen(path) < 2048 ? path : NULL;
}

/* ---- response ---- */

static struct chk_http_state *state_of(http_parser *p)
{
    return (struct chk_http_state *)p; /* parser is the first member */
}

static int on_status(http_parser *p, const char *at, size_t n)
{
    struct chk_http_state *h = state_of(p);
    size_t room = sizeof(h->reason) - 1 - h->reason_len;
    if (n > room)
        n = room;
    memcpy(h->reason + h->reason_len, at, n);
    h->reason_len = (uint8_t)(h->reason_len + n);
    h->reason[h->reason_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct chk_http_state *h = state_of(p);
    if (h->in_value || h->field_len == 0) {
        h->in_value = false;
        h->field_len = 0;
    }
    /* only "Location" matters: keep 9 bytes to tell it from longer names */
    for (size_t i = 0; i < n && h->field_len < sizeof(h->field); i++)
        h->field[h->field_len++] = at[i];
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct chk_http_state *h = state_of(p);
    if (!h->in_value) {
        h->in_value = true;
        h->in_location = h->location && p->status_code >= 300 &&
                         p->status_code < 400 && h->field_len == 8 &&
                         strncasecmp(h->field, "location", 8) == 0;
        if (h->in_location)
            h->location->len = 0;
    }
    if (h->in_location && h->location->len + n < 2048)
        nc_buf_append(h->location, at, n);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct chk_http_state *h = state_of(p);
    h->code = p->status_code;
    /* 1xx are interim answers: the real one follows (101 is final) */
    if (h->code >= 100 && h->code < 200 && h->code != 101)
        return 0;
    h->headers_done = true;
    return h->head ? 1 : 0; /* a HEAD answer has no body */
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct chk_http_state *h = state_of(p);
    if (!h->headers_done)
        return 0;
    size_t room = CHK_OUTPUT_MAX - h->body->len;
    if (n >= room) {
        nc_buf_append(h->body, at, room);
        h->done = true; /* enough to decide: stop reading */
        http_parser_pause(p, 1);
        return 0;
    }
    nc_buf_append(h->body, at, n);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct chk_http_state *h = state_of(p);
    if (!h->headers_done) { /* end of an interim 1xx: read on */
        h->code = 0;
        h->reason_len = 0;
        h->reason[0] = '\0';
        return 0;
    }
    h->done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings response_settings = {
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void chk_http_begin(struct chk_http_state *h, bool head)
{
    http_parser_init(&h->parser, HTTP_RESPONSE);
    h->code = 0;
    h->head = head;
    h->headers_done = h->done = h->failed = false;
    h->in_value = h->in_location = false;
    h->field_len = 0;
    h->location = NULL;
    h->reason_len = 0;
    h->reason[0] = '\0';
}

int chk_http_feed(struct chk_http_state *h, struct nc_buf *body,
                  const char *data, size_t len)
{
    if (h->done || h->failed)
        return h->failed ? -EPROTO : 0;
    h->body = body;
    http_parser_execute(&h->parser, &response_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    if (e != HPE_OK && e != HPE_PAUSED && !h->done) {
        h->failed = true;
        return -EPROTO;
    }
    return 0;
}

/* Appends bytes as valid UTF-8 (JSON needs it): NULs and invalid
 * sequences become U+FFFD. */
void chk_output_append_clean(struct nc_buf *out, const unsigned char *s,
                             size_t n)
{
    static const char repl[] = "\xef\xbf\xbd";
    size_t i = 0, run = 0;
    while (i < n) {
        unsigned char ch = s[i];
        size_t len = ch < 0x80             ? 1
                     : (ch & 0xe0) == 0xc0 ? 2
                     : (ch & 0xf0) == 0xe0 ? 3
                     : (ch & 0xf8) == 0xf0 ? 4
                                           : 0;
        bool ok = len > 0 && ch != 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = (s[i + k] & 0xc0) == 0x80;
        if (ok && len == 2)
            ok = ch >= 0xc2; /* overlong */
        if (ok && len == 3) {
            unsigned cp = ((ch & 0x0fu) << 12) | ((s[i + 1] & 0x3fu) << 6);
            ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
        }
        if (ok && len == 4) {
            unsigned cp = ((ch & 0x07u) << 18) | ((s[i + 1] & 0x3fu) << 12);
            ok = cp >= 0x10000 && cp <= 0x10ffff;
        }
        if (ok) {
            i += len;
            run += len;
            continue;
        }
        nc_buf_append(out, (const char *)s + i - run, run);
        nc_buf_append(out, repl, sizeof(repl) - 1);
        run = 0;
        i++;
    }
    nc_buf_append(out, (const char *)s + i - run, run);
}

enum chk_status chk_http_conclude(const struct chk_http_state *h,
                                  const char *prefix, const struct nc_buf *body,
                                  struct nc_buf *out)
{
    out->len = 0;
    nc_buf_puts(out, prefix);
    if (!h->headers_done) {
        if (h->failed && HTTP_PARSER_ERRNO(&h->parser) == HPE_INVALID_EOF_STATE)
            nc_buf_puts(out, "unexpected EOF (connection closed in the "
                             "response headers)");
        else if (h->failed)
            nc_buf_printf(
                out, "malformed HTTP response: %s",
                http_errno_description(HTTP_PARSER_ERRNO(&h->parser)));
        else
            nc_buf_puts(out, "EOF (connection closed before the response)");
        return CHK_CRITICAL;
    }
    const char *reason =
        h->reason_len ? h->reason : http_status_str((enum http_status)h->code);
    char code[16];
    int n = h->code, len = 0;
    do { /* printf-free: this runs for every probe */
        code[sizeof(code) - 2 - len++] = (char)('0' + n % 10);
        n /= 10;
    } while (n && len < 10);
    code[sizeof(code) - 1] = ' ';
    nc_buf_append(out, code + sizeof(code) - 1 - len, (size_t)len + 1);
    chk_output_append_clean(out, (const unsigned char *)reason, strlen(reason));
    nc_buf_puts(out, " Output: ");
    if (body->len)
        chk_output_append_clean(out, (const unsigned char *)body->data, body->len);
    return chk_http_status(h->code);
}

/* ---- probe ---- */

static int http_connect(struct chk *c);
static void http_fail(struct chk *c, const char *op, int err);

/* Follows a 3xx back to the same target: 1 when a new request is on its
 * way, 0 when the answer stands. */
static int http_follow(struct chk *c)
{
    int code = c->http.code;
    if (!c->location.len)
        return 0;
    nc_buf_puts(&c->location, "");
    const char *path = chk_redirect_path(c, c->location.data);
    if (!path)
        return 0;
    chk_net_drop(c);
    if (chk_redirect_limit(c, code))
        return 1;
    char *p = xstrdup(path);
    build_request(c, chk_redirect_method(c, code), p,
                  code == 307 || code == 308, &c->redirect);
    free(p);
    c->req = c->redirect.data;
    c->req_len = c->redirect.len;
    c->redirects++;
    int r = http_connect(c);
    if (r < 0)
        http_fail(c, "connect", r);
    return 1;
}

static void http_conclude(struct chk *c)
{
    if (c->http.headers_done && chk_http_is_redirect(c->http.code) &&
        http_follow(c))
        return;
    chk_net_drop(c);
    enum chk_status st =
        chk_http_conclude(&c->http, c->prefix, &c->body, &c->output);
    chk_probe_finish(c, st, c->http.headers_done ? c->http.code : 0, false);
}

static void http_fail(struct chk *c, const char *op, int err)
{
    chk_net_drop(c);
    chk_output_begin(c);
    if (strcmp(op, "connect") == 0) {
        chk_net_format_error(c, op, err, &c->output);
    } else {
        char txt[128];
        nc_buf_printf(&c->output, "%s tcp %s: %s", op, c->target,
                      chk_errno_text(err, txt, sizeof(txt)));
    }
    chk_probe_finish(c, CHK_CRITICAL, 0, false);
}

/* Sends what is left of the request: 1 when all is sent, 0 to wait for
 * EPOLLOUT, -errno on failure. */
static int http_send(struct chk *c)
{
    while (c->sent < c->req_len) {
        ssize_t n = send(c->fd, c->req + c->sent, c->req_len - c->sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -errno;
        }
        c->sent += (size_t)n;
    }
    return 1;
}

/* Connects and sends c->req, or waits to: 0 or -errno. */
static int http_connect(struct chk *c)
{
    bool connected;
    int r = chk_net_connect(c, &connected);
    if (r < 0)
        return r;
    chk_http_begin(&c->http, strcmp(c->def.method, "HEAD") == 0);
    c->http.location = &c->location;
    c->location.len = 0;
    c->body.len = 0;
    c->sent = 0;
    /* On loopback the handshake is usually done when connect returns:
     * sending now saves a wake-up; otherwise EAGAIN and wait. */
    r = http_send(c);
    if (r < 0 && r != -EPIPE && r != -ENOTCONN) {
        chk_net_drop(c);
        return r;
    }
    r = chk_net_watch(c, r == 1 ? EPOLLIN : EPOLLOUT | EPOLLIN);
    if (r < 0) {
        chk_net_drop(c);
        return r;
    }
    return 0;
}

static int http_start(struct chk *c)
{
    c->req = c->request;
    c->req_len = c->request_len;
    c->redirects = 0;
    return http_connect(c);
}

static void http_read(struct chk *c)
{
    struct chk_engine *e = c->e;
    for (int i = 0; i < MAX_READS_PER_EVENT; i++) {
        ssize_t n = recv(c->fd, e->rbuf, sizeof(e->rbuf), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (c->http.headers_done) { /* as Consul: the status decides */
                http_conclude(c);
                return;
            }
            http_fail(c, "read", -errno);
            return;
        }
        chk_http_feed(&c->http, &c->body, e->rbuf, (size_t)n);
        if (n == 0 || c->http.done || c->http.failed) {
            http_conclude(c);
            return;
        }
    }
    int r = chk_net_watch(c, EPOLLIN); /* more to come: re-arm the one-shot */
    if (r < 0)
        http_fail(c, "read", r);
}

static void http_on_event(struct chk *c, uint32_t events)
{
    /* an answer before the whole request went out (a 413 to a large body)
     * is still the answer: read it */
    if (c->sent < c->req_len && !(events & EPOLLIN)) {
        int r = http_send(c);
        if (r == 0 && !(events & (EPOLLERR | EPOLLHUP))) {
            if ((r = chk_net_watch(c, EPOLLOUT | EPOLLIN)) < 0)
                http_fail(c, "connect", r);
            return;
        }
        if (r <= 0) {
            int err = chk_net_socket_error(c);
            http_fail(c, "connect", err ? err : (r < 0 ? r : -ECONNRESET));
            return;
        }
        if ((r = chk_net_watch(c, EPOLLIN)) < 0) {
            http_fail(c, "connect", r);
            return;
        }
        return; /* the answer comes later */
    }
    http_read(c);
}

static void http_abort(struct chk *c)
{
    chk_net_drop(c);
}

static void http_expire(struct chk *c)
{
    /* Consul reads the body under the same deadline and judges by the
     * status code whatever the body did; do the same once it is in. */
    if (c->http.headers_done)
        http_conclude(c);
    else
        chk_net_drop(c);
}

const struct chk_probe_ops chk_http_ops = {
    .name = "http",
    .start = http_start,
    .abort = http_abort,
    .expire = http_expire,
    .on_event = http_on_event,
};

int chk_http_feed_for_test(const char *data, size_t len, size_t chunk,
                           struct chk_result *result, struct nc_buf *out)
{
    struct chk_http_state h;
    struct nc_buf body = {0}, location = {0};
    chk_http_begin(&h, false);
    h.location = &location;
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len && !h.done && !h.failed; off += chunk)
        chk_http_feed(&h, &body, data + off,
                      len - off < chunk ? len - off : chunk);
    chk_http_feed(&h, &body, NULL, 0); /* EOF */
    memset(result, 0, sizeof(*result));
    result->status =
        chk_http_conclude(&h, "HTTP GET http://127.0.0.1:80/: ", &body, out);
    result->http_code = h.headers_done ? h.code : 0;
    if (h.headers_done && chk_http_is_redirect(h.code) && location.len) {
        /* where the probe would go next, as a check on 127.0.0.1:80 */
        static struct chk fake = {.target = "127.0.0.1:80",
                                  .def = {.port = 80}};
        nc_buf_puts(&location, "");
        const char *next = chk_redirect_path(&fake, location.data);
        nc_buf_puts(out, " [redirect: ");
        if (!next)
            next = "not followed";
        chk_output_append_clean(out, (const unsigned char *)next, strlen(next));
        nc_buf_putc(out, ']');
    }
    result->output = out->data;
    nc_buf_free(&body);
    nc_buf_free(&location);
    return 0;
}
