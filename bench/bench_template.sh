#!/bin/sh
# bench_template.sh - render time of the seed jobs' templates and of two
# 1,000-line range templates, by the C engine and by Go's text/template
# (tests/template/gorender) on the same input in the same run.
#
#   make bench-template            (BENCH_N=20000 BENCH_RANGE_N=1000 to change)
set -e
BUILD=${BUILD:-build}
N=${BENCH_N:-20000}
RN=${BENCH_RANGE_N:-1000}
SEED=${SEED_DIR:-/work/shared/examples/seed}
GO=${GO:-/usr/bin/go}
work=$(mktemp -d /tmp/benchtmplXXXX)
trap 'rm -rf "$work"' EXIT

if [ ! -x "$GO" ]; then
    echo "bench-template: $GO not found (Debian's golang-go); run make deps" >&2
    exit 1
fi
mkdir -p "$BUILD"
abs=$(cd "$BUILD" && pwd)
(cd tests/template/gorender && GOCACHE="$abs/gocache" GOPATH="$abs/gopath" GOFLAGS= \
    GO111MODULE=off "$GO" build -o "$abs/gorender" main.go)

env_opts='#opt env=NOMAD_UPSTREAM_ADDR_api=127.0.0.1:8080
#opt env=NOMAD_UPSTREAM_ADDR_database=127.0.0.1:5432
#opt env=NOMAD_UPSTREAM_ADDR_redis=127.0.0.1:6379
#opt env=NOMAD_ALLOC_ID=5ba3cbd3-d2a5-4f59-b7a6-4a3f6b1d0c11'

# The template { data = <<EOF ... EOF } blocks of the seed jobs.
for f in "$SEED"/*.nomad; do
    [ -f "$f" ] || continue
    base=$(basename "$f" .nomad)
    awk -v base="$base" -v opts="$env_opts" '
        /template[[:space:]]*\{/ { intmpl = 1 }
        intmpl && !inh && /data[[:space:]]*=[[:space:]]*<<-?[A-Za-z_]+/ {
            tag = $0; sub(/.*<<-?/, "", tag); sub(/[[:space:]].*$/, "", tag)
            n++; printf "### %s-%d\n%s\n", base, n, opts; inh = 1; next }
        inh && $0 ~ ("^[[:space:]]*" tag "[[:space:]]*$") { inh = 0; intmpl = 0; next }
        inh { print }
    ' "$f"
done > "$work/seed.tmpl"

# Two 1,000-line templates: a range over data, a range over loop with math.
awk 'BEGIN {
    printf "### range-1000-data\n#data {\"services\": ["
    for (i = 0; i < 1000; i++)
        printf "%s{\"name\": \"web-%d\", \"addr\": \"10.0.%d.%d\", \"port\": %d, \"tags\": [\"v1\", \"http\"]}",
            (i ? ", " : ""), i, int(i / 256), i % 256, 20000 + i
    printf "]}\n"
    printf "upstream backend {\n{{- range .services }}\n    server {{ .addr }}:{{ .port }} weight={{ len .tags }}; # {{ .name }}\n{{- end }}\n}\n"
    printf "### range-1000-loop\n"
    printf "{{ range $i := loop 1000 }}server web-{{ $i }} 10.0.{{ divide 256 $i }}.{{ modulo 256 $i }}:{{ add 20000 $i }}\n{{ end }}\n"
}' > "$work/range.tmpl"

nseeds=$(grep -c '^### ' "$work/seed.tmpl" || true)
echo "== bench-template: $nseeds seed templates from $SEED ($N renders each), 2 range templates ($RN renders each)"
"$BUILD/bench/bench_template" "$N" "$work/seed.tmpl" > "$work/c.out"
"$BUILD/bench/bench_template" "$RN" "$work/range.tmpl" >> "$work/c.out"
"$BUILD/gorender" -bench "$N" "$work/seed.tmpl" > "$work/go.out"
"$BUILD/gorender" -bench "$RN" "$work/range.tmpl" >> "$work/go.out"

printf '%-20s %12s %12s %6s %7s %12s\n' template "C ns/render" "Go ns/render" "Go/C" bytes "C tmpl held"
paste "$work/c.out" "$work/go.out" | awk -F'\t' '{
    if ($1 != $5 || $3 != $7) { printf "%-20s output differs: C %s bytes, Go %s bytes\n", $1, $3, $7; bad = 1 }
    printf "%-20s %12d %12d %6.2f %7d %12d\n", $1, $2, $6, ($2 > 0 ? $6 / $2 : 0), $3, $4
} END { exit bad }' > "$work/table" || { cat "$work/table"; exit 1; }
cat "$work/table"
echo "(held: bytes a parsed template keeps beyond its text: tree, names, arena slack)"
