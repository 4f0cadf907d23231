/* probe_https.c - the HTTPS probe, through client/curl_uv.h: one libcurl
 * multi handle per engine (e->curl), opened by the first HTTPS probe
 * (libcurl is dlopen'd then, never linked), and one request per probe on a
 * fresh connection. curl_uv is a shared utility of the client, as util.h
 * is (checks.h includes "client/util.h" the same way); only this file
 * calls it.
 *
 * As the plain probe (probe_http.c): the same header lines, built once per
 * definition; at most CHK_OUTPUT_MAX body bytes, after which the status
 * decides; redirects followed by hand, back to the same target only, at
 * most CHK_MAX_REDIRECTS, every hop within the probe's one deadline. At
 * the deadline the transfer is expired (curl_uv_expire): a status already
 * read still decides, as Consul's. Every probe is a new curl request, so
 * no TLS session is resumed: each does a full handshake and verifies the
 * certificate, as Consul's Go client does. */
#include "checks/checks_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/curl_uv.h" /* shared client utility, as client/util.h */

#define BACKSTOP_MS 1000

struct chk_https {
    struct curl_uv_xfer *xfer; /* the transfer in flight, or NULL */
    const char **headers;      /* into `lines`, NULL-terminated */
    struct nc_buf lines;       /* every header line, NUL after each */
};

static void add_line(void *arg, const char *name, const char *value)
{
    struct nc_buf *b = arg;
    /* "Name;" is how curl sends a header with an empty value */
    if (*value)
        nc_buf_printf(b, "%s: %s", name, value);
    else
        nc_buf_printf(b, "%s;", name);
    nc_buf_append(b, "", 1);
}

/* The check's per-definition state: released on update and free. */
static struct chk_https *https_state(struct chk *c)
{
    if (c->https)
        return c->https;
    struct chk_https *h = xcalloc(1, sizeof(*h));
    chk_http_header_lines(c, add_line, &h->lines);
    size_t n = 0;
    for (size_t i = 0; i < h->lines.len; i++)
        n += h->lines.data[i] == '\0';
    h->headers = xcalloc(n + 1, sizeof(*h->headers));
    const char *p = h->lines.data;
    for (size_t i = 0; i < n; p += strlen(p) + 1)
        h->headers[i++] = p;
    c->https = h;
    return h;
}

static void on_curl_closed(void *arg)
{
    chk_engine_handle_closed(arg);
}

void chk_curl_engine_close(struct chk_engine *e)
{
    struct curl_uv *m = e->curl;
    if (!m)
        return;
    e->curl = NULL;
    /* every transfer was cancelled by the checks' abort; what curl_uv
     * still closes (its sockets, its timer) is its own state, freed
     * before on_curl_closed releases the engine */
    curl_uv_close(m, on_curl_closed, e);
}

/* The engine's multi handle, opened on first use; NULL and why not. */
struct curl_uv *chk_engine_curl(struct chk_engine *e, struct nc_error *err)
{
    if (e->curl)
        return e->curl;
    if (!curl_uv_available(err->msg, sizeof(err->msg)) ||
        curl_uv_open(&e->curl, e->loop, err) < 0)
        return NULL;
    e->open_handles++; /* until on_curl_closed */
    return e->curl;
}

static void https_done(void *arg, const struct curl_uv_response *r);

/* Starts one hop. The probe's one deadline, whatever hop this is, is the
 * engine's (https_expire); curl's own timeout is a backstop behind it. */
static int https_request(struct chk *c, const char *method, const char *url,
                         bool with_body)
{
    const struct chk_def *d = &c->def;
    uint64_t now = uv_now(c->e->loop);
    struct curl_uv_tls tls = {.insecure = d->tls_skip_verify};
    struct curl_uv_request req = {
        .method = method,
        .url = url,
        .headers = c->https->headers,
        .body = with_body ? d->body : NULL,
        .body_len = with_body && d->body ? strlen(d->body) : 0,
        .tls = &tls,
        .timeout_ms = (long)(c->deadline_ms > now ? c->deadline_ms - now : 0) +
                      BACKSTOP_MS,
        .max_body = CHK_OUTPUT_MAX,
        .fresh_connect = true,
        .protocols = "https",
    };
    return curl_uv_start(c->e->curl, &req, https_done, c, &c->https->xfer);
}

static int https_start(struct chk *c)
{
    struct nc_error err = {0};
    if (!chk_engine_curl(c->e, &err)) {
        chk_probe_finishf(c, CHK_CRITICAL, 0, false,
                          "%sHTTPS checks need libcurl (Debian package "
                          "libcurl4): %s",
                          c->prefix, err.msg);
        return 0;
    }
    https_state(c);
    c->redirects = 0;
    return https_request(c, c->def.method, c->url, true);
}

/* Follows a 3xx back to the same target: true when the probe goes on (or
 * ended at the redirect limit). */
static bool https_follow(struct chk *c, const struct curl_uv_response *r)
{
    int code = (int)r->status;
    if (!r->redirect_url || !chk_redirect_path(c, r->redirect_url))
        return false;
    if (chk_redirect_limit(c, code))
        return true;
    c->redirects++;
    /* as Go's client: 307 and 308 repeat the request, body included */
    int rc = https_request(c, chk_redirect_method(c, code), r->redirect_url,
                           code == 307 || code == 308);
    if (rc < 0) {
        chk_output_begin(c);
        chk_net_format_error(c, "connect", rc, &c->output);
        chk_probe_finish(c, CHK_CRITICAL, 0, false);
    }
    return true;
}

static void https_done(void *arg, const struct curl_uv_response *r)
{
    struct chk *c = arg;
    c->https->xfer = NULL;
    if (r->curl_code == 0 && chk_http_is_redirect((int)r->status) &&
        https_follow(c, r))
        return;
    /* a status line was read: Consul judges by it even if the body then
     * failed (our own cap, a reset, the deadline) */
    if (r->status > 0 &&
        (r->curl_code == 0 || r->capped || r->timed_out || r->truncated)) {
        struct chk_http_state h = {.code = (int)r->status,
                                   .headers_done = true};
        size_t n = strlen(r->reason);
        if (n >= sizeof(h.reason))
            n = sizeof(h.reason) - 1;
        memcpy(h.reason, r->reason, n);
        h.reason_len = (uint8_t)n;
        const struct nc_buf body = {.data = (char *)r->body,
                                    .len = r->body_len};
        enum chk_status st =
            chk_http_conclude(&h, c->prefix, &body, &c->output);
        chk_probe_finish(c, st, h.code, false);
        return;
    }
    if (r->timed_out) {
        chk_output_timeout(c);
    } else {
        chk_output_begin(c);
        nc_buf_puts(&c->output, r->error);
    }
    chk_probe_finish(c, CHK_CRITICAL, 0, r->timed_out);
}

static void https_abort(struct chk *c)
{
    if (c->https && c->https->xfer) {
        curl_uv_cancel(c->e->curl, c->https->xfer);
        c->https->xfer = NULL;
    }
}

static void https_expire(struct chk *c)
{
    /* https_done runs from within: by the status if one was read, else
     * the timeout */
    struct curl_uv_xfer *x = c->https ? c->https->xfer : NULL;
    if (x) {
        c->https->xfer = NULL;
        curl_uv_expire(c->e->curl, x);
    }
}

static void https_release(struct chk *c)
{
    struct chk_https *h = c->https;
    if (!h)
        return;
    https_abort(c);
    free(h->headers);
    nc_buf_free(&h->lines);
    free(h);
    c->https = NULL;
}

const struct chk_probe_ops chk_https_ops = {
    .name = "https",
    .start = https_start,
    .abort = https_abort,
    .expire = https_expire,
    .release = https_release,
};
