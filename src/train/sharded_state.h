// ZeRO-1's optimizer state in a checkpoint: every rank writes its own shard file
// (optimizer-rank-R-of-N.safetensors, its pieces as flat tensors named "<param>.<slot>"), and
// the manifest lists each shard's pieces, so the state can be read back on any number of
// ranks, sharded or not: every slot is reassembled from the pieces that overlap its range.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "optim/optimizer.h"

namespace bb {

// The shard file of `rank` of `ranks`.
std::string shard_file_name(int rank, int ranks);
// The manifest's description of the N shards: {"ranks": N, "shards": [{"file", "pieces":
// [{"param", "offset", "length"}]}]}, computed from the layout (dist/grad_sync.h).
nlohmann::json shard_layout(const std::vector<ParamGroup>& params, int64_t bucket_bytes, int ranks);
// The file names of a layout, to list in the manifest with their sizes.
std::vector<std::string> shard_files(const nlohmann::json& layout);
// Fills every slot of opt from the shards of `layout` in dir; FormatError naming the folder
// and the slot when a piece is missing, has the wrong size or holds a non-finite number.
void load_sharded_state(const std::string& dir, const nlohmann::json& layout, Optimizer& opt);

}  // namespace bb
