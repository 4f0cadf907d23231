#!/bin/sh
# The real agent in dev mode: API, status -self, job run/validate/status/stop,
# placement refusals, restart keeps the node id and the jobs.
. "$(dirname "$0")/lib.sh"

DATA="$TMP/data"

# ---- start-up -----------------------------------------------------------
if start_agent a1 -dev -data-dir "$DATA"; then
    pass "agent -dev starts and serves the API ($ADDR)"
else
    fail "agent -dev starts and serves the API" "$(cat "$TMP/a1.log")"
    finish
    exit 1
fi

out=$(curl -s "$ADDR/v1/agent/health?pretty")
check "GET /v1/agent/health answers ok" contains "$out" '"ok": true'

out=$(curl -s "$ADDR/v1/agent/self?pretty")
check "GET /v1/agent/self names the datacenter" contains "$out" '"Datacenter": "dc1"'

# ---- status -self -------------------------------------------------------
out=$("$NOMCLIENT" status -self -verbose 2>&1)
rc=$?
node_id=$(curl -s "$ADDR/v1/node/self?pretty" | sed -n 's/.*"ID": "\([0-9a-f-]*\)".*/\1/p' | head -n 1)
if [ $rc -eq 0 ] && contains "$out" "ID              = $node_id" &&
    contains "$out" "Status          = ready" &&
    contains "$out" "kernel.name" && contains "$out" "cpu.numcores" &&
    contains "$out" "Host Resource Utilization"; then
    pass "status -self -verbose shows this node's identity and attributes"
else
    fail "status -self -verbose shows this node's identity and attributes" "$out"
fi
arch=$(uname -m)
[ "$arch" = x86_64 ] && arch=amd64
[ "$arch" = aarch64 ] && arch=arm64
check "status -self -verbose shows cpu.arch = $arch" contains "$out" "cpu.arch"
printf '%s\n' "$out" | grep -q "^cpu.arch *= $arch$" || fail "cpu.arch value is $arch" "$out"

out=$("$NOMCLIENT" status -self 2>&1)
short=$(printf '%s' "$node_id" | cut -c1-8)
check "status -self shows the short node id" contains "$out" "ID              = $short"

out=$("$NOMCLIENT" status -self -json 2>&1)
check "status -self -json prints the node object" contains "$out" "\"ID\": \"$node_id\""

out=$("$NOMCLIENT" status -self -stats 2>&1)
check "status -self -stats shows per-core CPU stats" contains "$out" "Detailed CPU Stats"

# ---- jobs ---------------------------------------------------------------
cat >"$TMP/impossible.nomad" <<'EOF'
job "impossible" {
  datacenters = ["*"]
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "windows"
  }
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/true"
      }
    }
  }
}
EOF
out=$("$NOMCLIENT" job run "$TMP/impossible.nomad" 2>&1)
rc=$?
if [ $rc -eq 1 ] && contains "$out" "Placement failed: no nodes satisfied constraints" &&
    contains "$out" 'Constraint "${attr.kernel.name} = windows"'; then
    pass "a job with an impossible constraint is refused with the constraint"
else
    fail "a job with an impossible constraint is refused with the constraint (rc=$rc)" "$out"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' "$ADDR/v1/job/impossible")
check "a refused job is not stored" [ "$code" = 404 ]

out=$("$NOMCLIENT" job run "$SEED/custom-scheduler.nomad" 2>&1)
rc=$?
if [ $rc -eq 1 ] && contains "$out" 'Constraint "missing drivers"'; then
    pass "a docker job is refused with Nomad's missing drivers reason"
else
    fail "a docker job is refused with Nomad's missing drivers reason (rc=$rc)" "$out"
fi

out=$("$NOMCLIENT" job run contrib/jobs/demo.nomad 2>&1)
rc=$?
if [ $rc -eq 0 ] && contains "$out" 'Job "demo" registered'; then
    pass "the demo job is registered"
else
    fail "the demo job is registered (rc=$rc)" "$out"
fi

out=$("$NOMCLIENT" job status 2>&1)
check "job status lists the demo job" contains "$out" "demo"
out=$("$NOMCLIENT" job status demo 2>&1)
if contains "$out" "ID            = demo" && contains "$out" "hello"; then
    pass "job status demo shows the job and its group"
else
    fail "job status demo shows the job and its group" "$out"
fi

# ---- job files: -output round trip, validation errors -------------------
for f in "$SEED"/*.nomad; do
    n=$(basename "$f" .nomad)
    if "$NOMCLIENT" job run -output "$f" >"$TMP/$n.json" 2>"$TMP/$n.err" &&
        "$NOMCLIENT" job run -output "$TMP/$n.json" >"$TMP/$n.2.json" 2>&1 &&
        cmp -s "$TMP/$n.json" "$TMP/$n.2.json" &&
        grep -q '"TaskGroups"' "$TMP/$n.json"; then
        pass "job run -output $n.nomad prints JSON that reads back the same"
    else
        fail "job run -output $n.nomad round trip" "$(cat "$TMP/$n.err"; diff "$TMP/$n.json" "$TMP/$n.2.json" | head -20)"
    fi
done

cat >"$TMP/typo.nomad" <<'EOF'
job "typo" {
  group "api" {
    task "api" {
      driver = "raw_exec"
      config {
        command = "/bin/true"
      }
      imgae = "x"
    }
  }
}
EOF
out=$("$NOMCLIENT" job validate "$TMP/typo.nomad" 2>&1)
rc=$?
if [ $rc -eq 1 ] && contains "$out" "typo.nomad:8:7" &&
    contains "$out" 'group "api" > task "api": unknown attribute "imgae"'; then
    pass "job validate names file:line:col and path of a misspelt attribute"
else
    fail "job validate names file:line:col and path of a misspelt attribute (rc=$rc)" "$out"
fi

out=$("$NOMCLIENT" job validate "$SEED/platform.nomad" 2>&1)
rc=$?
if [ $rc -eq 0 ] && contains "$out" "Job validation successful" && contains "$out" "warning"; then
    pass "job validate accepts platform.nomad and warns about what is ignored"
else
    fail "job validate accepts platform.nomad and warns (rc=$rc)" "$out"
fi

# ---- HTTP API errors ----------------------------------------------------
out=$(curl -s -w ' %{http_code}' -X POST -d '{"Job": ' "$ADDR/v1/jobs")
if contains "$out" '"error"' && contains "$out" " 400"; then
    pass "malformed JSON body gets 400 with a JSON error"
else
    fail "malformed JSON body gets 400 with a JSON error" "$out"
fi
out=$(curl -s -w ' %{http_code}' -X POST -d '{"Job": {"ID": "x", "TaskGroups": [{"Name": "g", "Count": "three"}]}}' "$ADDR/v1/jobs")
if contains "$out" "Count" && contains "$out" " 400"; then
    pass "a wrongly typed job field gets 400 naming the field"
else
    fail "a wrongly typed job field gets 400 naming the field" "$out"
fi
out=$(curl -s -w ' %{http_code}' "$ADDR/v1/nope")
if contains "$out" '"error"' && contains "$out" '} 404'; then
    pass "unknown endpoint gets 404 JSON"
else
    fail "unknown endpoint gets 404 JSON" "$out"
fi
out=$(curl -s -w ' %{http_code}' -X DELETE "$ADDR/v1/agent/self")
check "wrong method gets 405" contains "$out" " 405"

# ---- one agent per data dir ---------------------------------------------
out=$("$NOMCLIENT" agent -dev -data-dir "$DATA" -http-port 0 2>&1)
rc=$?
if [ $rc -eq 1 ] && contains "$out" "in use by another nomclient agent"; then
    pass "a second agent on the same data_dir is refused"
else
    fail "a second agent on the same data_dir is refused (rc=$rc)" "$out"
fi

# ---- restart keeps node id and jobs -------------------------------------
stop_agent
rc=$?
check "agent exits 0 on SIGTERM" [ $rc -eq 0 ]
if start_agent a2 -dev -data-dir "$DATA"; then
    new_id=$(curl -s "$ADDR/v1/node/self?pretty" | sed -n 's/.*"ID": "\([0-9a-f-]*\)".*/\1/p' | head -n 1)
    check "the node id survives a restart" [ -n "$node_id" ] && [ "$new_id" = "$node_id" ]
    out=$("$NOMCLIENT" job status demo 2>&1)
    check "jobs survive a restart" contains "$out" "ID            = demo"
else
    fail "agent restarts on the same data dir" "$(cat "$TMP/a2.log")"
fi

out=$("$NOMCLIENT" job stop demo 2>&1)
check "job stop stops the job" contains "$out" 'Job "demo" stopped'
out=$("$NOMCLIENT" job status demo 2>&1)
check "a stopped job is dead" contains "$out" "Status        = dead"
"$NOMCLIENT" job stop -purge demo >/dev/null 2>&1
out=$("$NOMCLIENT" job status demo 2>&1)
rc=$?
check "a purged job is gone" [ $rc -eq 1 ]

# ---- CLI basics ---------------------------------------------------------
ok=1
for c in "agent -h" "status -h" "node status -h" "job -h" "job run -h" \
    "job validate -h" "job status -h" "job stop -h" "job inspect -h" "version"; do
    # shellcheck disable=SC2086
    "$NOMCLIENT" $c >/dev/null 2>&1 || { ok=0; echo "    $c failed"; }
done
check "-h on every command exits 0" [ $ok -eq 1 ]
stop_agent
out=$(NOMCLIENT_ADDR=http://127.0.0.1:1 "$NOMCLIENT" status -self 2>&1)
rc=$?
if [ $rc -eq 1 ] && contains "$out" "is the agent running"; then
    pass "the CLI explains a missing agent"
else
    fail "the CLI explains a missing agent (rc=$rc)" "$out"
fi

finish
