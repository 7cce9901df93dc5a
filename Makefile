# bootd — build, test, bench, demo. `make help` lists the targets.

CC      ?= cc
PYTHON  ?= /usr/bin/python3
SAN     ?= 0

PKGS    := libmicrohttpd libcurl libcjson yaml-0.1 sqlite3 libgit2 libcrypto

# CFLAGS and LDFLAGS are the user's (make CFLAGS=-O0 keeps everything below); what the
# code needs to build at all lives in BD_CFLAGS and BD_LDLIBS.
CFLAGS  ?= -O2 -g
BD_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
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
LIB_DIRS := lib lab state boot netsvc images talos kube gitops cluster
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
SRV_SRC  := $(filter-out server/main.c,$(wildcard server/*.c))
CLI_SRC  := $(filter-out cli/main.c,$(wildcard cli/*.c))
UNIT_SRC := $(wildcard tests/unit/*.c)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
SRV_OBJ  := $(SRV_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/%.o)

BOOTD    := $(BUILD)/bootd
BOOTCTL  := $(BUILD)/bootctl
UNIT     := $(BUILD)/unit-tests

.PHONY: all deps test unit integration e2e lint bench demo start clean help
all: $(BOOTD) $(BOOTCTL)

help:
	@echo "make            build bootd and bootctl (build/release/)"
	@echo "make deps       install the Debian packages bootd needs (apt-get, as root)"
	@echo "make test       deps + build + unit + integration + end-to-end tests"
	@echo "make test SAN=1 the same under AddressSanitizer and UBSan"
	@echo "make lint       cppcheck and the layering check (includes point down only)"
	@echo "make bench      benchmarks against nginx and curl, printed as ratios"
	@echo "make demo       a VM PXE-boots from bootd in a network namespace"
	@echo "make start      run bootd on examples/minimal in the foreground"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(BD_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

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

integration: $(BOOTD) $(BOOTCTL)
	BOOTD_BUILD=$(BUILD) $(PYTHON) -m unittest discover -s tests/integration -t . -v

e2e: $(BOOTD) $(BOOTCTL)
	@if [ -d tests/e2e ]; then BOOTD_BUILD=$(BUILD) tests/e2e/run.sh; fi

lint: $(BOOTD) $(BOOTCTL)
	BUILD=$(BUILD) $(PYTHON) scripts/lint.py

test: deps
	$(MAKE) all
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) e2e

bench: deps
	$(MAKE) all
	BOOTD_BUILD=$(BUILD) $(PYTHON) bench/run.py

start: deps
	$(MAKE) all
	scripts/start.sh $(BUILD)

demo: deps
	$(MAKE) all
	BOOTD_BUILD=$(BUILD) scripts/demo.sh

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(SRV_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(BUILD)/server/main.d $(BUILD)/cli/main.d
