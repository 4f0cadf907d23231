// deps: client/hcl/ client/util.c
/* libFuzzer target for the HCL parser: parse, dump every value, free. */
#include <stdint.h>
#include <stdlib.h>

#include "client/hcl/hcl.h"

static void walk(const struct hcl_body *b)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->items[i].type == HCL_BLOCK)
            walk(b->items[i].body);
        else
            free(hcl_value_to_string(b->items[i].value));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hcl_file *f = NULL;
    struct nc_error err = {0};
    if (hcl_parse("fuzz.hcl", (const char *)data, size, &f, &err) == 0) {
        walk(f->body);
        hcl_file_free(f);
    }
    return 0;
}
