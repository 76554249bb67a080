// The pieces of `blip_weights download` that need no server
// (weights_tools/hub_download.hpp, hashes.hpp): SHA-256 and SHA-1 against
// FIPS 180-4's and Python hashlib's values, git blob ids as git computes them, URL pieces, file patterns and the paths a
// listing may name. The protocol itself is tested end to end against a local
// mirror (tests/weights/check_blip_weights.sh).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../../weights_tools/hub_download.hpp"
#include "test_support.hpp"

namespace weights_download_helpers_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {
namespace tools = blip::weights_tools;
namespace download = blip::weights_tools::download_detail;
}  // namespace

TEST_CASE("sha256 of known messages, across block boundaries and in pieces") {
  // FIPS 180-4 examples and hashlib.sha256 for the padding edge cases (55, 56, 64 bytes).
  CHECK(tools::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(tools::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(tools::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(tools::sha256_hex(std::string(55, 'a')) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  CHECK(tools::sha256_hex(std::string(56, 'a')) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  CHECK(tools::sha256_hex(std::string(64, 'a')) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  // One million 'a' fed in uneven pieces, and from a file (the path downloads take).
  tools::Sha256 pieces;
  const std::string million(1000000, 'a');
  for (std::size_t at = 0, step = 1; at < million.size(); at += step, step = step * 3 % 1000 + 1)
    pieces.update(million.data() + at, std::min(step, million.size() - at));
  const std::string expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  CHECK(pieces.hex_digest() == expected);
  const std::filesystem::path file = std::filesystem::path(BLIP_TEST_BINARY_DIR) / "sha256_million_a.bin";
  std::ofstream(file, std::ios::binary) << million;
  CHECK(tools::sha256_of_file(file.string()) == expected);
  CHECK_THROWS_AS(tools::sha256_of_file((file.string() + ".absent")), blip::Error);
}

TEST_CASE("sha1 and git blob ids (what the Hub lists as blobId for files not in LFS)") {
  CHECK(tools::sha1_hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(tools::sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(tools::sha1_hex(std::string(1000000, 'a')) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  // `echo hello | git hash-object --stdin`
  const std::filesystem::path file = std::filesystem::path(BLIP_TEST_BINARY_DIR) / "git_blob_hello.txt";
  std::ofstream(file, std::ios::binary) << "hello\n";
  CHECK(tools::git_blob_id_of_file(file.string(), 6) == "ce013625030ba8dba906f756967f9e9ca394464a");
}

TEST_CASE("endpoints, URL encoding, patterns and repository paths") {
  const auto hub = download::parse_endpoint("https://huggingface.co");
  CHECK(hub.https);
  CHECK(hub.origin == "https://huggingface.co");
  CHECK(hub.base.empty());
  const auto mirror = download::parse_endpoint("http://127.0.0.1:8080/hf-mirror/");
  CHECK_FALSE(mirror.https);
  CHECK(mirror.origin == "http://127.0.0.1:8080");
  CHECK(mirror.base == "/hf-mirror");
  CHECK_THROWS_AS(download::parse_endpoint("ftp://example.com"), tools::UsageError);
  CHECK_THROWS_AS(download::parse_endpoint("huggingface.co"), tools::UsageError);

  // Revisions are one path piece (refs/pr/3 -> refs%2Fpr%2F3), file paths keep their slashes.
  CHECK(download::percent_encode("refs/pr/3", false) == "refs%2Fpr%2F3");
  CHECK(download::percent_encode("sub dir/model.safetensors", true) == "sub%20dir/model.safetensors");

  // Default patterns: what blipcpp reads, not the other copies of the weights.
  const auto& defaults = tools::default_download_patterns();
  for (const char* wanted : {"config.json", "model.safetensors", "model-00001-of-00002.safetensors",
                             "model.safetensors.index.json", "vocab.txt", "merges.txt", "spiece.model",
                             "tokenizer.json"})
    CHECK_MESSAGE(download::matches_any(wanted, defaults), wanted);
  for (const char* unwanted : {"pytorch_model.bin", "tf_model.h5", "flax_model.msgpack", "README.md", ".gitattributes"})
    CHECK_FALSE_MESSAGE(download::matches_any(unwanted, defaults), unwanted);
  CHECK(download::matches_any("onnx/model.json", {"*.json"}));  // '*' crosses '/', like Python's fnmatch

  // A listing may not name paths outside the snapshot.
  CHECK_NOTHROW(download::check_repository_path("config.json"));
  CHECK_NOTHROW(download::check_repository_path("sub/dir/file.txt"));
  for (const char* bad : {"../x", "a/../../x", "/etc/passwd", "", "./x"})
    CHECK_THROWS_AS_MESSAGE(download::check_repository_path(bad), blip::Error, bad);
}

}  // namespace weights_download_helpers_test
