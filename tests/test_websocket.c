// deps: client/api/websocket.c client/api/http_server.c client/tls.c
// deps: client/util.c
/* Websockets (RFC 6455): SHA-1 and the accept key against published
 * vectors, base64, the handshake's refusals in gorilla's words, the frame
 * reader on the RFC's examples fed whole and byte by byte, its refusals
 * (each with its close code), the writer through the reader, and a live
 * server upgraded by a handler, over HTTP and HTTPS, driven by the CLI's
 * client in a thread. Run with cwd = tests/. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "client/api/api.h"
#include "client/api/websocket.h"
#include "client/tls.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void check_sha1(const void *data, size_t n, const char *want)
{
    uint8_t d[20];
    char h[41];
    ws_sha1(data, n, d);
    hex(d, 20, h);
    assert_string_equal(h, want);
}

static void test_sha1(void **state)
{
    (void)state;
    check_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    check_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *two =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha1(two, strlen(two), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    /* lengths around the padding's block boundaries */
    static const struct {
        size_t n;
        const char *want;
    } v[] = {{55, "8ae2d46729cfe68ff927af5eec9c7d1b66d65ac2"},
             {56, "636e2ec698dac903498e648bd2f3af641d3c88cb"},
             {63, "6d942da0c4392b123528f2905c713a3ce28364bd"},
             {64, "c6138d514ffa2135bfce0ed0b8fac65669917ec7"},
             {65, "69bd728ad6e13cd76ff19751fde427b00e395746"},
             {119, "41c89d06001bab4ab78736b44efe7ce18ce6ae08"},
             {120, "d3dbd653bd8597b7475321b60a36891278e6a04a"},
             {128, "e6434bc401f98603d7eda504790c98c67385d535"}};
    uint8_t buf[128];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i % 251);
    for (size_t i = 0; i < NC_ARRAY_LEN(v); i++)
        check_sha1(buf, v[i].n, v[i].want);
    char *m = malloc(1000000);
    memset(m, 'a', 1000000);
    check_sha1(m, 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(m);
}

static void test_keys_and_base64(void **state)
{
    (void)state;
    char acc[29];
    /* RFC 6455 section 1.3 */
    ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", acc);
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    char key[25];
    ws_client_key(key);
    struct nc_buf raw = {0};
    assert_int_equal(nc_base64_decode(key, strlen(key), &raw), 0);
    assert_int_equal(raw.len, 16);
    nc_buf_free(&raw);
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                         "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < NC_ARRAY_LEN(in); i++) {
        char *e = nc_base64_encode(in[i], strlen(in[i]), false);
        assert_string_equal(e, out[i]);
        free(e);
        struct nc_buf d = {0};
        assert_int_equal(nc_base64_decode(out[i], strlen(out[i]), &d), 0);
        assert_int_equal(d.len, strlen(in[i]));
        assert_memory_equal(d.data ? d.data : "", in[i], d.len);
        nc_buf_free(&d);
    }
    const char *bad[] = {"Z", "Zm9v!", "Zg=a", "Zh==", "Zm9=", "Z===", "Zm 9v"};
    for (size_t i = 0; i < NC_ARRAY_LEN(bad); i++) {
        struct nc_buf d = {0};
        assert_int_equal(nc_base64_decode(bad[i], strlen(bad[i]), &d), -EINVAL);
        nc_buf_free(&d);
    }
    /* every byte value survives */
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    char *e = nc_base64_encode(all, sizeof(all), false);
    struct nc_buf d = {0};
    assert_int_equal(nc_base64_decode(e, strlen(e), &d), 0);
    assert_int_equal(d.len, 256);
    assert_memory_equal(d.data, all, 256);
    nc_buf_free(&d);
    free(e);
}

static int handshake(const char *method, const char *const *kv, char *msg)
{
    struct kvlist h = {0};
    for (size_t i = 0; kv[i]; i += 2)
        kv_set(&h, kv[i], kv[i + 1]);
    int r = ws_handshake_check(method, &h, msg, 256);
    kv_free(&h);
    return r;
}

static void test_handshake_check(void **state)
{
    (void)state;
    char msg[256];
    const char *ok[] = {"connection",
                        "keep-alive, Upgrade",
                        "upgrade",
                        "WebSocket",
                        "sec-websocket-version",
                        "13",
                        "sec-websocket-key",
                        "dGhlIHNhbXBsZSBub25jZQ==",
                        "host",
                        "127.0.0.1:4646",
                        NULL};
    assert_int_equal(handshake("GET", ok, msg), 0);
    const char *no_conn[] = {"upgrade", "websocket", NULL};
    assert_int_equal(handshake("GET", no_conn, msg), 400);
    assert_string_equal(msg, "websocket: the client is not using the websocket "
                             "protocol: 'upgrade' token not found in "
                             "'Connection' header");
    const char *no_up[] = {"connection", "Upgrade", NULL};
    assert_int_equal(handshake("GET", no_up, msg), 400);
    assert_non_null(strstr(msg, "'websocket' token not found in 'Upgrade'"));
    assert_int_equal(handshake("POST", ok, msg), 405);
    assert_non_null(strstr(msg, "request method is not GET"));
    const char *v8[] = {"connection",
                        "Upgrade",
                        "upgrade",
                        "websocket",
                        "sec-websocket-version",
                        "8",
                        NULL};
    assert_int_equal(handshake("GET", v8, msg), 426);
    assert_non_null(strstr(msg, "13 not found in 'Sec-Websocket-Version'"));
    const char *nokey[] = {"connection",
                           "Upgrade",
                           "upgrade",
                           "websocket",
                           "sec-websocket-version",
                           "13",
                           NULL};
    assert_int_equal(handshake("GET", nokey, msg), 400);
    assert_non_null(
        strstr(msg, "'Sec-WebSocket-Key' header is missing or blank"));
    const char *shortkey[] = {"connection",
                              "Upgrade",
                              "upgrade",
                              "websocket",
                              "sec-websocket-version",
                              "13",
                              "sec-websocket-key",
                              "Zm9v",
                              NULL};
    assert_int_equal(handshake("GET", shortkey, msg), 400);
    assert_non_null(strstr(msg, "Base64 encoded value of 16-byte length"));
    /* a web page elsewhere cannot drive a browser into the API */
    const char *cross[] = {"connection",
                           "Upgrade",
                           "upgrade",
                           "websocket",
                           "sec-websocket-version",
                           "13",
                           "sec-websocket-key",
                           "dGhlIHNhbXBsZSBub25jZQ==",
                           "host",
                           "127.0.0.1:4646",
                           "origin",
                           "http://evil.example",
                           NULL};
    assert_int_equal(handshake("GET", cross, msg), 403);
    assert_string_equal(msg, "websocket: request origin not allowed by "
                             "Upgrader.CheckOrigin");
    const char *same[] = {"connection",
                          "Upgrade",
                          "upgrade",
                          "websocket",
                          "sec-websocket-version",
                          "13",
                          "sec-websocket-key",
                          "dGhlIHNhbXBsZSBub25jZQ==",
                          "host",
                          "127.0.0.1:4646",
                          "origin",
                          "http://127.0.0.1:4646",
                          NULL};
    assert_int_equal(handshake("GET", same, msg), 0);
}

/* ---- the reader ---------------------------------------------------------- */

struct got {
    int opcode[16];
    char data[16][300];
    size_t len[16];
    int close_code[16];
    int n;
    long err;
    int code;
};

/* Feeds `data` in pieces of `step` bytes (0: all at once). */
static void feed(struct ws_reader *r, const uint8_t *data, size_t len,
                 size_t step, struct got *g)
{
    memset(g, 0, sizeof(*g));
    size_t off = 0;
    while (off < len) {
        size_t n = step && step < len - off ? step : len - off;
        const uint8_t *p = data + off;
        size_t left = n;
        while (left > 0) {
            struct ws_message m;
            char why[128];
            long used =
                ws_reader_next(r, p, left, &m, &g->code, why, sizeof(why));
            if (used < 0) {
                g->err = used;
                return;
            }
            assert_true(used > 0);
            if (m.opcode) {
                g->opcode[g->n] = m.opcode;
                assert_true(m.len < sizeof(g->data[0]));
                memcpy(g->data[g->n], m.data, m.len);
                g->len[g->n] = m.len;
                g->close_code[g->n] = m.close_code;
                g->n++;
            }
            p += used;
            left -= (size_t)used;
        }
        off += n;
    }
}

static void test_reader_rfc_examples(void **state)
{
    (void)state;
    /* RFC 6455 section 5.7 */
    static const uint8_t unmasked[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                     0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t fragmented[] = {
        0x01, 0x03, 'H', 'e', 'l', 0x89, 0x02, 'h', 'i', /* a ping between */
        0x80, 0x02, 'l', 'o'};
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    for (size_t step = 0; step <= 3; step++) {
        struct ws_reader client = {.server = false};
        struct got g;
        feed(&client, unmasked, sizeof(unmasked), step, &g);
        assert_int_equal(g.err, 0);
        assert_int_equal(g.n, 1);
        assert_int_equal(g.opcode[0], WS_TEXT);
        assert_memory_equal(g.data[0], "Hello", 5);
        feed(&client, fragmented, sizeof(fragmented), step, &g);
        assert_int_equal(g.n, 2);
        assert_int_equal(g.opcode[0], WS_PING);
        assert_memory_equal(g.data[0], "hi", 2);
        assert_int_equal(g.opcode[1], WS_TEXT);
        assert_int_equal(g.len[1], 5);
        assert_memory_equal(g.data[1], "Hello", 5);
        ws_reader_free(&client);

        struct ws_reader server = {.server = true};
        feed(&server, masked, sizeof(masked), step, &g);
        assert_int_equal(g.n, 1);
        assert_memory_equal(g.data[0], "Hello", 5);
        feed(&server, pong, sizeof(pong), step, &g);
        assert_int_equal(g.opcode[0], WS_PONG);
        assert_memory_equal(g.data[0], "Hello", 5);
        ws_reader_free(&server);
    }
    /* 256 bytes (16-bit length) and 65536 bytes (64-bit length) */
    size_t sizes[] = {256, 65536};
    for (size_t i = 0; i < 2; i++) {
        struct nc_buf f = {0};
        char *payload = malloc(sizes[i]);
        for (size_t k = 0; k < sizes[i]; k++)
            payload[k] = (char)(k * 7);
        ws_frame_append(&f, WS_BINARY, payload, sizes[i], true);
        assert_int_equal((uint8_t)f.data[1] & 0x7f, i == 0 ? 126 : 127);
        struct ws_reader server = {.server = true};
        struct ws_message m;
        int code;
        char why[64];
        long used =
            ws_reader_next(&server, f.data, f.len, &m, &code, why, sizeof(why));
        assert_int_equal(used, (long)f.len);
        assert_int_equal(m.opcode, WS_BINARY);
        assert_int_equal(m.len, sizes[i]);
        assert_memory_equal(m.data, payload, sizes[i]);
        ws_reader_free(&server);
        nc_buf_free(&f);
        free(payload);
    }
}

static long refused(bool server, const uint8_t *data, size_t len, int *code,
                    size_t max)
{
    struct ws_reader r = {.server = server, .max_message = max};
    struct got g;
    feed(&r, data, len, 0, &g);
    ws_reader_free(&r);
    *code = g.code;
    return g.err;
}

static void test_reader_refusals(void **state)
{
    (void)state;
    int code;
    /* a client frame must be masked, a server frame must not */
    static const uint8_t hello[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    assert_int_equal(refused(true, hello, sizeof(hello), &code, 0), -EPROTO);
    assert_int_equal(code, WS_CLOSE_PROTOCOL_ERROR);
    static const uint8_t mhello[] = {0x81, 0x85, 0,   0,   0,  0,
                                     'H',  'e',  'l', 'l', 'o'};
    assert_int_equal(refused(false, mhello, sizeof(mhello), &code, 0), -EPROTO);
    static const uint8_t rsv[] = {0xc1, 0x00};
    assert_int_equal(refused(false, rsv, sizeof(rsv), &code, 0), -EPROTO);
    static const uint8_t opcode3[] = {0x83, 0x00};
    assert_int_equal(refused(false, opcode3, sizeof(opcode3), &code, 0),
                     -EPROTO);
    static const uint8_t opcode_b[] = {0x8b, 0x00};
    assert_int_equal(refused(false, opcode_b, sizeof(opcode_b), &code, 0),
                     -EPROTO);
    static const uint8_t long_ping[] = {0x89, 0x7e, 0x00, 0x7e};
    assert_int_equal(refused(false, long_ping, sizeof(long_ping), &code, 0),
                     -EPROTO);
    static const uint8_t frag_ping[] = {0x09, 0x00};
    assert_int_equal(refused(false, frag_ping, sizeof(frag_ping), &code, 0),
                     -EPROTO);
    static const uint8_t lone_cont[] = {0x80, 0x00};
    assert_int_equal(refused(false, lone_cont, sizeof(lone_cont), &code, 0),
                     -EPROTO);
    static const uint8_t two_starts[] = {0x01, 0x01, 'a', 0x01, 0x01, 'b'};
    assert_int_equal(refused(false, two_starts, sizeof(two_starts), &code, 0),
                     -EPROTO);
    static const uint8_t high_bit[] = {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(refused(false, high_bit, sizeof(high_bit), &code, 0),
                     -EPROTO);
    /* too big: refused from the header, before any payload is taken */
    static const uint8_t big[] = {0x82, 0x7f, 0, 0, 0, 1, 0, 0, 0, 0};
    assert_int_equal(refused(false, big, sizeof(big), &code, 1000), -EMSGSIZE);
    assert_int_equal(code, WS_CLOSE_TOO_BIG);
    static const uint8_t frags_big[] = {0x02, 0x03, 'a', 'b', 'c',
                                        0x80, 0x03, 'd', 'e', 'f'};
    assert_int_equal(refused(false, frags_big, sizeof(frags_big), &code, 5),
                     -EMSGSIZE);
    /* text must be UTF-8; a close frame's code must be one to send */
    static const uint8_t latin1[] = {0x81, 0x02, 0xe9, 't'};
    assert_int_equal(refused(false, latin1, sizeof(latin1), &code, 0), -EILSEQ);
    assert_int_equal(code, WS_CLOSE_INVALID_DATA);
    static const uint8_t close1[] = {0x88, 0x01, 0x03};
    assert_int_equal(refused(false, close1, sizeof(close1), &code, 0), -EPROTO);
    static const uint8_t close1005[] = {0x88, 0x02, 0x03, 0xed};
    assert_int_equal(refused(false, close1005, sizeof(close1005), &code, 0),
                     -EPROTO);
    /* a failed reader stays failed */
    struct ws_reader r = {.server = true};
    struct got g;
    feed(&r, hello, sizeof(hello), 0, &g);
    assert_true(g.err < 0);
    feed(&r, mhello, sizeof(mhello), 0, &g);
    assert_true(g.err < 0);
    ws_reader_free(&r);
}

static void test_writer_and_close(void **state)
{
    (void)state;
    struct nc_buf f = {0};
    ws_frame_append(&f, WS_TEXT, "{\"stdin\":{}}", 12, true);
    ws_close_append(&f, WS_CLOSE_NORMAL, "bye", true);
    ws_close_append(&f, 0, NULL, true);
    /* a reason longer than a control frame is cut at a character */
    char lng[200];
    for (size_t i = 0; i + 2 <= sizeof(lng); i += 2)
        memcpy(lng + i, "\xc3\xa9", 2);
    lng[sizeof(lng) - 1] = '\0';
    ws_close_append(&f, WS_CLOSE_INTERNAL_ERROR, lng, true);
    struct ws_reader r = {.server = true};
    struct got g;
    feed(&r, (const uint8_t *)f.data, f.len, 0, &g);
    assert_int_equal(g.err, 0);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.opcode[0], WS_TEXT);
    assert_memory_equal(g.data[0], "{\"stdin\":{}}", 12);
    assert_int_equal(g.opcode[1], WS_CLOSE);
    assert_int_equal(g.close_code[1], 1000);
    assert_memory_equal(g.data[1], "bye", 3);
    assert_int_equal(g.close_code[2], WS_CLOSE_NO_STATUS);
    assert_int_equal(g.close_code[3], 1011);
    assert_true(g.len[3] <= WS_MAX_CONTROL - 2);
    assert_true(ws_utf8_valid(g.data[3], g.len[3]));
    ws_reader_free(&r);
    nc_buf_free(&f);
    assert_true(ws_utf8_valid("h\xc3\xa9llo \xf0\x9f\x98\x80", 11));
    assert_false(ws_utf8_valid("\xc0\xaf", 2));         /* overlong */
    assert_false(ws_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(ws_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_false(ws_utf8_valid("\xe2\x82", 2));         /* cut */
}

/* ---- a live server upgraded by its handler ------------------------------- */

struct echo_conn {
    struct http_stream *st;
    struct ws_reader rd;
};

static void echo_data(void *arg, const char *data, size_t len)
{
    struct echo_conn *e = arg;
    while (len > 0 && e->st) {
        struct ws_message m;
        int code;
        char why[128];
        long used =
            ws_reader_next(&e->rd, data, len, &m, &code, why, sizeof(why));
        if (used < 0) {
            struct nc_buf f = {0};
            ws_close_append(&f, code, why, false);
            http_stream_write(e->st, f.data, f.len);
            nc_buf_free(&f);
            http_stream_end(e->st);
            e->st = NULL;
            return;
        }
        data += used;
        len -= (size_t)used;
        if (!m.opcode)
            continue;
        struct nc_buf f = {0};
        if (m.opcode == WS_CLOSE) {
            ws_close_append(&f, WS_CLOSE_NORMAL, "", false);
            http_stream_write(e->st, f.data, f.len);
            http_stream_end(e->st);
            e->st = NULL;
        } else if (m.opcode == WS_TEXT && m.len == 5 &&
                   memcmp(m.data, "pause", 5) == 0) {
            /* stop reading for a while: what comes meanwhile waits */
            http_stream_pause_input(e->st, true);
            ws_frame_append(&f, WS_TEXT, "paused", 6, false);
            http_stream_write(e->st, f.data, f.len);
            http_stream_pause_input(e->st, false);
        } else {
            ws_frame_append(&f, m.opcode == WS_PING ? WS_PONG : m.opcode,
                            m.data, m.len, false);
            http_stream_write(e->st, f.data, f.len);
        }
        nc_buf_free(&f);
    }
}

static void echo_closed(void *arg)
{
    struct echo_conn *e = arg;
    e->st = NULL;
}

struct live {
    uv_loop_t loop;
    uv_async_t stop;
    struct http_server *srv;
    int port;
    bool https;
    const char *cert_dir;
    struct echo_conn conns[4];
    int nconns;
    bool closed;
};

static void ws_handler(void *ctx, const struct http_request *req,
                       struct http_response *resp)
{
    struct live *l = ctx;
    if (strcmp(req->path, "/refuse") == 0) {
        http_response_error(resp, 404, "Unknown allocation \"x\"");
        return;
    }
    char msg[256];
    int status =
        ws_handshake_check(req->method, &req->headers, msg, sizeof(msg));
    if (status) {
        http_response_error(resp, status, "%s", msg);
        return;
    }
    char acc[29];
    ws_accept_key(kv_get(&req->headers, "sec-websocket-key"), acc);
    struct echo_conn *e = &l->conns[l->nconns++];
    e->rd.server = true;
    e->st = http_response_upgrade(resp, echo_data, NULL, echo_closed, e);
    http_response_set_header(resp, "Upgrade", "websocket");
    http_response_set_header(resp, "Connection", "Upgrade");
    http_response_set_header(resp, "Sec-WebSocket-Accept", acc);
}

static void on_server_closed(void *arg)
{
    ((struct live *)arg)->closed = true;
}

static void on_stop(uv_async_t *a)
{
    struct live *l = a->data;
    http_server_stop(l->srv, on_server_closed, l);
    uv_close((uv_handle_t *)a, NULL);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* A client TLS session on fd, the handshake done (blocking). */
static struct tls_conn *client_tls(int fd, struct tls_ctx **ctx)
{
    struct tls_settings ts = {.verify_peer = false};
    struct nc_error err = {0};
    if (tls_ctx_new(ctx, false, &ts, &err) < 0)
        return NULL;
    struct tls_conn *t = tls_conn_new(*ctx, NULL);
    for (int i = 0; i < 1000; i++) {
        int r = tls_conn_handshake(t);
        struct nc_buf out = {0};
        tls_conn_take_output(t, &out);
        if (out.len &&
            send(fd, out.data, out.len, MSG_NOSIGNAL) != (ssize_t)out.len) {
            nc_buf_free(&out);
            break;
        }
        nc_buf_free(&out);
        if (r == 0)
            return t;
        if (r != -EAGAIN)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 2000);
        char buf[16384];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0)
            tls_conn_feed(t, buf, (size_t)n);
        else if (n == 0)
            break;
    }
    tls_conn_free(t);
    return NULL;
}

/* Waits for the next message (poll on the client). */
static int next_message(struct ws_client *c, struct ws_message *m)
{
    struct nc_error err = {0};
    for (int i = 0; i < 200; i++) {
        ws_client_flush(c);
        int r = ws_client_recv(c, m, &err);
        if (r != 0)
            return r;
        struct pollfd p = {.fd = ws_client_fd(c), .events = POLLIN};
        poll(&p, 1, 50);
    }
    return -ETIMEDOUT;
}

static struct ws_client *open_ws(struct live *l, const char *path,
                                 struct tls_ctx **ctx, struct nc_error *err)
{
    int fd = dial(l->port);
    if (fd < 0)
        return NULL;
    struct tls_conn *t = l->https ? client_tls(fd, ctx) : NULL;
    if (l->https && !t) {
        close(fd);
        return NULL;
    }
    struct ws_client *c = NULL;
    if (ws_client_open(&c, fd, t, path, "Host: 127.0.0.1\r\n", 5000, err) < 0) {
        tls_conn_free(t);
        close(fd);
        return NULL;
    }
    return c;
}

static void *ws_client_thread(void *arg)
{
    struct live *l = arg;
    struct tls_ctx *ctx = NULL;
    struct nc_error err = {0};
    const char *fail = NULL;
    /* a refusal comes back in the agent's words */
    struct ws_client *c = open_ws(l, "/refuse", &ctx, &err);
    if (c || !strstr(err.msg, "Unexpected response code: 404 (Unknown "
                              "allocation \"x\")")) {
        fail = "refusal not reported with its status and message";
        goto out;
    }
    tls_ctx_free(ctx);
    ctx = NULL;
    c = open_ws(l, "/ws", &ctx, &err);
    if (!c) {
        fail = "handshake failed";
        goto out;
    }
    struct ws_message m;
    /* small and large messages, a ping answered by the server, pause */
    ws_client_send(c, WS_TEXT, "hello", 5);
    if (next_message(c, &m) != 1 || m.opcode != WS_TEXT || m.len != 5 ||
        memcmp(m.data, "hello", 5) != 0) {
        fail = "text not echoed";
        goto out;
    }
    size_t big = 200000;
    char *payload = malloc(big);
    for (size_t i = 0; i < big; i++)
        payload[i] = (char)(i * 13);
    ws_client_send(c, WS_BINARY, payload, big);
    int r = next_message(c, &m);
    bool same = r == 1 && m.opcode == WS_BINARY && m.len == big &&
                memcmp(m.data, payload, big) == 0;
    free(payload);
    if (!same) {
        fail = "200 KB binary not echoed";
        goto out;
    }
    ws_client_send(c, WS_PING, "p", 1);
    if (next_message(c, &m) != 1 || m.opcode != WS_PONG) {
        fail = "ping not answered";
        goto out;
    }
    ws_client_send(c, WS_TEXT, "pause", 5);
    ws_client_send(c, WS_TEXT, "after", 5);
    if (next_message(c, &m) != 1 || m.len != 6 || next_message(c, &m) != 1 ||
        m.len != 5 || memcmp(m.data, "after", 5)) {
        fail = "input after a pause lost";
        goto out;
    }
    ws_client_send(c, WS_CLOSE, "\x03\xe8", 2);
    if (next_message(c, &m) != 1 || m.opcode != WS_CLOSE ||
        m.close_code != WS_CLOSE_NORMAL) {
        fail = "close not answered";
        goto out;
    }
    if (next_message(c, &m) != -EPIPE) {
        fail = "connection not closed after the close";
        goto out;
    }
out:
    ws_client_free(c);
    tls_ctx_free(ctx);
    uv_async_send(&l->stop);
    return (void *)fail;
}

/* Bytes right behind the upgrade request are the websocket's. */
static void *pipelined_thread(void *arg)
{
    struct live *l = arg;
    const char *fail = NULL;
    int fd = dial(l->port);
    struct nc_buf req = {0};
    nc_buf_puts(
        &req, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: "
              "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    ws_frame_append(&req, WS_TEXT, "early", 5, true);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (write(fd, req.data, req.len) != (ssize_t)req.len)
        fail = "write";
    nc_buf_free(&req);
    struct nc_buf in = {0};
    nc_buf_puts(&in, "");
    char buf[4096];
    while (!fail && !strstr(in.data, "early")) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 3000) <= 0) {
            fail = "no echo of the early frame";
            break;
        }
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0) {
            fail = "closed";
            break;
        }
        nc_buf_append(&in, buf, (size_t)n);
        nc_buf_puts(&in, "");
        in.len--;
    }
    if (!fail &&
        (!strstr(in.data, "HTTP/1.1 101 Switching Protocols\r\n") ||
         !strstr(in.data,
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") ||
         strstr(in.data, "Content-Length") ||
         strstr(in.data, "Transfer-Encoding")))
        fail = "bad 101 answer";
    nc_buf_free(&in);
    close(fd);
    uv_async_send(&l->stop);
    return (void *)fail;
}

static void run_live(struct live *l, void *(*fn)(void *))
{
    uv_loop_init(&l->loop);
    struct http_server_config cfg = {
        .bind_addr = "127.0.0.1", .port = 0, .idle_timeout_ms = 300};
    struct nc_error err = {0};
    if (l->https) {
        char cert[256], key[256];
        snprintf(cert, sizeof(cert), "%s/c.pem", l->cert_dir);
        snprintf(key, sizeof(key), "%s/k.pem", l->cert_dir);
        struct tls_settings ts = {.cert_file = cert, .key_file = key};
        assert_int_equal(tls_ctx_new(&cfg.tls, true, &ts, &err), 0);
    }
    assert_int_equal(
        http_server_start(&l->srv, &l->loop, &cfg, ws_handler, l, &err), 0);
    l->port = http_server_port(l->srv);
    uv_async_init(&l->loop, &l->stop, on_stop);
    l->stop.data = l;
    pthread_t t;
    pthread_create(&t, NULL, fn, l);
    uv_run(&l->loop, UV_RUN_DEFAULT);
    void *res;
    pthread_join(t, &res);
    if (res)
        fail_msg("%s%s", l->https ? "https: " : "", (char *)res);
    assert_true(l->closed);
    assert_int_equal(uv_loop_close(&l->loop), 0);
    for (int i = 0; i < l->nconns; i++)
        ws_reader_free(&l->conns[i].rd);
}

static void test_live_http(void **state)
{
    (void)state;
    struct live l = {0};
    run_live(&l, ws_client_thread);
    struct live p = {0};
    run_live(&p, pipelined_thread);
}

static void test_live_https(void **state)
{
    (void)state;
    char why[256];
    if (!tls_available(why, sizeof(why)) ||
        system("command -v openssl >/dev/null") != 0) {
        skip();
        return;
    }
    char dir[] = "/tmp/nc-ws-tls.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/k.pem "
             "-out %s/c.pem -days 1 -subj /CN=localhost >/dev/null 2>&1",
             dir, dir);
    int rc = system(cmd);
    struct live l = {.https = true, .cert_dir = dir};
    if (rc == 0)
        run_live(&l, ws_client_thread);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(rc, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1),
        cmocka_unit_test(test_keys_and_base64),
        cmocka_unit_test(test_handshake_check),
        cmocka_unit_test(test_reader_rfc_examples),
        cmocka_unit_test(test_reader_refusals),
        cmocka_unit_test(test_writer_and_close),
        cmocka_unit_test(test_live_http),
        cmocka_unit_test(test_live_https),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
