// deps: client/job/ client/hcl/ client/util.c
/* libFuzzer target for the job model: every input goes through the HCL
 * and the JSON decoder. Whatever decodes must encode, decode again and
 * encode to the same JSON; anything else is a bug, reported by abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/job.h"

static void check_roundtrip(const struct job *job)
{
    json_t *a = jobspec_to_json(job);
    struct job *back = NULL;
    struct nc_error err = {0};
    if (jobspec_from_json(a, &back, &err) != 0) {
        fprintf(stderr, "round trip decode failed: %s\n", err.msg);
        abort();
    }
    json_t *b = jobspec_to_json(back);
    char *sa = json_dumps(a, JSON_COMPACT);
    char *sb = json_dumps(b, JSON_COMPACT);
    if (!sa || !sb || strcmp(sa, sb) != 0) {
        fprintf(stderr, "round trip differs:\n%s\n%s\n", sa ? sa : "(null)",
                sb ? sb : "(null)");
        abort();
    }
    /* validation of a decoded model must accept it again */
    if (jobspec_validate(back, &err) != 0) {
        fprintf(stderr, "revalidation failed: %s\n", err.msg);
        abort();
    }
    free(sa);
    free(sb);
    json_decref(a);
    json_decref(b);
    jobspec_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct job *job = NULL;
    struct nc_error err = {0};
    if (jobspec_parse_hcl("fuzz.nomad", (const char *)data, size, &job,
                          &err) == 0) {
        check_roundtrip(job);
        jobspec_free(job);
    } else if (err.msg[0] == '\0') {
        fprintf(stderr, "HCL error without a message\n");
        abort();
    }
    job = NULL;
    memset(&err, 0, sizeof(err));
    if (jobspec_parse_json("fuzz.json", (const char *)data, size, &job,
                           &err) == 0) {
        check_roundtrip(job);
        jobspec_free(job);
    } else if (err.msg[0] == '\0') {
        fprintf(stderr, "JSON error without a message\n");
        abort();
    }
    return 0;
}
