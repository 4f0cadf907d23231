/* tls.h - the one TLS layer of the agent and the CLI (the HTTP API here,
 * the servers' RPC later): OpenSSL, loaded with dlopen on first use so that
 * an agent without TLS, the CLI over plain HTTP and the task supervisors
 * never map it.
 *
 * A tls_conn is a TLS session over memory buffers: the caller moves the
 * bytes (libuv in the agent, poll in the CLI), feeds what the peer sent
 * with tls_conn_feed and sends what tls_conn_take_output hands back, so
 * nothing here ever blocks or owns a socket. */
#ifndef NOMCLIENT_TLS_H
#define NOMCLIENT_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "client/util.h"

/* Nomad's tls block, as the files spell it (strings borrowed). */
struct tls_settings {
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    /* server: require and verify a client certificate (verify_https_client);
     * client: verify the server's chain and name (not -tls-skip-verify) */
    bool verify_peer;
    const char *min_version;   /* "tls10", "tls11", "tls12" (NULL: tls12) */
    const char *cipher_suites; /* Nomad's names, comma separated; NULL:
                                  OpenSSL's defaults */
};

/* Whether OpenSSL can be loaded; why not in `why`. Loads it. */
bool tls_available(char *why, size_t whylen);

/* Config checks, usable without the library: 0, or -EINVAL with msg. */
int tls_check_min_version(const char *v, char *msg, size_t msglen);
int tls_check_cipher_suites(const char *v, char *msg, size_t msglen);

struct tls_ctx;

/* Loads the certificates and settings into a context for servers or
 * clients. Errors name the file and what OpenSSL said. Free with
 * tls_ctx_free; sessions made from it keep it alive as long as they
 * live, so a reload can free the old one at once. */
int tls_ctx_new(struct tls_ctx **out, bool server, const struct tls_settings *s,
                struct nc_error *err);
void tls_ctx_free(struct tls_ctx *ctx);

struct tls_conn;

/* A new session. `peer_name` (clients): the host name or IP address the
 * server's certificate must carry; NULL to skip the name check. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, const char *peer_name);
void tls_conn_free(struct tls_conn *c);

/* Hands the session bytes the peer sent. */
void tls_conn_feed(struct tls_conn *c, const void *data, size_t len);
/* Advances the handshake: 0 once done, -EAGAIN while it needs the peer's
 * bytes, -EPROTO on failure (tls_conn_error says why). */
int tls_conn_handshake(struct tls_conn *c);
/* Plain bytes read: > 0 bytes, -EAGAIN none yet, 0 the peer closed the
 * session, -EPROTO on failure. */
long tls_conn_read(struct tls_conn *c, void *buf, size_t len);
/* Encrypts all of data (the output grows in memory): 0 or -EPROTO. */
int tls_conn_write(struct tls_conn *c, const void *data, size_t len);
/* Queues a close_notify. */
void tls_conn_shutdown(struct tls_conn *c);
/* Appends what is to be sent to the peer to out; returns the bytes. */
size_t tls_conn_take_output(struct tls_conn *c, struct nc_buf *out);
/* Why the last call failed: "certificate verify failed: certificate has
 * expired", an alert the peer sent, ... */
const char *tls_conn_error(const struct tls_conn *c);

#endif
