/* cli_acl.c - `acl bootstrap`, `acl token create|list|info|self|delete`,
 * `acl policy apply|list|info|delete`, with Nomad's flags and output. The
 * token goes out from -token or $NOMAD_TOKEN (cli_parse_flags, api_client). */
#include "client/cli_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/api/api.h"
#include "client/format.h"

static const char acl_usage[] =
    "Usage: nomclient acl <subcommand> [options] [args]\n"
    "\n"
    "  bootstrap                    Create the first management token (once)\n"
    "  token create [-name=<n>] [-type=client|management] [-policy=<p>]...\n"
    "               [-global]       Create a token\n"
    "  token list | info <accessor> | self | delete <accessor>\n"
    "  policy apply [-description=<d>] <name> <path|->\n"
    "  policy list | info <name> | delete <name>\n"
    "\n"
    "  -json            The API's JSON (list, info, self, create, bootstrap)\n"
    "  -token=<secret>  The ACL token to send (default $NOMAD_TOKEN)\n"
    "  -address=<addr>  The agent's HTTP API address.\n";

/* One request; prints "Error <what>: ..." and returns -1 on failure. */
static int call(const char *address, const char *method, const char *path,
                const json_t *body, json_t **out, const char *what)
{
    struct api_client api;
    api_client_init(&api, address);
    struct nc_error err = {0};
    int r = api_request(&api, method, path, body, out, NULL, &err);
    api_client_free(&api);
    if (r < 0) {
        fprintf(stderr, "Error %s: %s\n", what, err.msg);
        return -1;
    }
    return 0;
}

static void print_policies_field(struct strlist *rows, const json_t *t)
{
    struct nc_buf b = {0};
    nc_buf_puts(&b, "[");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(t, "Policies"), i, v)
        nc_buf_printf(&b, "%s%s", i ? " " : "", json_string_value(v));
    nc_buf_puts(&b, "]");
    cli_row(rows, "Policies|%s", b.data);
    nc_buf_free(&b);
}

/* Nomad's outputACLToken. */
static void print_token(const json_t *t)
{
    struct strlist rows = {0};
    bool mgmt = strcmp(format_jstr(t, "Type", ""), "management") == 0;
    cli_row(&rows, "Accessor ID|%s", format_jstr(t, "AccessorID", ""));
    cli_row(&rows, "Secret ID|%s", format_jstr(t, "SecretID", ""));
    cli_row(&rows, "Name|%s", format_jstr(t, "Name", ""));
    cli_row(&rows, "Type|%s", format_jstr(t, "Type", ""));
    cli_row(&rows, "Global|%s",
            json_is_true(json_object_get(t, "Global")) ? "true" : "false");
    cli_row(&rows, "Create Time|%s", format_jstr(t, "CreateTime", ""));
    cli_row(&rows, "Expiry Time |<none>");
    cli_row(&rows, "Create Index|%lld", (long long)format_jint(t, "CreateIndex"));
    cli_row(&rows, "Modify Index|%lld", (long long)format_jint(t, "ModifyIndex"));
    if (mgmt) {
        cli_row(&rows, "Policies|n/a");
        cli_row(&rows, "Roles|n/a");
        format_kv(stdout, &rows);
    } else {
        print_policies_field(&rows, t);
        format_kv(stdout, &rows);
        printf("\nRoles\n<none>\n");
    }
    strlist_free(&rows);
}

/* Prints `res` as JSON or with `print`; returns 0. */
static int show(json_t *res, bool as_json, void (*print)(const json_t *))
{
    if (as_json)
        cli_print_json(res);
    else
        print(res);
    return 0;
}

static void print_token_list(const json_t *list)
{
    if (json_array_size(list) == 0) {
        printf("No tokens found\n");
        return;
    }
    struct strlist rows = {0};
    cli_row(&rows, "Name|Type|Global|Accessor ID|Expired");
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
        cli_row(&rows, "%s|%s|%s|%s|false", format_jstr(t, "Name", ""),
                format_jstr(t, "Type", ""),
                json_is_true(json_object_get(t, "Global")) ? "true" : "false",
                format_jstr(t, "AccessorID", ""));
    format_columns(stdout, &rows);
    strlist_free(&rows);
}

static void print_policy_list(const json_t *list)
{
    if (json_array_size(list) == 0) {
        printf("No policies found\n");
        return;
    }
    struct strlist rows = {0};
    cli_row(&rows, "Name|Description");
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p)
        cli_row(&rows, "%s|%s", format_jstr(p, "Name", ""),
                format_jstr(p, "Description", ""));
    format_columns(stdout, &rows);
    strlist_free(&rows);
}

static void print_policy(const json_t *p)
{
    struct strlist rows = {0};
    cli_row(&rows, "Name|%s", format_jstr(p, "Name", ""));
    cli_row(&rows, "Description|%s", format_jstr(p, "Description", ""));
    cli_row(&rows, "CreateIndex|%lld", (long long)format_jint(p, "CreateIndex"));
    cli_row(&rows, "ModifyIndex|%lld", (long long)format_jint(p, "ModifyIndex"));
    format_kv(stdout, &rows);
    strlist_free(&rows);
    printf("\nRules\n\n%s\n", format_jstr(p, "Rules", ""));
}

/* Reads a policy file ("-": stdin). Caller frees. */
static char *read_rules(const char *path)
{
    if (strcmp(path, "-") != 0)
        return nc_read_file(path, NULL, 1u << 20);
    struct nc_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0 && b.len < (1u << 20))
        nc_buf_append(&b, chunk, n);
    return b.data ? nc_buf_take(&b) : xstrdup("");
}

static int acl_sub(const char *group, const char *sub, int argc, char **argv)
{
    bool as_json = false, global = false;
    const char *address = NULL, *name = "", *type = "client", *desc = "";
    struct strlist policies = {0};
    const struct flag flags[] = {{"json", FLAG_BOOL, &as_json},
                                 {"address", FLAG_STRING, &address},
                                 {"name", FLAG_STRING, &name},
                                 {"type", FLAG_STRING, &type},
                                 {"policy", FLAG_MULTI, &policies},
                                 {"global", FLAG_BOOL, &global},
                                 {"description", FLAG_STRING, &desc}};
    int pos = cli_parse_flags("acl", argc, argv, flags, NC_ARRAY_LEN(flags));
    if (pos == -2) {
        fputs(acl_usage, stdout);
        strlist_free(&policies);
        return 0;
    }
    int nargs = argc - pos;
    char **args = argv + pos;
    json_t *res = NULL, *body = NULL;
    int rc = 1;
    char *path = NULL;
    if (pos < 0)
        goto usage;
    if (!group && strcmp(sub, "bootstrap") == 0 && nargs == 0) {
        if (call(address, "POST", "/v1/acl/bootstrap", NULL, &res,
                 "bootstrapping") == 0)
            rc = show(res, as_json, print_token);
    } else if (group && strcmp(group, "token") == 0) {
        if (strcmp(sub, "create") == 0 && nargs == 0) {
            json_t *pl = json_array();
            for (size_t i = 0; i < policies.n; i++)
                json_array_append_new(pl, json_string(policies.items[i]));
            body = json_pack("{s:s, s:s, s:o, s:b}", "Name", name, "Type",
                             type, "Policies", pl, "Global", global);
            if (call(address, "PUT", "/v1/acl/token", body, &res,
                     "creating token") == 0)
                rc = show(res, as_json, print_token);
        } else if (strcmp(sub, "list") == 0 && nargs == 0) {
            if (call(address, "GET", "/v1/acl/tokens", NULL, &res,
                     "retrieving tokens") == 0)
                rc = show(res, as_json, print_token_list);
        } else if (strcmp(sub, "self") == 0 && nargs == 0) {
            if (call(address, "GET", "/v1/acl/token/self", NULL, &res,
                     "fetching self token") == 0)
                rc = show(res, as_json, print_token);
        } else if (strcmp(sub, "info") == 0 && nargs == 1) {
            path = xasprintf("/v1/acl/token/%s", args[0]);
            if (call(address, "GET", path, NULL, &res, "fetching token") == 0)
                rc = show(res, as_json, print_token);
        } else if (strcmp(sub, "delete") == 0 && nargs == 1) {
            path = xasprintf("/v1/acl/token/%s", args[0]);
            if (call(address, "DELETE", path, NULL, &res, "deleting token") == 0) {
                printf("Token %s successfully deleted\n", args[0]);
                rc = 0;
            }
        } else {
            goto usage;
        }
    } else if (group && strcmp(group, "policy") == 0) {
        if (strcmp(sub, "apply") == 0 && nargs == 2) {
            char *rules = read_rules(args[1]);
            if (!rules) {
                fprintf(stderr, "Error reading policy file %s\n", args[1]);
                goto out;
            }
            body = json_pack("{s:s, s:s, s:s}", "Name", args[0], "Description",
                             desc, "Rules", rules);
            free(rules);
            path = xasprintf("/v1/acl/policy/%s", args[0]);
            if (call(address, "PUT", path, body, &res, "writing ACL policy") == 0) {
                printf("Successfully wrote \"%s\" ACL policy!\n", args[0]);
                rc = 0;
            }
        } else if (strcmp(sub, "list") == 0 && nargs == 0) {
            if (call(address, "GET", "/v1/acl/policies", NULL, &res,
                     "retrieving ACL policies") == 0)
                rc = show(res, as_json, print_policy_list);
        } else if (strcmp(sub, "info") == 0 && nargs == 1) {
            path = xasprintf("/v1/acl/policy/%s", args[0]);
            if (call(address, "GET", path, NULL, &res, "querying ACL policy") == 0)
                rc = show(res, as_json, print_policy);
        } else if (strcmp(sub, "delete") == 0 && nargs == 1) {
            path = xasprintf("/v1/acl/policy/%s", args[0]);
            if (call(address, "DELETE", path, NULL, &res,
                     "deleting ACL policy") == 0) {
                printf("Successfully deleted %s policy!\n", args[0]);
                rc = 0;
            }
        } else {
            goto usage;
        }
    } else {
        goto usage;
    }
    goto out;
usage:
    fputs(acl_usage, stderr);
out:
    json_decref(res);
    json_decref(body);
    free(path);
    strlist_free(&policies);
    return rc;
}

int cli_cmd_acl(int argc, char **argv)
{
    if (argc < 1) {
        fputs(acl_usage, stderr);
        return 1;
    }
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "-help") == 0) {
        fputs(acl_usage, stdout);
        return 0;
    }
    if (strcmp(argv[0], "token") == 0 || strcmp(argv[0], "policy") == 0) {
        if (argc < 2) {
            fputs(acl_usage, stderr);
            return 1;
        }
        return acl_sub(argv[0], argv[1], argc - 2, argv + 2);
    }
    return acl_sub(NULL, argv[0], argc - 1, argv + 1);
}
