// deps: netns/conf.c netns/iptables.c netns/exec.c netns/state.c
// deps: client/util.c
/* libFuzzer target for what netns/ reads from outside: custom network
 * configs (conflist or single plugin), a plugin's result and error output,
 * the helper's request and response, state journals and iptables-save
 * text. The first byte picks the parser; nothing is run or written. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netns/netns_internal.h"

static bool any_id(const char *id, const char *ip, void *arg)
{
    (void)ip;
    (void)arg;
    return id[0] != 'x';
}

static bool any_ip(const char *ip, void *arg)
{
    (void)arg;
    return ip[0] != '9';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char msg[512];
    json_t *j = NULL;
    switch (data[0] % 7) {
    case 0: /* a config file: list or single plugin */
    case 1:
        if (netns_conflist_parse(text, len, "fuzz.conf", data[0] % 7 == 1, &j,
                                 NULL) == 0) {
            json_t *c = netns_plugin_config(j, 0, NULL, NULL);
            json_decref(c);
            free(netns_ipam_dir(j));
            json_decref(j);
        }
        break;
    case 2: /* a plugin's result, and the address picked from it */
        if (netns_result_parse(text, len, &j, msg, sizeof(msg)) == 0) {
            char ip[64];
            netns_result_ip(j, "eth0", ip, sizeof(ip));
            json_decref(j);
        }
        break;
    case 3: { /* a plugin's error (stdout, and stderr as a string) */
        char *errout = strndup(text, len);
        netns_plugin_error(text, len, errout, 1, msg, sizeof(msg));
        free(errout);
        break;
    }
    case 4: { /* a helper request and response */
        j = json_loadb(text, len, 0, NULL);
        struct netns_request r;
        if (j && netns_request_from_json(j, &r, NULL) == 0) {
            json_t *back = netns_request_to_json(&r);
            json_decref(back);
            netns_request_free(&r);
        }
        json_decref(j);
        struct netns_response resp;
        if (netns_response_parse(text, len, &resp, NULL) == 0)
            netns_response_free(&resp);
        break;
    }
    case 5: /* a state journal */
        if (netns_state_parse(text, len, "a1", &j, msg, sizeof(msg)) == 0) {
            netns_state_best_result(j);
            json_decref(j);
        }
        break;
    case 6: { /* iptables-save output */
        char *s = strndup(text, len);
        struct netns_ipt_plan plan = {0};
        netns_ipt_plan_build(&plan, s, "nomad", any_id, NULL, "10.0.0.0/8",
                             any_ip, NULL);
        free(netns_ipt_plan_script(&plan));
        netns_ipt_plan_free(&plan);
        struct netns_hostport_count c;
        netns_hostport_count(s, &c);
        free(netns_hostport_script(&c, true, true));
        free(s);
        break;
    }
    }
    return 0;
}
