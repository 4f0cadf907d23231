/* caps.h - the exec driver's Linux capabilities, computed as Nomad does:
 * the task gets (Nomad's defaults ∩ allow_caps) minus cap_drop plus
 * cap_add, and every cap_add must be in allow_caps (the exec plugin's
 * config; Nomad's defaults when unset), so a job cannot grant itself what
 * the operator did not allow. Names are taken in any case, with or without
 * "CAP_"; "all" is every capability the kernel has. */
#ifndef NOMCLIENT_CAPS_H
#define NOMCLIENT_CAPS_H

#include <stddef.h>
#include <stdint.h>

#include "client/util.h"

/* Nomad's default set for exec, as "CAP_X" names, NULL-terminated. */
extern const char *const caps_nomad_defaults[];

/* Parses one name (or "all") into bits of a mask: 0, or -EINVAL. */
int caps_parse(const char *name, uint64_t *mask);

/* The task's capabilities into out ("CAP_X", in name order). allow NULL:
 * Nomad's defaults. -EPERM with msg "driver does not allow the following
 * capabilities: net_raw, sys_admin" when cap_add asks for more than allow,
 * -EINVAL with msg naming an unknown capability. */
int caps_calculate(const struct strlist *allow, const struct strlist *add,
                   const struct strlist *drop, struct strlist *out, char *msg,
                   size_t msglen);

#endif
