/*
 * Applying a change to the store, for commands and replay alike. See
 * plugin/changes.h.
 */
#include <stdlib.h>

#include "changes.h"

struct change change_create_token(struct token *token)
{
	return (struct change){.kind = CHANGE_CREATE_TOKEN, .token = token};
}

struct change change_rotate_token(struct token *old, struct token *replacement, struct previous_secret *previous)
{
	return (struct change){.kind = CHANGE_ROTATE_TOKEN, .token = replacement, .replaced = old, .previous = previous};
}

struct change change_revoke_token(struct token *token)
{
	return (struct change){.kind = CHANGE_REVOKE_TOKEN, .token = token};
}

struct change change_noticed(struct token *token, bool expiring_noticed, bool expired_noticed)
{
	return (struct change){.kind = CHANGE_NOTICED, .token = token,
		.expiring_noticed = expiring_noticed, .expired_noticed = expired_noticed};
}

struct change change_create_role(struct role *role)
{
	return (struct change){.kind = CHANGE_CREATE_ROLE, .role = role};
}

struct change change_delete_role(struct role *role)
{
	return (struct change){.kind = CHANGE_DELETE_ROLE, .role = role};
}

struct change change_add_role_acl(struct role *role, struct role_acl *acl)
{
	return (struct change){.kind = CHANGE_ADD_ROLE_ACL, .role = role, .acl = acl};
}

struct change change_remove_role_acl(struct role *role, struct role_acl *acl)
{
	return (struct change){.kind = CHANGE_REMOVE_ROLE_ACL, .role = role, .acl = acl};
}

/* A token leaves with its previous secret: a secret must never outlive
 * the token it logs in as. */
static void remove_token(struct store *store, struct change *change, const struct change_observer *observer)
{
	store_drop_previous(store, change->token);
	store_unlink_token(store, change->token);
	if(observer){
		change->closed = observer->token_removed(observer->context, change->token);
	}
}

/* The replacement is linked beside the old record (the name index holds
 * both for a moment), with the old secret as its previous one during a
 * grace period; nothing is taken away yet. */
static bool prepare_rotation(struct store *store, struct change *change)
{
	struct token *replacement = change->token;
	if(!store_link_token(store, replacement, replacement->role)){
		return false;
	}
	if(change->previous){
		change->previous->token = replacement;
		if(!store_adopt_previous(store, change->previous)){
			store_unlink_token(store, replacement);
			return false;
		}
		change->previous = NULL;   /* the store's now */
		change->keeps_previous = true;
	}
	return true;
}

static void commit_rotation(struct store *store, struct change *change, const struct change_observer *observer)
{
	struct token *old = change->replaced;
	store_drop_previous(store, old);
	store_unlink_token(store, old);
	if(observer){
		change->closed = observer->token_replaced(observer->context, old, change->token, change->keeps_previous);
	}
}

static void mark_noticed(struct change *change, const struct change_observer *observer)
{
	bool was_expired_noticed = change->token->expired_noticed;
	change->token->expiring_noticed = change->expiring_noticed;
	change->token->expired_noticed = change->expired_noticed;
	if(observer){
		observer->token_noticed(observer->context, change->token, was_expired_noticed);
	}
}

bool change_prepare(struct store *store, struct change *change)
{
	switch(change->kind){
		case CHANGE_CREATE_TOKEN:
			change->prepared = store_link_token(store, change->token, change->token->role);
			break;
		case CHANGE_ROTATE_TOKEN:
			change->prepared = prepare_rotation(store, change);
			break;
		case CHANGE_CREATE_ROLE:
			change->prepared = store_link_role(store, change->role);
			break;
		default:
			change->prepared = true;   /* nothing to add */
			break;
	}
	return change->prepared;
}

void change_commit(struct store *store, struct change *change, const struct change_observer *observer)
{
	switch(change->kind){
		case CHANGE_CREATE_TOKEN:
			if(observer){
				observer->token_added(observer->context, change->token);
			}
			break;
		case CHANGE_ROTATE_TOKEN:
			commit_rotation(store, change, observer);
			break;
		case CHANGE_REVOKE_TOKEN:
			remove_token(store, change, observer);
			break;
		case CHANGE_NOTICED:
			mark_noticed(change, observer);
			break;
		case CHANGE_CREATE_ROLE:
			break;
		case CHANGE_DELETE_ROLE:
			store_unlink_role(store, change->role);
			break;
		case CHANGE_ADD_ROLE_ACL:
			role_link_acl(change->role, change->acl);
			break;
		case CHANGE_REMOVE_ROLE_ACL:
			role_unlink_acl(change->role, change->acl);
			break;
	}
	change->applied = true;
}

void change_abort(struct store *store, struct change *change)
{
	if(!change->prepared || change->applied){
		return;
	}
	switch(change->kind){
		case CHANGE_CREATE_TOKEN:
			store_unlink_token(store, change->token);
			break;
		case CHANGE_ROTATE_TOKEN:
			store_drop_previous(store, change->token);
			store_unlink_token(store, change->token);
			break;
		case CHANGE_CREATE_ROLE:
			store_unlink_role(store, change->role);
			break;
		default:
			break;
	}
	change->prepared = false;
}

bool change_apply(struct store *store, struct change *change, const struct change_observer *observer)
{
	if(!change_prepare(store, change)){
		return false;
	}
	change_commit(store, change, observer);
	return true;
}

void change_release(struct change *change)
{
	bool applied = change->applied;
	switch(change->kind){
		case CHANGE_CREATE_TOKEN:
			if(!applied) token_free(change->token);
			break;
		case CHANGE_ROTATE_TOKEN:
			token_free(applied ? change->replaced : change->token);
			free(change->previous);
			break;
		case CHANGE_REVOKE_TOKEN:
			if(applied) token_free(change->token);
			break;
		case CHANGE_NOTICED:
			break;
		case CHANGE_CREATE_ROLE:
			if(!applied) role_free(change->role);
			break;
		case CHANGE_DELETE_ROLE:
			if(applied) role_free(change->role);
			break;
		case CHANGE_ADD_ROLE_ACL:
			if(!applied) role_acl_free(change->acl);
			break;
		case CHANGE_REMOVE_ROLE_ACL:
			if(applied) role_acl_free(change->acl);
			break;
	}
	*change = (struct change){0};
}
