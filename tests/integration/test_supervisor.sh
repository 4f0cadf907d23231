#!/bin/sh
# The task supervisor (`nomclient supervise SPEC`) on its own: output
# capture and rotation, exit status, kill signal, and, as root, the exec
# isolation: chroot, read-only and read-write volumes, user switch,
# capabilities and a cgroup that is removed afterwards.
. "$(dirname "$0")/lib.sh"

root=$TMP/alloc
mkdir -p "$root/alloc/logs" "$root/web/local" "$root/.nomclient"

# spec NAME CHROOT COMMAND-ARGS-JSON [EXTRA-JSON-FIELDS]
spec() {
    cat >"$TMP/$1.json" <<JSON
{"AllocID": "it-$$", "Task": "$1", "Command": "/bin/sh", "Args": $3,
 "Env": {"PATH": "/usr/bin:/bin", "GREETING": "hi"},
 "TaskDir": "$root/web", "AllocDir": "$root/alloc",
 "StatusFile": "$root/.nomclient/$1.status.json",
 "LogDir": "$root/alloc/logs", "Chroot": $2, "KillTimeout": 2000000000 $4}
JSON
}

status_field() { sed -n "s/.*\"$2\": *\([^,}]*\).*/\1/p" "$root/.nomclient/$1.status.json"; }

spec plain false '["-c", "echo out $GREETING; echo err >&2; exit 3"]'
"$NOMCLIENT" supervise "$TMP/plain.json"
check "exit code recorded" [ "$(status_field plain ExitCode)" = 3 ]
check "stdout captured with the task's env" grep -q "out hi" "$root/alloc/logs/plain.stdout.0"
check "stderr captured apart" grep -q "^err" "$root/alloc/logs/plain.stderr.0"

spec rotate false '["-c", "i=0; while [ $i -lt 300 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done"]' ', "LogMaxFiles": 3, "LogMaxFileBytes": 2048'
"$NOMCLIENT" supervise "$TMP/rotate.json"
n=$(ls "$root/alloc/logs" | grep -c '^rotate.stdout')
big=$(find "$root/alloc/logs" -name 'rotate.stdout.*' -size +2k | wc -l)
rotated() { [ "$n" -eq 3 ] && [ "$big" -eq 0 ]; }
check "logs rotate by size and keep max_files" rotated

spec killed false '["-c", "trap \"exit 7\" INT; while :; do sleep 0.1; done"]' ', "KillSignal": 2'
"$NOMCLIENT" supervise "$TMP/killed.json" &
sup=$!
cleanup_add "kill -9 $sup"
sleep 0.3
kill -TERM $sup
wait $sup
check "stop forwards the task's kill_signal" [ "$(status_field killed ExitCode)" = 7 ]

spec stubborn false '["-c", "trap \"\" INT TERM; while :; do sleep 0.1; done"]' ', "KillSignal": 15, "KillTimeout": 300000000'
"$NOMCLIENT" supervise "$TMP/stubborn.json" &
sup=$!
sleep 0.3
start=$(date +%s%N)
kill -TERM $sup
wait $sup
ms=$(( ($(date +%s%N) - start) / 1000000 ))
killed_in_time() { [ "$(status_field stubborn Signal)" = 9 ] && [ $ms -lt 2000 ]; }
check "SIGKILL after kill_timeout (${ms} ms)" killed_in_time

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$TMP/ro-src" "$TMP/rw-src"
    echo seed >"$TMP/ro-src/file"
    spec iso true '["-c", "id -u; grep CapBnd /proc/self/status; echo x > /ro/new 2>/dev/null && echo ro-writable; echo data > /rw/f; ls /alloc; test -e /etc/passwd && echo has-etc; test -e /home && echo has-home; exit 0"]' \
        ", \"User\": \"nobody\", \"Cgroup\": \"it-$$.iso\", \"MemoryMB\": 64, \"CPUShares\": 100,
          \"Capabilities\": [\"CAP_CHOWN\", \"CAP_KILL\"],
          \"Mounts\": [{\"Source\": \"$TMP/ro-src\", \"Destination\": \"/ro\", \"ReadOnly\": true},
                      {\"Source\": \"$TMP/rw-src\", \"Destination\": \"/rw\", \"ReadOnly\": false}]"
    chmod 0777 "$TMP/rw-src"
    "$NOMCLIENT" supervise "$TMP/iso.json"
    out=$(cat "$root/alloc/logs/iso.stdout.0")
    check "exec task ran (exit 0)" [ "$(status_field iso ExitCode)" = 0 ]
    check "switched to user nobody" contains "$out" "65534"
    check "capabilities reduced to the configured set" contains "$out" "CapBnd:	0000000000000021"
    check "read-only volume rejects writes" sh -c "! printf '%s' \"$out\" | grep -q ro-writable"
    check "read-write volume data lands in the source" grep -q data "$TMP/rw-src/f"
    check "chroot has /etc but not the host's /home" sh -c "printf '%s' \"$out\" | grep -q has-etc && ! printf '%s' \"$out\" | grep -q has-home"
    check "alloc dir visible at /alloc" contains "$out" "logs"
    check "task cgroup removed" sh -c "! ls -d /sys/fs/cgroup/*/nomclient/it-$$.iso /sys/fs/cgroup/nomclient/it-$$.iso 2>/dev/null | grep -q ."
    check "no mounts left under the task dir" sh -c "! grep -q '$root' /proc/self/mountinfo"
else
    echo "# not root: exec isolation checks skipped"
fi
finish
