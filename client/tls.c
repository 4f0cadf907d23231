/* tls.c - see tls.h. OpenSSL's functions are typed from its headers with
 * __typeof__ (as client/curl_uv.c does for libcurl), so a header and ABI
 * mismatch fails to build; the library itself is only mapped by
 * tls_available / tls_ctx_new. */
#include "client/tls.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the library, loaded once per process ---- */

#define SSL_FUNCTIONS(X)                                                       \
    X(OPENSSL_init_ssl)                                                        \
    X(TLS_server_method)                                                       \
    X(TLS_client_method)                                                       \
    X(SSL_CTX_new)                                                             \
    X(SSL_CTX_free)                                                            \
    X(SSL_CTX_ctrl)                                                            \
    X(SSL_CTX_set_options)                                                     \
    X(SSL_CTX_use_certificate_chain_file)                                      \
    X(SSL_CTX_use_PrivateKey_file)                                             \
    X(SSL_CTX_check_private_key)                                               \
    X(SSL_CTX_load_verify_locations)                                           \
    X(SSL_CTX_set_default_verify_paths)                                        \
    X(SSL_CTX_set_verify)                                                      \
    X(SSL_CTX_set_cipher_list)                                                 \
    X(SSL_new)                                                                 \
    X(SSL_free)                                                                \
    X(SSL_ctrl)                                                                \
    X(SSL_set_bio)                                                             \
    X(SSL_set_accept_state)                                                    \
    X(SSL_set_connect_state)                                                   \
    X(SSL_do_handshake)                                                        \
    X(SSL_read)                                                                \
    X(SSL_write)                                                               \
    X(SSL_shutdown)                                                            \
    X(SSL_get_error)                                                           \
    X(SSL_get_verify_result)                                                   \
    X(SSL_get0_param)                                                          \
    X(X509_VERIFY_PARAM_set1_host)                                             \
    X(X509_VERIFY_PARAM_set1_ip_asc)                                           \
    X(X509_verify_cert_error_string)                                           \
    X(BIO_new)                                                                 \
    X(BIO_s_mem)                                                               \
    X(BIO_read)                                                                \
    X(BIO_write)                                                               \
    X(BIO_ctrl_pending)                                                        \
    X(ERR_get_error)                                                           \
    X(ERR_peek_last_error)                                                     \
    X(ERR_reason_error_string)                                                 \
    X(ERR_clear_error)

static struct {
#define X(name) __typeof__(name) *name;
    SSL_FUNCTIONS(X)
#undef X
} lib;
static int lib_state; /* 0 not tried, 1 loaded, -1 failed */
static char lib_error[512];

/* No dlclose: OpenSSL keeps global state and atexit handlers. libssl
 * pulls libcrypto in, and dlsym on libssl's handle searches both. */
static bool lib_load(void)
{
    if (lib_state)
        return lib_state > 0;
    lib_state = -1;
    static const char *const names[] = {"libssl.so.3", NULL};
    static const struct nc_dlsym syms[] = {SSL_FUNCTIONS(NC_DLSYM)};
    if (!nc_dlopen_symbols("NOMCLIENT_LIBSSL", names, "libssl", syms,
                           NC_ARRAY_LEN(syms), lib_error, sizeof(lib_error)))
        return false;
    /* no openssl.cnf: its providers and engines are not ours to load */
    if (!lib.OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL)) {
        snprintf(lib_error, sizeof(lib_error), "OPENSSL_init_ssl failed");
        return false;
    }
    lib_state = 1;
    return true;
}

bool tls_available(char *why, size_t whylen)
{
    bool ok = lib_load();
    if (!ok && why && whylen)
        snprintf(why, whylen, "%s", lib_error);
    return ok;
}

/* ---- Nomad's names ---- */

static const struct {
    const char *name;
    int version;
} versions[] = {
    {"tls10", TLS1_VERSION},
    {"tls11", TLS1_1_VERSION},
    {"tls12", TLS1_2_VERSION},
};

/* helper/tlsutil's supportedTLSCiphers, with OpenSSL's names */
static const struct {
    const char *nomad, *openssl;
} ciphers[] = {
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
};

static int version_of(const char *v)
{
    if (!v || !*v)
        return TLS1_2_VERSION;
    for (size_t i = 0; i < NC_ARRAY_LEN(versions); i++)
        if (strcmp(versions[i].name, v) == 0)
            return versions[i].version;
    return -1;
}

int tls_check_min_version(const char *v, char *msg, size_t msglen)
{
    if (version_of(v) > 0)
        return 0;
    snprintf(msg, msglen,
             "unsupported TLS version \"%s\" (one of tls10, tls11, tls12)", v);
    return -EINVAL;
}

/* Turns "A, B" into OpenSSL's "a:b" (appended to out); on an unknown name
 * returns -EINVAL with msg. */
static int cipher_list(const char *v, struct nc_buf *out, char *msg,
                       size_t msglen)
{
    for (const char *p = v; p && *p;) {
        size_t n = strcspn(p, ",");
        const char *s = p, *e = p + n;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        const char *found = NULL;
        for (size_t i = 0; i < NC_ARRAY_LEN(ciphers) && s < e; i++)
            if (strlen(ciphers[i].nomad) == (size_t)(e - s) &&
                memcmp(ciphers[i].nomad, s, (size_t)(e - s)) == 0)
                found = ciphers[i].openssl;
        if (!found) {
            snprintf(msg, msglen, "unsupported TLS cipher \"%.*s\"",
                     (int)(e - s), s);
            return -EINVAL;
        }
        if (out) {
            if (out->len)
                nc_buf_putc(out, ':');
            nc_buf_puts(out, found);
        }
        p = p[n] ? p + n + 1 : p + n;
    }
    return 0;
}

int tls_check_cipher_suites(const char *v, char *msg, size_t msglen)
{
    return cipher_list(v, NULL, msg, msglen);
}

/* ---- contexts ---- */

struct tls_ctx {
    SSL_CTX *ssl;
    bool server;
};

/* The reason of OpenSSL's last error, or `fallback`. */
static const char *last_reason(const char *fallback)
{
    unsigned long e = lib.ERR_peek_last_error();
    const char *r = e ? lib.ERR_reason_error_string(e) : NULL;
    return r ? r : fallback;
}

static int readable(const char *what, const char *path, struct nc_error *err)
{
    if (access(path, R_OK) == 0)
        return 0;
    int e = errno;
    return nc_error_set(err, -e, "%s \"%s\": %s", what, path, strerror(e));
}

int tls_ctx_new(struct tls_ctx **out, bool server, const struct tls_settings *s,
                struct nc_error *err)
{
    char why[512];
    if (!tls_available(why, sizeof(why)))
        return nc_error_set(err, -ENOSYS, "TLS needs OpenSSL 3 (libssl.so.3): %s",
                            why);
    int version = version_of(s->min_version);
    if (version < 0)
        return nc_error_set(err, -EINVAL, "unsupported TLS version \"%s\"",
                            s->min_version);
    struct nc_buf list = {0};
    if (s->cipher_suites && *s->cipher_suites &&
        cipher_list(s->cipher_suites, &list, why, sizeof(why)) < 0)
        return nc_error_set(err, -EINVAL, "%s", why);
    lib.ERR_clear_error();
    SSL_CTX *ssl =
        lib.SSL_CTX_new(server ? lib.TLS_server_method() : lib.TLS_client_method());
    if (!ssl) {
        nc_buf_free(&list);
        return nc_error_set(err, -ENOMEM, "TLS context: %s",
                            last_reason("out of memory"));
    }
    int r = 0;
    lib.SSL_CTX_ctrl(ssl, SSL_CTRL_SET_MIN_PROTO_VERSION, version, NULL);
    /* idle keep-alive connections hold no read/write buffers */
    lib.SSL_CTX_ctrl(ssl, SSL_CTRL_MODE, SSL_MODE_RELEASE_BUFFERS, NULL);
    lib.SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (list.len && !lib.SSL_CTX_set_cipher_list(ssl, list.data)) {
        r = nc_error_set(err, -EINVAL, "cipher suites \"%s\": %s",
                         s->cipher_suites, last_reason("none usable"));
        goto fail;
    }
    if (s->cert_file && *s->cert_file) {
        if ((r = readable("certificate file", s->cert_file, err)) < 0)
            goto fail;
        if (!s->key_file || !*s->key_file) {
            r = nc_error_set(err, -EINVAL, "certificate file \"%s\" given "
                                           "without a key file", s->cert_file);
            goto fail;
        }
        if ((r = readable("key file", s->key_file, err)) < 0)
            goto fail;
        if (!lib.SSL_CTX_use_certificate_chain_file(ssl, s->cert_file)) {
            r = nc_error_set(err, -EINVAL, "certificate file \"%s\": %s",
                             s->cert_file, last_reason("not a PEM certificate"));
            goto fail;
        }
        if (!lib.SSL_CTX_use_PrivateKey_file(ssl, s->key_file, SSL_FILETYPE_PEM)) {
            r = nc_error_set(err, -EINVAL,
                             "key file \"%s\" (for certificate file \"%s\"): "
                             "%s",
                             s->key_file, s->cert_file,
                             last_reason("not a PEM private key"));
            goto fail;
        }
        if (!lib.SSL_CTX_check_private_key(ssl)) {
            r = nc_error_set(err, -EINVAL,
                             "key file \"%s\" does not match certificate "
                             "file \"%s\": %s",
                             s->key_file, s->cert_file, last_reason("mismatch"));
            goto fail;
        }
    } else if (server) {
        r = nc_error_set(err, -EINVAL, "a TLS server needs a certificate file "
                                       "and a key file");
        goto fail;
    }
    if (s->ca_file && *s->ca_file) {
        if ((r = readable("CA file", s->ca_file, err)) < 0)
            goto fail;
        if (!lib.SSL_CTX_load_verify_locations(ssl, s->ca_file, NULL)) {
            r = nc_error_set(err, -EINVAL, "CA file \"%s\": %s", s->ca_file,
                             last_reason("no PEM certificate in it"));
            goto fail;
        }
    } else if (!server && s->verify_peer) {
        lib.SSL_CTX_set_default_verify_paths(ssl);
    } else if (server && s->verify_peer) {
        r = nc_error_set(err, -EINVAL, "verifying client certificates needs "
                                       "a CA file");
        goto fail;
    }
    int mode = SSL_VERIFY_NONE;
    if (s->verify_peer)
        mode = server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                      : SSL_VERIFY_PEER;
    lib.SSL_CTX_set_verify(ssl, mode, NULL);
    nc_buf_free(&list);
    *out = xcalloc(1, sizeof(**out));
    (*out)->ssl = ssl;
    (*out)->server = server;
    return 0;
fail:
    nc_buf_free(&list);
    lib.SSL_CTX_free(ssl);
    return r;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (!ctx)
        return;
    lib.SSL_CTX_free(ctx->ssl); /* reference counted by its sessions */
    free(ctx);
}

/* ---- sessions ---- */

struct tls_conn {
    SSL *ssl;
    BIO *in, *out; /* owned by ssl */
    char error[320];
};

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, const char *peer_name)
{
    SSL *ssl = lib.SSL_new(ctx->ssl);
    BIO *in = ssl ? lib.BIO_new(lib.BIO_s_mem()) : NULL;
    BIO *out = in ? lib.BIO_new(lib.BIO_s_mem()) : NULL;
    if (!out) {
        fprintf(stderr, "nomclient: out of memory (TLS session)\n");
        abort();
    }
    lib.SSL_set_bio(ssl, in, out);
    if (ctx->server) {
        lib.SSL_set_accept_state(ssl);
    } else {
        lib.SSL_set_connect_state(ssl);
        if (peer_name && *peer_name) {
            unsigned char ip[16];
            X509_VERIFY_PARAM *p = lib.SSL_get0_param(ssl);
            if (inet_pton(AF_INET, peer_name, ip) == 1 ||
                inet_pton(AF_INET6, peer_name, ip) == 1) {
                lib.X509_VERIFY_PARAM_set1_ip_asc(p, peer_name);
            } else {
                lib.X509_VERIFY_PARAM_set1_host(p, peer_name, 0);
                lib.SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME,
                             TLSEXT_NAMETYPE_host_name, (void *)peer_name);
            }
        }
    }
    struct tls_conn *c = xcalloc(1, sizeof(*c));
    c->ssl = ssl;
    c->in = in;
    c->out = out;
    return c;
}

void tls_conn_free(struct tls_conn *c)
{
    if (!c)
        return;
    lib.SSL_free(c->ssl);
    free(c);
}

void tls_conn_feed(struct tls_conn *c, const void *data, size_t len)
{
    if (len)
        lib.BIO_write(c->in, data, (int)len);
}

/* Maps the result of an SSL call: -EAGAIN (wants input), 0 (closed), or
 * -EPROTO with c->error set. */
static int ssl_result(struct tls_conn *c, int ret)
{
    int e = lib.SSL_get_error(c->ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        return -EAGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    long v = lib.SSL_get_verify_result(c->ssl);
    unsigned long err = lib.ERR_get_error();
    if (v != X509_V_OK)
        snprintf(c->error, sizeof(c->error), "certificate verify failed: %s",
                 lib.X509_verify_cert_error_string(v));
    else if (err && lib.ERR_reason_error_string(err))
        snprintf(c->error, sizeof(c->error), "%s",
                 lib.ERR_reason_error_string(err));
    else
        snprintf(c->error, sizeof(c->error), "the peer closed the connection");
    lib.ERR_clear_error();
    return -EPROTO;
}

int tls_conn_handshake(struct tls_conn *c)
{
    int ret = lib.SSL_do_handshake(c->ssl);
    if (ret == 1)
        return 0;
    int r = ssl_result(c, ret);
    if (r == 0) {
        snprintf(c->error, sizeof(c->error),
                 "the peer closed the connection during the handshake");
        r = -EPROTO;
    }
    return r;
}

long tls_conn_read(struct tls_conn *c, void *buf, size_t len)
{
    int ret = lib.SSL_read(c->ssl, buf, (int)(len > 1u << 30 ? 1u << 30 : len));
    if (ret > 0)
        return ret;
    return ssl_result(c, ret);
}

int tls_conn_write(struct tls_conn *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        int n = (int)(len > 1u << 30 ? 1u << 30 : len);
        int ret = lib.SSL_write(c->ssl, p, n);
        if (ret <= 0) {
            int r = ssl_result(c, ret);
            return r == -EAGAIN ? -EAGAIN : -EPROTO;
        }
        p += ret;
        len -= (size_t)ret;
    }
    return 0;
}

void tls_conn_shutdown(struct tls_conn *c)
{
    lib.SSL_shutdown(c->ssl);
    lib.ERR_clear_error();
}

size_t tls_conn_take_output(struct tls_conn *c, struct nc_buf *out)
{
    size_t total = 0;
    size_t pending;
    while ((pending = lib.BIO_ctrl_pending(c->out)) > 0) {
        nc_grow((void **)&out->data, &out->cap, out->len + pending + 1, 1);
        int n = lib.BIO_read(c->out, out->data + out->len, (int)pending);
        if (n <= 0)
            break;
        out->len += (size_t)n;
        out->data[out->len] = '\0';
        total += (size_t)n;
    }
    return total;
}

const char *tls_conn_error(const struct tls_conn *c)
{
    return c->error[0] ? c->error : "TLS failure";
}
