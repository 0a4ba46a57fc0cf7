/*
 * The route table (see api_routes.h): where a reader of the API starts.
 * A path is matched on its decoded segments, so "%2F" inside a role name
 * never splits it; an empty segment ("/api/roles/") matches nothing.
 */
#include <string.h>

#include "api_routes.h"
#include "http_reply.h"

static const struct api_route routes[] = {
	{"tokens", false, NULL, "GET, POST", {{"GET", tokens_list}, {"POST", tokens_create}}},
	{"tokens", true, NULL, "GET, DELETE", {{"GET", tokens_get}, {"DELETE", tokens_revoke}}},
	{"tokens", true, "rotate", "POST", {{"POST", tokens_rotate}, {NULL, NULL}}},
	{"roles", false, NULL, "GET, POST", {{"GET", roles_list}, {"POST", roles_create}}},
	{"roles", true, NULL, "GET, DELETE", {{"GET", roles_get}, {"DELETE", roles_delete}}},
	{"roles", true, "acls", "POST, DELETE", {{"POST", roles_add_acl}, {"DELETE", roles_remove_acl}}},
};

static bool route_matches(const struct api_route *route, const struct api_path *path)
{
	size_t wanted = 2 + (route->named ? 1 : 0) + (route->action ? 1 : 0);
	if(path->count != wanted || strcmp(path->segments[1], route->resource) != 0){
		return false;
	}
	if(route->named && path->segments[2][0] == '\0'){
		return false;
	}
	return route->action == NULL || strcmp(path->segments[wanted - 1], route->action) == 0;
}

const struct api_route *api_route_find(const struct api_path *path)
{
	if(path->count < 2 || strcmp(path->segments[0], "api") != 0){
		return NULL;
	}
	for(size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++){
		if(route_matches(&routes[i], path)){
			return &routes[i];
		}
	}
	return NULL;
}

enum MHD_Result api_route_run(const struct api_route *route, const struct api_path *path,
		const struct api_request *request)
{
	const char *name = route->named ? path->segments[2] : NULL;
	for(size_t i = 0; i < API_ROUTE_METHODS && route->methods[i].method; i++){
		if(strcmp(request->method, route->methods[i].method) == 0){
			return route->methods[i].handler(request, name);
		}
	}
	return reply_wrong_method(request->connection, route->allow);
}
