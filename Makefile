# nomclient - node agent for Nomad-style clusters.
#
#   sudo make run    install Debian packages, build, start a dev agent + demo job
#   sudo make test   install Debian packages, build, run every test
#
# Other targets: all (default), deps, unit, integration, bench, bench-checks,
# bench-gc, bench-template, fuzz, format, clean.  BUILD=dir puts objects elsewhere (default build/).

CC        ?= cc
CLANG     ?= clang
BUILD     ?= build
PREFIX    ?= /usr/local
PKGS      := libuv libcurl jansson libcap libarchive
DEB_PKGS  := gcc make pkg-config libuv1-dev libcurl4-openssl-dev libjansson-dev \
             libcap-dev libcmocka-dev libhttp-parser-dev \
             containernetworking-plugins iptables iproute2 curl procps python3 \
             openssl libarchive-dev libssl-dev docker.io busybox-static \
             golang-go golang-github-hashicorp-go-msgpack-dev
FUZZ_PKGS := clang
BENCH_PKGS := haproxy

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CPPFLAGS := -I. -D_GNU_SOURCE $(PKG_CFLAGS)
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 $(WARN) -fno-strict-aliasing
LDLIBS   := $(PKG_LIBS) -lhttp_parser -lm

ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer

SRCS      := $(sort $(wildcard client/*.c client/*/*.c checks/*.c netns/*.c volumes/*.c))
HDRS      := $(sort $(wildcard client/*.h client/*/*.h checks/*.h netns/*.h volumes/*.h))
LIB_SRCS  := $(filter-out client/main.c,$(SRCS))
OBJS      := $(SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SRCS := $(sort $(wildcard tests/test_*.c))
TESTS     := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZERS   := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
BENCH_SRCS := $(sort $(wildcard bench/bench_*.c))
FUZZ_TIME ?= 30

.PHONY: all deps fuzz-deps bench-deps test unit integration run bench \
        bench-checks bench-checks2 bench-allocs bench-consul bench-gc fuzz \
        bench-tls fuzz-build format clean \
        install
.PHONY: bench-acl bench-docker bench-template

all: nomclient

nomclient: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 $(WARN) $(ASAN_FLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CLANG) $(CPPFLAGS) -std=c11 $(WARN) $(FUZZ_FLAGS) -MMD -MP -c -o $@ $<

# Each test and fuzz target names the sources it links with on a line
# "// deps: client/a.c client/job/" (a folder: every .c in it); this turns
# those lines into rules.
deps_of = for s in $$(sed -n 's|^// deps: *||p' $$t); do \
	    case $$s in */) ls $$s*.c;; *) echo $$s;; esac; done
$(BUILD)/tests.mk: $(TEST_SRCS) $(FUZZ_SRCS) $(BENCH_SRCS) $(SRCS) Makefile
	@mkdir -p $(BUILD)
	@for t in $(TEST_SRCS); do n=$$(basename $$t .c); \
	  objs=; for s in $$($(deps_of)); do objs="$$objs $(BUILD)/asan/$${s%.c}.o"; done; \
	  echo "$(BUILD)/tests/$$n: $(BUILD)/asan/tests/$$n.o $$objs"; done > $@
	@for t in $(FUZZ_SRCS); do n=$$(basename $$t .c); \
	  objs=; for s in $$($(deps_of)); do objs="$$objs $(BUILD)/fuzzobj/$${s%.c}.o"; done; \
	  echo "$(BUILD)/fuzz/$$n: $(BUILD)/fuzzobj/tests/fuzz/$$n.o $$objs"; done >> $@
	@for t in $(BENCH_SRCS); do n=$$(basename $$t .c); \
	  objs=; for s in $$($(deps_of)); do objs="$$objs $(BUILD)/obj/$${s%.c}.o"; done; \
	  echo "$(BUILD)/bench/$$n: $(BUILD)/obj/bench/$$n.o $$objs"; done >> $@

ifeq ($(filter clean deps format,$(MAKECMDGOALS)),)
-include $(BUILD)/tests.mk
endif
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

$(BUILD)/tests/%:
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/fuzz/%:
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%:
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Installs what is missing from Debian's packages when root; otherwise
# prints the exact command and fails.
define install_pkgs
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	  | grep -q 'install ok installed' || echo $$p; done | tr '\n' ' '); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $$missing </dev/null; \
	  else \
	    echo "missing Debian packages; run:"; \
	    echo "  sudo apt-get install -y $$missing"; exit 1; \
	  fi; \
	fi
endef

deps:
	$(call install_pkgs,$(DEB_PKGS))

fuzz-deps:
	$(call install_pkgs,$(FUZZ_PKGS))

bench-deps:
	$(call install_pkgs,$(BENCH_PKGS))

test: deps
	@$(MAKE) --no-print-directory all $(TESTS)
	@BUILD=$(BUILD) sh tests/run.sh

unit: all $(TESTS)
	@BUILD=$(BUILD) UNIT_ONLY=1 sh tests/run.sh

integration: all
	@BUILD=$(BUILD) INTEGRATION_ONLY=1 sh tests/run.sh

run: deps
	@$(MAKE) --no-print-directory all
	@sh contrib/run-dev.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@sh bench/bench.sh

bench-allocs: deps
	@$(MAKE) --no-print-directory all
	@sh bench/bench_allocs.sh

bench-gc: deps
	@$(MAKE) --no-print-directory all
	@sh bench/bench_gc.sh

bench-checks: deps bench-deps
	@$(MAKE) --no-print-directory $(BUILD)/bench/bench_checks
	@BUILD=$(BUILD) sh bench/bench_checks.sh

bench-checks2: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) sh bench/bench_script_grpc.sh

bench-consul: deps
	@$(MAKE) --no-print-directory $(BUILD)/bench/bench_consul
	@BUILD=$(BUILD) sh bench/bench_consul.sh

bench-acl: deps
	@$(MAKE) --no-print-directory all
	@sh bench/bench_acl.sh

bench-docker: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/bench_docker_engine
	@BUILD=$(BUILD) sh bench/bench_docker.sh

bench-template: deps
	@$(MAKE) --no-print-directory $(BUILD)/bench/bench_template
	@BUILD=$(BUILD) sh bench/bench_template.sh

fuzz-build: $(FUZZERS)

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-build
	@for f in $(FUZZERS); do n=$$(basename $$f); mkdir -p $(BUILD)/corpus/$$n; \
	  seeds=tests/fuzz/corpus/$$n; [ -d $$seeds ] || seeds=; \
	  echo "== $$n ($(FUZZ_TIME)s)"; \
	  $$f -max_total_time=$(FUZZ_TIME) -max_len=65536 -rss_limit_mb=2048 \
	    $(BUILD)/corpus/$$n $$seeds 2>&1 | tail -n 3 || exit 1; done

format:
	clang-format -i $(SRCS) $(HDRS) $(TEST_SRCS)

install: nomclient
	install -D -m 0755 nomclient $(DESTDIR)$(PREFIX)/bin/nomclient

clean:
	rm -rf $(BUILD) nomclient

bench-tls: all
	@sh bench/bench_tls.sh
