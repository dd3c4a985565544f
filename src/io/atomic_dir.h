// Folders whose contents change all at once: a whole folder swapped in for another
// (training checkpoints), and a set of files published into a shared folder (a saved model)
// so that a kill at any moment leaves the old set, no set, or the new one, never a mix.
// See docs/notes/crash-safety.md.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace bb {

// fsync of a folder, so that renames and removals inside it survive a power loss.
void fsync_dir(const std::string& dir);

// Makes the complete folder `tmp` take the place of `dir` in one step: renameat2 with
// RENAME_EXCHANGE when `dir` exists (then removes the old one, now at `tmp`), plain rename
// when it does not. Where the filesystem lacks RENAME_EXCHANGE, `dir` is renamed to
// "<dir>.old" first and removed only once `tmp` is in place, so one complete folder exists
// at every moment under one of the two names. Throws FormatError naming the folder.
void replace_dir_atomic(const std::string& tmp, const std::string& dir);

// Writes a model (or adapter) folder's files through write(staging), where staging is a
// fresh hidden folder inside dir, then moves them into dir. The anchor files readers open
// first (config.json, adapter_config.json) of the old set are removed first and those of the
// new set moved last, and files of an earlier save that the new set lacks (weights shards,
// tokenizer files) are removed before, so a reader sees the old set, no anchor (no model),
// or the new set. A staging folder left by a killed save is removed by the next one.
void write_model_folder(const std::string& dir, const std::function<void(const std::string& staging)>& write);

// The files a saved model or adapter folder may hold (weights, shards and their index,
// config, adapter, tokenizer and generation files): what write_model_folder replaces and
// what `train --overwrite` clears.
std::vector<std::string> model_folder_files(const std::string& dir);

}  // namespace bb
