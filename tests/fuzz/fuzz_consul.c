// deps: client/services/consul_view.c client/services/consul_diff.c
// deps: client/services/consul_request.c client/services/consul_loop.c
// deps: client/services/consul_sync.c client/services/consul_status.c
// deps: client/curl_uv.c client/services/services.c client/alloc/alloc.c
// deps: client/job/ client/hcl/
// deps: client/util.c
/* libFuzzer target for what the Consul sync loop reads from Consul: the
 * answers to GET /v1/agent/services and /v1/agent/checks (the input, split
 * at its first NUL byte), scanned, then diffed against a fixed desired
 * registration, listed for stale services and looked up check by check.
 * The differences must stay valid UTF-8 (they go into JSON), few and
 * short, whatever Consul sends. The first line also goes through the
 * address parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/services/services.h"

void alloc_checks_each(const struct alloc_checks *ac, const char *alloc_id,
                       const char *task, const char *service,
                       alloc_checks_each_fn fn, void *arg)
{
    (void)ac, (void)alloc_id, (void)task, (void)service, (void)fn, (void)arg;
}

static bool odd(void *arg, const char *id)
{
    (void)arg;
    return strlen(id) % 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *payload;
    if (!payload)
        payload = json_loads(
            "{\"ID\": \"_nomad-task-a-web-web-http\", \"Name\": \"web\","
            " \"Tags\": [\"a\", \"b\"], \"Address\": \"10.0.0.5\","
            " \"Port\": 8080, \"Meta\": {\"external-source\": \"nomad\","
            " \"v\": \"1\"}, \"EnableTagOverride\": false, \"Checks\": ["
            " {\"CheckID\": \"c1\", \"Name\": \"n\", \"TTL\": \"15s\"},"
            " {\"CheckID\": \"c2\", \"Name\": \"m\", \"TTL\": \"1m30s\"}]}",
            0, NULL);
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t slen = nul ? (size_t)(nul - text) : size;
    const char *checks = nul ? nul + 1 : NULL;
    size_t clen = nul ? size - slen - 1 : 0;

    const char *nl = memchr(text, '\n', slen);
    char *addr = strndup(text, nl ? (size_t)(nl - text) : slen);
    struct consul_addr a;
    if (addr && consul_addr_parse(addr, size & 1, &a, NULL) == 0) {
        if (strncmp(a.base_url, "http", 4) != 0)
            abort();
        consul_addr_free(&a);
    }
    free(addr);

    struct consul_view *v = NULL;
    struct nc_error err = {0};
    if (consul_view_parse(&v, text, slen, checks, clen, &err) != 0) {
        if (!err.msg[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    struct strlist diffs = {0};
    consul_diff(payload, v, &diffs);
    if (diffs.n > 64)
        abort();
    for (size_t i = 0; i < diffs.n; i++) {
        json_t *j = json_string(diffs.items[i]);
        if (!j || strlen(diffs.items[i]) > 1024)
            abort();
        json_decref(j);
    }
    strlist_free(&diffs);
    struct strlist stale = {0};
    consul_view_stale(v, odd, NULL, &stale);
    for (size_t i = 0; i < stale.n; i++) {
        const char *name, *address;
        long long port;
        if (!consul_view_service(v, stale.items[i], &name, &address, &port))
            abort();
        consul_view_forget(v, stale.items[i]);
        if (consul_view_service(v, stale.items[i], NULL, NULL, NULL))
            abort();
    }
    strlist_free(&stale);
    const char *out;
    consul_view_check_status(v, "c1", &out);
    consul_view_check_status(v, "c2", &out);
    size_t nchecks;
    consul_view_count(v, &nchecks);
    consul_view_free(v);
    return 0;
}
