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
