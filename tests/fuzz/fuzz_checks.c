// deps: checks/ client/util.c
// deps: client/curl_uv.c
/* libFuzzer target for the HTTP and gRPC probes' response handling.
 * First byte odd: the gRPC answer (header/trailer lines, then after the
 * first NUL the body's message frame) through the same trailer parsing,
 * message parsing and output wording the probe uses. Else: arbitrary bytes
 * as a server's answer, fed in chunks whose size the first byte picks,
 * through the same parser, body cap, redirect resolution and output
 * wording a real probe uses. The output must stay valid UTF-8 (it goes
 * into JSON) and the kept body within CHK_OUTPUT_MAX. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checks/checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        const char *lines = (const char *)data + 1;
        size_t n = size - 1;
        const char *nul = memchr(lines, '\0', n);
        size_t llen = nul ? (size_t)(nul - lines) : n;
        const unsigned char *body = nul ? (const unsigned char *)nul + 1 : NULL;
        size_t blen = nul ? n - llen - 1 : 0;
        struct nc_buf gout = {0};
        enum chk_status st = chk_grpc_conclude("127.0.0.1:9090/web", 200, lines,
                                               llen, body, blen, &gout);
        json_t *gj = json_string(gout.data ? gout.data : "");
        if (!gj || (st != CHK_PASSING && st != CHK_CRITICAL))
            abort();
        json_decref(gj);
        nc_buf_free(&gout);
        return 0;
    }
    size_t chunk = data[0] % 17; /* 0 = all at once */
    struct nc_buf out = {0};
    struct chk_result r;
    chk_http_feed_for_test((const char *)data + 1, size - 1, chunk, &r, &out);
    json_t *j = json_string(out.data ? out.data : "");
    if (!j)
        abort(); /* invalid UTF-8 would drop Output from the JSON */
    json_decref(j);
    /* prefix + reason (<= 37 bytes) + body (<= 4096 bytes) + redirect
     * note (< 2048), each byte at most 3 once made valid UTF-8 */
    if (out.len > 200 + 3 * (37 + CHK_OUTPUT_MAX + 2048))
        abort();
    if (r.status != CHK_PASSING && r.status != CHK_WARNING &&
        r.status != CHK_CRITICAL)
        abort();
    nc_buf_free(&out);
    return 0;
}
