/*
 * The table of persistent sessions' bindings. See include/session_records.h.
 *
 * A replacement is added before the record it replaces is removed: uthash
 * allows two elements with one key for that moment, and the only step that
 * can fail (the add, out of memory) then leaves the table as it was.
 */
#include <stdlib.h>
#include <string.h>

#include "session_records.h"

void session_records_init(struct session_records *records)
{
	records->by_id = NULL;
}

void session_records_clear(struct session_records *records)
{
	struct session_record *record, *next;
	HASH_ITER(hh, records->by_id, record, next){
		HASH_DELETE(hh, records->by_id, record);
		free(record);
	}
}

static struct session_record *record_new(const char *client_id, const char *username, const unsigned char *hash)
{
	size_t id_size = strlen(client_id) + 1;
	size_t username_size = username ? strlen(username) + 1 : 0;
	struct session_record *record = malloc(sizeof(*record) + id_size + username_size);
	if(record == NULL){
		return NULL;
	}
	memset(record, 0, sizeof(*record));
	memcpy(record->client_id, client_id, id_size);
	if(username){
		record->username = record->client_id + id_size;
		memcpy(record->username, username, username_size);
	}
	record->bound = hash != NULL;
	if(hash){
		memcpy(record->hash, hash, TOKEN_HASH_LEN);
	}
	return record;
}

/* The record says this already: a device that logs in again before the
 * next save costs no allocation. */
static bool says(const struct session_record *record, const char *username, const unsigned char *hash)
{
	if(record->bound != (hash != NULL) || (hash && memcmp(record->hash, hash, TOKEN_HASH_LEN) != 0)){
		return false;
	}
	return (record->username == NULL || username == NULL) ? record->username == username
			: strcmp(record->username, username) == 0;
}

bool session_records_put(struct session_records *records, const char *client_id, const char *username,
		const unsigned char *hash)
{
	struct session_record *old = (struct session_record *)session_records_find(records, client_id);
	if(old && says(old, username, hash)){
		return true;
	}
	struct session_record *record = record_new(client_id, username, hash);
	if(record == NULL){
		return false;
	}
	HASH_ADD_KEYPTR(hh, records->by_id, record->client_id, strlen(record->client_id), record);
	if(record->hh.tbl == NULL){
		free(record);
		return false;
	}
	if(old){
		HASH_DELETE(hh, records->by_id, old);
		free(old);
	}
	return true;
}

const struct session_record *session_records_find(const struct session_records *records, const char *client_id)
{
	struct session_record *record;
	HASH_FIND(hh, records->by_id, client_id, strlen(client_id), record);
	return record;
}

void session_records_remove(struct session_records *records, const char *client_id)
{
	struct session_record *record = (struct session_record *)session_records_find(records, client_id);
	if(record){
		HASH_DELETE(hh, records->by_id, record);
		free(record);
	}
}

size_t session_records_count(const struct session_records *records)
{
	return HASH_COUNT(records->by_id);
}

static int compare_records(const void *a, const void *b)
{
	const struct session_record *const *left = a, *const *right = b;
	return strcmp((*left)->client_id, (*right)->client_id);
}

const struct session_record **session_records_sorted(const struct session_records *records, size_t *count)
{
	size_t total = session_records_count(records);
	const struct session_record **sorted = malloc((total ? total : 1) * sizeof(*sorted));
	if(sorted == NULL){
		return NULL;
	}
	*count = 0;
	for(const struct session_record *record = records->by_id; record; record = record->hh.next){
		if(record->bound){
			sorted[(*count)++] = record;
		}
	}
	qsort(sorted, *count, sizeof(*sorted), compare_records);
	return sorted;
}
