// blip/io/model_location.hpp: where a model folder is, given a folder or a
// Hugging Face repository id.
//
// Every program and every Task::load() takes either a model folder
// ("models/blip-image-captioning-base") or a Hub repository id
// ("Salesforce/blip-image-captioning-base") that is already in the local
// Hugging Face cache, which Python's huggingface_hub (from_pretrained,
// snapshot_download, huggingface-cli download) and `blip_weights download`
// both fill. Nothing here touches the network.
//
// The cache layout is huggingface_hub's (file_download.py):
//   <cache>/models--<org>--<name>/
//     refs/<revision>             the commit hash the revision ("main") points to
//     snapshots/<commit>/<file>   symlinks to ../../blobs/<etag>
//     blobs/<etag>                the files' bytes (sha256 for LFS files, git sha1 otherwise)
// and <cache> is, as in huggingface_hub's constants.py: $HF_HUB_CACHE, else
// $HUGGINGFACE_HUB_CACHE (older name), else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "blip/core/error.hpp"

namespace blip {

namespace location_detail {
inline std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::string(value) : std::string();
}

inline bool is_repo_name_part(const std::string& part) {
  if (part.empty() || part.size() > 96 || part == "." || part == "..") return false;
  for (char c : part) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                         c == '_' || c == '.';
    if (!allowed) return false;
  }
  return part.find("--") == std::string::npos && part.find("..") == std::string::npos;
}

inline bool is_commit_hash(const std::string& text) {
  if (text.size() != 40) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}
}  // namespace location_detail

// The Hugging Face hub cache folder, chosen as huggingface_hub chooses it
// (see the top of this file). The folder need not exist.
inline std::filesystem::path hub_cache_dir() {
  using location_detail::environment;
  if (const std::string cache = environment("HF_HUB_CACHE"); !cache.empty()) return cache;
  if (const std::string cache = environment("HUGGINGFACE_HUB_CACHE"); !cache.empty()) return cache;
  if (const std::string home = environment("HF_HOME"); !home.empty()) return std::filesystem::path(home) / "hub";
  if (const std::string xdg = environment("XDG_CACHE_HOME"); !xdg.empty())
    return std::filesystem::path(xdg) / "huggingface" / "hub";
  const std::string home = environment("HOME");
  return std::filesystem::path(home.empty() ? "." : home) / ".cache" / "huggingface" / "hub";
}

// Whether `text` has the form of a Hub model id: "name" or "org/name", each
// part letters, digits, '-', '_' and '.' (huggingface_hub's validate_repo_id,
// which also refuses "--" and ".." inside a part).
inline bool looks_like_repo_id(const std::string& text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string::npos) return location_detail::is_repo_name_part(text);
  return text.find('/', slash + 1) == std::string::npos && location_detail::is_repo_name_part(text.substr(0, slash)) &&
         location_detail::is_repo_name_part(text.substr(slash + 1));
}

// "Org/Name" -> "models--Org--Name" (huggingface_hub's repo_folder_name).
inline std::string hub_repo_folder_name(const std::string& repo_id) {
  std::string name = "models--";
  for (char c : repo_id) {
    if (c == '/') name += "--";
    else name += c;
  }
  return name;
}

// The snapshot folder of `repo_id` at `revision` (a branch or tag name with a
// refs/<revision> file, or a commit hash) in the hub cache `cache`. Returns
// an empty path when it is not there; `looked_at` gets the paths tried, for
// the caller's message.
inline std::filesystem::path find_cached_snapshot(const std::filesystem::path& cache, const std::string& repo_id,
                                                  const std::string& revision, std::vector<std::string>* looked_at) {
  namespace fs = std::filesystem;
  const fs::path repo = cache / hub_repo_folder_name(repo_id);
  std::string commit = revision;
  const fs::path ref = repo / "refs" / revision;
  std::error_code error;
  if (fs::is_regular_file(ref, error)) {
    std::ifstream stream(ref);
    std::getline(stream, commit);
    while (!commit.empty() && (commit.back() == '\n' || commit.back() == '\r' || commit.back() == ' ')) commit.pop_back();
    if (!location_detail::is_commit_hash(commit)) {
      if (looked_at) looked_at->push_back(ref.string() + " (does not hold a commit hash)");
      return {};
    }
  } else if (!location_detail::is_commit_hash(revision)) {
    if (looked_at) looked_at->push_back(ref.string() + " (missing)");
    return {};
  }
  const fs::path snapshot = repo / "snapshots" / commit;
  if (!fs::is_directory(snapshot, error)) {
    if (looked_at) looked_at->push_back(snapshot.string() + " (missing)");
    return {};
  }
  return snapshot;
}

// A model folder: `folder_or_repo_id` itself when it is an existing folder,
// else, when it has the form of a repository id, its snapshot at `revision`
// in the hub cache (hub_cache_dir()). Anything else is a blip::Error saying
// where it looked and how to get the model.
inline std::string resolve_model_folder(const std::string& folder_or_repo_id, const std::string& revision = "main") {
  namespace fs = std::filesystem;
  std::error_code error;
  if (fs::is_directory(folder_or_repo_id, error)) return folder_or_repo_id;
  const bool exists = fs::exists(folder_or_repo_id, error);
  if (exists) fail(folder_or_repo_id, ": expected a model folder (config.json, model.safetensors, tokenizer files), found a file");
  if (!looks_like_repo_id(folder_or_repo_id))
    fail(folder_or_repo_id, ": no such model folder (and not a Hugging Face repository id such as "
                            "Salesforce/blip-image-captioning-base, so the cache was not searched)");
  const fs::path cache = hub_cache_dir();
  std::vector<std::string> looked_at;
  const fs::path snapshot = find_cached_snapshot(cache, folder_or_repo_id, revision, &looked_at);
  if (!snapshot.empty()) return snapshot.string();
  std::string places;
  for (const std::string& place : looked_at) places += "\n  " + place;
  fail(folder_or_repo_id, ": not a folder, and not in the Hugging Face cache ", cache.string(),
       " (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub) at revision '", revision, "'; looked at:",
       places, "\n  ./", folder_or_repo_id, " (no such folder)\nDownload it with `blip_weights download ",
       folder_or_repo_id, "` (or `huggingface-cli download ", folder_or_repo_id, "`), or give the model folder's path.");
}

}  // namespace blip
