// Image folder loading with stb_image (Debian's libstb: the implementation is in libstb.so).
#include "data/image_folder.h"

#include <fmt/format.h>
#include <stb/stb_image.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace bb {
namespace fs = std::filesystem;

namespace {

bool is_image(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::vector<std::string> sorted_entries(const fs::path& dir, bool dirs) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir))
    if (dirs ? e.is_directory() : (e.is_regular_file() && is_image(e.path()))) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Appends one decoded image to s, checking it against the size the set already has.
void append_image(ImageSet& s, const std::string& path, int64_t label) {
  int w = 0, h = 0, c = 0;
  if (!stbi_info(path.c_str(), &w, &h, &c))
    throw FormatError(fmt::format("{} cannot be read as an image: {}", path, stbi_failure_reason()));
  if (s.channels == 0) s.channels = c;
  if (s.height == 0) s.height = h;
  if (s.width == 0) s.width = w;
  if (h != s.height || w != s.width)
    throw FormatError(fmt::format("{} is {}x{} but the images of this set are {}x{}", path, w, h, s.width, s.height));
  if (c != s.channels)
    throw FormatError(fmt::format("{} has {} channels but the images of this set have {}", path, c, s.channels));
  unsigned char* px = stbi_load(path.c_str(), &w, &h, &c, 0);
  if (!px) throw FormatError(fmt::format("{} cannot be decoded: {}", path, stbi_failure_reason()));
  s.pixels.insert(s.pixels.end(), px, px + static_cast<size_t>(w) * h * c);
  stbi_image_free(px);
  s.labels.push_back(label);
  ++s.count;
}

}  // namespace

ImageSet load_image_folder(const std::string& dir, const ImageFolderOptions& o) {
  if (!fs::is_directory(dir)) throw FormatError(fmt::format("{} is not a folder of class folders", dir));
  ImageSet s;
  s.source = dir;
  s.height = o.height;
  s.width = o.width;
  s.channels = o.channels;
  s.classes = sorted_entries(dir, true);
  if (s.classes.empty()) throw FormatError(fmt::format("{} holds no class folders (one sub-folder per class)", dir));
  if (!o.classes.empty() && o.classes != s.classes)
    throw FormatError(fmt::format("the class folders of {} ({}) differ from the training set's ({})", dir,
                                  fmt::join(s.classes, ", "), fmt::join(o.classes, ", ")));
  for (size_t label = 0; label < s.classes.size(); ++label) {
    const fs::path cls = fs::path(dir) / s.classes[label];
    const auto files = sorted_entries(cls, false);
    if (files.empty()) throw FormatError(fmt::format("class folder {} holds no PNG or JPEG images", cls.string()));
    for (const std::string& f : files) append_image(s, (cls / f).string(), static_cast<int64_t>(label));
  }
  return s;
}

}  // namespace bb
