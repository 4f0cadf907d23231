// deps: client/config.c client/config_decode.c client/config_json.c
// deps: client/config_schema.c client/config_validate.c client/tls.c
// deps: client/drivers/driver.c client/drivers/exec.c
// deps: client/drivers/supervisor.c client/drivers/cgroup.c
// deps: client/drivers/caps.c client/drivers/docker_config.c
// deps: client/drivers/docker_image_ref.c client/drivers/docker_validate.c
// deps: client/drivers/docker_body.c client/drivers/docker_auth.c
// deps: client/alloc/alloc.c client/node/ client/job/ client/hcl/
// deps: client/util.c volumes/ client/drivers/docker_api.c client/curl_uv.c
/* libFuzzer target for the docker driver's config half: the input is an
 * image reference (first byte even) or a task config as JSON (odd),
 * checked with and without the plugin config and made into a container
 * create body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/drivers/docker_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *text = xstrndup((const char *)data + 1, size - 1);
    if (!(data[0] & 1)) {
        char *repo, *tag, *digest;
        if (docker_parse_image(text, &repo, &tag, &digest, NULL) == 0) {
            free(repo);
            free(tag);
            free(digest);
        }
        free(docker_image_with_tag(text));
        free(docker_registry_of(text));
        free(text);
        return 0;
    }
    json_t *config = json_loads(text, JSON_DECODE_ANY, NULL);
    free(text);
    if (!config)
        return 0;
    /* a seccomp profile is a file to read: not one named by the input */
    if (json_is_object(config))
        json_object_del(config, "security_opt");
    static struct agent_config cfg;
    static bool ready;
    if (!ready) {
        config_defaults(&cfg, false);
        ready = true;
    }
    struct task spec = {.name = "t", .driver = "docker", .config = config};
    spec.resources.cpu = 100;
    spec.resources.memory_mb = 64;
    struct nc_error err = {0};
    docker_validate(NULL, &spec, &err);
    if (docker_validate(&cfg, &spec, &err) == 0) {
        struct alloc a = {
            .id = "a1", .job_id = "j", .group = "g", .namespace = "default"};
        struct kvlist env = {0};
        kv_set(&env, "NOMAD_ALLOC_DIR", "/alloc");
        struct docker_task_ctx c = {.cfg = &cfg,
                                    .a = &a,
                                    .spec = &spec,
                                    .task_dir = "/d/a1/t",
                                    .alloc_dir = "/d/a1/alloc",
                                    .env = &env};
        json_decref(docker_container_body(&c, &err));
        kv_free(&env);
    }
    json_decref(config);
    return 0;
}
