/* driver.c - the table of drivers this node has, and what they share. */
#include "client/drivers/driver.h"

#include "client/drivers/internal.h"

#include <signal.h>
#include <string.h>
#include <strings.h>

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
