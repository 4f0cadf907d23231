/* drivers/docker_config.h - the docker driver's half that does not talk to
 * the Engine, internal to client/drivers/: the keys and defaults of
 * plugin "docker" { config { ... } }, the check of a task's config at
 * submission, the container create body (the Engine API's
 * ContainerCreate, field for field as Nomad's createContainerConfig),
 * image references and registry credentials.
 *
 * Everything here is pure (JSON in, JSON out) except docker_auth_lookup,
 * which reads the auth config file and may run a credential helper, and
 * docker_container_body, which reads a seccomp profile named in
 * security_opt. */
#ifndef NOMCLIENT_DRIVERS_DOCKER_CONFIG_H
#define NOMCLIENT_DRIVERS_DOCKER_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "client/alloc/alloc.h"
#include "client/config.h"
#include "client/job/job.h"
#include "client/node/node.h"
#include "client/util.h"

/* ---- the plugin config ---- */

/* The keys of plugin "docker" { config { ... } } onto cfg->client.docker
 * (dotted names are nested blocks: "gc.dangling_containers.period"). The
 * count is part of the type, so a driver table can write
 * `.nplugin_keys = NC_ARRAY_LEN(docker_plugin_keys)`. */
#define DOCKER_NPLUGIN_KEYS 27
extern const struct config_key docker_plugin_keys[DOCKER_NPLUGIN_KEYS];
extern const size_t docker_nplugin_keys; /* = DOCKER_NPLUGIN_KEYS */

/* Nomad's defaults of the plugin config into cfg->client.docker (dev mode
 * changes nothing, as in Nomad). */
void docker_config_defaults(struct agent_config *cfg, bool dev);

/* ---- the task config ---- */

/* Checks a task's `config` against Nomad's taskConfigSpec and what the
 * plugin config allows. Errors name the place from "config" down:
 *   config: unknown key "comand" (did you mean "command"?)
 *   config > cap_add: must be a list of strings
 *   config > image: invalid reference format: "Foo Bar"
 *   config > privileged: Docker privileged mode is disabled on this Nomad agent
 * Strings holding "${...}" are interpolated at run time and checked then.
 * cfg NULL: only what does not depend on the plugin config. 0 or -EINVAL. */
int docker_validate(const struct agent_config *cfg, const struct task *spec,
                    struct nc_error *err);

/* The task's config value `key` as text, interpolated (scalars only; NULL
 * when absent or not a scalar). Caller frees. env and n may be NULL. */
char *docker_task_string(const struct task *spec, const char *key,
                         const struct kvlist *env, const struct node *n);
/* The task's config value `key` as a bool (absent: false). */
bool docker_task_bool(const struct task *spec, const char *key);
/* The task's image reference, interpolated, without the "https://"
 * prefix Nomad drops; NULL when the config has none. Caller frees. */
char *docker_task_image(const struct task *spec, const struct kvlist *env,
                        const struct node *n);
/* image_pull_timeout in nanoseconds (Nomad's 5m when unset or bad). */
int64_t docker_task_pull_timeout(const struct task *spec);

/* What the container create body is made from. */
struct docker_task_ctx {
    const struct agent_config *cfg;
    const struct node *node; /* ${attr.*} and ${node.*}, the node_name and
                                node_id labels, the host IP of ports and
                                cpu_hard_limit's share; may be NULL */
    const struct alloc *a;   /* its job, group, ports, network */
    const struct alloc_task *t;
    const struct task *spec; /* the task's job spec */
    const char *task_dir;    /* host path of <alloc>/<task> */
    const char *alloc_dir;   /* host path of <alloc>/alloc */
    /* the task's final environment (alloc_task_env with in_chroot, so
     * NOMAD_ALLOC_DIR=/alloc, NOMAD_TASK_DIR=/local,
     * NOMAD_SECRETS_DIR=/secrets); the config's strings are interpolated
     * against it */
    const struct kvlist *env;
    /* the group's shared namespace, "container:<pause id>" for a bridge
     * group; a network_mode in the task config wins over it, as in Nomad;
     * NULL and none in the config: "default" (Docker's bridge) */
    const char *network_mode;
    const char *image; /* the reference or ID to create from; NULL: the
                          config's image */
};

/* The JSON body of POST /containers/create?name=<docker_container_name>
 * (API v1.41) for the task: Image, Env, Cmd, Entrypoint, WorkingDir,
 * Hostname, User, Labels, Tty, OpenStdin, ExposedPorts, MacAddress,
 * Healthcheck, HostConfig (memory, CPU, pids, binds of /alloc, /local and
 * /secrets and the config's volumes, mounts and volume_mounts, network
 * mode and port bindings, DNS, capabilities, devices, ulimits, sysctls,
 * security options, log config, ...) and NetworkingConfig, as Nomad 1.7
 * makes them. The config is checked again after interpolation. New
 * reference, or NULL with err set (Nomad's words where it has them). */
json_t *docker_container_body(const struct docker_task_ctx *c,
                              struct nc_error *err);

/* "<task>-<alloc id>", '/' in the task name made '_', as Nomad names its
 * containers. Caller frees. */
char *docker_container_name(const char *task, const char *alloc_id);

/* ---- images ---- */

/* Splits an image reference by Docker's grammar ([host[:port]/]path
 * [:tag][@algo:hex]; lowercase path components, a tag of [\w][\w.-]{0,127},
 * a digest of at least 32 hex digits; a leading "https://" is dropped as
 * Nomad does): *repo the name, *tag the tag ("latest" when there is
 * neither tag nor digest, NULL with only a digest), *digest or NULL. Any
 * out pointer may be NULL; the caller frees the strings. 0, or -EINVAL
 * with `invalid reference format: "Foo Bar"`. */
int docker_parse_image(const char *ref, char **repo, char **tag, char **digest,
                       struct nc_error *err);
/* The reference with ":latest" when it has neither tag nor digest
 * ("redis" -> "redis:latest"), without a leading "https://". Caller
 * frees. */
char *docker_image_with_tag(const char *ref);
/* The registry a repository comes from, as Docker keys its credentials:
 * the first path component when it has a '.' or ':' or is "localhost"
 * ("registry.example.com:5000"), else Docker Hub's
 * "https://index.docker.io/v1/". Caller frees. */
char *docker_registry_of(const char *repo);

/* ---- registry credentials ---- */

struct docker_auth {
    char *username, *password, *email, *server;
};

/* The credentials for pulling repo, as Nomad looks them up: the task's
 * auth block; else the plugin's auth.config file (Docker's config.json:
 * "auths" by registry, "auth" being base64 user:pass, then its
 * "credHelpers" entry for the registry, then "credsStore"); else the
 * plugin's auth.helper. A helper is `docker-credential-<name> get` with
 * the registry on stdin answering {"Username", "Secret"}; it is killed
 * after 10 s. Returns 1 with *out filled, 0 when there are none (*out
 * zeroed), or -errno with err set. BLOCKING (file reads, a child process):
 * the driver calls it on the thread pool (uv_queue_work), never on the
 * loop. cfg may be NULL (the task's block only). */
int docker_auth_lookup(const struct agent_config *cfg, const struct task *spec,
                       const char *repo, struct docker_auth *out,
                       struct nc_error *err);
void docker_auth_free(struct docker_auth *a);
/* The X-Registry-Auth header value for a (base64url of {"username",
 * "password", "email", "serveraddress"}). Caller frees. */
char *docker_auth_header(const struct docker_auth *a);

#endif
