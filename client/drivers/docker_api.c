/* drivers/docker_api.c - see docker_api.h. The transport is curl_uv (one
 * multi handle per client); this file turns the Engine's answers into
 * replies an operator can read, and parses its streams. */
#include "client/drivers/docker_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "client/curl_uv.h"

/* A stream's kept body is only an error's text: small. */
#define STREAM_ERROR_MAX_BODY ((size_t)64 << 10)
/* A dead TCP host must not hold a call with no timeout for curl's 300 s. */
#define CONNECT_TIMEOUT_MS 10000L

struct docker_api {
    uv_loop_t *loop;
    struct curl_uv *http;
    char *endpoint;  /* as given */
    char *unix_path; /* the socket, or NULL for tcp */
    char *base_url;  /* "http://localhost/v1.41", "http://h:p/v1.41" */
    struct docker_call *calls;
    size_t ncalls;
};

struct docker_call {
    struct docker_api *api;
    struct curl_uv_xfer *xfer;
    docker_done_fn done;
    void *arg;
    long timeout_ms;
    size_t max_body; /* the answer kept, for the message when over */
    struct docker_call *prev, *next;
    char what[]; /* "POST /containers/create", for messages */
};

/* The reply with what only this file reads (docker_call_sync). */
struct reply_full {
    struct docker_reply pub;
    bool complete; /* an HTTP answer came whole */
    int os_errno;
};

/* ---- the endpoint ---- */

static bool host_char_ok(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
}

/* "host:port" or "[v6]:port" into "host:port" for a URL; 0 or -EINVAL. */
static int parse_tcp(const char *hp, char **authority)
{
    const char *colon;
    if (*hp == '[') {
        const char *close = strchr(hp, ']');
        if (!close || close == hp + 1 || close[1] != ':')
            return -EINVAL;
        for (const char *q = hp + 1; q < close; q++)
            if (!strchr("0123456789abcdefABCDEF:.", *q))
                return -EINVAL;
        colon = close + 1;
    } else {
        colon = strrchr(hp, ':');
        if (!colon || colon == hp)
            return -EINVAL;
        for (const char *q = hp; q < colon; q++)
            if (!host_char_ok(*q))
                return -EINVAL;
    }
    const char *port = colon + 1;
    size_t nd = strspn(port, "0123456789");
    if (nd == 0 || nd > 5 || port[nd] || atoi(port) < 1 || atoi(port) > 65535)
        return -EINVAL;
    *authority = xstrdup(hp);
    return 0;
}

int docker_api_open(struct docker_api **out, uv_loop_t *loop,
                    const char *endpoint, struct nc_error *err)
{
    *out = NULL;
    if (!endpoint || !*endpoint)
        endpoint = DOCKER_DEFAULT_ENDPOINT;
    char *unix_path = NULL, *authority = NULL;
    if (nc_str_has_prefix(endpoint, "unix://")) {
        const char *path = endpoint + strlen("unix://");
        if (*path != '/')
            return nc_error_set(err, -EINVAL,
                                "Docker endpoint \"%s\": the socket path "
                                "must be absolute (unix:///var/run/"
                                "docker.sock)",
                                endpoint);
        if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return nc_error_set(
                err, -EINVAL,
                "Docker endpoint \"%s\": the socket path "
                "is longer than %zu bytes",
                endpoint, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        unix_path = xstrdup(path);
    } else if (nc_str_has_prefix(endpoint, "tcp://")) {
        if (parse_tcp(endpoint + strlen("tcp://"), &authority) < 0)
            return nc_error_set(err, -EINVAL,
                                "Docker endpoint \"%s\": expected "
                                "tcp://host:port",
                                endpoint);
    } else {
        return nc_error_set(err, -EINVAL,
                            "Docker endpoint \"%s\" is not supported: use "
                            "unix:///path/to/docker.sock or tcp://host:port",
                            endpoint);
    }
    struct curl_uv *http = NULL;
    int r = curl_uv_open(&http, loop, err);
    if (r < 0) {
        free(unix_path);
        free(authority);
        return r;
    }
    struct docker_api *api = xcalloc(1, sizeof(*api));
    api->loop = loop;
    api->http = http;
    api->endpoint = xstrdup(endpoint);
    api->unix_path = unix_path;
    api->base_url = xasprintf("http://%s/" DOCKER_API_VERSION,
                              authority ? authority : "localhost");
    free(authority);
    *out = api;
    return 0;
}

const char *docker_api_endpoint(const struct docker_api *api)
{
    return api ? api->endpoint : NULL;
}

size_t docker_api_in_flight(const struct docker_api *api)
{
    return api ? api->ncalls : 0;
}

static void call_unlink(struct docker_api *api, struct docker_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        api->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    api->ncalls--;
}

void docker_api_close(struct docker_api *api)
{
    if (!api)
        return;
    while (api->calls) {
        struct docker_call *c = api->calls;
        call_unlink(api, c);
        free(c); /* curl_uv_close drops its transfer, no callback */
    }
    curl_uv_close(api->http, NULL, NULL);
    free(api->endpoint);
    free(api->unix_path);
    free(api->base_url);
    free(api);
}

/* ---- replies ---- */

static void format_ms(long ms, char *out, size_t outlen)
{
    nc_format_duration((int64_t)ms * 1000000, out, outlen);
}

/* The error of a reply (NULL on success) into msg. */
static const char *reply_error(const struct docker_call *c,
                               const struct curl_uv_response *r,
                               const json_t *json, char *msg, size_t msglen)
{
    const char *ep = c->api->endpoint;
    bool ok2xx = r->status >= 200 && r->status <= 299;
    if (r->curl_code == 0 && ok2xx)
        return NULL;
    if (r->timed_out) {
        char d[32];
        if (r->idle) {
            snprintf(msg, msglen, "Docker API call %s timed out: %s", c->what,
                     r->error);
            return msg;
        }
        bool whole = c->timeout_ms > 0 &&
                     r->duration_ns / 1000000 + 5 >= (uint64_t)c->timeout_ms;
        if (r->status == 0 && !whole) {
            snprintf(msg, msglen,
                     "cannot connect to the Docker daemon at %s: %s", ep,
                     r->error);
            return msg;
        }
        format_ms(c->timeout_ms, d, sizeof(d));
        snprintf(msg, msglen, "Docker API call %s timed out after %s", c->what,
                 d);
        return msg;
    }
    if (r->status == 0) {
        if (r->curl_code == 7 /* CURLE_COULDNT_CONNECT */ ||
            r->curl_code == 6 /* CURLE_COULDNT_RESOLVE_HOST */)
            snprintf(msg, msglen,
                     "cannot connect to the Docker daemon at %s: %s", ep,
                     r->os_errno ? strerror(r->os_errno) : r->error);
        else if (r->curl_code == 52 /* CURLE_GOT_NOTHING */)
            snprintf(msg, msglen,
                     "Docker daemon at %s closed the connection without "
                     "answering %s",
                     ep, c->what);
        else
            snprintf(msg, msglen, "Docker API call %s failed: %s", c->what,
                     r->error && *r->error ? r->error : "no answer");
        return msg;
    }
    if (!ok2xx) {
        const json_t *m = json_object_get(json, "message");
        if (json_is_string(m) && json_string_length(m)) {
            snprintf(msg, msglen, "%s", json_string_value(m));
            return msg;
        }
        if (json || (r->body_len == 0 && r->curl_code == 0)) {
            snprintf(msg, msglen,
                     "Docker daemon answered %ld to %s with no message",
                     r->status, c->what);
            return msg;
        }
        if (r->curl_code == 0) {
            snprintf(msg, msglen,
                     "Docker daemon answered %ld with a body that is not "
                     "JSON",
                     r->status);
            return msg;
        }
    }
    /* a status came, then the answer broke */
    if (r->truncated)
        snprintf(msg, msglen,
                 "Docker daemon closed the connection in the middle of its "
                 "answer to %s (HTTP %ld)",
                 c->what, r->status);
    else if (r->capped)
        snprintf(msg, msglen,
                 "Docker daemon's answer to %s is longer than %zu bytes",
                 c->what, c->max_body);
    else
        snprintf(msg, msglen, "Docker API call %s failed: %s", c->what,
                 r->error);
    return msg;
}

static void on_answer(void *arg, const struct curl_uv_response *r)
{
    struct docker_call *c = arg;
    struct docker_api *api = c->api;
    call_unlink(api, c);
    json_t *json = NULL;
    if (r->body_len && !r->capped) {
        json_error_t jerr;
        json = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, &jerr);
    }
    char msg[1024];
    struct reply_full full = {
        .pub =
            {
                .status = r->status,
                .json = json,
                .body = r->body,
                .body_len = r->body_len,
                .timed_out = r->timed_out,
                .duration_ns = r->duration_ns,
            },
        .complete = r->curl_code == 0 && r->status != 0,
        .os_errno = r->os_errno,
    };
    full.pub.error = reply_error(c, r, json, msg, sizeof(msg));
    docker_done_fn done = c->done;
    void *done_arg = c->arg;
    char what[256];
    snprintf(what, sizeof(what), "%s", c->what);
    full.pub.what = what;
    free(c);
    done(done_arg, &full.pub); /* may close api: not touched after */
    json_decref(json);
}

/* ---- calls ---- */

static bool path_ok(const char *p)
{
    if (!p || *p != '/')
        return false;
    for (; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool method_ok(const char *m)
{
    if (!*m || strlen(m) > 16)
        return false;
    for (; *m; m++)
        if (*m < 'A' || *m > 'Z')
            return false;
    return true;
}

int docker_call(struct docker_api *api, const struct docker_call_opts *o,
                docker_done_fn done, void *arg, struct docker_call **out)
{
    if (out)
        *out = NULL;
    const char *method = o && o->method ? o->method : "GET";
    if (!api || !o || !done || !path_ok(o->path) || !method_ok(method) ||
        (o->body && o->body_file))
        return -EINVAL;
    size_t nh = 0;
    for (; o->headers && o->headers[nh]; nh++)
        if (strpbrk(o->headers[nh], "\r\n"))
            return -EINVAL;
    char *body = NULL;
    if (o->body && !(body = json_dumps(o->body, JSON_COMPACT)))
        return -EINVAL;
    const char *query = strchr(o->path, '?');
    size_t plen = query ? (size_t)(query - o->path) : strlen(o->path);
    size_t wlen = strlen(method) + 1 + plen;
    struct docker_call *c = xcalloc(1, sizeof(*c) + wlen + 1);
    snprintf(c->what, wlen + 1, "%s %.*s", method, (int)plen, o->path);
    c->api = api;
    c->done = done;
    c->arg = arg;
    c->timeout_ms = o->timeout_ms;
    c->max_body = o->on_data ? STREAM_ERROR_MAX_BODY : CURL_UV_MAX_BODY;

    const char **hdrs = xcalloc(nh + 3, sizeof(*hdrs));
    size_t k = 0;
    hdrs[k++] = "User-Agent: nomclient";
    if (body)
        hdrs[k++] = "Content-Type: application/json";
    else if (o->body_file)
        hdrs[k++] = "Content-Type: application/x-tar";
    for (size_t i = 0; i < nh; i++)
        hdrs[k++] = o->headers[i];
    char *url = xasprintf("%s%s", api->base_url, o->path);
    struct curl_uv_request req = {
        .method = method,
        .url = url,
        .unix_socket = api->unix_path,
        .headers = hdrs,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = o->timeout_ms,
        .connect_timeout_ms = CONNECT_TIMEOUT_MS,
        .max_body = c->max_body,
        .protocols = "http",
        .on_data = o->on_data,
        .data_arg = o->data_arg,
        .body_file = o->body_file,
        .idle_timeout_ms = o->idle_timeout_ms,
    };
    int r = curl_uv_start(api->http, &req, on_answer, c, &c->xfer);
    free(url);
    free(hdrs);
    free(body);
    if (r < 0) {
        free(c);
        return r;
    }
    c->next = api->calls;
    if (api->calls)
        api->calls->prev = c;
    api->calls = c;
    api->ncalls++;
    if (out)
        *out = c;
    return 0;
}

void docker_call_cancel(struct docker_api *api, struct docker_call *c)
{
    if (!api || !c)
        return;
    call_unlink(api, c);
    curl_uv_cancel(api->http, c->xfer);
    free(c);
}

/* ---- blocking ---- */

struct sync_call {
    uv_loop_t *loop;
    bool done;
    long status;
    json_t *json;
    bool complete, timed_out;
    int os_errno;
    char *error;
};

static void sync_done(void *arg, const struct docker_reply *r)
{
    struct sync_call *s = arg;
    const struct reply_full *full = (const struct reply_full *)r;
    s->done = true;
    s->status = r->status;
    s->json = r->json ? json_incref((json_t *)r->json) : NULL;
    s->complete = full->complete;
    s->timed_out = r->timed_out;
    s->os_errno = full->os_errno;
    s->error = xstrdup(r->error);
    uv_stop(s->loop);
}

int docker_call_sync(const char *endpoint, const char *method, const char *path,
                     const json_t *body, long timeout_ms, long *status,
                     json_t **json, struct nc_error *err)
{
    if (status)
        *status = 0;
    if (json)
        *json = NULL;
    uv_loop_t loop;
    int r = uv_loop_init(&loop);
    if (r < 0)
        return nc_error_set(err, r, "uv_loop_init: %s", uv_strerror(r));
    struct docker_api *api = NULL;
    r = docker_api_open(&api, &loop, endpoint, err);
    struct sync_call s = {.loop = &loop};
    if (r == 0) {
        struct docker_call_opts o = {
            .method = method,
            .path = path,
            .body = body,
            .timeout_ms = timeout_ms,
        };
        r = docker_call(api, &o, sync_done, &s, NULL);
        if (r < 0)
            nc_error_set(err, r, "Docker API call %s %s: %s",
                         method ? method : "GET", path ? path : "(null)",
                         strerror(-r));
        /* uv_stop in sync_done; nothing left to run without an answer
         * would be a bug below, not a reason to spin */
        while (r == 0 && !s.done)
            if (!uv_run(&loop, UV_RUN_DEFAULT) && !s.done)
                r = nc_error_set(err, -EIO,
                                 "Docker API call %s %s: no "
                                 "answer and nothing left to wait for",
                                 method ? method : "GET", path);
        docker_api_close(api);
        uv_run(&loop, UV_RUN_DEFAULT); /* the handles' close callbacks */
    }
    uv_loop_close(&loop);
    if (r < 0)
        return r;
    if (s.complete) {
        if (status)
            *status = s.status;
        if (json)
            *json = s.json;
        else
            json_decref(s.json);
        if (s.error)
            nc_error_set(err, 0, "%s", s.error);
        free(s.error);
        return 0;
    }
    json_decref(s.json);
    r = s.timed_out ? -ETIMEDOUT : s.os_errno ? -s.os_errno : -EIO;
    nc_error_set(err, r, "%s", s.error ? s.error : "no answer");
    free(s.error);
    return r;
}

/* ---- small pure helpers ---- */

char *docker_query_escape(const char *s)
{
    if (!s)
        return NULL;
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = xmalloc(3 * n + 1), *o = out;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
            ch == '~') {
            *o++ = (char)ch;
        } else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    *o = '\0';
    return out;
}

uint64_t docker_timing_add(json_t *calls, const struct docker_reply *r)
{
    if (!calls || !r)
        return 0;
    uint64_t us = r->duration_ns / 1000;
    const char *w = r->what ? r->what : "";
    struct nc_buf b = {0};
    const char *seg = NULL;
    if ((seg = strstr(w, " /containers/")))
        seg += strlen(" /containers/");
    else if ((seg = strstr(w, " /images/")))
        seg += strlen(" /images/");
    size_t seglen = seg ? strcspn(seg, "/") : 0;
    if (seg && seglen && strncmp(seg, "create", seglen) != 0 &&
        strncmp(seg, "load", seglen) != 0)
        nc_buf_printf(&b, "%.*s{id}%s", (int)(seg - w), w, seg + seglen);
    else
        nc_buf_printf(&b, "%s", w);
    char *label = nc_buf_take(&b);
    json_array_append_new(calls, json_pack("{s:s, s:I}", "Call", label ? label : "",
                                           "Us", (json_int_t)us));
    free(label);
    return us;
}

bool docker_reply_unreachable(const struct docker_reply *r)
{
    return r && r->status == 0 && r->error;
}

/* ---- the multiplexed stream ---- */

int docker_demux_feed(struct docker_demux *d, const char *p, size_t n,
                      void (*out)(void *arg, int stream, const char *p,
                                  size_t n),
                      void *arg)
{
    if (d->stream < 0)
        return -EPROTO;
    while (n) {
        if (d->left) {
            size_t take = n < d->left ? n : d->left;
            out(arg, d->stream, p, take);
            d->left -= (uint32_t)take;
            p += take;
            n -= take;
            continue;
        }
        size_t take = 8 - d->have;
        if (take > n)
            take = n;
        memcpy(d->hdr + d->have, p, take);
        d->have += take;
        p += take;
        n -= take;
        if (d->have < 8)
            break;
        d->have = 0;
        const unsigned char *h = d->hdr;
        if (h[0] > 3 || h[1] || h[2] || h[3]) {
            d->stream = -1;
            return -EPROTO;
        }
        d->stream = h[0] ? h[0] : 1;
        d->left = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 |
                  (uint32_t)h[6] << 8 | h[7];
    }
    return 0;
}

/* ---- the progress stream ---- */

/* A printable excerpt of hostile bytes for a message. */
static void excerpt(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < outlen; i++)
        out[o++] = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f ? s[i] : '?';
    if (o + 4 < outlen && n > o)
        o += (size_t)snprintf(out + o, outlen - o, "...");
    out[o] = '\0';
}

static int progress_fail(struct docker_progress *p, int code, char *msg)
{
    p->failed = code;
    if (!p->error)
        p->error = msg;
    else
        free(msg);
    return code;
}

static int progress_line(struct docker_progress *p, const char *s, size_t n,
                         void (*fn)(void *arg, const json_t *obj), void *arg)
{
    while (n && strchr(" \t\r\n", s[n - 1]))
        n--;
    while (n && strchr(" \t\r\n", *s))
        s++, n--;
    if (!n)
        return 0;
    json_error_t jerr;
    json_t *obj = json_loadb(s, n, 0, &jerr);
    if (!json_is_object(obj)) {
        json_decref(obj);
        char ex[64];
        excerpt(s, n, ex, sizeof(ex));
        return progress_fail(
            p, -EPROTO,
            xasprintf("Docker daemon sent a progress line that is not a JSON "
                      "object: %s",
                      ex));
    }
    const json_t *detail = json_object_get(obj, "errorDetail");
    const json_t *err = json_object_get(obj, "error");
    if (!p->error && (detail || err)) {
        const json_t *m = json_object_get(detail, "message");
        if (json_is_string(m) && json_string_length(m))
            p->error = xstrdup(json_string_value(m));
        else if (json_is_string(err) && json_string_length(err))
            p->error = xstrdup(json_string_value(err));
        else
            p->error = xstrdup("Docker daemon reported an error without a "
                               "message");
    }
    if (fn)
        fn(arg, obj);
    json_decref(obj);
    return 0;
}

static int progress_too_long(struct docker_progress *p)
{
    return progress_fail(
        p, -EMSGSIZE,
        xasprintf("Docker daemon sent a progress line longer than %d bytes",
                  DOCKER_PROGRESS_MAX_LINE));
}

int docker_progress_feed(struct docker_progress *p, const char *data, size_t n,
                         void (*fn)(void *arg, const json_t *obj), void *arg)
{
    if (p->failed)
        return p->failed;
    if (n == 0) { /* the end: a last line without its newline */
        int r = progress_line(p, p->buf, p->len, fn, arg);
        p->len = 0;
        return r;
    }
    while (n) {
        const char *nl = memchr(data, '\n', n);
        size_t k = nl ? (size_t)(nl - data) : n;
        if (p->len + k > DOCKER_PROGRESS_MAX_LINE)
            return progress_too_long(p);
        if (!nl || p->len) { /* a line across pieces: kept until whole */
            nc_grow((void **)&p->buf, &p->cap, p->len + k + 1, 1);
            memcpy(p->buf + p->len, data, k);
            p->len += k;
            p->buf[p->len] = '\0';
        }
        if (!nl)
            return 0;
        int r = p->len ? progress_line(p, p->buf, p->len, fn, arg)
                       : progress_line(p, data, k, fn, arg);
        p->len = 0;
        if (r < 0)
            return r;
        data = nl + 1;
        n -= k + 1;
    }
    return 0;
}

void docker_progress_free(struct docker_progress *p)
{
    if (!p)
        return;
    free(p->buf);
    p->buf = NULL;
    p->len = p->cap = 0;
}

/* ---- X-Registry-Auth ---- */

/* A JSON string as Go's encoding/json writes it (<, > and & escaped). */
static void json_go_string(struct nc_buf *b, const char *s)
{
    nc_buf_putc(b, '"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            nc_buf_putc(b, '\\');
            nc_buf_putc(b, (char)ch);
        } else if (ch == '\n') {
            nc_buf_puts(b, "\\n");
        } else if (ch == '\r') {
            nc_buf_puts(b, "\\r");
        } else if (ch == '\t') {
            nc_buf_puts(b, "\\t");
        } else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
            nc_buf_printf(b, "\\u%04x", ch);
        } else {
            nc_buf_putc(b, (char)ch);
        }
    }
    nc_buf_putc(b, '"');
}

char *docker_registry_auth(const char *username, const char *password,
                           const char *email, const char *server)
{
    const char *keys[] = {"username", "password", "email", "serveraddress"};
    const char *vals[] = {username, password, email, server};
    struct nc_buf j = {0};
    nc_buf_putc(&j, '{');
    bool first = true;
    for (size_t i = 0; i < NC_ARRAY_LEN(keys); i++) {
        if (!vals[i] || !*vals[i])
            continue;
        if (!first)
            nc_buf_putc(&j, ',');
        first = false;
        nc_buf_printf(&j, "\"%s\":", keys[i]);
        json_go_string(&j, vals[i]);
    }
    nc_buf_putc(&j, '}');
    char *out = nc_base64_encode(j.data, j.len, true);
    nc_buf_free(&j);
    return out;
}
