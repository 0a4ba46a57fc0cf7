# mosquitto-tokens. `make` builds the plugin; `make test` installs what is
# missing (Debian packages), builds and runs every test.

CC ?= cc
BUILD := build
PYTHON := /usr/bin/python3

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2
CFLAGS ?= -O2 -g
# SANITIZE: extra compiler and linker flags, for sanitizer builds.
SANITIZE ?=
# MOSQUITTO_INCLUDE: another release's headers (build/mosquitto-2.1.2/_prefix/include):
# one source tree builds against 2.0's and 2.1's (plugin/broker_api.h).
MOSQUITTO_INCLUDE ?=
CFLAGS += -std=c11 -D_GNU_SOURCE -fPIC $(WARNINGS) -Iinclude -I/usr/include/postgresql $(if $(MOSQUITTO_INCLUDE),-I$(MOSQUITTO_INCLUDE)) $(SANITIZE)
LDFLAGS += $(SANITIZE)
LDLIBS := -lcjson -lcrypto -lz -lmosquitto -lpq -lunistring -lm -ldl -pthread

# Everything except the broker entry points and glue: the unit tests link it.
CORE_SOURCES := plugin/token_format.c plugin/rfc3339.c plugin/store.c \
	plugin/order_index.c plugin/token_orders.c plugin/token_listing.c \
	plugin/state_format.c plugin/metadata_json.c plugin/persist.c plugin/fields.c plugin/control.c \
	plugin/commands_tokens.c plugin/commands_roles.c plugin/acl.c \
	plugin/sessions.c plugin/expiry.c plugin/instance.c plugin/journal.c \
	plugin/journal_file.c plugin/snapshot_reader.c plugin/snapshot_writer.c plugin/state_folder.c \
	plugin/session_records.c plugin/events.c plugin/changes.c plugin/login.c plugin/invariants.c \
	plugin/replies.c plugin/reply_recipients.c plugin/log_text.c plugin/fold_child.c \
	plugin/fleet.c plugin/fleet_schema.c plugin/fleet_member.c
BROKER_SOURCES := plugin/plugin.c plugin/control_topic.c plugin/authentication.c \
	plugin/authorization.c plugin/tick.c plugin/broker_publish.c plugin/broker_features.c
CORE_OBJECTS := $(CORE_SOURCES:%.c=$(BUILD)/%.o)
BROKER_OBJECTS := $(BROKER_SOURCES:%.c=$(BUILD)/%.o)

UNIT_TESTS := $(patsubst test/unit/%.c,$(BUILD)/test/%,$(filter-out test/unit/test_support.c,$(wildcard test/unit/test_*.c)))

PLUGIN := $(BUILD)/mosquitto_tokens.so
CTRL_MODULE := $(BUILD)/mosquitto_ctrl_tokens.so
CTRL_SOURCES := $(wildcard ctrl/*.c)
CTRL_OBJECTS := $(CTRL_SOURCES:%.c=$(BUILD)/%.o)
CONSOLE := $(BUILD)/mosquitto_tokens_console
CONSOLE_SOURCES := $(wildcard console/*.c)
CONSOLE_OBJECTS := $(CONSOLE_SOURCES:%.c=$(BUILD)/%.o)
# An LD_PRELOAD shim that fails the state folder's writes on demand, for
# the fault-injection tests (test/integration/test_faults.py).
FAULT_SHIM := $(BUILD)/fail_io.so
# An LD_PRELOAD shim that reports the broker's heap in use (glibc's
# mallinfo2) to a file, for the load run's memory check (bench/load.py).
HEAP_PROBE := $(BUILD)/heap_probe.so
# The page's files, each also listed in console/assets.c.
PAGE_FILES := $(addprefix console/page/,index.html style.css app.js api.js messages.js dom.js time.js route.js \
	tokens-view.js token-dialog.js roles-view.js)
# What the module shares with the plugin: the token format and the state file
# (whose loader checks ACL topics with acl.c's rule), and the PostgreSQL link
# and schema for init, import and export against the database (fleet_transfer.c,
# which the plugin itself does not use).
CTRL_CORE_OBJECTS := $(addprefix $(BUILD)/plugin/,token_format.o rfc3339.o store.o order_index.o token_orders.o state_format.o metadata_json.o persist.o journal.o \
	changes.o snapshot_reader.o snapshot_writer.o journal_file.o state_folder.o session_records.o log_text.o acl.o fold_child.o \
	fleet.o fleet_schema.o fleet_transfer.o)

# Where `make install` puts things. Debian keeps Mosquitto's plugins (and
# the dynamic loader finds mosquitto_ctrl modules) in /usr/lib/<multiarch>.
PREFIX ?= /usr
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null)
LIBDIR ?= $(PREFIX)/lib$(if $(MULTIARCH),/$(MULTIARCH))

# Debian packages the build and the tests need.
DEPENDENCIES := mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev valgrind \
	libcjson-dev libssl-dev zlib1g-dev uthash-dev libcmocka-dev libunistring-dev pkg-config \
	libmicrohttpd-dev xxd clang libclang-rt-14-dev llvm-14 \
	python3-pytest python3-paho-mqtt fail2ban \
	cmake g++ libedit-dev libargon2-dev libsqlite3-dev \
	postgresql libpq-dev

.PHONY: all deps test unit-test sanitize-test integration-test browser-test fuzz fuzz-build fuzz-run fuzz-corpus demo install \
	uninstall bench load load-test clean vendor-brokers integration-test-releases integration-test-headers-2.1

all: $(PLUGIN) $(CTRL_MODULE) $(CONSOLE) $(FAULT_SHIM)

# The plugin's objects: its private headers (plugin/*.h) beside their .c,
# and include/, what the module and the console share with it.
$(BUILD)/plugin/%.o: plugin/%.c $(wildcard include/*.h plugin/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iplugin -c $< -o $@

# ctrl/ and console/ see include/ only, never plugin/ (no -Iplugin).
$(BUILD)/ctrl/%.o: ctrl/%.c $(wildcard include/*.h ctrl/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ictrl -c $< -o $@

# The page is compiled into the console daemon.
$(BUILD)/console/page_files.h: $(PAGE_FILES)
	@mkdir -p $(dir $@)
	(cd console/page && for f in $(notdir $(PAGE_FILES)); do xxd -i $$f; done) > $@

$(BUILD)/console/%.o: console/%.c $(wildcard include/*.h console/*.h) $(BUILD)/console/page_files.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iconsole -I$(BUILD)/console -c $< -o $@

$(CONSOLE): $(CONSOLE_OBJECTS) $(BUILD)/plugin/token_format.o
	$(CC) -o $@ $^ $(LDFLAGS) -lmicrohttpd -lmosquitto -lcjson -lcrypto -lz -pthread

$(FAULT_SHIM): test/faults/fail_io.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $< $(LDFLAGS) -ldl

$(HEAP_PROBE): bench/heap_probe.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $< $(LDFLAGS) -pthread

$(CTRL_MODULE): $(CTRL_OBJECTS) $(CTRL_CORE_OBJECTS)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(PLUGIN): $(CORE_OBJECTS) $(BROKER_OBJECTS)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(LDLIBS)

# test_oom fails the plugin's allocations one at a time.
$(BUILD)/test/test_oom: LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc
# test_order_index fails the index's allocations the same way.
$(BUILD)/test/test_order_index: LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc

$(BUILD)/test/%: test/unit/%.c test/unit/test_support.c $(CORE_OBJECTS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itest/unit -Iplugin -o $@ $< test/unit/test_support.c $(CORE_OBJECTS) $(LDFLAGS) $(LDLIBS) -lcmocka

# The console's path decoding is tested alone (console/ sees no plugin/).
$(BUILD)/test/test_api_path: test/unit/test_api_path.c console/api_path.c console/api_path.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iconsole -o $@ test/unit/test_api_path.c console/api_path.c $(LDFLAGS) -lcmocka

# Installs the Debian packages that are missing (CI runs as root on a clean machine).
deps:
	@missing=$$(for p in $(DEPENDENCIES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

unit-test: $(UNIT_TESTS)
	@for t in $(UNIT_TESTS); do echo "== $$t"; $$t || exit 1; done

# The unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer
# (clang), in their own build folder; any report fails the run.
sanitize-test:
	$(MAKE) CC=clang BUILD=$(BUILD)/sanitize \
		SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" unit-test

# Fuzzing (libFuzzer, clang) with ASan and UBSan: test/fuzz/run.sh runs
# each harness for FUZZ_SECONDS on a copy of its committed seed corpus and
# fails on any crash, leak or sanitizer report.
FUZZERS := control state console ctrl
FUZZ_SECONDS ?= 60
FUZZ_SANITIZE := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_SUPPORT := test/fuzz/fuzz_support.c
# The console's http_api.c behind libmicrohttpd, with a broker pool that
# answers without a broker (no network).
FUZZ_CONSOLE_SOURCES := test/fuzz/fuzz_console.c test/fuzz/fake_broker_link.c \
	$(filter-out console/main.c console/broker_link.c,$(CONSOLE_SOURCES))

$(BUILD)/fuzz_%: test/fuzz/fuzz_%.c $(FUZZ_SUPPORT) $(CORE_OBJECTS)
	$(CC) $(CFLAGS) -Itest/fuzz -Iplugin -fsanitize=fuzzer -o $@ $< $(FUZZ_SUPPORT) $(CORE_OBJECTS) $(LDFLAGS) $(LDLIBS)

$(BUILD)/fuzz_console: $(FUZZ_CONSOLE_SOURCES) $(wildcard include/*.h console/*.h) $(BUILD)/console/page_files.h \
		$(BUILD)/plugin/token_format.o
	$(CC) $(CFLAGS) -Iconsole -I$(BUILD)/console -fsanitize=fuzzer -o $@ $(FUZZ_CONSOLE_SOURCES) \
		$(BUILD)/plugin/token_format.o $(LDFLAGS) -lmicrohttpd -lcjson -lcrypto -lz

# The same harnesses built for source coverage (no sanitizers): run.sh
# replays each grown corpus through them and reports the lines reached.
FUZZ_COVERAGE := -fprofile-instr-generate -fcoverage-mapping

# The mosquitto_ctrl module: arguments in, a request out; a reply in, printed.
$(BUILD)/fuzz_ctrl: test/fuzz/fuzz_ctrl.c $(CTRL_OBJECTS) $(CTRL_CORE_OBJECTS)
	$(CC) $(CFLAGS) -Ictrl -fsanitize=fuzzer -o $@ $^ $(LDFLAGS) $(LDLIBS)

fuzz-build:
	$(MAKE) CC=clang BUILD=$(BUILD)/fuzz SANITIZE="$(FUZZ_SANITIZE)" $(FUZZERS:%=$(BUILD)/fuzz/fuzz_%)
	$(MAKE) CC=clang BUILD=$(BUILD)/fuzz-coverage SANITIZE="$(FUZZ_COVERAGE)" \
		$(FUZZERS:%=$(BUILD)/fuzz-coverage/fuzz_%)

fuzz-run: fuzz-build
	FUZZ_BUILD=$(BUILD)/fuzz FUZZ_COVERAGE_BUILD=$(BUILD)/fuzz-coverage test/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZERS)

fuzz: deps
	$(MAKE) fuzz-run

# Grows the committed seed corpora with what a longer run finds (commit
# the new files): make fuzz-corpus FUZZ_SECONDS=600 FUZZERS=state
fuzz-corpus: fuzz-build
	FUZZ_GROW_CORPUS=1 FUZZ_BUILD=$(BUILD)/fuzz test/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZERS)

integration-test: $(PLUGIN) $(CTRL_MODULE) $(CONSOLE) $(FAULT_SHIM) $(BUILD)/make_state
	$(PYTHON) -m pytest -q test/integration

# Mosquitto releases Debian 12 does not package (the last 2.0.x and the
# current 2.1.x), built from the pristine archives in $(VENDOR)
# (../shared/vendor/README.md) into $(BUILD)/mosquitto-<version>/_prefix by
# test/brokers/build.sh: each archive is checked against SHA256SUMS, and a
# build is reused while its archive (checksum), cmake options and prefix
# are unchanged (_prefix/.vendor-stamp); a tree built by hand as that
# README shows is adopted (built again in place: nothing to do). A clean
# build of both takes about 30 s on 2 cores. 2.1 needs libmicrohttpd for
# its http_api listener (checked: cmake would drop it silently).
# The archives live beside the checkout (../shared/vendor); a checkout
# elsewhere finds them in /work/shared/vendor.
VENDOR ?= $(firstword $(wildcard ../shared/vendor /work/shared/vendor))
VENDOR_RELEASES := 2.0.22 2.1.2
VENDOR_CMAKE_2.0.22 := -DDOCUMENTATION=OFF -DWITH_TLS=ON
VENDOR_CMAKE_2.1.2 := -DWITH_DOCS=OFF -DWITH_TESTS=OFF -DWITH_TLS=ON -DWITH_HTTP_API=ON
VENDOR_JOBS ?= $(shell nproc 2>/dev/null || echo 2)

vendor-brokers: $(VENDOR_RELEASES:%=vendor-broker-%)

vendor-broker-%:
	@if [ -z "$(VENDOR)" ]; then \
		echo "vendor-brokers: WARNING: no ../shared/vendor here: Mosquitto $* is not built, and the tests"; \
		echo "vendor-brokers: WARNING: that need it are skipped (they say how to build it)"; \
	else test/brokers/build.sh $(VENDOR) $(BUILD) $* $(VENDOR_JOBS) $(VENDOR_CMAKE_$*); fi

# The integration suite (the mosquitto_ctrl and console tests included)
# against one of those releases: make integration-test-2.1.2. The tests
# take the broker, the clients and their libmosquitto from
# MOSQUITTO_PREFIX (test/integration/tokens_helpers.py); the plugin, the
# module and the console are this build's. RELEASE_PYTEST_ARGS leaves out
# what does not depend on the release and runs against Debian's anyway:
# the plugin's answers to malformed requests, the store against its reload,
# kill -9 and write faults (the plugin's own files), valgrind (a fleet member's too), and the
# console's limits against slow HTTP clients. What is left, about 700 tests,
# takes about 7 minutes against 2.0.22 and 6 against 2.1.2 on 2 cores
# (2026-12-01). RELEASE_PYTEST_ARGS= runs everything. Without the vendor
# archives a release is skipped with a warning.
RELEASE_SKIPPED := test_errors test_differential test_crash test_faults test_valgrind test_valgrind_tools test_valgrind_fleet \
	test_console_limits
RELEASE_PYTEST_ARGS ?= $(RELEASE_SKIPPED:%=--ignore=test/integration/%.py)
integration-test-%: vendor-broker-% $(PLUGIN) $(CTRL_MODULE) $(CONSOLE) $(FAULT_SHIM) $(BUILD)/make_state
	@if [ ! -x $(BUILD)/mosquitto-$*/_prefix/sbin/mosquitto ]; then \
		echo "integration-test-$*: WARNING: Mosquitto $* is not built (no vendor archives): not tested against it"; \
	else set -x; MOSQUITTO_PREFIX=$(BUILD)/mosquitto-$*/_prefix $(PYTHON) -m pytest -q test/integration \
		$(RELEASE_PYTEST_ARGS); fi

# The suite against each release in turn (one at a time); fails at the end
# if it failed against any of them.
integration-test-releases: vendor-brokers
	@failed=; for v in $(VENDOR_RELEASES); do \
		echo "== integration tests against Mosquitto $$v"; \
		$(MAKE) --no-print-directory integration-test-$$v || failed="$$failed $$v"; \
	done; \
	if [ -n "$$failed" ]; then echo "integration tests failed against Mosquitto$$failed"; exit 1; fi

# The plugin built against 2.1's headers (one source tree builds against
# either line's, include/broker_api.h) must load and work on every release
# too: the files that exercise what differs between releases run with it
# against Debian's broker and each built release. The whole suite with it
# was run by hand (MOSQUITTO_TOKENS_PLUGIN=build/headers-2.1/mosquitto_tokens.so).
HEADERS_2_1_BUILD := $(BUILD)/headers-2.1
HEADERS_2_1_PLUGIN := $(HEADERS_2_1_BUILD)/mosquitto_tokens.so
HEADERS_2_1_TESTS := test_logins test_acl test_reload test_persistent_sessions test_http_api
integration-test-headers-2.1: vendor-brokers $(CTRL_MODULE) $(CONSOLE) $(BUILD)/make_state
	@if [ ! -d $(BUILD)/mosquitto-2.1.2/_prefix/include ]; then \
		echo "integration-test-headers-2.1: WARNING: no 2.1.2 headers (no vendor archives): not tested"; exit 0; fi; \
	$(MAKE) --no-print-directory BUILD=$(HEADERS_2_1_BUILD) MOSQUITTO_INCLUDE=$(BUILD)/mosquitto-2.1.2/_prefix/include \
		$(HEADERS_2_1_PLUGIN) || exit 1; \
	failed=; for prefix in "" $(VENDOR_RELEASES:%=$(BUILD)/mosquitto-%/_prefix); do \
		if [ -n "$$prefix" ] && [ ! -x $$prefix/sbin/mosquitto ]; then continue; fi; \
		echo "== the plugin built against 2.1's headers, on $${prefix:-Debian's broker}"; \
		MOSQUITTO_PREFIX=$$prefix MOSQUITTO_TOKENS_PLUGIN=$(HEADERS_2_1_PLUGIN) $(PYTHON) -m pytest -q \
			$(HEADERS_2_1_TESTS:%=test/integration/%.py) || failed="$$failed $${prefix:-debian}"; \
	done; \
	if [ -n "$$failed" ]; then echo "the plugin built against 2.1's headers failed on:$$failed"; exit 1; fi

# Headless Chromium through playwright-core; run.sh installs Debian's
# chromium and the npm package when they are missing.
browser-test: all
	test/browser/run.sh

test: deps
	$(MAKE) all unit-test
	$(MAKE) sanitize-test
	$(MAKE) fuzz-run
	$(MAKE) vendor-brokers
	$(MAKE) integration-test
	$(MAKE) integration-test-releases
	$(MAKE) integration-test-headers-2.1
	$(MAKE) load-test
	$(MAKE) browser-test

# Installs what is missing, builds, and runs a broker with the plugin and a
# demo state in the foreground on 127.0.0.1:1884 (PORT=... to change).
demo: deps
	$(MAKE) all
	BUILD=$(BUILD) examples/demo.sh

# Benchmarks (bench/run.py says what each measures); not part of make test.
BENCH_BINARIES := $(BUILD)/login_storm $(BUILD)/bench_callbacks $(BUILD)/bench_order_index $(BUILD)/make_state
BENCH_CORE := $(filter-out $(BUILD)/plugin/plugin.o $(BUILD)/plugin/control_topic.o $(BUILD)/plugin/tick.o \
	$(BUILD)/plugin/broker_publish.o,$(CORE_OBJECTS) $(BROKER_OBJECTS))

$(BUILD)/login_storm: bench/login_storm.c
	$(CC) $(CFLAGS) -o $@ $< -lpthread

$(BUILD)/bench_callbacks: bench/bench_callbacks.c $(BENCH_CORE)
	$(CC) $(CFLAGS) -Iplugin -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench_order_index: bench/bench_order_index.c $(CORE_OBJECTS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/make_state: bench/make_state.c $(CORE_OBJECTS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

bench: deps
	$(MAKE) all $(BENCH_BINARIES)
	$(PYTHON) bench/run.py $(BENCH_ARGS)

# The load run (bench/load.py): 5,000 token connections held while tokens
# are created and revoked; prints its figures, fails if a check fails. About
# 35 s. load-test is the same run for a test suite (no package install).
load: deps
	$(MAKE) all $(HEAP_PROBE)
	$(PYTHON) bench/load.py

load-test: all $(HEAP_PROBE)
	$(PYTHON) bench/load.py

install: all
	install -d $(DESTDIR)$(LIBDIR)
	install -m 0644 $(PLUGIN) $(DESTDIR)$(LIBDIR)/mosquitto_tokens.so
	install -m 0644 $(CTRL_MODULE) $(DESTDIR)$(LIBDIR)/mosquitto_ctrl_tokens.so
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(CONSOLE) $(DESTDIR)$(PREFIX)/bin/mosquitto_tokens_console
	@if [ -z "$(DESTDIR)" ]; then ldconfig; fi
	@echo "Installed in $(DESTDIR)$(LIBDIR). Load the plugin with: plugin $(LIBDIR)/mosquitto_tokens.so"

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/mosquitto_tokens.so $(DESTDIR)$(LIBDIR)/mosquitto_ctrl_tokens.so \
		$(DESTDIR)$(PREFIX)/bin/mosquitto_tokens_console
	@if [ -z "$(DESTDIR)" ]; then ldconfig; fi

clean:
	rm -rf $(BUILD)
