/* GET / — what this server is. */
#include "api/routes.h"
#include "runtime/config.h"

static void get_root(fs_req_t *req)
{
    fs_reply_json(req, 200,
                  json_pack("{s:s, s:s, s:s, s:s}", "name", "Flightshark API", "version", FS_VERSION, "status",
                            "running", "docs", fs_cfg && fs_cfg->debug ? "/docs" : "disabled"));
}

void fs_api_root_routes(fs_router_t *r)
{
    fs_router_add(r, "GET", "/", get_root);
}
