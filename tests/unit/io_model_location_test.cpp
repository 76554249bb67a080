// Model folders given as Hugging Face repository ids (io/model_location.hpp):
// a fake hub cache in a temporary folder, with snapshot files that are
// symlinks to a fixture's files as huggingface_hub makes them.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "blip/io/model_location.hpp"
#include "test_support.hpp"

namespace io_model_location_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using blip::test::contains;

namespace {

namespace fs = std::filesystem;

// Sets an environment variable for one scope, restoring the old value.
class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value.empty()) unsetenv(name);
    else setenv(name, value.c_str(), 1);
  }
  ~ScopedEnvironment() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

const char* kCommit = "0123456789abcdef0123456789abcdef01234567";

// <root>/models--Salesforce--blip-image-captioning-base with refs/main and a
// snapshot whose files link to the fixture's.
fs::path make_fake_cache(const fs::path& root, const std::string& fixture) {
  const fs::path repo = root / "models--Salesforce--blip-image-captioning-base";
  const fs::path snapshot = repo / "snapshots" / kCommit;
  fs::create_directories(snapshot);
  fs::create_directories(repo / "refs");
  std::ofstream(repo / "refs" / "main") << kCommit;  // huggingface_hub writes it without a newline
  for (const char* name : {"config.json", "model.safetensors"})
    fs::create_symlink(fs::absolute(fs::path(fixture) / name), snapshot / name);
  return snapshot;
}

std::string error_of(const std::string& argument, const std::string& revision = "main") {
  try {
    blip::resolve_model_folder(argument, revision);
  } catch (const blip::Error& error) {
    return error.what();
  }
  return "";
}

}  // namespace

TEST_CASE("repository ids and their cache folder names") {
  CHECK(blip::looks_like_repo_id("Salesforce/blip-image-captioning-base"));
  CHECK(blip::looks_like_repo_id("gpt2"));
  CHECK(blip::looks_like_repo_id("org/model.v1_2"));
  CHECK_FALSE(blip::looks_like_repo_id("a/b/c"));
  CHECK_FALSE(blip::looks_like_repo_id("/abs/path"));
  CHECK_FALSE(blip::looks_like_repo_id("./models/x"));
  CHECK_FALSE(blip::looks_like_repo_id("../x"));
  CHECK_FALSE(blip::looks_like_repo_id("org/a--b"));
  CHECK_FALSE(blip::looks_like_repo_id("org/has space"));
  CHECK_FALSE(blip::looks_like_repo_id(""));
  CHECK(blip::hub_repo_folder_name("Salesforce/blip-vqa-base") == "models--Salesforce--blip-vqa-base");
}

TEST_CASE("the hub cache folder follows huggingface_hub's environment variables") {
  const ScopedEnvironment no_hub_cache("HF_HUB_CACHE", "");
  const ScopedEnvironment no_old_cache("HUGGINGFACE_HUB_CACHE", "");
  const ScopedEnvironment no_xdg("XDG_CACHE_HOME", "");
  {
    const ScopedEnvironment home("HOME", "/home/someone");
    const ScopedEnvironment no_hf_home("HF_HOME", "");
    CHECK(blip::hub_cache_dir() == fs::path("/home/someone/.cache/huggingface/hub"));
    const ScopedEnvironment xdg("XDG_CACHE_HOME", "/xdg");
    CHECK(blip::hub_cache_dir() == fs::path("/xdg/huggingface/hub"));
    const ScopedEnvironment hf_home("HF_HOME", "/data/hf");
    CHECK(blip::hub_cache_dir() == fs::path("/data/hf/hub"));
    const ScopedEnvironment old_cache("HUGGINGFACE_HUB_CACHE", "/old/cache");
    CHECK(blip::hub_cache_dir() == fs::path("/old/cache"));
    const ScopedEnvironment hub_cache("HF_HUB_CACHE", "/fast/cache");
    CHECK(blip::hub_cache_dir() == fs::path("/fast/cache"));
  }
}

TEST_CASE("a repository id in the cache resolves to its snapshot; folders stay folders") {
  const std::string fixture = blip::test::fixtures_dir() + "/blip_caption";
  if (!blip::test::have_or_skip(fixture + "/model.safetensors", "blip_caption fixture")) return;
  const fs::path root = fs::path(BLIP_TEST_BINARY_DIR) / "model_location";
  fs::remove_all(root);
  const fs::path snapshot = make_fake_cache(root / "hf_home" / "hub", fixture);

  SUBCASE("through HF_HOME/hub, at main and at the commit") {
    const ScopedEnvironment no_hub_cache("HF_HUB_CACHE", "");
    const ScopedEnvironment no_old_cache("HUGGINGFACE_HUB_CACHE", "");
    const ScopedEnvironment hf_home("HF_HOME", (root / "hf_home").string());
    const std::string folder = blip::resolve_model_folder("Salesforce/blip-image-captioning-base");
    CHECK(fs::path(folder) == snapshot);
    CHECK(fs::is_regular_file(fs::path(folder) / "config.json"));  // through the symlink
    CHECK(fs::path(blip::resolve_model_folder("Salesforce/blip-image-captioning-base", kCommit)) == snapshot);
  }
  SUBCASE("through HF_HUB_CACHE, which wins over HF_HOME") {
    const ScopedEnvironment hf_home("HF_HOME", (root / "elsewhere").string());
    const ScopedEnvironment hub_cache("HF_HUB_CACHE", (root / "hf_home" / "hub").string());
    CHECK(fs::path(blip::resolve_model_folder("Salesforce/blip-image-captioning-base")) == snapshot);
  }
  SUBCASE("an existing folder is returned as given, even when it looks like an id") {
    const ScopedEnvironment hub_cache("HF_HUB_CACHE", (root / "hf_home" / "hub").string());
    CHECK(blip::resolve_model_folder(fixture) == fixture);
    fs::create_directories(root / "Org" / "local");
    const fs::path previous = fs::current_path();
    fs::current_path(root);
    CHECK(blip::resolve_model_folder("Org/local") == "Org/local");
    fs::current_path(previous);
  }
  SUBCASE("what is not found says where it looked") {
    const ScopedEnvironment hub_cache("HF_HUB_CACHE", (root / "hf_home" / "hub").string());
    const std::string missing = error_of("Salesforce/blip-vqa-base");
    CHECK(contains(missing, "not in the Hugging Face cache " + (root / "hf_home" / "hub").string()));
    CHECK(contains(missing, "models--Salesforce--blip-vqa-base/refs/main (missing)"));
    CHECK(contains(missing, "blip_weights download Salesforce/blip-vqa-base"));
    const std::string other_revision = error_of("Salesforce/blip-image-captioning-base", "v2");
    CHECK(contains(other_revision, "refs/v2 (missing)"));
    const std::string gone_commit =
        error_of("Salesforce/blip-image-captioning-base", "fedcba9876543210fedcba9876543210fedcba98");
    CHECK(contains(gone_commit, "snapshots/fedcba9876543210fedcba9876543210fedcba98 (missing)"));
    CHECK(contains(error_of("./no/such/folder"), "no such model folder"));
    CHECK(contains(error_of(fixture + "/config.json"), "found a file"));
  }
  SUBCASE("a refs file that does not hold a commit is reported") {
    const ScopedEnvironment hub_cache("HF_HUB_CACHE", (root / "hf_home" / "hub").string());
    std::ofstream(root / "hf_home" / "hub" / "models--Salesforce--blip-image-captioning-base" / "refs" / "broken")
        << "not a hash";
    CHECK(contains(error_of("Salesforce/blip-image-captioning-base", "broken"), "does not hold a commit hash"));
  }
}

}  // namespace io_model_location_test
