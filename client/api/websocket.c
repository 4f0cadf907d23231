/* websocket.c - see client/api/websocket.h. */
#include "client/api/websocket.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

/* ---- SHA-1 -------------------------------------------------------------- */

static uint32_t rol(uint32_t v, int n) { return v << n | v >> (32 - n); }

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void ws_sha1(const void *data, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476,
                     0xc3d2e1f0};
    const uint8_t *p = data;
    size_t left = len;
    for (; left >= 64; left -= 64, p += 64)
        sha1_block(h, p);
    uint8_t tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tlen = left + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tlen - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tlen == 128)
        sha1_block(h, tail + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

/* ---- base64 ------------------------------------------------------------- */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *ws_base64_encode(const void *data, size_t n)
{
    const uint8_t *p = data;
    char *out = xcalloc(1, (n + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = b64[(v >> 18) & 63];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? b64[v & 63] : '=';
    }
    return out;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int ws_base64_decode(const char *s, size_t len, struct nc_buf *out)
{
    size_t pad = 0;
    while (len > 0 && s[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (len % 4 == 1 || (pad && (len + pad) % 4 != 0))
        return -EINVAL;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            nc_buf_putc(out, (char)(acc >> bits & 0xff));
        }
    }
    /* the bits left over must be zero: one encoding per value */
    if (bits && (acc & ((1u << bits) - 1)))
        return -EINVAL;
    return 0;
}

/* ---- the opening handshake ------------------------------------------- */

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

void ws_accept_key(const char *client_key, char out[29])
{
    char *cat = xasprintf("%s" WS_GUID, client_key);
    uint8_t d[20];
    ws_sha1(cat, strlen(cat), d);
    free(cat);
    char *e = ws_base64_encode(d, sizeof(d));
    snprintf(out, 29, "%s", e);
    free(e);
}

static void random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    ssize_t got = getrandom(p, n, GRND_NONBLOCK);
    if (got == (ssize_t)n)
        return;
    /* no entropy yet (early boot): a mask or key only has to be
     * unpredictable to a web page, not secret */
    static unsigned seed;
    if (!seed)
        seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)buf;
    for (size_t i = got > 0 ? (size_t)got : 0; i < n; i++)
        p[i] = (uint8_t)(rand_r(&seed) >> 7);
}

void ws_client_key(char out[25])
{
    uint8_t k[16];
    random_bytes(k, sizeof(k));
    char *e = ws_base64_encode(k, sizeof(k));
    snprintf(out, 25, "%s", e);
    free(e);
}

/* Whether the comma-separated header value holds `token` (any case). */
static bool header_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    while (v && *v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t n = strcspn(v, ",");
        size_t m = n;
        while (m > 0 && (v[m - 1] == ' ' || v[m - 1] == '\t'))
            m--;
        if (m == tl && strncasecmp(v, token, tl) == 0)
            return true;
        v += n;
    }
    return false;
}

#define BAD_HANDSHAKE \
    "websocket: the client is not using the websocket protocol: "

int ws_handshake_check(const char *method, const struct kvlist *headers,
                       char *msg, size_t msglen)
{
    if (!header_has_token(kv_get(headers, "connection"), "upgrade")) {
        snprintf(msg, msglen,
                 BAD_HANDSHAKE "'upgrade' token not found in 'Connection' "
                               "header");
        return 400;
    }
    if (!header_has_token(kv_get(headers, "upgrade"), "websocket")) {
        snprintf(msg, msglen,
                 BAD_HANDSHAKE "'websocket' token not found in 'Upgrade' "
                               "header");
        return 400;
    }
    if (strcmp(method, "GET") != 0) {
        snprintf(msg, msglen, BAD_HANDSHAKE "request method is not GET");
        return 405;
    }
    if (!header_has_token(kv_get(headers, "sec-websocket-version"), "13")) {
        snprintf(msg, msglen, "websocket: unsupported version: 13 not found "
                              "in 'Sec-Websocket-Version' header");
        return 426;
    }
    const char *origin = kv_get(headers, "origin");
    if (origin) {
        const char *h = strstr(origin, "://");
        h = h ? h + 3 : origin;
        size_t hl = strcspn(h, "/?#");
        const char *host = kv_get(headers, "host");
        if (!host || strlen(host) != hl || strncasecmp(h, host, hl) != 0) {
            snprintf(msg, msglen, "websocket: request origin not allowed by "
                                  "Upgrader.CheckOrigin");
            return 403;
        }
    }
    const char *key = kv_get(headers, "sec-websocket-key");
    if (!key || !*key) {
        snprintf(msg, msglen, "websocket: not a websocket handshake: "
                              "'Sec-WebSocket-Key' header is missing or blank");
        return 400;
    }
    struct nc_buf raw = {0};
    bool ok = ws_base64_decode(key, strlen(key), &raw) == 0 && raw.len == 16;
    nc_buf_free(&raw);
    if (!ok) {
        snprintf(msg, msglen, "websocket: not a websocket handshake: "
                              "'Sec-WebSocket-Key' header must be Base64 "
                              "encoded value of 16-byte length");
        return 400;
    }
    return 0;
}

/* ---- UTF-8 ------------------------------------------------------------- */

bool ws_utf8_valid(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + len;
    while (p < end) {
        uint8_t c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if ((size_t)(end - p) < n)
            return false;
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n;
    }
    return true;
}

/* ---- reading frames ------------------------------------------------------ */

static long reader_fail(struct ws_reader *r, int err, int code, int *close_code,
                        char *why, size_t whylen, const char *text)
{
    r->failed = true;
    *close_code = code;
    snprintf(why, whylen, "%s", text);
    return err;
}

/* The frame header's size once its first two bytes are in. */
static size_t header_size(const uint8_t *h)
{
    size_t n = 2;
    uint8_t l = h[1] & 0x7f;
    if (l == 126)
        n += 2;
    else if (l == 127)
        n += 8;
    if (h[1] & 0x80)
        n += 4;
    return n;
}

static bool valid_close_code(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

/* Checks the header in r->hdr and starts the frame. Returns 0 or the
 * failure. */
static long start_frame(struct ws_reader *r, int *close_code, char *why,
                        size_t whylen)
{
    const uint8_t *h = r->hdr;
    bool fin = h[0] & 0x80;
    int op = h[0] & 0x0f;
    bool masked = h[1] & 0x80;
    uint64_t plen = h[1] & 0x7f;
    size_t off = 2;
    if (plen == 126) {
        plen = (uint64_t)h[2] << 8 | h[3];
        off = 4;
    } else if (plen == 127) {
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | h[2 + i];
        off = 10;
        if (plen >> 63)
            return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR,
                               close_code, why, whylen,
                               "frame length has the high bit set");
    }
    if (h[0] & 0x70)
        return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR, close_code,
                           why, whylen, "reserved bits set (no extension "
                                        "was negotiated)");
    bool control = op & 0x8;
    if (control) {
        if (op != WS_CLOSE && op != WS_PING && op != WS_PONG)
            return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR,
                               close_code, why, whylen,
                               "unknown control opcode");
        if (!fin || plen > WS_MAX_CONTROL)
            return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR,
                               close_code, why, whylen,
                               "control frame fragmented or longer than 125 "
                               "bytes");
    } else if (op == WS_CONTINUATION) {
        if (!r->msg_opcode)
            return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR,
                               close_code, why, whylen,
                               "continuation frame without a message");
    } else if (op == WS_TEXT || op == WS_BINARY) {
        if (r->msg_opcode)
            return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR,
                               close_code, why, whylen,
                               "new message before the last one ended");
    } else {
        return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR, close_code,
                           why, whylen, "unknown data opcode");
    }
    if (masked != r->server)
        return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR, close_code,
                           why, whylen,
                           r->server ? "client frame is not masked"
                                     : "server frame is masked");
    size_t max = r->max_message ? r->max_message : WS_DEFAULT_MAX_MESSAGE;
    if (!control && plen > max - r->msg.len)
        return reader_fail(r, -EMSGSIZE, WS_CLOSE_TOO_BIG, close_code, why,
                           whylen, "message too big");
    if (masked)
        memcpy(r->mask, h + off, 4);
    r->masked = masked;
    r->mask_off = 0;
    r->remaining = plen;
    r->frame_opcode = op;
    r->fin = fin;
    r->in_frame = true;
    r->ctl_len = 0;
    if (op == WS_TEXT || op == WS_BINARY) {
        r->msg_opcode = op;
        r->msg.len = 0;
    }
    return 0;
}

/* The frame's payload is all in: a message when it completes one. */
static long end_frame(struct ws_reader *r, struct ws_message *msg,
                      int *close_code, char *why, size_t whylen)
{
    r->in_frame = false;
    r->hdr_len = 0;
    int op = r->frame_opcode;
    if (op & 0x8) {
        msg->opcode = op;
        msg->data = r->ctl;
        msg->len = r->ctl_len;
        msg->close_code = 0;
        r->ctl[r->ctl_len] = '\0';
        if (op == WS_CLOSE) {
            msg->close_code = WS_CLOSE_NO_STATUS;
            if (r->ctl_len == 1)
                return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR,
                                   close_code, why, whylen,
                                   "close frame of one byte");
            if (r->ctl_len >= 2) {
                int code = (uint8_t)r->ctl[0] << 8 | (uint8_t)r->ctl[1];
                if (!valid_close_code(code))
                    return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR,
                                       close_code, why, whylen,
                                       "invalid close code");
                if (!ws_utf8_valid(r->ctl + 2, r->ctl_len - 2))
                    return reader_fail(r, -EILSEQ, WS_CLOSE_INVALID_DATA,
                                       close_code, why, whylen,
                                       "close reason is not UTF-8");
                msg->close_code = code;
                msg->data = r->ctl + 2;
                msg->len = r->ctl_len - 2;
            }
        }
        return 1;
    }
    if (!r->fin)
        return 0;
    if (r->msg_opcode == WS_TEXT && !ws_utf8_valid(r->msg.data, r->msg.len))
        return reader_fail(r, -EILSEQ, WS_CLOSE_INVALID_DATA, close_code, why,
                           whylen, "text message is not UTF-8");
    msg->opcode = r->msg_opcode;
    nc_buf_puts(&r->msg, ""); /* a NUL after the data, not counted */
    msg->data = r->msg.data ? r->msg.data : "";
    msg->len = r->msg.len;
    msg->close_code = 0;
    r->msg_opcode = 0;
    return 1;
}

long ws_reader_next(struct ws_reader *r, const void *buf, size_t len,
                    struct ws_message *msg, int *close_code, char *why,
                    size_t whylen)
{
    const uint8_t *p = buf;
    size_t used = 0;
    msg->opcode = 0;
    if (r->failed)
        return reader_fail(r, -EPROTO, WS_CLOSE_PROTOCOL_ERROR, close_code,
                           why, whylen, "connection already failed");
    /* a finished message's buffer is reused from here */
    if (!r->msg_opcode && !r->in_frame)
        r->msg.len = 0;
    while (used < len || (r->in_frame && r->remaining == 0)) {
        if (!r->in_frame) {
            size_t need = r->hdr_len < 2 ? 2 : header_size(r->hdr);
            while (r->hdr_len < need && used < len) {
                r->hdr[r->hdr_len++] = p[used++];
                if (r->hdr_len == 2)
                    need = header_size(r->hdr);
            }
            if (r->hdr_len < need)
                return (long)used;
            long e = start_frame(r, close_code, why, whylen);
            if (e < 0)
                return e;
        }
        size_t take = len - used;
        if (take > r->remaining)
            take = (size_t)r->remaining;
        char *dst;
        if (r->frame_opcode & 0x8) {
            dst = r->ctl + r->ctl_len;
            r->ctl_len += take;
        } else {
            nc_grow((void **)&r->msg.data, &r->msg.cap, r->msg.len + take + 1,
                    1);
            dst = r->msg.data + r->msg.len;
            r->msg.len += take;
        }
        for (size_t i = 0; i < take; i++)
            dst[i] = (char)(p[used + i] ^
                            (r->masked ? r->mask[r->mask_off++ & 3] : 0));
        used += take;
        r->remaining -= take;
        if (r->remaining == 0) {
            long e = end_frame(r, msg, close_code, why, whylen);
            if (e < 0)
                return e;
            if (e > 0)
                return (long)used;
        }
    }
    return (long)used;
}

void ws_reader_free(struct ws_reader *r)
{
    nc_buf_free(&r->msg);
    memset(r, 0, sizeof(*r));
}

/* ---- writing frames ------------------------------------------------------- */

void ws_frame_append(struct nc_buf *out, int opcode, const void *data,
                     size_t len, bool mask)
{
    uint8_t h[14];
    size_t n = 0;
    h[n++] = (uint8_t)(0x80 | (opcode & 0x0f));
    uint8_t m = mask ? 0x80 : 0;
    if (len < 126) {
        h[n++] = (uint8_t)(m | len);
    } else if (len <= 0xffff) {
        h[n++] = m | 126;
        h[n++] = (uint8_t)(len >> 8);
        h[n++] = (uint8_t)len;
    } else {
        h[n++] = m | 127;
        for (int i = 7; i >= 0; i--)
            h[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint8_t key[4] = {0};
    if (mask) {
        random_bytes(key, sizeof(key));
        memcpy(h + n, key, 4);
        n += 4;
    }
    nc_buf_append(out, (const char *)h, n);
    size_t at = out->len;
    nc_buf_append(out, data, len);
    if (mask)
        for (size_t i = 0; i < len; i++)
            out->data[at + i] ^= (char)key[i & 3];
}

void ws_close_append(struct nc_buf *out, int code, const char *reason,
                     bool mask)
{
    char p[WS_MAX_CONTROL];
    size_t n = 0;
    if (code > 0) {
        p[n++] = (char)(code >> 8);
        p[n++] = (char)code;
        size_t rl = reason ? strlen(reason) : 0;
        if (rl > sizeof(p) - n) {
            rl = sizeof(p) - n;
            /* do not cut a character in two */
            while (rl > 0 && ((uint8_t)reason[rl] & 0xc0) == 0x80)
                rl--;
        }
        if (rl)
            memcpy(p + n, reason, rl);
        n += rl;
    }
    ws_frame_append(out, WS_CLOSE, p, n, mask);
}
