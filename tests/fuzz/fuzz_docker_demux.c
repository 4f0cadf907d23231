// deps: client/drivers/docker_api.c client/curl_uv.c client/util.c
/* libFuzzer target for the Docker Engine streams the agent reads as they
 * come: the multiplexed stdout/stderr of a container's logs, attach and
 * exec, and the JSON-lines progress of pulls and loads. The input after
 * its first byte is fed whole, then again in pieces whose sizes the first
 * byte seeds: both must give the same output and the same result (a
 * parser must not depend on where the daemon's writes were cut), every
 * piece out of the demuxer non-empty and of a known stream, never more
 * payload than input. The same bytes also go through the query escaper
 * and the X-Registry-Auth encoder, whose output alphabets are checked. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/drivers/docker_api.h"

struct demux_rec {
    struct nc_buf seq; /* stream changes and payload, as delivered */
    int last;
    size_t total;
};

static void demux_out(void *arg, int stream, const char *p, size_t n)
{
    struct demux_rec *r = arg;
    if (stream < 1 || stream > 3 || n == 0)
        abort();
    if (stream != r->last) {
        nc_buf_printf(&r->seq, "|%d:", stream);
        r->last = stream;
    }
    nc_buf_append(&r->seq, p, n);
    r->total += n;
}

static void progress_obj(void *arg, const json_t *obj)
{
    struct nc_buf *b = arg;
    if (!json_is_object(obj))
        abort();
    char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    nc_buf_puts(b, s ? s : "?");
    nc_buf_putc(b, '\n');
    free(s);
}

/* Piece sizes from a small generator seeded by the first byte: mostly
 * tiny (header splits), sometimes large. */
static size_t next_piece(uint32_t *x)
{
    *x = *x * 1103515245u + 12345u;
    uint32_t v = *x >> 16;
    return v % 8 == 0 ? 1 + v % 4096 : 1 + v % 9;
}

static void check_demux(const char *p, size_t n, uint8_t seed)
{
    struct docker_demux whole = {0};
    struct demux_rec a = {0};
    int ra = docker_demux_feed(&whole, p, n, demux_out, &a);
    struct docker_demux cut = {0};
    struct demux_rec b = {0};
    int rb = 0;
    uint32_t x = seed;
    for (size_t off = 0; off < n && rb == 0;) {
        size_t k = next_piece(&x);
        if (k > n - off)
            k = n - off;
        rb = docker_demux_feed(&cut, p + off, k, demux_out, &b);
        off += k;
    }
    if (ra != rb || a.total != b.total || a.total > n ||
        a.seq.len != b.seq.len ||
        (a.seq.len && memcmp(a.seq.data, b.seq.data, a.seq.len) != 0))
        abort();
    if (ra != 0 && ra != -EPROTO)
        abort();
    /* once refused, refused for good */
    if (ra == -EPROTO && docker_demux_feed(&whole, "\1\0\0\0\0\0\0\1x", 9,
                                           demux_out, &a) != -EPROTO)
        abort();
    nc_buf_free(&a.seq);
    nc_buf_free(&b.seq);
}

static void check_progress(const char *p, size_t n, uint8_t seed)
{
    struct docker_progress whole = {0};
    struct nc_buf a = {0};
    int ra = docker_progress_feed(&whole, p, n, progress_obj, &a);
    if (ra == 0)
        ra = docker_progress_feed(&whole, NULL, 0, progress_obj, &a);
    struct docker_progress cut = {0};
    struct nc_buf b = {0};
    int rb = 0;
    uint32_t x = seed;
    for (size_t off = 0; off < n && rb == 0;) {
        size_t k = next_piece(&x);
        if (k > n - off)
            k = n - off;
        rb = docker_progress_feed(&cut, p + off, k, progress_obj, &b);
        off += k;
    }
    if (rb == 0)
        rb = docker_progress_feed(&cut, NULL, 0, progress_obj, &b);
    if (ra != rb || a.len != b.len ||
        (a.len && memcmp(a.data, b.data, a.len) != 0) ||
        !whole.error != !cut.error ||
        (whole.error && strcmp(whole.error, cut.error) != 0))
        abort();
    if (ra != 0 && ra != -EPROTO && ra != -EMSGSIZE)
        abort();
    if (ra != 0 && !whole.error)
        abort(); /* a refused stream always says why */
    if (whole.cap > DOCKER_PROGRESS_MAX_LINE + 1)
        abort(); /* never more than one line kept */
    free(whole.error);
    free(cut.error);
    docker_progress_free(&whole);
    docker_progress_free(&cut);
    nc_buf_free(&a);
    nc_buf_free(&b);
}

static void check_strings(const char *p, size_t n)
{
    char *s = xstrndup(p, n); /* up to the first NUL */
    char *q = docker_query_escape(s);
    for (const char *c = q; *c; c++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789-._~%",
                    *c))
            abort();
    free(q);
    char *a = docker_registry_auth(s, s, NULL, s);
    size_t len = strlen(a);
    if (len % 4)
        abort();
    for (size_t i = 0; i < len; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789-_",
                    a[i]) &&
            !(a[i] == '=' && i + 2 >= len))
            abort();
    free(a);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    check_demux(p, n, data[0]);
    check_progress(p, n, data[0]);
    if (n <= 4096)
        check_strings(p, n);
    return 0;
}
