// deps: checks/checks.c checks/net.c checks/probe_http.c checks/probe_https.c
// deps: checks/probe_tcp.c checks/schedule.c checks/timers.c client/util.c
// deps: client/curl_uv.c
/* libFuzzer target for the HTTP probe's response handling: arbitrary bytes
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
