/* fingerprint.h - what this node is, with Nomad's attribute keys, read
 * from /proc, /sys, uname, statvfs and os-release. Fast by design (small
 * reads, no processes): the agent serves its API right after. CNI plugin
 * versions need the plugins run, so they are filled in afterwards, on the
 * loop, by fingerprint_cni_start. */
#ifndef NOMCLIENT_FINGERPRINT_H
#define NOMCLIENT_FINGERPRINT_H

#include <sys/utsname.h>
#include <uv.h>

#include "config.h"
#include "node.h"
#include "util.h"

/* Roots for tests; NULL members mean the real /proc, /sys, /etc, uname. */
struct fingerprint_root {
    const char *proc, *sys, *etc;
    const struct utsname *uts;
};

/* Fills *n (zeroed first) from cfg and the host. */
int fingerprint_node(struct node *n, const struct agent_config *cfg,
                     const struct fingerprint_root *root, struct nc_error *err);

/* Reads (creating on first start) the persistent node id and secret id in
 * data_dir/client/client-id and secret-id. A corrupt file is an error naming
 * it, never a silent new identity. Caller frees both. */
int fingerprint_node_id(const char *data_dir, char **id, char **secret_id,
                        struct nc_error *err);

/* Parses the version out of what a CNI plugin prints when run without
 * CNI_COMMAND ("CNI bridge plugin v1.1.1"). 0, or -ENOENT. */
int fingerprint_cni_parse_version(const char *output, char *out, size_t outlen);

/* Runs each plugin of cni_path once, in the background on `loop`, and sets
 * plugins.cni.version.<name> in n->attributes as answers arrive. */
struct fingerprint_cni;
int fingerprint_cni_start(struct fingerprint_cni **out, struct node *n,
                          uv_loop_t *loop, const char *cni_path);
/* Kills plugins still running and closes handles; frees itself once the
 * loop ran the close callbacks. NULL-safe. */
void fingerprint_cni_stop(struct fingerprint_cni *c);

#endif
