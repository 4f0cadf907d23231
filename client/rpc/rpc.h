/* Nomad's RPC wire layers, pure and byte-exact (no sockets, no loop):
 * msgpack as Nomad's MsgpackHandle writes it, yamux framing and a session
 * state machine, and net/rpc framing. Facts: ../shared/nomad-rpc.md.
 * Every function returns 0 or a negative errno. */
#ifndef NC_RPC_H
#define NC_RPC_H

#include <stddef.h>
#include <stdint.h>

/* ---- msgpack encoder: appends to a growing buffer the caller frees with
 * rpc_enc_free. Strings and bytes are old-spec raw (fixraw, 0xda, 0xdb);
 * signed ints as Nomad's go-msgpack 1.1.5: -32..127 fixint, above 127
 * int16/32/64, below -32 int8/16/32/64; unsigned as uint8-64. Struct
 * fields go in the order the caller writes them. Nomad's release builds
 * (-tags codegen_generated) encode nomad/structs types with codecgen code,
 * which writes Go's declaration order; types without generated code (Go's
 * rpc.Request/Response) go through reflection, which sorts fields by
 * name. Either way embedded structs' fields are flattened. An
 * allocation failure is sticky in err and reported by rpc_enc_finish. */
struct rpc_enc {
    uint8_t *buf;
    size_t len, cap;
    int err;
};
void rpc_enc_init(struct rpc_enc *e);
void rpc_enc_free(struct rpc_enc *e);
int rpc_enc_finish(const struct rpc_enc *e); /* 0 or the first error */
void rpc_enc_nil(struct rpc_enc *e);
void rpc_enc_bool(struct rpc_enc *e, int b);
void rpc_enc_int(struct rpc_enc *e, int64_t v);
void rpc_enc_uint(struct rpc_enc *e, uint64_t v);
void rpc_enc_float64(struct rpc_enc *e, double v);
void rpc_enc_float32(struct rpc_enc *e, float v);
void rpc_enc_raw(struct rpc_enc *e, const void *p,
                 size_t n);                         /* string or []byte */
void rpc_enc_str(struct rpc_enc *e, const char *s); /* NULL = "" */
void rpc_enc_map(struct rpc_enc *e, uint32_t n);    /* then n key/value pairs */
void rpc_enc_array(struct rpc_enc *e, uint32_t n);
/* time.Time as Go's MarshalBinary in a 15-byte raw: unix seconds, ns, zone
 * offset minutes (-1 = UTC). The zero time is rpc_enc_time_zero. */
void rpc_enc_time(struct rpc_enc *e, int64_t unix_sec, int32_t nsec,
                  int16_t offset_min);
void rpc_enc_time_zero(struct rpc_enc *e);
static inline void rpc_enc_duration(struct rpc_enc *e, int64_t ns)
{
    rpc_enc_int(e, ns);
}

/* ---- msgpack decoder: a zero-copy pull reader over a bounded buffer.
 * Raw/str/bin values point into the input. Containers give a count; the
 * caller reads that many items (maps: key, value) or skips them. */
enum rpc_type {
    RPC_NIL,
    RPC_BOOL,
    RPC_INT,
    RPC_UINT,
    RPC_FLOAT,
    RPC_RAW,
    RPC_ARRAY,
    RPC_MAP,
    RPC_EXT
};
struct rpc_val {
    enum rpc_type type;
    union {
        int b;
        int64_t i;  /* RPC_INT: always negative or from a signed form */
        uint64_t u; /* RPC_UINT */
        double f;
        uint32_t n; /* RPC_ARRAY / RPC_MAP: item count */
    } v;
    const uint8_t *p; /* RPC_RAW / RPC_EXT: bytes, len */
    size_t len;
    int8_t ext_type;
};
#define RPC_MAX_DEPTH 64         /* nesting rpc_dec_skip follows */
#define RPC_MAX_ITEMS (1u << 24) /* a container's declared count */
struct rpc_dec {
    const uint8_t *p, *end;
};
void rpc_dec_init(struct rpc_dec *d, const void *buf, size_t len);
/* Reads one value head. -ENODATA when the input is short (more bytes may
 * complete it), -EBADMSG for a reserved byte or a count over the limits. */
int rpc_dec_next(struct rpc_dec *d, struct rpc_val *v);
/* Skips one whole value (nested to RPC_MAX_DEPTH, else -E2BIG). Run on a
 * copy of the reader, it tells whether a whole body has arrived yet. */
int rpc_dec_skip(struct rpc_dec *d);
/* Typed reads for struct fields: nil reads as zero; either int family is
 * accepted where it fits (-ERANGE otherwise); -EPROTO for a wrong type. */
int rpc_dec_int(struct rpc_dec *d, int64_t *out);
int rpc_dec_uint(struct rpc_dec *d, uint64_t *out);
int rpc_dec_bool(struct rpc_dec *d, int *out);
int rpc_dec_float(struct rpc_dec *d, double *out);
/* A raw/str/bin (nil = empty); *p points into the input, not terminated. */
int rpc_dec_raw(struct rpc_dec *d, const uint8_t **p, size_t *len);
/* Same, copied into a malloc'd NUL-terminated string the caller frees;
 * -EBADMSG if it holds a NUL byte. */
int rpc_dec_strdup(struct rpc_dec *d, char **out);
/* A map or array head; nil gives 0 items. */
int rpc_dec_map(struct rpc_dec *d, uint32_t *n);
int rpc_dec_array(struct rpc_dec *d, uint32_t *n);
/* time.Time from its 15-byte form (or nil = zero time, *zero set). */
struct rpc_time {
    int64_t unix_sec;
    int32_t nsec;
    int16_t offset_min; /* -1 = UTC */
    int zero;           /* Go's zero time (0001-01-01) */
};
int rpc_dec_time(struct rpc_dec *d, struct rpc_time *t);

/* ---- yamux (hashicorp/yamux v0.1.1 spec). */
#define YAMUX_HDR_LEN 12
#define YAMUX_INITIAL_WINDOW (256u * 1024u)
enum yamux_type {
    YAMUX_DATA = 0,
    YAMUX_WINDOW_UPDATE = 1,
    YAMUX_PING = 2,
    YAMUX_GO_AWAY = 3
};
enum yamux_flag { YAMUX_SYN = 1, YAMUX_ACK = 2, YAMUX_FIN = 4, YAMUX_RST = 8 };
enum yamux_goaway {
    YAMUX_GOAWAY_NORMAL = 0,
    YAMUX_GOAWAY_PROTO = 1,
    YAMUX_GOAWAY_INTERNAL = 2
};
struct yamux_hdr {
    uint8_t version, type;
    uint16_t flags;
    uint32_t stream_id, length;
};
void yamux_hdr_encode(uint8_t out[YAMUX_HDR_LEN], const struct yamux_hdr *h);
/* -EPROTO for a version other than 0 or an unknown type. */
int yamux_hdr_decode(const uint8_t in[YAMUX_HDR_LEN], struct yamux_hdr *h);

/* A session: feed it the bytes read from the connection; it calls the
 * caller's callbacks for events and appends what must be written to
 * `out` (the caller writes out.buf[0..len) and then sets len = 0).
 * Callbacks may write, close or reset the stream they are given. A stream
 * is freed (its pointer dangles) after the STREAM_RESET event returns,
 * after yamux_stream_reset, and once both sides sent FIN (in
 * yamux_stream_close, or after the FIN event when we closed first). */
enum yamux_event {
    YAMUX_EV_STREAM_OPENED, /* peer SYN: a new inbound stream (already ACKed) */
    YAMUX_EV_STREAM_ACKED,  /* our open was accepted */
    YAMUX_EV_DATA,          /* data, len bytes at data */
    YAMUX_EV_STREAM_FIN,    /* peer closed its side */
    YAMUX_EV_STREAM_RESET,  /* stream reset by the peer */
    YAMUX_EV_WINDOW,        /* our send window grew */
    YAMUX_EV_PONG,          /* answer to our ping, value in len */
    YAMUX_EV_GO_AWAY,       /* peer goes away, code in len */
};
struct yamux_stream {
    uint32_t id;
    uint32_t send_window;   /* bytes we may still send */
    uint32_t recv_window;   /* bytes the peer may still send */
    uint32_t recv_consumed; /* delivered and not yet credited back */
    int local_fin, remote_fin, acked;
    struct yamux_stream *next;
};
struct yamux_session;
typedef void (*yamux_event_cb)(struct yamux_session *s, enum yamux_event ev,
                               struct yamux_stream *st, const uint8_t *data,
                               uint32_t len);
struct yamux_session {
    int client; /* client sessions open odd stream ids */
    uint32_t next_id;
    uint32_t max_streams; /* inbound SYNs over this are RST */
    uint32_t nstreams;
    struct yamux_stream *streams;
    struct rpc_enc out;         /* bytes to write */
    uint8_t hdr[YAMUX_HDR_LEN]; /* partial header being read */
    size_t hdr_have;
    struct yamux_hdr cur; /* header of the data frame being read */
    uint32_t body_left;
    uint32_t ping_id, ping_outstanding;
    int go_away_sent, go_away_received;
    int failed; /* protocol error: GoAway sent, stop */
    char error[160];
    yamux_event_cb cb;
    void *data;
};
void yamux_session_init(struct yamux_session *s, int client, yamux_event_cb cb,
                        void *data);
/* Frees the streams and the output buffer. */
void yamux_session_free(struct yamux_session *s);
/* Consumes all len bytes; -EPROTO (s->error says why, a GoAway is queued)
 * on a protocol violation, after which the session is failed. */
int yamux_session_input(struct yamux_session *s, const uint8_t *buf,
                        size_t len);
/* Opens a stream (WindowUpdate|SYN queued); NULL when out of memory/ids. */
struct yamux_stream *yamux_stream_open(struct yamux_session *s);
struct yamux_stream *yamux_stream_find(struct yamux_session *s, uint32_t id);
/* Queues up to len bytes as data frames within the send window; returns
 * the number queued (0 when the window is shut) or a negative errno. */
long yamux_stream_write(struct yamux_session *s, struct yamux_stream *st,
                        const uint8_t *buf, size_t len);
/* The caller consumed n delivered bytes: credit them back to the peer
 * (a window update once half the window is used). */
void yamux_stream_consumed(struct yamux_session *s, struct yamux_stream *st,
                           uint32_t n);
/* FIN our side; the stream is freed once both sides closed. */
void yamux_stream_close(struct yamux_session *s, struct yamux_stream *st);
void yamux_stream_reset(struct yamux_session *s, struct yamux_stream *st);
/* Keepalive: call from the caller's 30 s timer. Returns -ETIMEDOUT when
 * the previous ping is still unanswered (the caller closes the session). */
int yamux_session_ping(struct yamux_session *s);
void yamux_session_go_away(struct yamux_session *s, uint32_t code);

/* ---- net/rpc over a stream (net-rpc-msgpackrpc). */
#define RPC_PROTO_NOMAD 0x01 /* first byte of a connection or stream */
#define RPC_PROTO_STREAMING 0x05
#define RPC_PROTO_MULTIPLEX_V2 0x06
/* Appends a request header {ServiceMethod, Seq}; the body follows. */
void rpc_enc_request_header(struct rpc_enc *e, const char *method,
                            uint64_t seq);
void rpc_enc_response_header(struct rpc_enc *e, const char *method,
                             uint64_t seq, const char *error);
struct rpc_header {
    const uint8_t *method; /* into the input */
    size_t method_len;
    uint64_t seq;
    const uint8_t *error; /* NULL/0 when none */
    size_t error_len;
};
/* Reads a request or response header (unknown keys ignored). -ENODATA
 * when more bytes are needed; d is left where the body begins. */
int rpc_dec_header(struct rpc_dec *d, struct rpc_header *h);

#endif
