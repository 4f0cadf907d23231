// deps: client/api/websocket.c client/tls.c client/util.c
/* libFuzzer target for websocket frames: arbitrary bytes through the
 * frame reader (the first byte picks the side and how the rest is split,
 * as a socket would split it), with invariants a peer relies on: text
 * messages are UTF-8, control payloads fit a control frame, every message
 * written again by the writer reads back the same, and base64 of the data
 * decodes to it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/api/websocket.h"

static void roundtrip(const struct ws_message *m, bool server)
{
    /* what a peer of the other side writes, the reader takes back */
    struct nc_buf f = {0};
    if (m->opcode == WS_CLOSE)
        ws_close_append(&f,
                        m->close_code == WS_CLOSE_NO_STATUS ? 0 : m->close_code,
                        m->data, server);
    else
        ws_frame_append(&f, m->opcode, m->data, m->len, server);
    struct ws_reader r = {.server = server}; /* masked: read by a server */
    struct ws_message back;
    int code;
    char why[128];
    long used =
        ws_reader_next(&r, f.data, f.len, &back, &code, why, sizeof(why));
    if (used != (long)f.len || back.opcode != m->opcode)
        abort();
    if (m->opcode != WS_CLOSE &&
        (back.len != m->len || memcmp(back.data, m->data, m->len) != 0))
        abort();
    ws_reader_free(&r);
    nc_buf_free(&f);
    char *b64 = ws_base64_encode(m->data, m->len);
    struct nc_buf raw = {0};
    if (ws_base64_decode(b64, strlen(b64), &raw) != 0 || raw.len != m->len ||
        (m->len && memcmp(raw.data, m->data, m->len) != 0))
        abort();
    nc_buf_free(&raw);
    free(b64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool server = data[0] & 1;
    size_t step = (data[0] >> 1) ? (size_t)(data[0] >> 1) : size;
    data++;
    size--;
    struct ws_reader r = {.server = server, .max_message = 1 << 16};
    size_t off = 0;
    while (off < size) {
        size_t n = step < size - off ? step : size - off;
        const uint8_t *p = data + off;
        while (n > 0) {
            struct ws_message m;
            int code = 0;
            char why[128];
            long used = ws_reader_next(&r, p, n, &m, &code, why, sizeof(why));
            if (used < 0) {
                if (code < 1000 || code > 1011)
                    abort();
                goto out;
            }
            if (used == 0 || (size_t)used > n)
                abort();
            if (m.opcode) {
                if (m.opcode == WS_TEXT && !ws_utf8_valid(m.data, m.len))
                    abort();
                if ((m.opcode & 8) && m.len > WS_MAX_CONTROL)
                    abort();
                roundtrip(&m, server);
            }
            p += used;
            n -= (size_t)used;
        }
        off += step < size - off ? step : size - off;
    }
out:
    ws_reader_free(&r);
    /* the same bytes as a base64 text and a handshake's key */
    struct nc_buf raw = {0};
    ws_base64_decode((const char *)data, size, &raw);
    nc_buf_free(&raw);
    return 0;
}
