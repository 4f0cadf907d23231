#!/bin/sh
# ACL with the real agent: without a token every route but health (and
# Nomad's open status/leader) answers 403; bootstrap runs once; a read token
# cannot submit; a submit token cannot read logs until granted read-logs; a
# deleted token stops working at once; the secret is not on disk.
. "$(dirname "$0")/lib.sh"

data=$TMP/data
cleanup_add "for f in $data/alloc/*/.nomclient/*.lock; do p=\$(cat \"\$f\" 2>/dev/null); [ -n \"\$p\" ] && kill -9 \$p 2>/dev/null; done; true"
cat >"$TMP/acl.hcl" <<'CFG'
acl {
  enabled    = true
  token_ttl  = "30s"
  policy_ttl = "1m"
}
CFG
cat >"$TMP/job.nomad" <<'JOB'
job "acljob" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo secret-output; exec sleep 300"]
      }
      kill_timeout = "1s"
    }
  }
}
JOB
need_agent "agent with acl starts" a1 -dev -data-dir "$data" -config "$TMP/acl.hcl"

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# ---- anonymous ----------------------------------------------------------
check "health stays open" [ "$(code "$ADDR/v1/agent/health")" = 200 ]
bad=""
for r in /v1/agent/self /v1/agent/checks /v1/agent/registrations /v1/services \
    /v1/metrics /v1/nodes /v1/node/self /v1/client/stats /v1/jobs \
    /v1/allocations /v1/client/leftovers /v1/job/x /v1/allocation/x \
    /v1/client/fs/logs/x /v1/client/fs/ls/x /v1/client/allocation/x/stats \
    /v1/acl/tokens /v1/acl/policies /v1/acl/token/self /v1/acl/policy/x \
    /v1/service/x; do
    c=$(code "$ADDR$r")
    [ "$c" = 403 ] || bad="$bad $r=$c"
done
for r in /v1/jobs /v1/client/gc /v1/node/self/drain /v1/allocation/x/stop \
    /v1/client/allocation/x/restart /v1/acl/token /v1/acl/policy/x; do
    c=$(code -X POST -d '{}' "$ADDR$r")
    [ "$c" = 403 ] || bad="$bad POST$r=$c"
done
check "without a token every other route answers 403" [ -z "$bad" ]
[ -n "$bad" ] && echo "   $bad"
out=$(curl -s "$ADDR/v1/jobs")
check "403 body is Nomad's Permission denied" [ "$out" = '{"error":"Permission denied"}' ]
out=$(curl -s -H 'X-Nomad-Token: not-a-uuid' "$ADDR/v1/jobs")
check "a malformed token is 400 ACL token is invalid" contains "$out" "ACL token is invalid"
out=$(curl -s -w ' %{http_code}' -H 'Authorization: Bearer 00000000-0000-0000-0000-000000000000' "$ADDR/v1/jobs")
check "an unknown bearer token is 403 ACL token not found" [ "$out" = '{"error":"ACL token not found"} 403' ]
out=$(NOMAD_TOKEN= "$NOMCLIENT" status 2>&1)
check "the CLI without a token shows the agent's refusal" contains "$out" "Permission denied"

# ---- bootstrap ----------------------------------------------------------
out=$("$NOMCLIENT" acl bootstrap 2>&1)
mgmt=$(printf '%s\n' "$out" | sed -n 's/^Secret ID *= *//p')
check "acl bootstrap prints a management token" contains "$out" "Type         = management"
out=$("$NOMCLIENT" acl bootstrap 2>&1)
rc=$?
check "bootstrap cannot run twice" [ $rc -ne 0 ]
check "second bootstrap answers Nomad's message" contains "$out" "ACL bootstrap already done (reset index: 1)"
check "the secret is not on disk, its hash is" sh -c "! grep -rq '$mgmt' '$data/client/acl' && grep -q SecretHash '$data/client/acl/tokens.json'"
export NOMAD_TOKEN="$mgmt"
check "management token lists jobs" [ "$(code -H "X-Nomad-Token: $mgmt" "$ADDR/v1/jobs")" = 200 ]
check "management token as Bearer" [ "$(code -H "Authorization: Bearer $mgmt" "$ADDR/v1/agent/self")" = 200 ]
out=$("$NOMCLIENT" acl token self)
check "acl token self names the bootstrap token" contains "$out" "Bootstrap Token"

# ---- policies and tokens -----------------------------------------------
cat >"$TMP/read.hcl" <<'P'
namespace "default" {
  policy = "read"
}
node {
  policy = "read"
}
P
cat >"$TMP/submit.hcl" <<'P'
namespace "*" {
  capabilities = ["submit-job", "list-jobs", "read-job"]
}
P
cat >"$TMP/logs.hcl" <<'P'
namespace "def*" {
  capabilities = ["read-logs"]
}
P
printf 'namespace "x" { policy = "sudo" }\n' >"$TMP/bad.hcl"
out=$("$NOMCLIENT" acl policy apply -description "read all" readonly "$TMP/read.hcl")
check "acl policy apply" [ "$out" = 'Successfully wrote "readonly" ACL policy!' ]
"$NOMCLIENT" acl policy apply submit "$TMP/submit.hcl" >/dev/null
"$NOMCLIENT" acl policy apply logs "$TMP/logs.hcl" >/dev/null
out=$("$NOMCLIENT" acl policy apply bad "$TMP/bad.hcl" 2>&1)
check "a bad policy is refused with the line" contains "$out" "policy:1:17: Invalid namespace policy"
out=$("$NOMCLIENT" acl policy list)
check "acl policy list shows the description" sh -c "printf '%s' '$out' | grep -q '^readonly *read all'"
tok_secret() { sed -n 's/^Secret ID *= *//p'; }
tok_acc() { sed -n 's/^Accessor ID *= *//p'; }
out=$("$NOMCLIENT" acl token create -name reader -policy readonly)
reader=$(printf '%s\n' "$out" | tok_secret)
check "acl token create prints the policies" contains "$out" "Policies     = [readonly]"
out=$("$NOMCLIENT" acl token create -name submitter -policy submit)
submitter=$(printf '%s\n' "$out" | tok_secret)
sub_acc=$(printf '%s\n' "$out" | tok_acc)
out=$("$NOMCLIENT" acl token list)
check "acl token list shows the tokens" sh -c "printf '%s' '$out' | grep -q '^reader *client *false'"

out=$(NOMAD_TOKEN=$reader "$NOMCLIENT" job run "$TMP/job.nomad" 2>&1)
check "a read token cannot submit" contains "$out" "Permission denied"
check "a read token can list jobs" [ "$(code -H "X-Nomad-Token: $reader" "$ADDR/v1/jobs")" = 200 ]
check "a read token reads the node" [ "$(code -H "X-Nomad-Token: $reader" "$ADDR/v1/node/self")" = 200 ]
check "a read token cannot drain" [ "$(code -X POST -d '{}' -H "X-Nomad-Token: $reader" "$ADDR/v1/node/self/drain")" = 403 ]
check "a read token cannot read the agent" [ "$(code -H "X-Nomad-Token: $reader" "$ADDR/v1/agent/self")" = 403 ]
out=$(NOMAD_TOKEN= "$NOMCLIENT" job status -token "$reader" 2>&1)
rc=$?
check "the -token flag is sent" sh -c "[ $rc -eq 0 ] && ! printf '%s' '$out' | grep -q 'Permission denied'"

out=$(NOMAD_TOKEN=$submitter "$NOMCLIENT" job run "$TMP/job.nomad" 2>&1)
check "a submit token submits" [ $? -eq 0 ]
alloc_id() { curl -s -H "X-Nomad-Token: $mgmt" "$ADDR/v1/job/acljob/allocations" |
    python3 -c 'import json,sys; a=json.load(sys.stdin); print(a[0]["ID"] if a else "")'; }
has_output() { id=$(alloc_id); [ -n "$id" ] && grep -q secret-output "$data/alloc/$id/alloc/logs/t.stdout.0" 2>/dev/null; }
check "the job runs and writes its log" wait_for 10 has_output
id=$(alloc_id)
out=$(NOMAD_TOKEN=$submitter "$NOMCLIENT" alloc logs "$id" 2>&1)
check "a submit token cannot read logs" contains "$out" "Permission denied"
check "nor list the files" [ "$(code -H "X-Nomad-Token: $submitter" "$ADDR/v1/client/fs/ls/$id")" = 403 ]
curl -s -X POST -H "X-Nomad-Token: $mgmt" -d "{\"AccessorID\":\"$sub_acc\",\"Name\":\"submitter\",\"Type\":\"client\",\"Policies\":[\"submit\",\"logs\"]}" \
    "$ADDR/v1/acl/token/$sub_acc" >/dev/null
out=$(NOMAD_TOKEN=$submitter "$NOMCLIENT" alloc logs "$id" 2>&1)
check "granted read-logs (glob def*), it reads logs" contains "$out" "secret-output"
check "but read-fs is still refused" [ "$(code -H "X-Nomad-Token: $submitter" "$ADDR/v1/client/fs/ls/$id")" = 403 ]

# ---- delete --------------------------------------------------------------
out=$("$NOMCLIENT" acl token delete "$sub_acc")
check "acl token delete" [ "$out" = "Token $sub_acc successfully deleted" ]
out=$(curl -s -H "X-Nomad-Token: $submitter" "$ADDR/v1/jobs")
check "a deleted token stops working at once" [ "$out" = '{"error":"ACL token not found"}' ]
"$NOMCLIENT" acl policy delete readonly >/dev/null
check "a deleted policy stops granting at once" [ "$(code -H "X-Nomad-Token: $reader" "$ADDR/v1/jobs")" = 403 ]

# ---- anonymous policy, restart --------------------------------------------
printf 'agent {\n  policy = "read"\n}\n' >"$TMP/anon.hcl"
"$NOMCLIENT" acl policy apply anonymous "$TMP/anon.hcl" >/dev/null
check "the anonymous policy grants what it says" [ "$(code "$ADDR/v1/agent/self")" = 200 ]
check "and nothing more" [ "$(code "$ADDR/v1/jobs")" = 403 ]
curl -s -X DELETE -H "X-Nomad-Token: $mgmt" "$ADDR/v1/job/acljob" >/dev/null
stop_agent
need_agent "agent restarts" a2 -dev -data-dir "$data" -config "$TMP/acl.hcl"
check "tokens survive a restart" [ "$(code -H "X-Nomad-Token: $mgmt" "$ADDR/v1/acl/tokens")" = 200 ]
out=$("$NOMCLIENT" acl bootstrap 2>&1)
check "bootstrap still refused after a restart" contains "$out" "already done"
stop_agent

# ---- disabled ---------------------------------------------------------------
need_agent "agent without acl" a3 -dev -data-dir "$TMP/data2"
check "with acl disabled nothing is checked" [ "$(code "$ADDR/v1/jobs")" = 200 ]
out=$(curl -s -X POST "$ADDR/v1/acl/bootstrap")
check "ACL routes say ACL support is disabled" contains "$out" "ACL support disabled"
stop_agent
finish
