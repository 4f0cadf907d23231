/* acl/acl.h - Nomad's ACL system for the parts a node enforces: the policy
 * language (namespace capabilities with Nomad's policy expansion and globs,
 * node and agent levels), the merged permissions of a token and their
 * checks (deny wins, management bypasses), and the standalone store of
 * tokens and policies kept in data_dir (only a SHA-256 of each SecretID is
 * written, atomically; secrets are compared in constant time).
 *
 * Cluster mode (tokens resolved through Nomad servers with ACL.ResolveToken
 * and cached for token_ttl) is not here yet: the node does not talk to
 * servers. acl_store_resolve is the one seam a remote resolver replaces. */
#ifndef NOMCLIENT_ACL_H
#define NOMCLIENT_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/util.h"

/* ---- capabilities ---- */

/* Nomad's namespace capabilities, one bit each. */
enum acl_ns_cap {
    ACL_NS_DENY = 1u << 0,
    ACL_NS_LIST_JOBS = 1u << 1,
    ACL_NS_PARSE_JOB = 1u << 2,
    ACL_NS_READ_JOB = 1u << 3,
    ACL_NS_SUBMIT_JOB = 1u << 4,
    ACL_NS_DISPATCH_JOB = 1u << 5,
    ACL_NS_READ_LOGS = 1u << 6,
    ACL_NS_READ_FS = 1u << 7,
    ACL_NS_ALLOC_EXEC = 1u << 8,
    ACL_NS_ALLOC_NODE_EXEC = 1u << 9,
    ACL_NS_ALLOC_LIFECYCLE = 1u << 10,
    ACL_NS_SENTINEL_OVERRIDE = 1u << 11,
    ACL_NS_CSI_REGISTER_PLUGIN = 1u << 12,
    ACL_NS_CSI_WRITE_VOLUME = 1u << 13,
    ACL_NS_CSI_READ_VOLUME = 1u << 14,
    ACL_NS_CSI_LIST_VOLUME = 1u << 15,
    ACL_NS_CSI_MOUNT_VOLUME = 1u << 16,
    ACL_NS_LIST_SCALING_POLICIES = 1u << 17,
    ACL_NS_READ_SCALING_POLICY = 1u << 18,
    ACL_NS_READ_JOB_SCALING = 1u << 19,
    ACL_NS_SCALE_JOB = 1u << 20,
    ACL_NS_SUBMIT_RECOMMENDATION = 1u << 21,
};

/* The bit of a capability name ("read-logs"), 0 if Nomad has none such. */
uint32_t acl_ns_cap_parse(const char *name);
/* The capabilities `policy = "<p>"` grants in a namespace ("deny", "read",
 * "write", "scale"), as Nomad expands them; 0 for anything else. */
uint32_t acl_ns_policy_expand(const char *policy);

/* Levels of the node, agent and operator rules; deny outranks write. */
enum acl_level { ACL_LEVEL_NONE, ACL_LEVEL_READ, ACL_LEVEL_WRITE,
                 ACL_LEVEL_DENY };

/* ---- policies ---- */

struct acl_ns_rule {
    char *name;    /* a namespace or a glob with '*' */
    uint32_t caps; /* policy expansion | capabilities */
};

/* The decoded rules of one policy. */
struct acl_rules {
    struct acl_ns_rule *ns;
    size_t nns;
    enum acl_level node, agent, operator_;
};

/* Parses a policy's Rules (HCL). Returns 0, or -EINVAL with err naming the
 * line and what is wrong, in Nomad's words where it has some. The caller
 * frees *out with acl_rules_free (also after a failure). */
int acl_rules_parse(const char *src, size_t len, struct acl_rules *out,
                    struct nc_error *err);
void acl_rules_free(struct acl_rules *r);

/* ---- permissions of a token ---- */

/* The merged rules of a token's policies (or management). */
struct acl {
    bool management;
    struct acl_rules merged; /* one entry per namespace name or glob */
};

/* Merges `rules` into `acl`: capabilities are unioned per namespace, deny
 * wiping the rest; levels take the highest, deny winning. */
void acl_merge(struct acl *acl, const struct acl_rules *rules);
void acl_free(struct acl *acl); /* the contents; safe on zeroed */

/* Whether `acl` grants `cap` in namespace `ns`: an exact rule first, else
 * the closest matching glob (Nomad's choice), and deny in it refuses.
 * ns "*" asks whether any namespace grants it. */
bool acl_allow_ns(const struct acl *acl, const char *ns, uint32_t cap);
/* Whether `acl` grants `want` (READ or WRITE) for node / agent. */
bool acl_allow_node(const struct acl *acl, enum acl_level want);
bool acl_allow_agent(const struct acl *acl, enum acl_level want);

/* ---- tokens and the store ---- */

/* SHA-256 of `secret` as 64 lowercase hex digits (+ NUL). */
void acl_hash_secret(const char *secret, char out[65]);
/* Whether `s` has a UUID's shape (8-4-4-4-12 hex digits). */
bool acl_is_uuid(const char *s);
/* Compares two NUL-terminated strings of equal length in time that does
 * not depend on where they differ. */
bool acl_secret_equal(const char *a, const char *b);

/* The secret a request carries, as Nomad reads it: X-Nomad-Token
 * (trimmed) if present, else the first word after `Authorization: Bearer`
 * (scheme case-insensitive). Either header may be NULL. Writes "" when
 * there is none; a longer secret than outlen-1 is cut (and thus invalid). */
void acl_token_from_headers(const char *x_nomad_token,
                            const char *authorization, char *out,
                            size_t outlen);

struct acl_token {
    char accessor_id[37];
    char secret_hash[65];
    char *name;
    bool management; /* Type "management", else "client" */
    bool global;
    struct strlist policies;
    int64_t create_time; /* unix ns */
    uint64_t create_index, modify_index;
};

struct acl_policy {
    char *name, *description, *rules;
    uint64_t create_index, modify_index;
};

struct acl_store;

/* Opens (or creates) the store in `dir` (data_dir/client/acl): reads
 * tokens.json and policies.json when present. Caller frees. */
int acl_store_open(struct acl_store **out, const char *dir,
                   struct nc_error *err);
void acl_store_free(struct acl_store *s);

/* Why a secret did not resolve. */
enum acl_resolve_result {
    ACL_RESOLVED,
    ACL_TOKEN_INVALID,   /* not a UUID: "ACL token is invalid" */
    ACL_TOKEN_NOT_FOUND, /* "ACL token not found" */
};
/* The permissions of `secret` ("" or NULL: anonymous, which gets the
 * "anonymous" policy if one exists). *acl is borrowed from the store and
 * valid until the store changes; *token (optional) too, NULL for
 * anonymous. The seam for cluster mode. */
enum acl_resolve_result acl_store_resolve(struct acl_store *s,
                                          const char *secret,
                                          const struct acl **acl,
                                          const struct acl_token **token);

/* Creates the first management token (once). `secret` NULL picks a random
 * one; the SecretID is written to secret_out. -EEXIST with Nomad's message
 * when already done. */
int acl_store_bootstrap(struct acl_store *s, const char *secret,
                        const struct acl_token **out, char secret_out[37],
                        struct nc_error *err);
/* Creates a token from `t` (name, management, global, policies; the rest
 * is filled in); -EINVAL with a message for a bad one. */
int acl_store_token_create(struct acl_store *s, const struct acl_token *t,
                           const struct acl_token **out, char secret_out[37],
                           struct nc_error *err);
/* Updates the name, global flag and policies of a token; -ENOENT, or
 * -EINVAL (the type cannot change). */
int acl_store_token_update(struct acl_store *s, const struct acl_token *t,
                           const struct acl_token **out,
                           struct nc_error *err);
int acl_store_token_delete(struct acl_store *s, const char *accessor,
                           struct nc_error *err);
/* NULL if none (borrowed). */
const struct acl_token *acl_store_token_get(const struct acl_store *s,
                                            const char *accessor);
/* The i-th token, NULL past the end (borrowed). */
const struct acl_token *acl_store_token_at(const struct acl_store *s,
                                           size_t i);

/* Creates or replaces a policy after checking its name and rules. */
int acl_store_policy_upsert(struct acl_store *s, const char *name,
                            const char *description, const char *rules,
                            struct nc_error *err);
int acl_store_policy_delete(struct acl_store *s, const char *name,
                            struct nc_error *err);
const struct acl_policy *acl_store_policy_get(const struct acl_store *s,
                                              const char *name);
const struct acl_policy *acl_store_policy_at(const struct acl_store *s,
                                             size_t i);
/* The latest modify index (X-Nomad-Index of the ACL routes). */
uint64_t acl_store_index(const struct acl_store *s);
bool acl_store_bootstrapped(const struct acl_store *s);

#endif
