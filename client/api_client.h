/* api_client.h - the CLI's side of the HTTP API (plain HTTP/1.1 over a socket):
 * one request at a time, with the agent address from -address,
 * NOMCLIENT_ADDR, or http://127.0.0.1:4646. */
#ifndef NOMCLIENT_API_CLIENT_H
#define NOMCLIENT_API_CLIENT_H

#include <jansson.h>

#include "util.h"

struct api_client {
    char *address; /* "http://127.0.0.1:4646", no trailing slash */
};

/* Picks the address: explicit flag, then $NOMCLIENT_ADDR, then default. */
void api_client_init(struct api_client *c, const char *flag_address);
void api_client_free(struct api_client *c);

/* Sends a request with an optional JSON body (borrowed). On a 2xx answer
 * *out gets the decoded JSON (new reference; NULL for an empty body).
 * On a non-2xx answer returns -EPROTO with err holding the agent's error
 * text and the status; on a transport failure returns -ECONNREFUSED or
 * similar with err naming the URL. *status (optional) gets the code. */
int api_request(struct api_client *c, const char *method, const char *path,
                const json_t *body, json_t **out, long *status,
                struct nc_error *err);

/* GETs a plain-text resource (logs); *out is NUL-terminated, caller frees. */
int api_get_text(struct api_client *c, const char *path, char **out,
                 size_t *len, struct nc_error *err);

/* GETs a streamed resource (`alloc logs -f`), handing the body to `sink`
 * as it arrives until the agent ends it; no read timeout. */
int api_stream_text(struct api_client *c, const char *path,
                    void (*sink)(void *arg, const char *data, size_t len),
                    void *arg, struct nc_error *err);

/* The decoded JSON of the last non-2xx answer's body, if any (borrowed,
 * valid until the next request). */
const json_t *api_last_error_body(void);

#endif
