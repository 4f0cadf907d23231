/* api_client.c - see client/api/api.h.
 *
 * The CLI speaks HTTP/1.1 to the agent over one socket with http-parser
 * reading the answer, through client/tls.c for an https:// address.
 * libcurl would do it too, but linking it drags ~35 shared libraries
 * (OpenSSL, nghttp2, LDAP, ...) into every CLI run and into the agent's
 * idle memory; OpenSSL is loaded only for HTTPS. */
#include "client/api/api.h"
#include "client/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define API_MAX_RESPONSE (64u << 20)
#define API_CONNECT_TIMEOUT_MS 5000
#define API_IO_TIMEOUT_MS 60000

static json_t *last_error_body;
static char *acl_token; /* sent as X-Nomad-Token; NULL: $NOMAD_TOKEN */

void api_client_set_token(const char *token)
{
    free(acl_token);
    acl_token = token && *token ? xstrdup(token) : NULL;
}

static struct api_tls_flags tls_flags;

void api_client_set_tls_flags(const struct api_tls_flags *f)
{
    tls_flags = *f;
}

/* strconv.ParseBool, as Nomad reads NOMAD_SKIP_VERIFY */
static bool env_true(const char *name)
{
    const char *v = getenv(name);
    bool on = false;
    return v && nc_parse_go_bool(v, &on) && on;
}

static char *flag_or_env(const char *flag, const char *env)
{
    const char *v = flag && *flag ? flag : getenv(env);
    return v && *v ? xstrdup(v) : NULL;
}

static void tls_settings_init(struct api_client_tls *t)
{
    t->ca_cert = flag_or_env(tls_flags.ca_cert, "NOMAD_CACERT");
    t->client_cert = flag_or_env(tls_flags.client_cert, "NOMAD_CLIENT_CERT");
    t->client_key = flag_or_env(tls_flags.client_key, "NOMAD_CLIENT_KEY");
    t->skip_verify = tls_flags.skip_verify_set ? tls_flags.skip_verify
                                               : env_true("NOMAD_SKIP_VERIFY");
}

void api_client_init(struct api_client *c, const char *flag_address)
{
    memset(&c->tls, 0, sizeof(c->tls));
    tls_settings_init(&c->tls);
    const char *a = flag_address;
    if (!a || !*a)
        a = getenv("NOMCLIENT_ADDR");
    if (!a || !*a)
        a = getenv("NOMAD_ADDR");
    if (!a || !*a)
        a = "http://127.0.0.1:4646";
    if (strstr(a, "://"))
        c->address = xstrdup(a);
    else
        c->address = xasprintf("http://%s", a);
    size_t n = strlen(c->address);
    while (n > 0 && c->address[n - 1] == '/')
        c->address[--n] = '\0';
}

void api_client_free(struct api_client *c)
{
    free(c->address);
    c->address = NULL;
    free(c->tls.ca_cert);
    free(c->tls.client_cert);
    free(c->tls.client_key);
    tls_ctx_free(c->tls.ctx);
    memset(&c->tls, 0, sizeof(c->tls));
    json_decref(last_error_body);
    last_error_body = NULL;
}

const json_t *api_last_error_body(void) { return last_error_body; }

/* Splits "http://host:port" or "https://..." (host may be "[v6]"); port
 * defaults to 80 or 443. */
static int split_address(const char *address, char **host, char **port,
                         bool *https)
{
    *https = nc_str_has_prefix(address, "https://");
    if (!*https && !nc_str_has_prefix(address, "http://"))
        return -EPROTONOSUPPORT;
    const char *h = strstr(address, "://") + 3;
    const char *end = h + strcspn(h, "/");
    const char *colon;
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (!close)
            return -EINVAL;
        *host = xstrndup(h + 1, (size_t)(close - h - 1));
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        *host = xstrndup(h, (size_t)((colon ? colon : end) - h));
    }
    *port = colon ? xstrndup(colon + 1, (size_t)(end - colon - 1))
                  : xstrdup(*https ? "443" : "80");
    if (!**host || !**port) {
        free(*host);
        free(*port);
        return -EINVAL;
    }
    return 0;
}

static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    return r == 0 ? -ETIMEDOUT : 0;
}

static int dial(const char *host, const char *port, int *out)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0)
        return g == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
    int r = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family,
                        ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            r = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
            (errno == EINPROGRESS &&
             (r = wait_fd(fd, POLLOUT, API_CONNECT_TIMEOUT_MS)) == 0)) {
            int soerr = 0;
            socklen_t len = sizeof(soerr);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
            if (soerr == 0) {
                *out = fd;
                freeaddrinfo(res);
                return 0;
            }
            r = -soerr;
        } else if (errno != EINPROGRESS) {
            r = -errno;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return r;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            int r = wait_fd(fd, POLLOUT, API_IO_TIMEOUT_MS);
            if (r < 0)
                return r;
            continue;
        }
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- the connection: a socket, with a TLS session for https ---- */

struct transport {
    int fd;
    struct tls_conn *tls; /* NULL: plain HTTP */
    bool tls_failed;      /* the session broke: tls_conn_error says why */
};

/* Sends what the session has for the agent. */
static int tls_flush(struct transport *t)
{
    struct nc_buf out = {0};
    tls_conn_take_output(t->tls, &out);
    int r = out.len ? send_all(t->fd, out.data, out.len) : 0;
    nc_buf_free(&out);
    return r;
}

/* recv on the non-blocking socket, waiting up to timeout_ms (-1: no
 * limit): bytes, 0 at EOF, or -errno. */
static ssize_t recv_wait(int fd, char *buf, size_t len, int timeout_ms)
{
    for (;;) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n < 0 && errno == EAGAIN) {
            int r = wait_fd(fd, POLLIN, timeout_ms);
            if (r < 0)
                return r;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -errno : n;
    }
}

/* Reads ciphertext from the socket into the session: 0, -EPIPE at EOF
 * (before the session ended), or -errno. */
static int tls_pull(struct transport *t, int timeout_ms)
{
    char buf[16384];
    ssize_t n = recv_wait(t->fd, buf, sizeof(buf), timeout_ms);
    if (n < 0)
        return (int)n;
    if (n == 0)
        return -EPIPE;
    tls_conn_feed(t->tls, buf, (size_t)n);
    return 0;
}

static int transport_send(struct transport *t, const char *p, size_t n)
{
    if (!t->tls)
        return send_all(t->fd, p, n);
    if (tls_conn_write(t->tls, p, n) < 0) {
        t->tls_failed = true;
        return -EPROTO;
    }
    return tls_flush(t);
}

/* Like recv: > 0 bytes, 0 at the end, -errno (-EPROTO: a TLS failure,
 * tls_conn_error says which). */
static ssize_t transport_recv(struct transport *t, char *buf, size_t len,
                              int timeout_ms)
{
    if (!t->tls)
        return recv_wait(t->fd, buf, len, timeout_ms);
    for (;;) {
        long n = tls_conn_read(t->tls, buf, len);
        t->tls_failed = n == -EPROTO;
        if (n != -EAGAIN)
            return n;
        int r = tls_flush(t); /* a session ticket wants no answer, others may */
        if (r == 0)
            r = tls_pull(t, timeout_ms);
        if (r == -EPIPE)
            return 0; /* closed without close_notify: http-parser judges */
        if (r < 0)
            return r;
    }
}

/* Runs the client handshake; on failure err says what failed. */
static int tls_handshake(struct api_client *c, struct transport *t,
                         const char *host, const char *what,
                         struct nc_error *err)
{
    if (!c->tls.ctx) {
        struct tls_settings ts = {.ca_file = c->tls.ca_cert,
                                  .cert_file = c->tls.client_cert,
                                  .key_file = c->tls.client_key,
                                  .verify_peer = !c->tls.skip_verify};
        int r = tls_ctx_new(&c->tls.ctx, false, &ts, err);
        if (r < 0) {
            nc_error_prefix(err, "%s: TLS settings", what);
            return r;
        }
    }
    t->tls = tls_conn_new(c->tls.ctx, c->tls.skip_verify ? NULL : host);
    for (;;) {
        int r = tls_conn_handshake(t->tls);
        int s = tls_flush(t);
        if (r == 0 && s == 0)
            return 0;
        if (r == -EAGAIN && s == 0)
            s = tls_pull(t, API_IO_TIMEOUT_MS);
        if (r == -EPROTO)
            return nc_error_set(err, r, "%s: TLS handshake: %s%s", what,
                                tls_conn_error(t->tls),
                                c->tls.ca_cert || c->tls.skip_verify
                                    ? ""
                                    : " (give the agent's CA with -ca-cert or "
                                      "NOMAD_CACERT)");
        if (s < 0)
            return nc_error_set(err, s, "%s: TLS handshake: %s", what,
                                s == -EPIPE ? "the agent closed the connection "
                                              "(is it serving HTTPS?)"
                                            : strerror(-s));
    }
}

/* A TLS failure reading the answer: most likely the agent's verdict on
 * our certificate, which TLS 1.3 delivers after the handshake. */
static int tls_read_error(struct api_client *c, struct transport *t,
                          const char *what, struct nc_error *err)
{
    const char *why = tls_conn_error(t->tls);
    bool about_cert = strstr(why, "certificate") != NULL;
    return nc_error_set(err, -EPROTO, "%s: TLS: the agent refused the "
                                      "connection: %s%s",
                        what, why,
                        about_cert && !c->tls.client_cert
                            ? " (it requires a client certificate: "
                              "-client-cert and -client-key, or "
                              "NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY)"
                            : "");
}

struct response {
    struct nc_buf body;
    bool complete;
    bool too_big;
    /* streaming: a 2xx body goes to the sink as it arrives, with no read
     * timeout (the agent may be silent for as long as the task is) */
    void (*sink)(void *arg, const char *data, size_t len);
    void *sink_arg;
    bool to_sink;
};

static int on_headers(http_parser *p)
{
    struct response *r = p->data;
    r->to_sink = r->sink && p->status_code >= 200 && p->status_code <= 299;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct response *r = p->data;
    if (r->to_sink) {
        r->sink(r->sink_arg, at, len);
        return 0;
    }
    if (r->body.len + len > API_MAX_RESPONSE) {
        r->too_big = true;
        return -1;
    }
    nc_buf_append(&r->body, at, len);
    return 0;
}

static int on_complete(http_parser *p)
{
    ((struct response *)p->data)->complete = true;
    return 0;
}

/* Reads one response; the request asked for Connection: close. */
static int read_response(struct transport *t, http_parser *parser,
                         struct response *resp)
{
    http_parser_settings s = {.on_headers_complete = on_headers,
                              .on_body = on_body,
                              .on_message_complete = on_complete};
    int timeout = resp->sink ? -1 : API_IO_TIMEOUT_MS;
    http_parser_init(parser, HTTP_RESPONSE);
    parser->data = resp;
    char buf[16384];
    while (!resp->complete) {
        ssize_t n = transport_recv(t, buf, sizeof(buf), timeout);
        if (n < 0)
            return (int)n;
        size_t used = http_parser_execute(parser, &s, buf, (size_t)n);
        if (resp->too_big)
            return -EFBIG;
        if (parser->http_errno != HPE_OK || (n > 0 && used != (size_t)n))
            return -EPROTO;
        if (n == 0)
            break; /* EOF, also delivered to the parser above */
    }
    return resp->complete ? 0 : -EPROTO;
}

static const char *transport_hint(int r)
{
    if (r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ETIMEDOUT)
        return " (is the agent running? start one with `nomclient agent "
               "-dev`, or point -address / NOMCLIENT_ADDR at it)";
    return "";
}

/* Sends one request and reads the whole answer into resp->body. */
/* Connects to the agent (split, dial, and the TLS handshake for https):
 * 0, or -errno with err set; t->fd and t->tls are the caller's to free
 * either way. `what` names the request in the messages. */
static int agent_connect(struct api_client *c, const char *what,
                         struct transport *t, char **host, char **port,
                         struct nc_error *err)
{
    bool https = false;
    int r = split_address(c->address, host, port, &https);
    if (r < 0)
        return nc_error_set(err, r,
                            "invalid agent address \"%s\": expected "
                            "http://HOST:PORT or https://HOST:PORT",
                            c->address);
    if ((r = dial(*host, *port, &t->fd)) < 0)
        return nc_error_set(err, r, "%s: %s%s", what, strerror(-r),
                            transport_hint(r));
    if (https && (r = tls_handshake(c, t, *host, what, err)) < 0)
        return r;
    return 0;
}

/* The X-Nomad-Token header line, or "": a token with a line break would
 * forge headers, so it is not sent. Caller frees. */
static char *token_line(void)
{
    const char *tok = acl_token ? acl_token : getenv("NOMAD_TOKEN");
    return tok && *tok && !strpbrk(tok, "\r\n")
               ? xasprintf("X-Nomad-Token: %s\r\n", tok)
               : xstrdup("");
}

static int do_request(struct api_client *c, const char *method,
                      const char *path, const json_t *body,
                      struct response *resp, long *code, struct nc_error *err)
{
    char *url = xasprintf("%s%s", c->address, path);
    char *host = NULL, *port = NULL, *payload = NULL, *head = NULL;
    char *what = xasprintf("%s %s", method, url);
    struct transport t = {.fd = -1};
    int r = agent_connect(c, what, &t, &host, &port, err);
    if (r < 0)
        goto done;
    payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    size_t plen = payload ? strlen(payload) : 0;
    char *tok_line = token_line();
    head = xasprintf("%s %s HTTP/1.1\r\nHost: %s:%s\r\n"
                     "User-Agent: nomclient-cli\r\nAccept: application/json\r\n"
                     "Connection: close\r\n%s%s"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, host, port,
                     payload ? "Content-Type: application/json\r\n" : "",
                     tok_line, plen);
    free(tok_line);
    if ((r = transport_send(&t, head, strlen(head))) < 0 ||
        (plen && (r = transport_send(&t, payload, plen)) < 0)) {
        if (t.tls_failed) {
            tls_read_error(c, &t, what, err);
            goto done;
        }
        nc_error_set(err, r, "%s %s: sending the request: %s", method, url,
                     strerror(-r));
        goto done;
    }
    http_parser parser;
    if ((r = read_response(&t, &parser, resp)) < 0) {
        if (t.tls_failed) {
            tls_read_error(c, &t, what, err);
            goto done;
        }
        nc_error_set(err, r, "%s %s: reading the answer: %s", method, url,
                     r == -EPROTO ? "malformed or truncated HTTP response"
                                  : strerror(-r));
        goto done;
    }
    *code = parser.status_code;
    r = 0;
done:
    tls_conn_free(t.tls);
    if (t.fd >= 0)
        close(t.fd);
    free(what);
    free(head);
    free(payload);
    free(host);
    free(port);
    free(url);
    return r;
}

int api_dial(struct api_client *c, const char *path, int *fd_out,
             struct tls_conn **tls_out, char **headers, struct nc_error *err)
{
    *fd_out = -1;
    *tls_out = NULL;
    *headers = NULL;
    char *host = NULL, *port = NULL;
    char *what = xasprintf("GET %s%s", c->address, path);
    struct transport t = {.fd = -1};
    int r = agent_connect(c, what, &t, &host, &port, err);
    if (r < 0) {
        tls_conn_free(t.tls);
        if (t.fd >= 0)
            close(t.fd);
    } else {
        bool v6 = strchr(host, ':') != NULL;
        char *tok_line = token_line();
        *headers = xasprintf("Host: %s%s%s:%s\r\nUser-Agent: nomclient-cli\r\n"
                             "%s",
                             v6 ? "[" : "", host, v6 ? "]" : "", port, tok_line);
        free(tok_line);
        *fd_out = t.fd;
        *tls_out = t.tls;
    }
    free(host);
    free(port);
    free(what);
    return r;
}

/* Turns a non-2xx answer into the agent's error text. */
static int answer_error(long code, const struct response *resp, json_t *doc,
                        struct nc_error *err)
{
    const char *msg = NULL;
    if (json_is_object(doc))
        msg = json_string_value(json_object_get(doc, "error"));
    if (!msg && resp->body.len)
        msg = resp->body.data;
    return nc_error_set(err, -EPROTO, "Unexpected response code: %ld (%s)",
                        code, msg ? msg : "no body");
}

int api_request(struct api_client *c, const char *method, const char *path,
                const json_t *body, json_t **out, long *status,
                struct nc_error *err)
{
    if (out)
        *out = NULL;
    json_decref(last_error_body);
    last_error_body = NULL;
    struct response resp = {0};
    long code = 0;
    int r = do_request(c, method, path, body, &resp, &code, err);
    if (r < 0)
        goto done;
    if (status)
        *status = code;
    json_t *doc = NULL;
    if (resp.body.len && strcmp(method, "HEAD") != 0) {
        json_error_t jerr;
        doc = json_loadb(resp.body.data, resp.body.len, JSON_DECODE_ANY, &jerr);
    }
    if (code < 200 || code > 299) {
        r = answer_error(code, &resp, doc, err);
        last_error_body = doc;
        goto done;
    }
    if (resp.body.len && !doc && strcmp(method, "HEAD") != 0) {
        r = nc_error_set(err, -EPROTO, "%s %s%s: the agent sent invalid JSON",
                         method, c->address, path);
        goto done;
    }
    if (out)
        *out = doc;
    else
        json_decref(doc);
done:
    nc_buf_free(&resp.body);
    return r;
}

/* GETs path into resp (or its sink); a non-2xx answer becomes the agent's
 * error text. */
static int get_checked(struct api_client *c, const char *path,
                       struct response *resp, struct nc_error *err)
{
    long code = 0;
    int r = do_request(c, "GET", path, NULL, resp, &code, err);
    if (r == 0 && (code < 200 || code > 299)) {
        json_t *doc = resp->body.len ? json_loadb(resp->body.data,
                                                  resp->body.len, 0, NULL)
                                     : NULL;
        r = answer_error(code, resp, doc, err);
        json_decref(doc);
    }
    return r;
}

int api_get_text(struct api_client *c, const char *path, char **out,
                 size_t *len, struct nc_error *err)
{
    *out = NULL;
    struct response resp = {0};
    int r = get_checked(c, path, &resp, err);
    if (r == 0) {
        *len = resp.body.len;
        nc_buf_puts(&resp.body, "");
        *out = nc_buf_take(&resp.body);
    }
    nc_buf_free(&resp.body);
    return r;
}

int api_stream_text(struct api_client *c, const char *path,
                    void (*sink)(void *arg, const char *data, size_t len),
                    void *arg, struct nc_error *err)
{
    struct response resp = {.sink = sink, .sink_arg = arg};
    int r = get_checked(c, path, &resp, err);
    nc_buf_free(&resp.body);
    return r;
}
