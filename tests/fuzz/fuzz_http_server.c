// deps: client/api/http_server.c client/tls.c client/util.c
/* libFuzzer target for the HTTP request path: arbitrary bytes through the
 * same parser, limits and response writer the sockets use. */
#include <stdint.h>
#include <stdlib.h>

#include "client/api/api.h"

static void handler(void *ctx, const struct http_request *req,
                    struct http_response *resp)
{
    (void)ctx;
    http_response_json(resp, 200,
                       json_pack("{s:s, s:s, s:i}", "m", req->method, "p",
                                 req->path, "n", (int)req->body_len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nc_buf out = {0};
    http_server_feed_for_test((const char *)data, size, handler, NULL, &out);
    nc_buf_free(&out);
    return 0;
}
