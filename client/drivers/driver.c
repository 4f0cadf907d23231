/* driver.c - the table of drivers this node has, and what they share. */
#include "client/drivers/driver.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/drivers/internal.h"

extern const struct driver driver_exec, driver_raw_exec, driver_docker;

static const struct driver *const drivers[] = {&driver_exec, &driver_raw_exec,
                                               &driver_docker};

const struct driver *driver_find(const char *name)
{
    for (size_t i = 0; name && i < NC_ARRAY_LEN(drivers); i++)
        if (strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    return NULL;
}

const struct driver *driver_of(const struct task *spec)
{
    return spec ? driver_find(spec->driver) : NULL;
}

void drivers_fingerprint(const struct agent_config *cfg, struct node *n)
{
    for (size_t i = 0; i < NC_ARRAY_LEN(drivers); i++)
        drivers[i]->fingerprint(drivers[i], cfg, n);
}

/* What a test that links the drivers' config halves without the docker
 * runtime gets (docker.c's definitions win): nothing to start. */
__attribute__((weak)) void docker_driver_start(uv_loop_t *loop,
                                               const struct agent_config *cfg,
                                               struct node *n)
{
}

__attribute__((weak)) void docker_driver_stop(void) {}

void drivers_start(uv_loop_t *loop, const struct agent_config *cfg,
                   struct node *n)
{
    docker_driver_start(loop, cfg, n);
}

void drivers_stop(void) { docker_driver_stop(); }

void drivers_config_defaults(struct agent_config *cfg, bool dev)
{
    for (size_t i = 0; i < NC_ARRAY_LEN(drivers); i++)
        if (drivers[i]->config_defaults)
            drivers[i]->config_defaults(cfg, dev);
}

/* What a key's field holds, by its kind, freed and cleared. */
static void plugin_key_free(struct agent_config *cfg, const struct config_key *k)
{
    void *p = (char *)cfg + k->offset;
    switch (k->kind) {
    case CONFIG_KEY_STRING:
        free(*(char **)p);
        *(char **)p = NULL;
        break;
    case CONFIG_KEY_STRLIST:
        strlist_free(p);
        break;
    case CONFIG_KEY_STRMAP:
        kv_free(p);
        break;
    default:
        break;
    }
}

void drivers_config_free(struct agent_config *cfg)
{
    for (size_t i = 0; i < NC_ARRAY_LEN(drivers); i++)
        for (size_t k = 0; drivers[i]->plugin_keys && k < drivers[i]->nplugin_keys;
             k++)
            plugin_key_free(cfg, &drivers[i]->plugin_keys[k]);
}

int drivers_validate_job(const struct agent_config *cfg, const struct job *job,
                         struct nc_error *err)
{
    struct strlist msgs = {0};
    for (size_t g = 0; g < job->ngroups; g++) {
        const struct task_group *tg = &job->groups[g];
        for (size_t i = 0; i < tg->ntasks; i++) {
            const struct task *t = &tg->tasks[i];
            const struct driver *d = driver_of(t);
            struct nc_error e = {0};
            if (!d || !d->validate || d->validate(cfg, t, &e) == 0)
                continue;
            /* the job validator's path: group "g" > task "t" > ... */
            char *m = xasprintf("group \"%s\" > task \"%s\" > %s",
                                tg->name ? tg->name : "",
                                t->name ? t->name : "", e.msg);
            strlist_add(&msgs, m);
            free(m);
        }
    }
    if (msgs.n == 0)
        return 0;
    if (msgs.n == 1) {
        nc_error_set(err, -EINVAL, "%s", msgs.items[0]);
    } else {
        struct nc_buf b = {0};
        nc_buf_printf(&b, "%zu errors occurred:", msgs.n);
        for (size_t i = 0; i < msgs.n; i++)
            nc_buf_printf(&b, "\n\t* %s", msgs.items[i]);
        nc_error_set(err, -EINVAL, "%s", b.data);
        nc_buf_free(&b);
    }
    strlist_free(&msgs);
    return -EINVAL;
}

void drivers_leftovers(const struct driver_env *env, driver_owned_fn owned,
                       void *arg, bool clean, json_t *out)
{
    for (size_t i = 0; i < NC_ARRAY_LEN(drivers); i++)
        if (drivers[i]->leftovers)
            drivers[i]->leftovers(env, owned, arg, clean, out);
}

/* The names Nomad's drivers take (its signals.SignalLookup), as Linux
 * numbers them. */
static const struct {
    const char *name;
    int num;
} signals[] = {
    {"SIGABRT", SIGABRT},     {"SIGALRM", SIGALRM},   {"SIGBUS", SIGBUS},
    {"SIGCHLD", SIGCHLD},     {"SIGCONT", SIGCONT},   {"SIGFPE", SIGFPE},
    {"SIGHUP", SIGHUP},       {"SIGILL", SIGILL},     {"SIGINT", SIGINT},
    {"SIGIO", SIGIO},         {"SIGIOT", SIGIOT},     {"SIGKILL", SIGKILL},
    {"SIGPIPE", SIGPIPE},     {"SIGPROF", SIGPROF},   {"SIGPWR", SIGPWR},
    {"SIGQUIT", SIGQUIT},     {"SIGSEGV", SIGSEGV},   {"SIGSTKFLT", SIGSTKFLT},
    {"SIGSTOP", SIGSTOP},     {"SIGSYS", SIGSYS},     {"SIGTERM", SIGTERM},
    {"SIGTRAP", SIGTRAP},     {"SIGTSTP", SIGTSTP},   {"SIGTTIN", SIGTTIN},
    {"SIGTTOU", SIGTTOU},     {"SIGURG", SIGURG},     {"SIGUSR1", SIGUSR1},
    {"SIGUSR2", SIGUSR2},     {"SIGVTALRM", SIGVTALRM}, {"SIGWINCH", SIGWINCH},
    {"SIGXCPU", SIGXCPU},     {"SIGXFSZ", SIGXFSZ},
};

int driver_signal_number(const char *name)
{
    if (!name || !*name)
        return SIGTERM;
    for (size_t i = 0; i < NC_ARRAY_LEN(signals); i++) {
        if (strcasecmp(name, signals[i].name) == 0 ||
            strcasecmp(name, signals[i].name + 3) == 0)
            return signals[i].num;
    }
    return -1;
}
