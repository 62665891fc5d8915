// The dashboard's files (collector/web/*.html, .css, .js), embedded into the
// binary at build time by embed.cmake: the collector serves them from memory,
// so the page works offline and always matches the API it was built with.
#ifndef IDFLOW_COLLECTOR_WEB_WEB_ASSETS_H_
#define IDFLOW_COLLECTOR_WEB_WEB_ASSETS_H_

#include <cstddef>
#include <span>
#include <string_view>

namespace idflow::web {

struct WebAsset {
  const char* path;          // "/index.html", "/app.js", ...
  const char* content_type;  // by extension
  const unsigned char* data;
  size_t size;
  std::string_view view() const { return {reinterpret_cast<const char*>(data), size}; }
};

// Every embedded file, sorted by path.
std::span<const WebAsset> WebAssets();

// The file served at `path`, or nullptr.
inline const WebAsset* FindWebAsset(std::string_view path) {
  for (const WebAsset& a : WebAssets()) {
    if (path == a.path) return &a;
  }
  return nullptr;
}

}  // namespace idflow::web

#endif  // IDFLOW_COLLECTOR_WEB_WEB_ASSETS_H_
