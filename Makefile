# bootd — build, test, bench, demo. `make help` lists the targets.

CC      ?= cc
PYTHON  ?= /usr/bin/python3
SAN     ?= 0
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := $(shell cat VERSION)

PKGS    := libmicrohttpd libcurl libcjson yaml-0.1 sqlite3 libgit2 libssl libcrypto libmnl

# CFLAGS and LDFLAGS are the user's (make CFLAGS=-O0 keeps everything below); what the
# code needs to build at all lives in BD_CFLAGS and BD_LDLIBS.
CFLAGS  ?= -O2 -g
BD_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -DBD_VERSION='"$(VERSION)"'
BD_LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lmbedtls -lmbedx509 -lmbedcrypto \
             -lz -pthread

ifeq ($(SAN),1)
BUILD   := build/san
BD_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
BD_LDFLAGS := -fsanitize=address,undefined
else
BUILD   := build/release
endif

# Capabilities below server/ and cli/ form one static library, in DESIGN.md's order.
LIB_DIRS := lib lab state boot netsvc images talos kube gitops cluster proxmox
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
SRV_SRC  := $(filter-out server/main.c,$(wildcard server/*.c))
CLI_SRC  := $(filter-out cli/main.c,$(wildcard cli/*.c))
UNIT_SRC := $(wildcard tests/unit/*.c)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
SRV_OBJ  := $(SRV_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/%.o)
# the status page's files, built into bootd by a generator made first
UI_FILES := server/ui/index.html server/ui/app.js server/ui/style.css server/ui/favicon.svg
SRV_OBJ  += $(BUILD)/gen/ui_assets.o

BOOTD    := $(BUILD)/bootd
BOOTCTL  := $(BUILD)/bootctl
UNIT     := $(BUILD)/unit-tests

.PHONY: all deps test unit integration e2e e2e-slow lint bench demo start clean help install deb
all: $(BOOTD) $(BOOTCTL)

help:
	@echo "make            build bootd and bootctl (build/release/)"
	@echo "make deps       install the Debian packages bootd needs (apt-get, as root)"
	@echo "make test       deps + build + unit + integration + end-to-end tests"
	@echo "make test SAN=1 the same under AddressSanitizer and UBSan"
	@echo "make e2e-slow   arm64, Secure Boot, PXE-timeout boots, the 8-VM boot storm, the whole lab lost and rebuilt (CI runs it too)"
	@echo "make lint       cppcheck and the layering check (includes point down only)"
	@echo "make mutants    plant each bug of tests/mutants/ and check a test catches it (slow)"
	@echo "make bench      benchmarks against nginx and curl, printed as ratios"
	@echo "make demo       VMs -> config -> bootstrap -> Kubernetes -> GitOps synced, in network namespaces"
	@echo "make start      run bootd on loopback (a one-machine lab) in the foreground"
	@echo "make fuzz       libFuzzer on each tests/fuzz target, FUZZ_TIME s each (default 60)"
	@echo "make install    bootd, bootctl, systemd unit, man pages, completion (PREFIX, DESTDIR)"
	@echo "make deb        a Debian package of the same (build/release/bootd_VERSION_ARCH.deb)"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(BD_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/embed: server/ui/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -Werror -O2 -o $@ $<

$(BUILD)/gen/ui_assets.c: $(BUILD)/embed $(UI_FILES)
	@mkdir -p $(dir $@)
	$(BUILD)/embed $@ /=server/ui/index.html $(foreach f,$(filter-out %/index.html,$(UI_FILES)),/ui/$(notdir $(f))=$(f))

$(BUILD)/gen/ui_assets.o: $(BUILD)/gen/ui_assets.c server/ui_assets.h
	@$(CC) $(BD_CFLAGS) $(CFLAGS) -Iserver -c $< -o $@

$(BUILD)/libbootd.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libbootd-server.a: $(SRV_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BOOTD): $(BUILD)/server/main.o $(BUILD)/libbootd-server.a $(BUILD)/libbootd.a
	$(CC) $(BD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(BD_LDLIBS) $(LDLIBS)

$(BOOTCTL): $(BUILD)/cli/main.o $(CLI_OBJ) $(BUILD)/libbootd.a
	$(CC) $(BD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(BD_LDLIBS) $(LDLIBS)

$(UNIT): $(UNIT_OBJ) $(BUILD)/libbootd-server.a $(BUILD)/libbootd.a
	$(CC) $(BD_LDFLAGS) $(LDFLAGS) -o $@ $^ $(BD_LDLIBS) $(LDLIBS) -lcriterion

deps:
	@scripts/deps.sh

unit: $(UNIT)
	$(UNIT) --jobs 2

integration: $(BOOTD) $(BOOTCTL) $(UNIT)  # the mutants check lists the unit tests
	BOOTD_BUILD=$(BUILD) $(PYTHON) -m unittest discover -s tests/integration -t . -v

e2e: $(BOOTD) $(BOOTCTL)
	@if [ -d tests/e2e ]; then BOOTD_BUILD=$(BUILD) tests/e2e/run.sh; fi

# the slow boot paths: arm64 under AAVMF, Secure Boot enrollment and refusals, PXE
# timeouts before HTTP boot (8 to 9 min under software emulation); the whole lab from
# nothing, lost and rebuilt (4 to 6 min)
e2e-slow: $(BOOTD) $(BOOTCTL)
	BOOTD_BUILD=$(BUILD) E2E_SLOW=1 E2E_TESTS="tests.e2e.test_boot_paths.Arm64 \
	  tests.e2e.test_boot_paths.SecureBoot \
	  tests.e2e.test_boot_paths.HttpBoot.test_ovmf_falls_through_pxe_to_http \
	  tests.e2e.test_storm \
	  tests.e2e.test_whole_lab" tests/e2e/run.sh

lint: $(BOOTD) $(BOOTCTL)
	BUILD=$(BUILD) $(PYTHON) scripts/lint.py

test: deps
	$(MAKE) all
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) fuzz-replay
	$(MAKE) integration
	$(MAKE) e2e

.PHONY: mutants
mutants: $(BOOTD) $(BOOTCTL) $(UNIT)
	SAN=$(SAN) $(PYTHON) scripts/mutants.py

bench: deps
	$(MAKE) all
	BOOTD_BUILD=$(BUILD) $(PYTHON) bench/run.py

start: deps
	$(MAKE) all
	scripts/start.sh $(BUILD)

demo: deps
	$(MAKE) all
	BOOTD_BUILD=$(BUILD) scripts/demo.sh

install: $(BOOTD) $(BOOTCTL)
	PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) VERSION=$(VERSION) scripts/install.sh $(BUILD)

deb: $(BOOTD) $(BOOTCTL)
	VERSION=$(VERSION) scripts/mkdeb.sh $(BUILD) $(BUILD)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(SRV_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(BUILD)/server/main.d $(BUILD)/cli/main.d

# ---- fuzzing (tests/fuzz): libFuzzer harnesses for what bootd takes from outside ----
# `make fuzz` runs each target FUZZ_TIME seconds (new inputs go to build/fuzz/corpus);
# `make fuzz-replay` runs every committed corpus file once, under ASan+UBSan.
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 60
FUZZ_BUILD := build/fuzz
FUZZ_FLAGS := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
              -fno-omit-frame-pointer
FUZZ_CFLAGS = $(filter-out -Werror,$(BD_CFLAGS)) $(FUZZ_FLAGS)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_OBJ   := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o) $(SRV_SRC:%.c=$(FUZZ_BUILD)/%.o)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libfuzzed.a: $(FUZZ_OBJ)
	@rm -f $@
	@$(AR) rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libfuzzed.a
	@echo "  FUZZLD  $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -MF $@.d -o $@ $< $(FUZZ_BUILD)/libfuzzed.a $(BD_LDLIBS)

# a header change rebuilds what includes it: a stale object would read structs at old offsets
-include $(FUZZ_OBJ:.o=.d) $(FUZZ_BINS:=.d)

.PHONY: fuzz fuzz-replay
.SECONDARY: $(FUZZ_OBJ)
fuzz: $(FUZZ_BINS)
	@for b in $(FUZZ_BINS); do n=$${b##*/fuzz_}; mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	  echo "== $$n ($(FUZZ_TIME) s)"; \
	  $$b -max_total_time=$(FUZZ_TIME) -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/ $(FUZZ_BUILD)/corpus/$$n \
	    tests/fuzz/corpus/$$n 2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY" \
	    || exit 1; done

fuzz-replay: $(FUZZ_BINS)
	@for b in $(FUZZ_BINS); do n=$${b##*/fuzz_}; \
	  $$b -runs=0 -artifact_prefix=$(FUZZ_BUILD)/ tests/fuzz/corpus/$$n >$(FUZZ_BUILD)/replay-$$n.log 2>&1 \
	    && echo "  REPLAY  $$n: $$(ls tests/fuzz/corpus/$$n | wc -l) inputs" \
	    || { cat $(FUZZ_BUILD)/replay-$$n.log; exit 1; }; done
