/*
 * libFuzzer harness for the control protocol: the input is a request
 * payload, as a client would publish it on $CONTROL/tokens/v1.
 *
 * Each input runs against a fresh instance loaded from the same small state
 * (roles, a valid, an expired and a rotating token), five times:
 *   1. with working disk I/O: the reply must be a {"responses": [...]}
 *      document, and the files written must load back into exactly the
 *      state the instance holds in memory;
 *   2. with every rename failing, so that no snapshot can replace the
 *      old one: the same, as the journal still holds every change; and
 *      with every journal removal after a snapshot failing: the same;
 *   3. and 4. with every journal write, then every fsync failing: whatever
 *      the request asked, memory and disk must still hold the state before.
 * A snapshot is forced after two changes so that its path (temporary file,
 * rename) is fuzzed too. After every request the instance's invariants
 * must hold (invariants.h), and every secret either side knows must log in
 * the same way before and after the reload.
 */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <cjson/cJSON.h>

#include "control.h"
#include "instance.h"
#include "fuzz_support.h"

#define HASH(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

static const char seed_state[] =
	"{\"version\": 1, \"journalSequence\": 7, \"roles\": [\n"
	"{\"rolename\": \"admin\", \"acls\": ["
	"{\"acltype\": \"publishClientSend\", \"topic\": \"$CONTROL/tokens/v1\", \"priority\": 0, \"allow\": true}]},\n"
	"{\"rolename\": \"dev\", \"acls\": ["
	"{\"acltype\": \"publishClientSend\", \"topic\": \"d/#\", \"priority\": 1, \"allow\": true},"
	"{\"acltype\": \"subscribeLiteral\", \"topic\": \"d/+\", \"priority\": 0, \"allow\": false},"
	"{\"acltype\": \"subscribePattern\", \"topic\": \"d/#\", \"priority\": 0, \"allow\": true}]},\n"
	"{\"rolename\": \"empty\", \"acls\": []}\n"
	"], \"tokens\": [\n"
	"{\"name\": \"alpha\", \"role\": \"dev\", \"requestedBy\": \"init\", \"issuedAt\": \"2026-11-01T00:00:00Z\","
	" \"validUntil\": \"2027-01-01T00:00:00Z\", \"lastUsed\": \"2026-11-27T08:00:00Z\", \"hash\": \"" HASH("a") "\"},\n"
	"{\"name\": \"old\", \"role\": \"dev\", \"requestedBy\": \"init\", \"issuedAt\": \"2026-01-01T00:00:00Z\","
	" \"validUntil\": \"2026-02-01T00:00:00Z\", \"lastUsed\": null, \"hash\": \"" HASH("b") "\","
	" \"expiredNotified\": true},\n"
	"{\"name\": \"rotating\", \"role\": \"admin\", \"requestedBy\": \"alice\", \"issuedAt\": \"2026-11-28T09:00:00Z\","
	" \"validUntil\": \"2026-12-02T00:00:00Z\", \"lastUsed\": null, \"hash\": \"" HASH("c") "\","
	" \"previousHash\": \"" HASH("d") "\", \"previousValidUntil\": \"2026-11-28T11:00:00Z\","
	" \"expiringNotified\": true}\n"
	"]}\n";

static struct tokens_plugin *load_instance(void)
{
	char error[1024] = "";
	struct tokens_plugin *plugin = tokens_plugin_new(fuzz_state_path(), fuzz_log, fuzz_clock, error, sizeof(error));
	if(plugin == NULL){
		fuzz_fail("the state does not load: %s", error);
	}
	return plugin;
}

static struct tokens_plugin *fresh_instance(void)
{
	fuzz_write_file(fuzz_state_path(), seed_state, sizeof(seed_state) - 1);
	fuzz_remove(fuzz_journal_path());
	struct tokens_plugin *plugin = load_instance();
	if(!tokens_plugin_start_notices(plugin, 7 * 86400)){
		fuzz_fail("out of memory");
	}
	persist_set_snapshot_after(plugin->persist, 2);
	return plugin;
}

static void handle(struct tokens_plugin *plugin, const uint8_t *data, size_t size)
{
	cJSON *reply = control_handle_request(plugin, "fuzzer", (const char *)data, size);
	if(reply == NULL){
		fuzz_fail("no reply");
	}
	if(!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(reply, "responses"))){
		fuzz_fail("a reply without a \"responses\" array");
	}
	cJSON_Delete(reply);
	fuzz_assert_invariants(plugin, "after the request");
}

/* What the instance holds must be what its files load into. */
static void check_disk_matches(struct tokens_plugin *plugin, const char *when)
{
	persist_close(plugin->persist);
	plugin->persist = NULL;
	struct tokens_plugin *reloaded = load_instance();
	fuzz_assert_same_state(&plugin->store, &reloaded->store, when);
	fuzz_assert_same_logins(&plugin->store, &reloaded->store, fuzz_clock(), when);
	tokens_plugin_free(reloaded);
	tokens_plugin_free(plugin);
}

/* io NULL: the real system calls. */
static void run_and_compare_disk(const uint8_t *data, size_t size, const struct persist_io *io, const char *when)
{
	struct tokens_plugin *plugin = fresh_instance();
	persist_set_io(plugin->persist, io);
	handle(plugin, data, size);
	persist_set_io(plugin->persist, NULL);
	check_disk_matches(plugin, when);
}

static void run_with_failing_disk(const uint8_t *data, size_t size, const struct persist_io *io,
		const char *when)
{
	struct tokens_plugin *before = fresh_instance();
	persist_close(before->persist);
	before->persist = NULL;
	struct tokens_plugin *plugin = fresh_instance();
	persist_set_io(plugin->persist, io);
	handle(plugin, data, size);
	fuzz_assert_same_state(&before->store, &plugin->store, when);
	persist_set_io(plugin->persist, NULL);
	check_disk_matches(plugin, when);
	tokens_plugin_free(before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run_and_compare_disk(data, size, NULL, "after the request, memory against disk");
	run_and_compare_disk(data, size, &fuzz_io_rename_fails, "snapshot renames failing, memory against disk");
	run_and_compare_disk(data, size, &fuzz_io_unlink_fails, "journal removals failing, memory against disk");
	run_with_failing_disk(data, size, &fuzz_io_write_fails, "journal writes failing");
	run_with_failing_disk(data, size, &fuzz_io_fsync_fails, "journal fsyncs failing");
	return 0;
}
