// deps: client/acl/ client/hcl/ client/util.c
/* libFuzzer target for the ACL policy parser and the token headers: the
 * input is split at its first NUL into a policy and a header value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/acl/acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    struct acl_rules r;
    struct nc_error err = {0};
    struct acl acl = {0};
    if (acl_rules_parse(src, plen, &r, &err) == 0) {
        acl_merge(&acl, &r);
        acl_allow_ns(&acl, "default", ACL_NS_READ_LOGS);
        acl_allow_ns(&acl, "prod-**a", ACL_NS_SUBMIT_JOB);
        acl_allow_ns(&acl, "*", ACL_NS_LIST_JOBS);
        acl_allow_node(&acl, ACL_LEVEL_WRITE);
    }
    acl_rules_free(&r);
    acl_free(&acl);
    if (nul) {
        char *hdr = strndup((const char *)nul + 1, size - plen - 1);
        char out[64];
        acl_token_from_headers(hdr, NULL, out, sizeof(out));
        acl_token_from_headers(NULL, hdr, out, sizeof(out));
        acl_is_uuid(out);
        char h[65];
        acl_hash_secret(hdr, h);
        free(hdr);
    }
    return 0;
}
