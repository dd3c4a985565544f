// Sharded optimizer state: the layout written into the manifest and the reader that
// reassembles any range of a slot from it.
#include "train/sharded_state.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <unordered_map>

#include "backend/backend.h"
#include "core/error.h"
#include "dist/grad_sync.h"
#include "io/hf_weights.h"
#include "io/safetensors.h"

namespace bb {

using nlohmann::json;

std::string shard_file_name(int rank, int ranks) { return fmt::format("optimizer-rank-{}-of-{}.safetensors", rank, ranks); }

json shard_layout(const std::vector<ParamGroup>& params, int64_t bucket_bytes, int ranks) {
  std::vector<int64_t> numels;
  for (const ParamGroup& g : params) numels.push_back(g.param.numel());
  json shards = json::array();
  for (int r = 0; r < ranks; ++r) {
    const auto pieces = zero_pieces(numels, bucket_bytes, r, ranks);
    json list = json::array();
    for (size_t i = 0; i < params.size(); ++i)
      if (pieces[i].length > 0)
        list.push_back({{"param", params[i].name}, {"offset", pieces[i].offset}, {"length", pieces[i].length}});
    shards.push_back({{"file", shard_file_name(r, ranks)}, {"pieces", list}});
  }
  return {{"ranks", ranks}, {"shards", shards}};
}

std::vector<std::string> shard_files(const json& layout) {
  std::vector<std::string> out;
  for (const json& s : layout.at("shards")) out.push_back(s.at("file").get<std::string>());
  return out;
}

namespace {

struct Piece {
  const SafetensorsFile* file;
  int64_t offset, length;
};

}  // namespace

void load_sharded_state(const std::string& dir, const json& layout, Optimizer& opt) {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::unordered_map<std::string, std::vector<Piece>> by_param;
  try {
    for (const json& s : layout.at("shards")) {
      const std::string name = s.at("file").get<std::string>();
      if (name.find('/') != std::string::npos || name.empty() || name[0] == '.')
        throw FormatError(fmt::format("{}/manifest.json names the shard '{}', which is not a file name", dir, name));
      files.push_back(std::make_unique<SafetensorsFile>(dir + "/" + name));
      for (const json& p : s.at("pieces"))
        by_param[p.at("param").get<std::string>()].push_back(
            {files.back().get(), p.at("offset").get<int64_t>(), p.at("length").get<int64_t>()});
    }
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("{}/manifest.json: its shard layout is not valid ({})", dir, e.what()));
  }
  // Pieces of one parameter must not overlap: the count of elements covered below then
  // proves that every element was read once.
  for (auto& [param, pieces] : by_param) {
    std::sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) { return a.offset < b.offset; });
    for (size_t i = 0; i < pieces.size(); ++i)
      if (pieces[i].offset < 0 || pieces[i].length <= 0 ||
          (i > 0 && pieces[i].offset < pieces[i - 1].offset + pieces[i - 1].length))
        throw FormatError(fmt::format("{}/manifest.json: the shard pieces of '{}' overlap or are empty", dir, param));
  }
  opt.load_state([&](const StateSlot& s) {
    const ParamGroup& g = *s.group;
    const int64_t lo = g.length < 0 ? 0 : g.offset, n = g.updated();
    Tensor dst = s.tensor.view({-1});
    int64_t covered = 0;
    for (const Piece& p : by_param[g.name]) {
      const int64_t a = std::max(lo, p.offset), b = std::min(lo + n, p.offset + p.length);
      if (a >= b) continue;
      const std::string where = p.file->path();
      if (!p.file->contains(s.key))
        throw FormatError(fmt::format("{} has no tensor '{}', which manifest.json places there", where, s.key));
      Tensor t = p.file->get(s.key, DType::F32, Category::Workspace);
      if (t.shape() != Shape{p.length})
        throw FormatError(fmt::format("{}: '{}' is {} but manifest.json says {} elements", where, s.key,
                                      t.shape().str(), p.length));
      require_finite(t, s.key, where);
      Tensor to = dst.narrow_rows(a - lo, b - a);
      backend_for(to.device()).cast(t.narrow_rows(a - p.offset, b - a), to);
      covered += b - a;
    }
    if (covered != n)
      throw FormatError(fmt::format("{}: the shards hold {} of the {} elements of optimizer state '{}'", dir, covered, n,
                                    s.key));
  });
}

}  // namespace bb
