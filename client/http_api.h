/* http_api.h - routes of the agent's HTTP API (Nomad's /v1 shapes). */
#ifndef NOMCLIENT_HTTP_API_H
#define NOMCLIENT_HTTP_API_H

struct http_request;
struct http_response;

/* The http_server handler; ctx is the struct agent. */
void http_api_handle(void *ctx, const struct http_request *req,
                     struct http_response *resp);

#endif
