/*
 * Looks up the page's files; their bytes come from the generated
 * build/console/page_files.h.
 */
#include <string.h>

#include "assets.h"
#include "page_files.h"

static const struct asset assets[] = {
	{"/index.html", "text/html; charset=utf-8", index_html, sizeof(index_html)},
	{"/app.js", "text/javascript; charset=utf-8", app_js, sizeof(app_js)},
	{"/style.css", "text/css; charset=utf-8", style_css, sizeof(style_css)},
	/* ES modules that app.js imports; served as JavaScript, which is all
	   the CSP's script-src 'self' and module loading ask. */
	{"/api.js", "text/javascript; charset=utf-8", api_js, sizeof(api_js)},
	{"/messages.js", "text/javascript; charset=utf-8", messages_js, sizeof(messages_js)},
	{"/dom.js", "text/javascript; charset=utf-8", dom_js, sizeof(dom_js)},
	{"/time.js", "text/javascript; charset=utf-8", time_js, sizeof(time_js)},
	{"/route.js", "text/javascript; charset=utf-8", route_js, sizeof(route_js)},
	{"/tokens-view.js", "text/javascript; charset=utf-8", tokens_view_js, sizeof(tokens_view_js)},
	{"/token-dialog.js", "text/javascript; charset=utf-8", token_dialog_js, sizeof(token_dialog_js)},
	{"/roles-view.js", "text/javascript; charset=utf-8", roles_view_js, sizeof(roles_view_js)},
};

const struct asset *asset_find(const char *path)
{
	for(size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++){
		if(strcmp(assets[i].path, path) == 0){
			return &assets[i];
		}
	}
	return NULL;
}
