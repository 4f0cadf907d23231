// deps: client/config.c client/config_decode.c client/config_json.c
// deps: client/config_schema.c client/config_validate.c client/tls.c client/hcl/ client/util.c
// deps: client/drivers/ client/curl_uv.c client/alloc/alloc.c client/node/ client/job/ volumes/
/* libFuzzer target for the agent config loader: HCL and JSON text through
 * config_load_string and config_validate, on top of the defaults. */
#include <stdint.h>
#include <string.h>

#include "client/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first byte picks the form, as the file extension does */
    const char *name = size && (data[0] & 1) ? "fuzz.json" : "fuzz.hcl";
    struct agent_config cfg;
    struct nc_error err = {0};
    config_defaults(&cfg, false);
    if (config_load_string(&cfg, name, (const char *)data, size, &err) == 0)
        config_validate(&cfg, &err);
    config_free(&cfg);
    return 0;
}
