/* probe_grpc.c - the gRPC probe: grpc.health.v1.Health/Check as Consul's
 * gRPC check asks it, one unary call per probe on a fresh HTTP/2
 * connection through the engine's libcurl multi handle (probe_https.c
 * opens it; libcurl is dlopen'd on first use): h2c with prior knowledge,
 * or h2 over TLS with grpc_use_tls (tls_skip_verify as for https).
 *
 * The wire format is small enough to make here: the request is one
 * length-prefixed message (flag byte, 4-byte big-endian length, then the
 * protobuf HealthCheckRequest {string service = 1}); the answer's body is
 * one such frame holding HealthCheckResponse {ServingStatus status = 1},
 * and the call's outcome is the grpc-status trailer (or header, for a
 * trailers-only answer). SERVING is passing; NOT_SERVING, UNKNOWN,
 * SERVICE_UNKNOWN, an error status, a transport error or the deadline are
 * critical. Outputs use Consul's words: "gRPC check <target>: success",
 * "gRPC <target> serving status: NOT_SERVING", "rpc error: code = ... desc
 * = ...". */
#include "checks/checks_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/curl_uv.h" /* shared client utility, as client/util.h */

#define BACKSTOP_MS 1000

struct chk_grpc {
    struct curl_uv_xfer *xfer; /* the call in flight, or NULL */
    char *url;                 /* http(s)://target/grpc.health.v1.Health/Check */
    struct nc_buf frame;       /* the request message, built once */
};

/* ---- the wire format ---- */

static void put_varint(struct nc_buf *b, uint64_t v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    nc_buf_append(b, tmp, n);
}

void chk_grpc_request_frame(const char *service, struct nc_buf *out)
{
    struct nc_buf msg = {0};
    size_t slen = service ? strlen(service) : 0;
    if (slen) { /* proto3: an empty string is not sent */
        nc_buf_append(&msg, "\x0a", 1);
        put_varint(&msg, slen);
        nc_buf_append(&msg, service, slen);
    }
    unsigned char hdr[5] = {0, (unsigned char)(msg.len >> 24),
                            (unsigned char)(msg.len >> 16),
                            (unsigned char)(msg.len >> 8),
                            (unsigned char)msg.len};
    out->len = 0;
    nc_buf_append(out, (const char *)hdr, sizeof(hdr));
    nc_buf_append(out, msg.data ? msg.data : "", msg.len);
    nc_buf_free(&msg);
}

static int get_varint(const unsigned char **p, const unsigned char *end,
                      uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*p >= end)
            return -EPROTO;
        unsigned char b = *(*p)++;
        if (shift == 63 && b > 1)
            return -EPROTO; /* more than 64 bits */
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -EPROTO;
}

int chk_grpc_parse_response(const unsigned char *body, size_t len,
                            uint64_t *serving, const char **why)
{
    *serving = CHK_GRPC_UNKNOWN;
    if (len == 0) {
        *why = "server sent no response message";
        return -EPROTO;
    }
    if (len < 5) {
        *why = "short message frame";
        return -EPROTO;
    }
    if (body[0] == 1) {
        *why = "compressed response messages are not supported";
        return -EPROTO;
    }
    if (body[0] != 0) {
        *why = "malformed message frame";
        return -EPROTO;
    }
    uint64_t mlen = (uint64_t)body[1] << 24 | (uint64_t)body[2] << 16 |
                    (uint64_t)body[3] << 8 | body[4];
    if (mlen > len - 5) {
        *why = "short message";
        return -EPROTO;
    }
    if (mlen < len - 5) {
        *why = "more than one response message";
        return -EPROTO;
    }
    const unsigned char *p = body + 5, *end = p + mlen;
    while (p < end) {
        uint64_t key, v;
        if (get_varint(&p, end, &key) < 0 || key >> 3 == 0)
            goto bad;
        switch (key & 7) {
        case 0:
            if (get_varint(&p, end, &v) < 0)
                goto bad;
            if (key >> 3 == 1)
                *serving = v;
            break;
        case 1:
            if ((size_t)(end - p) < 8)
                goto bad;
            p += 8;
            break;
        case 2:
            if (get_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
                goto bad;
            p += v;
            break;
        case 5:
            if ((size_t)(end - p) < 4)
                goto bad;
            p += 4;
            break;
        default:
            goto bad;
        }
    }
    return 0;
bad:
    *why = "malformed HealthCheckResponse";
    return -EPROTO;
}

static int hexval(unsigned char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

void chk_grpc_trailers(const char *lines, size_t len, int *code,
                       struct nc_buf *msg)
{
    *code = -1;
    const char *m = NULL;
    size_t mlen = 0;
    for (const char *l = lines, *end = lines + len; l < end;) {
        const char *nl = memchr(l, '\n', (size_t)(end - l));
        const char *le = nl ? nl : end;
        size_t n = (size_t)(le - l);
        if (n && l[n - 1] == '\r')
            n--;
        const char *colon = memchr(l, ':', n);
        if (colon) {
            size_t kl = (size_t)(colon - l);
            const char *v = colon + 1;
            while (v < l + n && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(l + n - v);
            if (kl == 11 && strncasecmp(l, "grpc-status", 11) == 0) {
                int c = 0;
                bool ok = vl > 0 && vl <= 3;
                for (size_t i = 0; ok && i < vl; i++) {
                    ok = v[i] >= '0' && v[i] <= '9';
                    c = c * 10 + (v[i] - '0');
                }
                *code = ok ? c : 2; /* garbage: Unknown */
            } else if (kl == 12 && strncasecmp(l, "grpc-message", 12) == 0) {
                m = v;
                mlen = vl;
            }
        }
        l = nl ? nl + 1 : end;
    }
    if (!m)
        return;
    unsigned char dec[1024];
    size_t dn = 0;
    for (size_t i = 0; i < mlen && dn < sizeof(dec); i++) {
        int hi, lo;
        if (m[i] == '%' && i + 2 < mlen &&
            (hi = hexval((unsigned char)m[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)m[i + 2])) >= 0) {
            dec[dn++] = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else {
            dec[dn++] = (unsigned char)m[i];
        }
    }
    chk_output_append_clean(msg, dec, dn);
}

const char *chk_grpc_serving_name(uint64_t v)
{
    static const char *const names[] = {"UNKNOWN", "SERVING", "NOT_SERVING",
                                        "SERVICE_UNKNOWN"};
    return v < NC_ARRAY_LEN(names) ? names[v] : NULL;
}

const char *chk_grpc_code_name(int code, char *buf, size_t len)
{
    static const char *const names[] = {
        "OK",           "Canceled",         "Unknown",
        "InvalidArgument", "DeadlineExceeded", "NotFound",
        "AlreadyExists", "PermissionDenied", "ResourceExhausted",
        "FailedPrecondition", "Aborted",    "OutOfRange",
        "Unimplemented", "Internal",         "Unavailable",
        "DataLoss",     "Unauthenticated"};
    if (code >= 0 && (size_t)code < NC_ARRAY_LEN(names))
        return names[code];
    snprintf(buf, len, "Code(%d)", code);
    return buf;
}

/* grpc-go's code for an HTTP status that is not 200 */
static int http_to_grpc_code(long status)
{
    switch (status) {
    case 400:
        return 13; /* Internal */
    case 401:
        return 16; /* Unauthenticated */
    case 403:
        return 7; /* PermissionDenied */
    case 404:
        return 12; /* Unimplemented */
    case 429:
    case 502:
    case 503:
    case 504:
        return 14; /* Unavailable */
    default:
        return 2; /* Unknown */
    }
}

static void rpc_error(struct nc_buf *out, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rpc_error(struct nc_buf *out, int code, const char *fmt, ...)
{
    char nb[32];
    nc_buf_printf(out, "rpc error: code = %s desc = ",
                  chk_grpc_code_name(code, nb, sizeof(nb)));
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(out, fmt, ap);
    va_end(ap);
}

enum chk_status chk_grpc_conclude(const char *target, long http_status,
                                  const char *lines, size_t lines_len,
                                  const unsigned char *body, size_t body_len,
                                  struct nc_buf *out)
{
    if (http_status != 200) {
        rpc_error(out, http_to_grpc_code(http_status),
                  "unexpected HTTP status code received from server: %ld",
                  http_status);
        return CHK_CRITICAL;
    }
    int code;
    struct nc_buf msg = {0};
    chk_grpc_trailers(lines, lines_len, &code, &msg);
    enum chk_status st = CHK_CRITICAL;
    uint64_t serving;
    const char *why = NULL;
    if (code < 0) {
        rpc_error(out, 13, "server closed the stream without sending "
                           "trailers");
    } else if (code != 0) {
        rpc_error(out, code, "%s", msg.data ? msg.data : "");
    } else if (chk_grpc_parse_response(body, body_len, &serving, &why) < 0) {
        rpc_error(out, 13, "%s", why);
    } else if (serving == CHK_GRPC_SERVING) {
        nc_buf_printf(out, "gRPC check %s: success", target);
        st = CHK_PASSING;
    } else {
        const char *name = chk_grpc_serving_name(serving);
        if (name)
            nc_buf_printf(out, "gRPC %s serving status: %s", target, name);
        else
            nc_buf_printf(out, "gRPC %s serving status: %llu", target,
                          (unsigned long long)serving);
    }
    nc_buf_free(&msg);
    return st;
}

/* ---- the probe ---- */

static const char *probe_target(const struct chk *c)
{
    return c->url ? c->url : c->target; /* host:port/service */
}

static struct chk_grpc *grpc_state(struct chk *c)
{
    if (c->grpc)
        return c->grpc;
    struct chk_grpc *g = xcalloc(1, sizeof(*g));
    g->url = xasprintf("%s://%s/grpc.health.v1.Health/Check",
                       c->def.grpc_use_tls ? "https" : "http", c->target);
    chk_grpc_request_frame(c->def.grpc_service, &g->frame);
    c->grpc = g;
    return g;
}

static void grpc_done(void *arg, const struct curl_uv_response *r)
{
    struct chk *c = arg;
    c->grpc->xfer = NULL;
    c->output.len = 0;
    if (r->status > 0 && !r->timed_out && (r->curl_code == 0 || r->capped)) {
        if (r->capped) {
            rpc_error(&c->output, 8, "response larger than %d bytes",
                      CHK_OUTPUT_MAX);
            chk_probe_finish(c, CHK_CRITICAL, (int)r->status, false);
            return;
        }
        enum chk_status st = chk_grpc_conclude(
            probe_target(c), r->status, r->headers, r->headers_len,
            (const unsigned char *)r->body, r->body_len, &c->output);
        chk_probe_finish(c, st, (int)r->status, false);
        return;
    }
    if (r->timed_out) {
        rpc_error(&c->output, 4, "context deadline exceeded");
        chk_probe_finish(c, CHK_CRITICAL, 0, true);
        return;
    }
    struct nc_buf why = {0};
    if (r->os_errno)
        chk_net_format_error(c, "connect", -r->os_errno, &why);
    else
        nc_buf_puts(&why, r->error);
    rpc_error(&c->output, 14, "connection error: %s", why.data ? why.data : "");
    nc_buf_free(&why);
    chk_probe_finish(c, CHK_CRITICAL, 0, false);
}

static int grpc_start(struct chk *c)
{
    struct nc_error err = {0};
    struct curl_uv *m = chk_engine_curl(c->e, &err);
    if (!m) {
        chk_probe_finishf(c, CHK_CRITICAL, 0, false,
                          "gRPC checks need libcurl with HTTP/2 (Debian "
                          "package libcurl4): %s",
                          err.msg);
        return 0;
    }
    struct chk_grpc *g = grpc_state(c);
    static const char *const headers[] = {
        "Content-Type: application/grpc", "TE: trailers",
        "User-Agent: nomclient-grpc-health-check", NULL};
    uint64_t now = uv_now(c->e->loop);
    struct curl_uv_tls tls = {.insecure = c->def.tls_skip_verify};
    struct curl_uv_request req = {
        .method = "POST",
        .url = g->url,
        .headers = headers,
        .body = g->frame.data,
        .body_len = g->frame.len,
        .tls = c->def.grpc_use_tls ? &tls : NULL,
        .timeout_ms = (long)(c->deadline_ms > now ? c->deadline_ms - now : 0) +
                      BACKSTOP_MS,
        .max_body = CHK_OUTPUT_MAX,
        .fresh_connect = true,
        .protocols = c->def.grpc_use_tls ? "https" : "http",
        .http2 = true,
        .keep_headers = true,
    };
    return curl_uv_start(m, &req, grpc_done, c, &g->xfer);
}

static void grpc_abort(struct chk *c)
{
    if (c->grpc && c->grpc->xfer) {
        curl_uv_cancel(c->e->curl, c->grpc->xfer);
        c->grpc->xfer = NULL;
    }
}

static void grpc_expire(struct chk *c)
{
    struct curl_uv_xfer *x = c->grpc ? c->grpc->xfer : NULL;
    if (x) {
        c->grpc->xfer = NULL;
        curl_uv_expire(c->e->curl, x); /* grpc_done: the deadline */
    }
}

static void grpc_release(struct chk *c)
{
    struct chk_grpc *g = c->grpc;
    if (!g)
        return;
    grpc_abort(c);
    free(g->url);
    nc_buf_free(&g->frame);
    free(g);
    c->grpc = NULL;
}

const struct chk_probe_ops chk_grpc_ops = {
    .name = "grpc",
    .start = grpc_start,
    .abort = grpc_abort,
    .expire = grpc_expire,
    .release = grpc_release,
};
