/*
 * The snapshot writer: a buffered writer through the state folder's
 * system calls, the document line by line, and the atomic replacement of
 * the state file. See plugin/snapshot_writer.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metadata_json.h"
#include "snapshot_writer.h"
#include "state_format.h"

#define WRITE_BUFFER_SIZE 65536

struct snapshot_writer {
	const struct state_folder *folder;
	int fd;
	bool failed;
	size_t used;
	char buffer[WRITE_BUFFER_SIZE];
};

static void writer_flush(struct snapshot_writer *writer)
{
	if(!writer->failed && writer->used > 0){
		writer->failed = !state_write_all(writer->folder, writer->fd, writer->buffer, writer->used);
	}
	writer->used = 0;
}

static void writer_put(struct snapshot_writer *writer, const char *text)
{
	size_t length = strlen(text);
	if(writer->used + length > WRITE_BUFFER_SIZE){
		writer_flush(writer);
	}
	if(length > WRITE_BUFFER_SIZE){
		writer->failed = writer->failed || !state_write_all(writer->folder, writer->fd, text, length);
		return;
	}
	memcpy(writer->buffer + writer->used, text, length);
	writer->used += length;
}

/* One item per line; NULL json means out of memory. */
static void writer_put_item(struct snapshot_writer *writer, cJSON *json, bool last)
{
	char *text = json ? cJSON_PrintUnformatted(json) : NULL;
	cJSON_Delete(json);
	if(text == NULL){
		writer->failed = true;
		errno = ENOMEM;
		return;
	}
	writer_put(writer, text);
	writer_put(writer, last ? "\n" : ",\n");
	free(text);
}

static void write_header(struct snapshot_writer *writer, const struct snapshot_ids *ids)
{
	char header[384];
	int length = snprintf(header, sizeof(header), "{\n\"version\": %d,\n\"journalSequence\": %lld,\n"
			"\"journalId\": \"%s\",\n", STATE_FORMAT_VERSION, (long long)ids->sequence, ids->id);
	if(ids->previous && length > 0 && (size_t)length < sizeof(header)){
		length += snprintf(header + length, sizeof(header) - (size_t)length, "\"previousJournalId\": \"%s\",\n",
				ids->previous);
	}
	if(ids->fleet_id && length > 0 && (size_t)length < sizeof(header)){
		snprintf(header + length, sizeof(header) - (size_t)length, "\"fleetId\": \"%s\",\n\"fleetSequence\": %lld,\n",
				ids->fleet_id, (long long)ids->fleet_sequence);
	}
	writer_put(writer, header);
	writer_put(writer, "\"roles\": [\n");
}

/* After the tokens: "sessions", only when there are bindings, so that a
 * store without any is written as before they existed. */
static void write_sessions(struct snapshot_writer *writer, const struct session_record **sessions, size_t count)
{
	if(count == 0){
		writer_put(writer, "]\n}\n");
		return;
	}
	writer_put(writer, "],\n\"sessions\": [\n");
	for(size_t i = 0; i < count && !writer->failed; i++){
		const struct session_record *record = sessions[i];
		writer_put_item(writer, state_session_to_json(record->client_id, record->username, record->hash),
				i + 1 == count);
	}
	writer_put(writer, "]\n}\n");
}

static void write_document(struct snapshot_writer *writer, const struct store *store,
		const struct session_records *records, const struct snapshot_ids *ids)
{
	size_t role_count, token_count, session_count = 0;
	struct role **roles = store_sorted_roles(store, &role_count);
	struct token **tokens = store_tokens_by_name(store, &token_count);
	const struct session_record **sessions = session_records_sorted(records, &session_count);
	if(roles == NULL || tokens == NULL || sessions == NULL){
		writer->failed = true;
		errno = ENOMEM;
	}else{
		write_header(writer, ids);
		for(size_t i = 0; i < role_count && !writer->failed; i++){
			writer_put_item(writer, role_to_json(roles[i]), i + 1 == role_count);
		}
		writer_put(writer, "],\n\"tokens\": [\n");
		for(size_t i = 0; i < token_count && !writer->failed; i++){
			writer_put_item(writer, token_state_to_json(store, tokens[i]), i + 1 == token_count);
		}
		write_sessions(writer, sessions, session_count);
		writer_flush(writer);
	}
	free(roles);
	free(tokens);
	free(sessions);
}

bool snapshot_write_to_fd(const struct state_folder *folder, int fd, const char *path, const struct store *store,
		const struct session_records *sessions, const struct snapshot_ids *ids, char *error, size_t error_len)
{
	struct snapshot_writer *writer = malloc(sizeof(*writer));
	if(writer == NULL){
		snprintf(error, error_len, "cannot save %s: out of memory", path);
		return false;
	}
	*writer = (struct snapshot_writer){.folder = folder, .fd = fd};
	write_document(writer, store, sessions, ids);
	const char *step = "write";
	bool written = !writer->failed;
	if(written){
		step = "fsync";
		written = folder->io.fsync(fd) == 0;
	}
	int saved = errno;
	free(writer);
	if(!written){
		snprintf(error, error_len, "cannot save %s: %s failed: %s", path, step, strerror(saved));
	}
	errno = saved;
	return written;
}

bool snapshot_write(const struct state_folder *folder, const char *path, const struct store *store,
		const struct session_records *sessions, const struct snapshot_ids *ids, char *error, size_t error_len)
{
	char temp_path[STATE_PATH_SIZE + 16];
	/* O_EXCL with a new name: never a link or anything already there. */
	int fd = snapshot_create_temporary(path, temp_path, sizeof(temp_path));
	if(fd < 0){
		snprintf(error, error_len, "cannot save %s: create a temporary file failed: %s", path, strerror(errno));
		return false;
	}
	bool renamed = snapshot_write_to_fd(folder, fd, path, store, sessions, ids, error, error_len);
	if(renamed && folder->io.rename(temp_path, path) != 0){
		snprintf(error, error_len, "cannot save %s: rename failed: %s", path, strerror(errno));
		renamed = false;
	}
	close(fd);
	if(!renamed){
		unlink(temp_path);
	}
	return renamed;
}

int snapshot_create_temporary(const char *path, char *temp_path, size_t temp_path_size)
{
	if(snprintf(temp_path, temp_path_size, "%s.tmp.XXXXXX", path) >= (int)temp_path_size){
		errno = ENAMETOOLONG;
		return -1;
	}
	return mkostemp(temp_path, O_CLOEXEC);   /* mode 0600 */
}
