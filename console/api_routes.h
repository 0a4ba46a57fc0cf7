/*
 * The REST API's routes (SPEC section 8) as a table: a path shape and, per
 * method, the handler that turns the request into one control command.
 * routes_tokens.c and routes_roles.c hold the handlers. Adding an endpoint
 * is one row and one handler.
 */
#ifndef API_ROUTES_H
#define API_ROUTES_H

#include "api_command.h"
#include "api_path.h"

/* `name`: the decoded segment after the resource (a hash or a role name),
 * or NULL for a route without one. */
typedef enum MHD_Result (*api_handler)(const struct api_request *request, const char *name);

#define API_ROUTE_METHODS 2

struct api_route {
	const char *resource;      /* "tokens", "roles" */
	bool named;                /* followed by a hash or a role name */
	const char *action;        /* a last fixed segment ("rotate", "acls"), or NULL */
	const char *allow;         /* the Allow header of a 405 */
	struct {
		const char *method;
		api_handler handler;
	} methods[API_ROUTE_METHODS];
};

/* The route a path ("api" first) names, or NULL (so a 404). */
const struct api_route *api_route_find(const struct api_path *path);
/* Runs the route's handler for the request's method, or answers 405. */
enum MHD_Result api_route_run(const struct api_route *route, const struct api_path *path,
		const struct api_request *request);

enum MHD_Result tokens_list(const struct api_request *request, const char *name);
enum MHD_Result tokens_create(const struct api_request *request, const char *name);
enum MHD_Result tokens_get(const struct api_request *request, const char *hash);
enum MHD_Result tokens_revoke(const struct api_request *request, const char *hash);
enum MHD_Result tokens_rotate(const struct api_request *request, const char *hash);
enum MHD_Result roles_list(const struct api_request *request, const char *name);
enum MHD_Result roles_create(const struct api_request *request, const char *name);
enum MHD_Result roles_get(const struct api_request *request, const char *rolename);
enum MHD_Result roles_delete(const struct api_request *request, const char *rolename);
enum MHD_Result roles_add_acl(const struct api_request *request, const char *rolename);
enum MHD_Result roles_remove_acl(const struct api_request *request, const char *rolename);

#endif
