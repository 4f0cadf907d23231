/* docker_auth.c - registry credentials as Nomad looks them up (the
 * task's auth block, Docker's config.json, credential helpers) and the
 * X-Registry-Auth header; see docker_config.h. */
#include "client/drivers/docker_api.h"
#include "client/drivers/docker_config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- registry credentials ---- */

void docker_auth_free(struct docker_auth *a)
{
    if (!a)
        return;
    free(a->username);
    free(a->password);
    free(a->email);
    free(a->server);
    memset(a, 0, sizeof(*a));
}

static bool auth_empty(const struct docker_auth *a)
{
    return !(a->username && *a->username) && !(a->password && *a->password) &&
           !(a->email && *a->email) && !(a->server && *a->server);
}

/* Go's omitempty JSON, base64url: one encoder for both callers. */
char *docker_auth_header(const struct docker_auth *a)
{
    return docker_registry_auth(a ? a->username : NULL, a ? a->password : NULL,
                                a ? a->email : NULL, a ? a->server : NULL);
}

/* Docker's ConvertToHostname: no scheme, nothing after the host. */
static char *to_hostname(const char *url)
{
    const char *s = url;
    if (nc_str_has_prefix(s, "http://"))
        s += 7;
    else if (nc_str_has_prefix(s, "https://"))
        s += 8;
    return xstrndup(s, strcspn(s, "/"));
}

#define HELPER_TIMEOUT_MS 10000
#define HELPER_OUTPUT_MAX 65536

/* Runs docker-credential-<helper> get with input on stdin; its stdout
 * into *out. Blocking, at most HELPER_TIMEOUT_MS. */
static int run_helper(const char *helper, const char *input, char **out,
                      struct nc_error *err)
{
    *out = NULL;
    if (!*helper || helper[strspn(helper, "abcdefghijklmnopqrstuvwxyz"
                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789._-")])
        return nc_error_set(err, -EINVAL,
                            "\"%s\" is not a credential helper name", helper);
    char *prog = xasprintf("docker-credential-%s", helper);
    int in[2] = {-1, -1}, so[2] = {-1, -1}, se[2] = {-1, -1};
    int r = 0;
    pid_t pid = -1;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(so, O_CLOEXEC) < 0 ||
        pipe2(se, O_CLOEXEC) < 0) {
        r = nc_error_set(err, -errno, "%s: pipe: %s", prog, strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, so[1], 1);
    posix_spawn_file_actions_adddup2(&fa, se[1], 2);
    char *argv[] = {prog, "get", NULL};
    int e = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(so[1]);
    close(se[1]);
    in[0] = so[1] = se[1] = -1;
    if (e != 0) {
        pid = -1;
        r = nc_error_set(
            err, -e,
            e == ENOENT ? "exec: \"%s\": executable file not found in $PATH"
                        : "exec: \"%s\": %s",
            prog, strerror(e));
        goto out;
    }
    /* the registry name is short: it fits the pipe at once */
    if (write(in[1], input, strlen(input)) < 0) {
        /* the helper may have gone already; its exit says why */
    }
    close(in[1]);
    in[1] = -1;
    struct nc_buf ob = {0}, eb = {0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the exit is awaited within the deadline too (a helper that closes
     * its output and lingers), through a pidfd where the kernel has them */
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    bool timed_out = false, exited = false;
    while (so[0] >= 0 || se[0] >= 0 || (pidfd >= 0 && !exited)) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - t0.tv_sec) * 1000 +
                     (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent >= HELPER_TIMEOUT_MS) {
            timed_out = true;
            break;
        }
        /* poll skips negative fds */
        struct pollfd pf[3] = {{so[0], POLLIN, 0},
                               {se[0], POLLIN, 0},
                               {exited ? -1 : pidfd, POLLIN, 0}};
        int pr = poll(pf, 3, (int)(HELPER_TIMEOUT_MS - spent));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            timed_out = true; /* cannot wait for it: end it */
            break;
        }
        if (pf[2].revents)
            exited = true;
        for (int k = 0; k < 2; k++) {
            int *fd = k == 0 ? &so[0] : &se[0];
            if (*fd < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t got = read(*fd, buf, sizeof(buf));
            if (got <= 0) {
                close(*fd);
                *fd = -1;
                continue;
            }
            struct nc_buf *dst = k == 0 ? &ob : &eb;
            if (dst->len < HELPER_OUTPUT_MAX)
                nc_buf_append(dst, buf, (size_t)got);
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    if (timed_out) {
        r = nc_error_set(err, -ETIMEDOUT, "%s get: no answer within %ds", prog,
                         HELPER_TIMEOUT_MS / 1000);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        /* Nomad's words */
        size_t n = eb.len;
        while (n && isspace((unsigned char)eb.data[n - 1]))
            n--;
        r = nc_error_set(err, -EIO,
                         "%s with input \"%s\" failed with stderr: %.*s", prog,
                         input, (int)n, eb.data ? eb.data : "");
    } else {
        nc_buf_puts(&ob, "");
        *out = nc_buf_take(&ob);
    }
    nc_buf_free(&ob);
    nc_buf_free(&eb);
out:
    for (int k = 0; k < 2; k++) {
        if (in[k] >= 0)
            close(in[k]);
        if (so[k] >= 0)
            close(so[k]);
        if (se[k] >= 0)
            close(se[k]);
    }
    free(prog);
    return r;
}

/* A helper's answer: 1 with credentials, 0 without, -errno. */
static int auth_from_helper(const char *helper, const char *registry,
                            struct docker_auth *out, struct nc_error *err)
{
    if (!helper || !*helper)
        return 0;
    char *txt = NULL;
    int r = run_helper(helper, registry, &txt, err);
    if (r < 0)
        return r;
    json_error_t je;
    json_t *j = json_loads(txt, 0, &je);
    free(txt);
    if (!json_is_object(j)) {
        json_decref(j);
        return nc_error_set(err, -EINVAL,
                            "docker-credential-%s: the answer is not a JSON "
                            "object: %s",
                            helper, je.text);
    }
    const char *u = json_string_value(json_object_get(j, "Username"));
    const char *p = json_string_value(json_object_get(j, "Secret"));
    if ((u && *u) || (p && *p)) {
        out->username = xstrdup(u ? u : "");
        out->password = xstrdup(p ? p : "");
        out->server = xstrdup(registry);
        r = 1;
    }
    json_decref(j);
    return r;
}

/* The auth config file: "auths" (exact key, else legacy keys as hosts;
 * Docker Hub only exactly), then "credHelpers", then "credsStore". */
static int auth_from_file(const char *file, const char *registry,
                          struct docker_auth *out, struct nc_error *err)
{
    size_t len;
    char *txt = nc_read_file(file, &len, 1 << 20);
    if (!txt)
        return nc_error_set(err, -(errno ? errno : EIO),
                            "Failed to open auth config file: %s, error: %s",
                            file, strerror(errno ? errno : EIO));
    json_error_t je;
    json_t *root = json_loadb(txt, len, 0, &je);
    free(txt);
    if (!json_is_object(root)) {
        json_decref(root);
        return nc_error_set(err, -EINVAL,
                            "Failed to parse auth config file: %s: %s", file,
                            root ? "not a JSON object" : je.text);
    }
    int r = 0;
    const json_t *auths = json_object_get(root, "auths");
    const json_t *entry = json_object_get(auths, registry);
    char *key = xstrdup(registry);
    if (!json_is_object(entry) && strcmp(registry, HUB_REGISTRY) != 0) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)auths, k, v)
        {
            char *host = to_hostname(k);
            bool same = strcmp(host, registry) == 0;
            free(host);
            if (same && json_is_object(v)) {
                entry = v;
                free(key);
                key = xstrdup(k);
                break;
            }
        }
    }
    if (json_is_object(entry)) {
        struct docker_auth a = {0};
        const char *b64 = json_string_value(json_object_get(entry, "auth"));
        a.username =
            xstrdup(json_string_value(json_object_get(entry, "username")));
        a.password =
            xstrdup(json_string_value(json_object_get(entry, "password")));
        a.email = xstrdup(json_string_value(json_object_get(entry, "email")));
        if (b64 && *b64) {
            struct nc_buf raw = {0};
            char *dec = nc_base64_decode(b64, strlen(b64), &raw) == 0
                            ? nc_buf_take(&raw)
                            : (nc_buf_free(&raw), NULL);
            char *colon = dec ? strchr(dec, ':') : NULL;
            if (!colon) {
                free(dec);
                docker_auth_free(&a);
                free(key);
                json_decref(root);
                return nc_error_set(err, -EINVAL,
                                    "Failed to parse auth config file: %s: "
                                    "invalid auth configuration for \"%s\"",
                                    file, registry);
            }
            *colon = '\0';
            free(a.username);
            free(a.password);
            a.username = xstrdup(dec);
            a.password = xstrdup(colon + 1);
            free(dec);
        }
        if (!auth_empty(&a)) {
            a.server = xstrdup(key);
            *out = a;
            r = 1;
        } else {
            docker_auth_free(&a);
        }
    }
    free(key);
    if (r == 0) {
        const char *h = json_string_value(
            json_object_get(json_object_get(root, "credHelpers"), registry));
        r = auth_from_helper(h, registry, out, err);
    }
    if (r == 0)
        r = auth_from_helper(
            json_string_value(json_object_get(root, "credsStore")), registry,
            out, err);
    json_decref(root);
    return r;
}

int docker_auth_lookup(const struct agent_config *cfg, const struct task *spec,
                       const char *repo, struct docker_auth *out,
                       struct nc_error *err)
{
    memset(out, 0, sizeof(*out));
    const json_t *ab = spec ? cblock(spec->config, "auth") : NULL;
    if (ab) {
        out->username = cstr(ab, "username");
        out->password = cstr(ab, "password");
        out->email = cstr(ab, "email");
        out->server = cstr(ab, "server_address");
        if (!auth_empty(out))
            return 1;
        docker_auth_free(out);
    }
    if (!cfg)
        return 0;
    const struct docker_plugin_config *pc = &cfg->client.docker;
    char *registry = docker_registry_of(repo);
    int r = 0;
    if (pc->auth.config && *pc->auth.config)
        r = auth_from_file(pc->auth.config, registry, out, err);
    if (r == 0)
        r = auth_from_helper(pc->auth.helper, registry, out, err);
    free(registry);
    if (r <= 0)
        docker_auth_free(out);
    return r;
}
