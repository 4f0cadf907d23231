/* http_server.c - see client/api/api.h. */
#include "client/api/api.h"
#include "client/tls.h"

#include <ctype.h>
#include <errno.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct http_server_config cfg;
    http_handler_fn handler;
    void *ctx;
    int port;
    struct conn *conns;
    int nconns;
    int open_handles; /* listener + connections still closing */
    bool stopping;
    struct tls_ctx *tls; /* NULL: plain HTTP */
    void (*on_closed)(void *arg);
    void *closed_arg;
};

struct conn {
    struct http_server *srv; /* NULL in test mode */
    const struct http_server_config *cfg;
    http_handler_fn handler;
    void *ctx;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    http_parser parser;
    struct nc_buf url, body, hname, hval, in, out;
    struct kvlist headers;
    size_t in_off;
    size_t header_bytes;
    bool in_value, in_request, complete, writing, closing, reading;
    int error_status; /* set by a callback: answer this and close */
    const char *error_text;
    char remote[64];
    char ip[48]; /* the client's address, for the per-client limit */
    struct tls_conn *tls;  /* HTTPS: the session, NULL for plain HTTP */
    bool handshaken;
    struct nc_buf raw;     /* HTTPS: ciphertext just read */
    struct conn *next, *prev;
    int handles; /* tcp + timer open */
    struct http_stream *stream; /* a streamed response in progress */
};

struct http_stream {
    struct conn *c; /* NULL until attached, and once the client is gone */
    void (*on_drain)(void *arg);
    void (*on_closed)(void *arg);
    void *arg;
    struct nc_buf pending;
    bool ended, gone;
    /* an upgraded connection (101): bytes both ways as they are */
    void (*on_data)(void *arg, const char *data, size_t len);
    bool input_paused;
};

static const struct http_server_config defaults = {
    .max_header_bytes = 16 << 10,
    .max_body_bytes = 4 << 20,
    .idle_timeout_ms = 60000,
    .request_timeout_ms = 30000,
    .max_connections = 1024,
    .handshake_timeout_ms = 5000,
};

/* ---- responses ---------------------------------------------------------- */

void http_response_set_status(struct http_response *r, int status)
{
    r->status = status;
}

void http_response_set_header(struct http_response *r, const char *name,
                              const char *value)
{
    kv_set(&r->headers, name, value);
}

void http_response_set_body(struct http_response *r, const char *body,
                            size_t len, const char *content_type)
{
    r->body.len = 0;
    nc_buf_append(&r->body, body ? body : "", body ? len : 0);
    if (content_type)
        kv_set(&r->headers, "Content-Type", content_type);
}

void http_response_json(struct http_response *r, int status, json_t *json)
{
    if (!json) {
        http_response_error(r, 500, "internal error: cannot encode response");
        return;
    }
    char *txt = json_dumps(json, r->pretty ? JSON_INDENT(4) | JSON_ENCODE_ANY
                                           : JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(json);
    if (!txt) {
        http_response_error(r, 500, "internal error: cannot encode response");
        return;
    }
    r->status = status;
    http_response_set_body(r, txt, strlen(txt), "application/json");
    if (r->pretty)
        nc_buf_putc(&r->body, '\n');
    free(txt);
}

void http_response_error(struct http_response *r, int status, const char *fmt,
                         ...)
{
    struct nc_buf msg = {0};
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:s}", "error", msg.data ? msg.data : "");
    nc_buf_free(&msg);
    char *txt = json_dumps(j, r->pretty ? JSON_INDENT(4) : JSON_COMPACT);
    json_decref(j);
    r->status = status;
    http_response_set_body(r, txt, strlen(txt), "application/json");
    free(txt);
}

struct http_stream *http_response_stream(struct http_response *r,
                                         const char *content_type,
                                         void (*on_drain)(void *arg),
                                         void (*on_closed)(void *arg),
                                         void *arg)
{
    struct http_stream *st = xcalloc(1, sizeof(*st));
    st->on_drain = on_drain;
    st->on_closed = on_closed;
    st->arg = arg;
    r->status = 200;
    r->body.len = 0;
    if (content_type)
        kv_set(&r->headers, "Content-Type", content_type);
    r->stream = st;
    return st;
}

struct http_stream *http_response_upgrade(
    struct http_response *r, void (*on_data)(void *arg, const char *data, size_t len),
    void (*on_drain)(void *arg), void (*on_closed)(void *arg), void *arg)
{
    struct http_stream *st = http_response_stream(r, NULL, on_drain, on_closed,
                                                  arg);
    st->on_data = on_data;
    r->status = 101;
    return st;
}

static void stream_flush(struct conn *c);
static void upgraded_deliver(struct conn *c);

void http_stream_pause_input(struct http_stream *s, bool pause)
{
    if (!s->on_data || s->input_paused == pause)
        return;
    s->input_paused = pause;
    struct conn *c = s->c;
    if (!c || c->closing)
        return;
    if (pause && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    } else if (!pause) {
        upgraded_deliver(c);
    }
}

long http_stream_write(struct http_stream *s, const void *data, size_t len)
{
    if (s->ended || s->gone)
        return -EPIPE;
    nc_buf_append(&s->pending, data, len);
    long queued = (long)s->pending.len;
    if (s->c)
        stream_flush(s->c);
    return queued;
}

void http_stream_end(struct http_stream *s)
{
    if (s->ended)
        return;
    s->ended = true;
    if (s->c)
        stream_flush(s->c);
}

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/* ---- connection output ---------------------------------------------------- */

static void conn_close(struct conn *c);
static void conn_process(struct conn *c);
static void on_timer(uv_timer_t *t);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static void on_write(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    c->writing = false;
    c->out.len = 0;
    if (status < 0 || c->closing) {
        conn_close(c);
        return;
    }
    if (c->stream) {
        stream_flush(c);
        return;
    }
    conn_process(c);
}

/* ---- HTTPS: every byte goes through the session ------------------------ */

/* One write of ciphertext: its own copy, as responses, handshake records
 * and session tickets may be in flight together (libuv keeps their order). */
struct tls_write {
    uv_write_t req;
    struct conn *c;
    bool response; /* ends a conn_flush: on_write's work */
    char data[];
};

static void on_tls_write(uv_write_t *w, int status)
{
    struct tls_write *tw = (struct tls_write *)w;
    struct conn *c = tw->c;
    bool response = tw->response;
    free(tw);
    if (response) {
        c->wreq.data = c;
        on_write(&c->wreq, status);
    } else if (status < 0 && !c->closing) {
        conn_close(c);
    }
}

/* Sends what the session has for the peer. Returns false when the socket
 * refused it (the connection is then closed). */
static bool tls_send_output(struct conn *c, bool response)
{
    struct nc_buf out = {0};
    size_t n = tls_conn_take_output(c->tls, &out);
    if (n == 0 && !response) {
        nc_buf_free(&out);
        return true;
    }
    struct tls_write *tw = xcalloc(1, sizeof(*tw) + n + 1);
    tw->c = c;
    tw->response = response;
    if (n)
        memcpy(tw->data, out.data, n);
    nc_buf_free(&out);
    uv_buf_t buf = uv_buf_init(tw->data, (unsigned)n);
    if (uv_write(&tw->req, (uv_stream_t *)&c->tcp, &buf, 1, on_tls_write) < 0) {
        free(tw);
        if (response)
            c->writing = false;
        conn_close(c);
        return false;
    }
    return true;
}

/* Plain bytes out of band of a response (100 Continue). */
static void conn_send_extra(struct conn *c, const char *data, size_t len)
{
    if (!c->tls) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        return;
    }
    if (tls_conn_write(c->tls, data, len) == 0)
        tls_send_output(c, false);
}

/* Sends c->out; closes afterwards when `close_after`. */
static void conn_flush(struct conn *c, bool close_after)
{
    if (close_after)
        c->closing = true;
    if (!c->srv) {
        return; /* test mode: out is read by the caller */
    }
    if (c->tls) {
        c->writing = true;
        if (tls_conn_write(c->tls, c->out.data, c->out.len) < 0) {
            c->writing = false;
            conn_close(c);
            return;
        }
        if (close_after)
            tls_conn_shutdown(c->tls);
        tls_send_output(c, true);
        return;
    }
    uv_buf_t buf = uv_buf_init(c->out.data, (unsigned)c->out.len);
    c->writing = true;
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_write) < 0) {
        c->writing = false;
        conn_close(c);
    }
}

static void write_response(struct conn *c, struct http_response *r, bool head,
                           bool close_after)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    nc_buf_printf(&c->out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", r->status,
                  reason(r->status), date);
    if (r->stream && r->stream->on_data)
        ; /* 101: no body; the connection is the client's now */
    else if (r->stream)
        nc_buf_puts(&c->out, "Transfer-Encoding: chunked\r\n");
    else
        nc_buf_printf(&c->out, "Content-Length: %zu\r\n", r->body.len);
    for (size_t i = 0; i < r->headers.n; i++)
        nc_buf_printf(&c->out, "%s: %s\r\n", r->headers.items[i].key,
                      r->headers.items[i].value);
    if (close_after)
        nc_buf_puts(&c->out, "Connection: close\r\n");
    nc_buf_puts(&c->out, "\r\n");
    if (!head && r->body.len && !r->stream)
        nc_buf_append(&c->out, r->body.data, r->body.len);
    conn_flush(c, close_after);
}

/* Writes what the stream has queued as one chunk, the last chunk once it
 * has ended, or asks the producer for more. */
static void stream_flush(struct conn *c)
{
    struct http_stream *s = c->stream;
    if (c->writing || c->closing)
        return;
    if (s->on_data && s->pending.len) {
        nc_buf_append(&c->out, s->pending.data, s->pending.len);
        s->pending.len = 0;
        conn_flush(c, false);
    } else if (s->on_data && s->ended) {
        if (c->tls)
            conn_flush(c, true); /* a close_notify first */
        else
            conn_close(c);
    } else if (s->pending.len) {
        nc_buf_printf(&c->out, "%zx\r\n", s->pending.len);
        nc_buf_append(&c->out, s->pending.data, s->pending.len);
        nc_buf_puts(&c->out, "\r\n");
        s->pending.len = 0;
        conn_flush(c, false);
    } else if (s->ended) {
        nc_buf_puts(&c->out, "0\r\n\r\n");
        conn_flush(c, true);
    } else if (s->on_drain) {
        s->on_drain(s->arg);
    }
}

/* The client is gone (or the server stops): tell the producer once. */
static void stream_gone(struct conn *c)
{
    struct http_stream *s = c->stream;
    if (!s || s->gone)
        return;
    s->gone = true;
    s->c = NULL;
    if (!s->ended && s->on_closed)
        s->on_closed(s->arg);
}

static void send_error(struct conn *c, int status, const char *msg)
{
    struct http_response r = {0};
    http_response_error(&r, status, "%s", msg);
    write_response(c, &r, false, true);
    kv_free(&r.headers);
    nc_buf_free(&r.body);
}

/* ---- request parsing ------------------------------------------------------ */

static int fail_with(struct conn *c, int status, const char *text)
{
    c->error_status = status;
    c->error_text = text;
    return -1;
}

static int count_header(struct conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->cfg->max_header_bytes)
        return fail_with(c, 431, "request headers too large");
    return 0;
}

static void reset_request(struct conn *c)
{
    c->url.len = c->body.len = c->hname.len = c->hval.len = 0;
    kv_free(&c->headers);
    c->header_bytes = 0;
    c->in_value = c->in_request = c->complete = false;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    reset_request(c);
    c->in_request = true;
    if (c->srv)
        uv_timer_start(&c->timer, on_timer, c->cfg->request_timeout_ms, 0);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    nc_buf_append(&c->url, at, n);
    return count_header(c, n);
}

static void end_header(struct conn *c)
{
    if (c->in_value) {
        for (char *s = c->hname.data; s && *s; s++)
            *s = (char)tolower((unsigned char)*s);
        kv_set(&c->headers, c->hname.data ? c->hname.data : "",
               c->hval.data ? c->hval.data : "");
        c->hname.len = c->hval.len = 0;
        if (c->hname.data)
            c->hname.data[0] = '\0';
        if (c->hval.data)
            c->hval.data[0] = '\0';
        c->in_value = false;
    }
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    end_header(c);
    nc_buf_append(&c->hname, at, n);
    return count_header(c, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    c->in_value = true;
    nc_buf_append(&c->hval, at, n);
    if (!c->hval.data)
        nc_buf_puts(&c->hval, "");
    return count_header(c, n);
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    end_header(c);
    if ((p->flags & F_CONTENTLENGTH) &&
        p->content_length > (uint64_t)c->cfg->max_body_bytes)
        return fail_with(c, 413, "request body too large");
    const char *expect = kv_get(&c->headers, "expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 && c->srv) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_send_extra(c, cont, sizeof(cont) - 1);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    if (c->body.len + n > c->cfg->max_body_bytes)
        return fail_with(c, 413, "request body too large");
    nc_buf_append(&c->body, at, n);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    c->complete = true;
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Percent-decoding; '+' as space when `plus`. Returns false on a NUL. */
static bool url_decode(const char *s, size_t n, bool plus, struct nc_buf *out)
{
    out->len = 0;
    nc_buf_puts(out, "");
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = {s[i + 1], s[i + 2], 0};
            ch = (char)strtol(hex, NULL, 16);
            i += 2;
        } else if (ch == '+' && plus) {
            ch = ' ';
        }
        if (ch == '\0')
            return false;
        nc_buf_putc(out, ch);
    }
    return true;
}

static void handle_request(struct conn *c)
{
    uint64_t t0 = nc_now_mono_ns();
    struct http_request req = {0};
    struct http_response resp = {.status = 200};
    struct nc_buf path = {0}, key = {0}, val = {0};
    const char *url = c->url.data ? c->url.data : "";
    const char *q = strchr(url, '?');
    size_t plen = q ? (size_t)(q - url) : strlen(url);
    bool head = c->parser.method == HTTP_HEAD;
    bool keep = http_should_keep_alive(&c->parser) && !c->closing;
    if (!url_decode(url, plen, false, &path)) {
        send_error(c, 400, "bad request: NUL in path");
        goto out;
    }
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t kn = eq ? (size_t)(eq - p) : n;
        if (kn && url_decode(p, kn, true, &key) &&
            url_decode(eq ? eq + 1 : "", eq ? n - kn - 1 : 0, true, &val))
            kv_set(&req.query, key.data, val.data);
        p = amp ? amp + 1 : NULL;
    }
    req.method = http_method_str(c->parser.method);
    req.path = path.data;
    req.raw_url = url;
    req.headers = c->headers;
    req.body = c->body.data ? c->body.data : "";
    req.body_len = c->body.len;
    req.remote_addr = c->remote;
    const char *pretty = kv_get(&req.query, "pretty");
    resp.pretty = pretty && strcmp(pretty, "false") != 0 && strcmp(pretty, "0") != 0;
    c->handler(c->ctx, &req, &resp);
    if (resp.stream && (head || !c->srv)) {
        /* no body to stream: end it at once */
        write_response(c, &resp, head, !keep);
        c->stream = resp.stream;
        stream_gone(c);
        c->stream = NULL;
        nc_buf_free(&resp.stream->pending);
        free(resp.stream);
    } else if (resp.stream) {
        /* a stream ends with the connection: nothing is parsed after it */
        uv_timer_stop(&c->timer);
        write_response(c, &resp, false, false);
        c->stream = resp.stream;
        c->stream->c = c;
        /* what the client sent after the upgrade request is the new
         * protocol's; conn_process hands it over */
    } else {
        write_response(c, &resp, head, !keep);
    }
    LOG_DEBUG("http", "%s %s -> %d in %llu us", req.method, url, resp.status,
              (unsigned long long)((nc_now_mono_ns() - t0) / 1000));
out:
    kv_free(&req.query);
    kv_free(&resp.headers);
    nc_buf_free(&resp.body);
    nc_buf_free(&path);
    nc_buf_free(&key);
    nc_buf_free(&val);
}

/* Parses buffered input and answers complete requests, one at a time:
 * while a response is being written nothing more is parsed or read. */
static void conn_process(struct conn *c)
{
    while (!c->writing && !c->closing && !c->stream && c->in_off < c->in.len) {
        size_t avail = c->in.len - c->in_off;
        size_t used = http_parser_execute(&c->parser, &settings,
                                          c->in.data + c->in_off, avail);
        c->in_off += used;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (c->error_status) {
            send_error(c, c->error_status, c->error_text);
            break;
        }
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
        } else if (e != HPE_OK) {
            char msg[160];
            snprintf(msg, sizeof(msg), "bad request: %s",
                     http_errno_description(e));
            send_error(c, 400, msg);
            break;
        }
        if (c->complete) {
            if (c->srv)
                uv_timer_stop(&c->timer);
            handle_request(c);
            reset_request(c);
        } else if (used == 0) {
            break;
        }
    }
    if (c->in_off == c->in.len) {
        c->in.len = c->in_off = 0;
    }
    if (!c->srv || c->closing)
        return;
    if (c->stream && c->stream->on_data) {
        upgraded_deliver(c);
        return;
    }
    if (c->writing && !c->stream) {
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
        }
        return;
    }
    if (!c->in_request && !c->stream)
        uv_timer_start(&c->timer, on_timer, c->cfg->idle_timeout_ms, 0);
    if (!c->reading) {
        c->reading = true;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

/* ---- sockets --------------------------------------------------------------- */

static void conn_free(struct conn *c)
{
    reset_request(c);
    nc_buf_free(&c->url);
    nc_buf_free(&c->body);
    nc_buf_free(&c->hname);
    nc_buf_free(&c->hval);
    nc_buf_free(&c->in);
    nc_buf_free(&c->out);
    nc_buf_free(&c->raw);
    tls_conn_free(c->tls);
    if (c->stream) {
        nc_buf_free(&c->stream->pending);
        free(c->stream);
    }
    free(c);
}

static void server_handle_closed(struct http_server *s)
{
    if (--s->open_handles == 0 && s->stopping) {
        void (*cb)(void *) = s->on_closed;
        void *arg = s->closed_arg;
        tls_ctx_free(s->tls);
        free(s);
        if (cb)
            cb(arg);
    }
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles > 0)
        return;
    struct http_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    conn_free(c);
    server_handle_closed(s);
}

static void conn_close(struct conn *c)
{
    c->closing = true;
    stream_gone(c);
    if (!c->srv || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    /* wait for an in-flight write: its callback closes */
    if (c->writing)
        return;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

/* An upgraded connection: hands what came in to the stream's owner
 * (unless it paused input), and reads on while it wants more. */
static void upgraded_deliver(struct conn *c)
{
    struct http_stream *s = c->stream;
    if (s->ended)
        c->in.len = c->in_off = 0; /* the owner is done: read to the close */
    while (!c->closing && !s->input_paused && c->in_off < c->in.len) {
        /* the owner may pause or end from within: hand over one copy */
        size_t n = c->in.len - c->in_off;
        char *copy = xmalloc(n);
        memcpy(copy, c->in.data + c->in_off, n);
        c->in.len = c->in_off = 0;
        s->on_data(s->arg, copy, n);
        free(copy);
    }
    if (c->in_off == c->in.len)
        c->in.len = c->in_off = 0;
    if (c->closing || s->input_paused || c->reading)
        return;
    c->reading = true;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    size_t want = 16384;
    struct nc_buf *b = c->tls ? &c->raw : &c->in;
    nc_grow((void **)&b->data, &b->cap, b->len + want + 1, 1);
    buf->base = b->data + b->len;
    buf->len = want;
}

/* HTTPS: decrypts what came in onto c->in. Returns false when the
 * connection is done (closed here). */
static bool tls_receive(struct conn *c, size_t n)
{
    tls_conn_feed(c->tls, c->raw.data, n);
    c->raw.len = 0;
    if (!c->handshaken) {
        int r = tls_conn_handshake(c->tls);
        if (!tls_send_output(c, false))
            return false;
        if (r == -EAGAIN)
            return true; /* the handshake timer still runs */
        if (r < 0) {
            LOG_DEBUG("http", "TLS handshake with %s: %s", c->remote,
                      tls_conn_error(c->tls));
            conn_close(c);
            return false;
        }
        c->handshaken = true;
    }
    for (;;) {
        nc_grow((void **)&c->in.data, &c->in.cap, c->in.len + 16384 + 1, 1);
        long got = tls_conn_read(c->tls, c->in.data + c->in.len, 16384);
        if (got == -EAGAIN)
            break;
        if (got <= 0) {
            if (got < 0)
                LOG_DEBUG("http", "TLS from %s: %s", c->remote,
                          tls_conn_error(c->tls));
            conn_close(c);
            return false;
        }
        c->in.len += (size_t)got;
    }
    return tls_send_output(c, false);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    if (n < 0) {
        if (c->in_request && n == UV_EOF && c->parser.http_errno == HPE_OK) {
            /* peer closed mid-request: nothing to answer */
        }
        conn_close(c);
        return;
    }
    if (c->stream && !c->stream->on_data)
        return; /* only the client's close matters now */
    if (c->tls) {
        if (!tls_receive(c, (size_t)n) || !c->handshaken)
            return;
    } else {
        c->in.len += (size_t)n;
    }
    if (c->stream) {
        upgraded_deliver(c);
        return;
    }
    if (c->in.data)
        c->in.data[c->in.len] = '\0';
    conn_process(c);
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->in_request && !c->writing)
        send_error(c, 408, "request not received in time");
    else
        conn_close(c);
}

/* Nomad's connlimit: one client IP holds at most max_conns_per_client
 * connections; the next gets Nomad's 429 text (plain HTTP) or is closed at
 * once (HTTPS: answering would cost a handshake, which is what a flood
 * wants). Returns true when c was refused. */
static bool over_client_limit(struct http_server *s, struct conn *c)
{
    int limit = s->cfg.max_conns_per_client;
    if (limit <= 0 || !c->ip[0])
        return false;
    int n = 0;
    for (struct conn *o = s->conns; o; o = o->next)
        if (!o->closing && strcmp(o->ip, c->ip) == 0)
            n++;
    if (n <= limit)
        return false;
    static unsigned long refused;
    if (refused++ % 100 == 0)
        LOG_WARN("http", "too many concurrent connections from %s (limit "
                         "%d); refused %lu so far",
                 c->ip, limit, refused);
    if (!s->tls) {
        static const char msg[] =
            "HTTP/1.1 429 Too Many Requests\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 82\r\n"
            "Connection: close\r\n\r\n"
            "Your IP is issuing too many concurrent connections, please rate "
            "limit your calls\n";
        conn_send_extra(c, msg, sizeof(msg) - 1);
    }
    conn_close(c);
    return true;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    if (status < 0 || s->stopping)
        return;
    struct conn *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->cfg = &s->cfg;
    c->handler = s->handler;
    c->ctx = s->ctx;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    s->open_handles++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    if (s->nconns > s->cfg.max_connections) {
        LOG_WARN("http", "too many connections (%d); refusing one",
                 s->cfg.max_connections);
        if (s->tls)
            conn_close(c); /* a 429 would cost a handshake */
        else
            send_error(c, 503, "too many connections");
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        int port = 0;
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof(c->ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof(c->ip));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
        snprintf(c->remote, sizeof(c->remote), "%s:%d", c->ip, port);
    }
    if (over_client_limit(s, c))
        return;
    uv_tcp_nodelay(&c->tcp, 1);
    uint64_t first_timeout = s->cfg.idle_timeout_ms;
    if (s->tls) {
        c->tls = tls_conn_new(s->tls, NULL);
        first_timeout = s->cfg.handshake_timeout_ms;
    }
    c->reading = true;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    uv_timer_start(&c->timer, on_timer, first_timeout, 0);
}

static void on_listener_closed(uv_handle_t *h)
{
    server_handle_closed(h->data);
}

int http_server_start(struct http_server **out, uv_loop_t *loop,
                      const struct http_server_config *cfg,
                      http_handler_fn handler, void *ctx,
                      struct nc_error *err)
{
    struct http_server *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->cfg = *cfg;
    if (!s->cfg.max_header_bytes)
        s->cfg.max_header_bytes = defaults.max_header_bytes;
    if (!s->cfg.max_body_bytes)
        s->cfg.max_body_bytes = defaults.max_body_bytes;
    if (!s->cfg.idle_timeout_ms)
        s->cfg.idle_timeout_ms = defaults.idle_timeout_ms;
    if (!s->cfg.request_timeout_ms)
        s->cfg.request_timeout_ms = defaults.request_timeout_ms;
    if (!s->cfg.max_connections)
        s->cfg.max_connections = defaults.max_connections;
    if (!s->cfg.handshake_timeout_ms)
        s->cfg.handshake_timeout_ms = defaults.handshake_timeout_ms;
    s->tls = cfg->tls;
    s->cfg.tls = NULL;
    s->handler = handler;
    s->ctx = ctx;
    const char *bind = cfg->bind_addr ? cfg->bind_addr : "127.0.0.1";
    struct sockaddr_storage addr;
    int r = strchr(bind, ':')
                ? uv_ip6_addr(bind, cfg->port, (struct sockaddr_in6 *)&addr)
                : uv_ip4_addr(bind, cfg->port, (struct sockaddr_in *)&addr);
    if (r < 0) {
        tls_ctx_free(s->tls);
        free(s);
        return nc_error_set(err, r, "invalid bind address \"%s\"", bind);
    }
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->open_handles = 1;
    if ((r = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0)) < 0 ||
        (r = uv_listen((uv_stream_t *)&s->listener, 511, on_connection)) < 0) {
        nc_error_set(err, r, "listen on %s:%d: %s", bind, cfg->port,
                     uv_strerror(r));
        s->stopping = true;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return r;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    s->port = ntohs(bound.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *)&bound)->sin6_port
                        : ((struct sockaddr_in *)&bound)->sin_port);
    *out = s;
    return 0;
}

int http_server_port(const struct http_server *s) { return s ? s->port : 0; }

void http_server_set_tls(struct http_server *s, struct tls_ctx *tls)
{
    tls_ctx_free(s->tls);
    s->tls = tls;
}

void http_server_stop(struct http_server *s, void (*on_closed)(void *arg),
                      void *arg)
{
    if (!s || s->stopping)
        return;
    s->stopping = true;
    s->on_closed = on_closed;
    s->closed_arg = arg;
    for (struct conn *c = s->conns; c; c = c->next) {
        c->writing = false; /* libuv cancels pending writes on close */
        conn_close(c);
    }
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

int http_server_feed_for_test(const char *data, size_t len,
                              http_handler_fn handler, void *ctx,
                              struct nc_buf *out)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    c->cfg = &defaults;
    c->handler = handler;
    c->ctx = ctx;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    nc_buf_append(&c->in, data, len);
    conn_process(c);
    if (c->out.len)
        nc_buf_append(out, c->out.data, c->out.len);
    int r = c->closing ? -EPROTO : 0;
    conn_free(c);
    return r;
}
