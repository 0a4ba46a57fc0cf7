/*
 * Changes to the store, and the one function that applies them.
 *
 * A state-changing command and the journal's replay both end here: a
 * command builds a change from its checked fields, the journal decodes one
 * from a line (journal.h), and change_apply carries either out in the same
 * way. So a store rebuilt from the files cannot differ from the live one
 * because of how a change was applied: the journal's encoder and decoder
 * are the only two halves left, and tests check that they are inverses.
 *
 * A change is built (owning what it adds), recorded, applied (then owning
 * what it removed from the store), and released. A change that is never
 * applied (its record failed) is released all the same: the store was
 * never touched, so there is nothing to undo.
 *
 * Applying is two steps, so that no failure can come after the record:
 * change_prepare adds what the change adds (it may run out of memory, and
 * then leaves the store as it was), change_commit takes away what it takes
 * away and cannot fail. A command prepares, records, then commits, or
 * aborts if the record failed; replay prepares and commits at once
 * (change_apply). What the plugin keeps beside the store (connections,
 * expiry queues, counters) follows through an observer, at the commit;
 * replay at start-up has none, since nothing is connected yet.
 */
#ifndef CHANGES_H
#define CHANGES_H

#include <stdbool.h>
#include <stddef.h>

#include "sessions.h"
#include "store.h"

enum change_kind {
	CHANGE_CREATE_TOKEN,
	CHANGE_ROTATE_TOKEN,
	CHANGE_REVOKE_TOKEN,
	CHANGE_NOTICED,
	CHANGE_CREATE_ROLE,
	CHANGE_DELETE_ROLE,
	CHANGE_ADD_ROLE_ACL,
	CHANGE_REMOVE_ROLE_ACL,
};

struct change {
	enum change_kind kind;
	/* create: the new token, its role set; rotate: the replacement;
	 * revoke, noticed: the token acted on. */
	struct token *token;
	struct token *replaced;             /* rotate: the token it replaces (the old record) */
	struct previous_secret *previous;   /* rotate: the old secret's grace period, or NULL */
	struct role *role;                  /* the role created, deleted or changed */
	struct role_acl *acl;               /* the ACL added or removed */
	bool expiring_noticed;              /* noticed: the marks from now on */
	bool expired_noticed;
	bool keeps_previous;                /* rotate: the previous secret was linked */
	bool prepared;
	bool applied;
	struct sessions_closed closed;      /* what the observer closed */
};

/* What the plugin keeps beside the store. Each callback runs after the
 * store has changed and before anything removed is freed. */
struct change_observer {
	void *context;
	void (*token_added)(void *context, struct token *token);
	/* Return what they closed. */
	struct sessions_closed (*token_removed)(void *context, struct token *token);
	/* keeps_previous: the old secret works on for a grace period. */
	struct sessions_closed (*token_replaced)(void *context, struct token *old, struct token *replacement, bool keeps_previous);
	void (*token_noticed)(void *context, struct token *token, bool was_expired_noticed);
};

/* Builders: each takes what the change adds (freed by change_release if
 * the change is never applied). */
struct change change_create_token(struct token *token);
struct change change_rotate_token(struct token *old, struct token *replacement, struct previous_secret *previous);
struct change change_revoke_token(struct token *token);
struct change change_noticed(struct token *token, bool expiring_noticed, bool expired_noticed);
struct change change_create_role(struct role *role);
struct change change_delete_role(struct role *role);
struct change change_add_role_acl(struct role *role, struct role_acl *acl);
struct change change_remove_role_acl(struct role *role, struct role_acl *acl);

/* Adds what the change adds; false when out of memory (nothing changed). */
bool change_prepare(struct store *store, struct change *change);
/* After change_prepare: completes the change; observer may be NULL. */
void change_commit(struct store *store, struct change *change, const struct change_observer *observer);
/* After change_prepare, instead of change_commit: takes back what the
 * prepare added. */
void change_abort(struct store *store, struct change *change);
/* Prepare and commit; false when out of memory (nothing changed). */
bool change_apply(struct store *store, struct change *change, const struct change_observer *observer);
/* Frees what the change owns: what it would have added if it was never
 * applied, what it took out of the store if it was. */
void change_release(struct change *change);

#endif
