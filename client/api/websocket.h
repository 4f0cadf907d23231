/* api/websocket.h - RFC 6455 websockets, without a transport: the opening
 * handshake's checks and keys, an incremental frame reader (masking,
 * fragmentation, control frames, limits, UTF-8 of text) and the frame
 * writer, for the agent's side (`/v1/client/allocation/:id/exec`, over
 * the HTTP server's upgraded connections, where the loop moves the bytes)
 * and the CLI's (`alloc exec`: ws_client_*, on a socket the CLI polls). */
#ifndef NOMCLIENT_API_WEBSOCKET_H
#define NOMCLIENT_API_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/util.h"

enum ws_opcode {
    WS_CONTINUATION = 0x0,
    WS_TEXT = 0x1,
    WS_BINARY = 0x2,
    WS_CLOSE = 0x8,
    WS_PING = 0x9,
    WS_PONG = 0xa,
};

/* Close codes (RFC 6455 section 7.4.1). */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL_ERROR 1002
#define WS_CLOSE_NO_STATUS 1005 /* never sent: a close frame without a code */
#define WS_CLOSE_INVALID_DATA 1007
#define WS_CLOSE_POLICY_VIOLATION 1008
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL_ERROR 1011

/* The largest control frame payload (RFC 6455 section 5.5). */
#define WS_MAX_CONTROL 125
/* A message beyond the reader's max_message with max_message 0. */
#define WS_DEFAULT_MAX_MESSAGE (1u << 20)

/* SHA-1 (FIPS 180-4) of data: the handshake needs it, and loading OpenSSL
 * for one digest would map it into every plain-HTTP agent. */
void ws_sha1(const void *data, size_t len, uint8_t out[20]);

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key. */
void ws_accept_key(const char *client_key, char out[29]);
/* A fresh random Sec-WebSocket-Key (16 bytes, base64). */
void ws_client_key(char out[25]);

/* Checks a client's opening handshake (RFC 6455 section 4.2.1) given its
 * method and headers (names lower-cased). Returns 0, or the HTTP status to
 * refuse it with (400, 403, 405 or 426) and msg in gorilla/websocket's
 * words, as Nomad's clients know them. An Origin header must name the
 * Host (gorilla's default check: a web page elsewhere cannot drive a
 * browser into the API). */
int ws_handshake_check(const char *method, const struct kvlist *headers,
                       char *msg, size_t msglen);

/* One complete message or control frame from the reader. `data` is valid
 * until the next ws_reader_next or ws_reader_free. */
struct ws_message {
    int opcode; /* WS_TEXT, WS_BINARY, WS_CLOSE, WS_PING, WS_PONG */
    const char *data;
    size_t len;
    int close_code; /* WS_CLOSE: the peer's code, or WS_CLOSE_NO_STATUS */
};

/* Reads frames as bytes arrive, in any split. Zero-initialise, then set
 * `server` (frames from a client must be masked, from a server must not)
 * and optionally max_message. */
struct ws_reader {
    bool server;
    size_t max_message; /* reassembled data message; 0: the default */
    /* state */
    uint8_t hdr[14];
    size_t hdr_len;
    bool in_frame;
    uint64_t remaining; /* payload bytes of this frame still to come */
    uint8_t mask[4];
    bool masked;
    size_t mask_off;
    int frame_opcode;
    bool fin;
    int msg_opcode; /* a fragmented message in progress, else 0 */
    struct nc_buf msg;
    char ctl[WS_MAX_CONTROL + 1];
    size_t ctl_len;
    bool failed;
};

/* Consumes bytes from buf until a message completes or the bytes run out.
 * Returns the bytes consumed (<= len) with msg->opcode set when a message
 * completed (0 otherwise); call again with the rest. On a protocol
 * violation returns a negative errno (-EPROTO, -EMSGSIZE, -EILSEQ) with
 * *close_code the code to close with and `why` saying what was wrong;
 * the reader then refuses everything. */
long ws_reader_next(struct ws_reader *r, const void *buf, size_t len,
                    struct ws_message *msg, int *close_code, char *why,
                    size_t whylen);
void ws_reader_free(struct ws_reader *r);

/* Appends one final frame (FIN set) to out; masked with a random key when
 * `mask` (a client's frames). */
void ws_frame_append(struct nc_buf *out, int opcode, const void *data,
                     size_t len, bool mask);
/* A close frame with a code (0: none) and a reason, cut to fit a control
 * frame at a character boundary. */
void ws_close_append(struct nc_buf *out, int code, const char *reason,
                     bool mask);

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, surrogates or
 * code points past U+10FFFF). */
bool ws_utf8_valid(const char *s, size_t len);

/* ---- the client side (the CLI): a websocket over a connected socket and
 * optional TLS session (api_dial's), driven by the caller's poll loop ---- */

struct tls_conn;
struct ws_client;

/* Sends the opening handshake for `path` (with `headers`, lines ending in
 * CRLF: Host, the token) on the connected non-blocking socket `fd` and
 * reads the answer, waiting up to timeout_ms. On 101 with the right
 * Sec-WebSocket-Accept, *out owns fd and tls. Otherwise -EPROTO with err
 * "Unexpected response code: 404 (<the agent's error>)", or a transport
 * error; fd and tls stay the caller's. */
int ws_client_open(struct ws_client **out, int fd, struct tls_conn *tls,
                   const char *path, const char *headers, int timeout_ms,
                   struct nc_error *err);
void ws_client_free(struct ws_client *c); /* closes the socket; NULL ok */
int ws_client_fd(const struct ws_client *c);

/* Queues a message (masked, one frame). */
void ws_client_send(struct ws_client *c, int opcode, const void *data,
                    size_t len);
/* Bytes queued and not yet sent: wait for POLLOUT while there are. */
size_t ws_client_pending(const struct ws_client *c);
/* Sends what the socket takes now: 0, or -errno. */
int ws_client_flush(struct ws_client *c);
/* The next message from what the socket has now: 1 with *msg (valid until
 * the next call), 0 when nothing more is there yet (poll for POLLIN), -EPIPE
 * at the end of the connection, -EPROTO for a TLS failure or a protocol
 * violation (why in err). Pings are answered here. */
int ws_client_recv(struct ws_client *c, struct ws_message *msg,
                   struct nc_error *err);

#endif
