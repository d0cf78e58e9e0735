#ifndef FLEETPLAN_SERVER_WEB_ASSETS_H_
#define FLEETPLAN_SERVER_WEB_ASSETS_H_

// The web console's files (web/), embedded in fleetpland at build time (cmake/embed_web.cmake
// writes web_assets.cc), so the console needs nothing beside the binary and fetches nothing from
// the internet.

#include <vector>

#include "absl/strings/string_view.h"

namespace fleetplan::server {

struct WebAsset {
  absl::string_view path;          // "/index.html"
  absl::string_view content_type;  // from the file's extension
  absl::string_view body;
};

const std::vector<WebAsset>& WebAssets();

}  // namespace fleetplan::server

#endif  // FLEETPLAN_SERVER_WEB_ASSETS_H_
