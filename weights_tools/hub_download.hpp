// weights_tools/hub_download.hpp: `blip_weights download`, a model
// repository from the Hugging Face Hub (or a mirror) into the local Hugging
// Face cache, in the layout huggingface_hub writes, so Python and blipcpp
// share one copy of each model both ways:
//
//   <cache>/models--<org>--<name>/
//     blobs/<sha256 for LFS files, git blob sha1 otherwise>   the bytes
//     snapshots/<commit>/<file> -> ../../blobs/<...>          what programs open
//     refs/<revision>                                         the commit of "main" etc.
//
// <cache> is found as huggingface_hub finds it (blip::hub_cache_dir:
// HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub), and a model
// downloaded here is what `blip_caption Org/Name` opens (io/model_location.hpp).
//
// The protocol is the Hub's public HTTP API, the one huggingface_hub uses:
//   GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true
//       -> {"sha": commit, "siblings": [{"rfilename", "size", "blobId",
//           "lfs": {"sha256", "size"}}]}
//   GET {endpoint}/{repo}/resolve/{commit}/{file}   (may redirect to a CDN)
// Files are fetched at the commit the revision named when the listing was
// taken, so a branch that moves meanwhile cannot mix two versions.
//
// Resuming: a blob is written as blobs/<etag>.incomplete (huggingface_hub's
// name too, so either tool continues the other's partial file) and continued
// with a Range request, after a dropped connection within the same run (a few
// times) or by the next run. Checks: every file's size against the listing,
// the sha256 of LFS files (the weights) against lfs.sha256, and the git blob
// id of the others (configs, tokenizer files) against blobId; a file that
// fails is deleted and never installed as a blob.
#pragma once

#include <fnmatch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/io/model_location.hpp"
#include "hashes.hpp"
#include "weights_tools.hpp"

#if defined(BLIP_HAVE_HTTPLIB)
#include <httplib.h>
#endif

namespace blip::weights_tools {

struct DownloadOptions {
  std::string revision = "main";
  std::string cache_dir;              // empty: blip::hub_cache_dir()
  std::string endpoint;               // empty: $HF_ENDPOINT, else https://huggingface.co
  std::vector<std::string> include;   // fnmatch patterns; empty: kDefaultDownloadPatterns
  int attempts_per_file = 4;          // connections tried per file before giving up (each resumes)
  std::ostream* progress = nullptr;   // one line per file when set
};

// What blipcpp reads from a model repository: configs and tokenizer files
// (*.json, vocab.txt, merges.txt, spiece.model) and the safetensors weights.
// Not pytorch_model.bin, tf_model.h5, flax or onnx copies of the same weights.
inline const std::vector<std::string>& default_download_patterns() {
  static const std::vector<std::string> patterns{"*.json", "*.safetensors", "*.txt", "*.model"};
  return patterns;
}

struct DownloadedFile {
  std::string name;          // path in the repository
  std::uint64_t size = 0;
  std::string how;           // "cached", "downloaded", "resumed at <bytes>"
};

struct DownloadResult {
  std::string repo_folder;   // <cache>/models--Org--Name
  std::string snapshot;      // <repo_folder>/snapshots/<commit>: the model folder
  std::string commit;
  std::vector<DownloadedFile> files;
  std::uint64_t bytes_fetched = 0;
};

namespace download_detail {

// Percent-encoding of one URL path piece (RFC 3986 unreserved characters
// kept; '/' kept when `keep_slash`, for file paths inside the repository).
inline std::string percent_encode(const std::string& text, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string encoded;
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
    if (unreserved) encoded += static_cast<char>(c);
    else encoded += std::string("%") + hex[c >> 4] + hex[c & 15];
  }
  return encoded;
}

// "https://host[:port][/base]" -> scheme://host[:port] (what httplib::Client
// takes) and the base path every request path starts with.
struct Endpoint {
  std::string origin;  // scheme://host[:port]
  std::string base;    // "" or "/prefix"
  bool https = false;
};

inline Endpoint parse_endpoint(const std::string& url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos || (url.compare(0, scheme_end, "http") != 0 && url.compare(0, scheme_end, "https") != 0))
    usage_fail("--endpoint '", url, "': expected http://host[:port][/path] or https://...");
  Endpoint endpoint;
  endpoint.https = url.compare(0, scheme_end, "https") == 0;
  const std::size_t path_start = url.find('/', scheme_end + 3);
  endpoint.origin = url.substr(0, path_start);
  if (path_start != std::string::npos) endpoint.base = url.substr(path_start);
  while (!endpoint.base.empty() && endpoint.base.back() == '/') endpoint.base.pop_back();
  if (endpoint.origin.size() <= scheme_end + 3) usage_fail("--endpoint '", url, "': no host");
  return endpoint;
}

inline std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

inline bool matches_any(const std::string& name, const std::vector<std::string>& patterns) {
  for (const std::string& pattern : patterns)
    if (fnmatch(pattern.c_str(), name.c_str(), 0) == 0) return true;  // '*' crosses '/', as Python's fnmatch
  return false;
}

// A file name from the listing, refused when it could leave the snapshot folder.
inline void check_repository_path(const std::string& name) {
  const std::filesystem::path path(name);
  bool bad = name.empty() || path.is_absolute() || path.has_root_name();
  for (const auto& part : path) bad = bad || part == ".." || part == ".";
  if (bad) fail("the Hub listing names a file '", clip(name), "' outside the repository; refusing it");
}

inline std::uint64_t file_size_or_zero(const std::filesystem::path& path) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  return error ? 0 : static_cast<std::uint64_t>(size);
}

}  // namespace download_detail

#if defined(BLIP_HAVE_HTTPLIB)

namespace download_detail {

// The endpoint did not answer at all (as opposed to answering with an error).
class Unreachable : public Error {
 public:
  explicit Unreachable(const std::string& message) : Error(message) {}
};

// One HTTP GET with manual redirects: the Hub's /resolve/ answers 302 to a CDN
// (another host) for LFS files. Authorization goes to the endpoint's own host
// only, never to a redirect target (signed CDN URLs refuse a second credential).
class HttpFetcher {
 public:
  HttpFetcher(Endpoint endpoint, std::string token) : endpoint_(std::move(endpoint)), token_(std::move(token)) {}

  struct Answer {
    int status = 0;
    httplib::Headers headers;
    std::string error;  // transport error (connection refused, dropped...), empty when an answer came
  };

  // GET `path` (on the endpoint). `on_headers(status, headers)` is called
  // for the final answer (after redirects) and returns whether to read the
  // body into `on_body`; a JSON or error body is collected into `text`.
  template <class OnHeaders, class OnBody>
  Answer get(const std::string& path, const httplib::Headers& extra_headers, OnHeaders&& on_headers, OnBody&& on_body) {
    std::string origin = endpoint_.origin, target = endpoint_.base + path;
    for (int redirect = 0; redirect <= 10; ++redirect) {
      httplib::Client client(origin);
      if (!client.is_valid())
        fail("cannot make an HTTP client for ", origin,
             origin.rfind("https", 0) == 0 ? " (this blip_weights was built without OpenSSL: https needs it; "
                                             "install libssl-dev and rebuild, or use an http:// mirror)"
                                           : "");
      client.set_connection_timeout(10, 0);
      client.set_read_timeout(60, 0);
      client.set_follow_location(false);
      client.set_decompress(false);
      httplib::Headers headers = extra_headers;
      headers.emplace("Accept-Encoding", "identity");  // bytes as stored, so Range offsets are file offsets
      headers.emplace("User-Agent", "blipcpp-blip_weights/1 (huggingface_hub-compatible cache)");
      if (!token_.empty() && origin == endpoint_.origin) headers.emplace("Authorization", "Bearer " + token_);
      Answer answer;
      std::string location;
      bool redirected = false;
      auto result = client.Get(
          target, headers,
          [&](const httplib::Response& response) {
            answer.status = response.status;
            answer.headers = response.headers;
            if (response.status >= 300 && response.status < 400 && response.has_header("Location")) {
              location = response.get_header_value("Location");
              redirected = true;
              return false;  // stop here, follow below
            }
            return on_headers(response.status, response.headers);
          },
          [&](const char* data, std::size_t size) { return on_body(data, size); });
      if (redirected) {
        if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) {
          const std::size_t path_start = location.find('/', location.find("://") + 3);
          origin = location.substr(0, path_start);
          target = path_start == std::string::npos ? "/" : location.substr(path_start);
        } else if (!location.empty() && location[0] == '/') {
          target = location;
        } else {
          fail("redirect to '", clip(location), "' that is not a URL");
        }
        continue;
      }
      if (!result && answer.status == 0) {
        answer.error = httplib::to_string(result.error()) + " (" + origin + ")";
        if (result.error() == httplib::Error::SSLServerVerification)
          answer.error += ": its TLS certificate is not trusted here (a proxy or mirror with its own CA? "
                          "SSL_CERT_FILE=<CA bundle> makes OpenSSL trust it)";
      }
      else if (!result && result.error() != httplib::Error::Canceled)
        answer.error = httplib::to_string(result.error()) + " after the answer started (" + origin + ")";
      return answer;
    }
    fail("more than 10 redirects for ", path);
  }

 private:
  Endpoint endpoint_;
  std::string token_;
};

inline std::string describe_status(int status) {
  switch (status) {
    case 401: return "401 Unauthorized: a private or gated repository; accept its terms on the website and set HF_TOKEN";
    case 403: return "403 Forbidden: a gated repository; accept its terms on the website and set HF_TOKEN";
    case 404: return "404 Not Found: no such repository, revision or file (or a private one without HF_TOKEN)";
    default: return "HTTP status " + std::to_string(status);
  }
}

// The listing of the repository at `revision`, as JSON.
inline nlohmann::json fetch_listing(HttpFetcher& http, const std::string& repo_id, const std::string& revision,
                                    const std::string& endpoint_url) {
  const std::string path = "/api/models/" + repo_id + "/revision/" + percent_encode(revision, false) + "?blobs=true";
  std::string body;
  const auto answer = http.get(
      path, {}, [](int, const httplib::Headers&) { return true; },
      [&](const char* data, std::size_t size) {
        if (body.size() + size > (64u << 20)) return false;  // a listing is kilobytes; refuse a runaway answer
        body.append(data, size);
        return true;
      });
  if (!answer.error.empty())
    throw Unreachable(detail::concat("cannot reach ", endpoint_url, ": ", answer.error,
                                     "; download on a connected machine (same command) and copy the cache folder "
                                     "over, or set --endpoint"));
  if (answer.status != 200)
    fail(endpoint_url, path, ": ", describe_status(answer.status), body.empty() ? "" : " (" + clip(body, 200) + ")");
  nlohmann::json listing = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (listing.is_discarded() || !listing.is_object() || !listing.contains("sha") || !listing["sha"].is_string() ||
      !listing.contains("siblings") || !listing["siblings"].is_array())
    fail(endpoint_url, path, ": the answer is not a Hub model listing (expected JSON with \"sha\" and \"siblings\")");
  return listing;
}

// Fetches `name` at `commit` into `partial`, continuing what is there.
// Returns the bytes fetched; throws on HTTP errors or when all attempts fail.
inline std::uint64_t fetch_to_partial(HttpFetcher& http, const std::string& repo_id, const std::string& commit,
                                      const std::string& name, std::uint64_t expected_size,
                                      const std::filesystem::path& partial, int attempts, std::ostream* progress) {
  const std::string path = "/" + repo_id + "/resolve/" + commit + "/" + percent_encode(name, true);
  std::uint64_t fetched = 0;
  std::string last_error;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    const std::uint64_t offset = download_detail::file_size_or_zero(partial);
    if (expected_size > 0 && offset == expected_size) return fetched;
    httplib::Headers headers;
    if (offset > 0) headers.emplace("Range", "bytes=" + std::to_string(offset) + "-");
    std::ofstream stream;
    std::string error_body;
    std::uint64_t received = 0;
    bool cannot_write = false;
    const auto answer = http.get(
        path, headers,
        [&](int status, const httplib::Headers& response_headers) {
          if (status == 206 && offset > 0) {
            // Content-Range: bytes <offset>-<last>/<total>; anything else is not our range.
            std::string range;
            for (const auto& [key, value] : response_headers)
              if (key == "Content-Range" || key == "content-range") range = value;
            if (range.rfind("bytes " + std::to_string(offset) + "-", 0) != 0) {
              error_body = "206 with Content-Range '" + range + "' for a request from byte " + std::to_string(offset);
              return false;
            }
            stream.open(partial, std::ios::binary | std::ios::app);
          } else if (status == 200) {
            stream.open(partial, std::ios::binary | std::ios::trunc);  // the whole file (a server without Range)
          } else {
            return true;  // read the error body
          }
          if (!stream) {  // no exception through httplib's callback: reported below
            cannot_write = true;
            return false;
          }
          return true;
        },
        [&](const char* data, std::size_t size) {
          if (!stream.is_open()) {
            if (error_body.size() < 4096) error_body.append(data, std::min<std::size_t>(size, 4096));
            return true;
          }
          stream.write(data, static_cast<std::streamsize>(size));
          received += size;
          cannot_write = !stream;
          return !cannot_write;
        });
    stream.close();
    if (cannot_write) fail(partial.string(), ": cannot write the download (disk full?)");
    fetched += received;
    if (answer.error.empty() && (answer.status == 200 || answer.status == 206) && error_body.empty()) return fetched;
    if (answer.status == 416 && offset > 0) {  // the partial file is not a prefix the server can continue
      std::filesystem::remove(partial);
      last_error = "416 Range Not Satisfiable from byte " + std::to_string(offset) + " (starting over)";
      continue;
    }
    if (answer.error.empty() && !error_body.empty() && answer.status == 206)
      fail(name, ": ", error_body);
    if (answer.error.empty() && answer.status != 200 && answer.status != 206)
      fail(name, ": ", describe_status(answer.status), error_body.empty() ? "" : " (" + clip(error_body, 200) + ")");
    last_error = answer.error;
    if (progress)
      *progress << "  " << name << ": connection lost after " << download_detail::file_size_or_zero(partial) << " of "
                << expected_size << " bytes (" << answer.error << "); resuming\n";
    if (received > 0) --attempt;  // progress was made: a drop does not use up an attempt
  }
  fail(name, ": download interrupted at ", download_detail::file_size_or_zero(partial), " of ", expected_size,
       " bytes (", last_error, "); the partial file ", partial.string(),
       " is kept: run the same command again to resume");
}

}  // namespace download_detail

// Downloads `repo_id` at options.revision into the Hugging Face cache (see
// the top of this file) and returns its snapshot folder, which every blipcpp
// program takes as a model folder.
inline DownloadResult download_model(const std::string& repo_id, const DownloadOptions& options) {
  namespace fs = std::filesystem;
  using namespace download_detail;
  if (!looks_like_repo_id(repo_id))
    usage_fail("'", clip(repo_id), "' is not a Hugging Face repository id (expected Org/Name, e.g. "
               "Salesforce/blip-image-captioning-base)");
  if (options.revision.empty()) usage_fail("--revision: empty");
  const std::string endpoint_url = !options.endpoint.empty()         ? options.endpoint
                                   : !environment("HF_ENDPOINT").empty() ? environment("HF_ENDPOINT")
                                                                        : "https://huggingface.co";
  HttpFetcher http(parse_endpoint(endpoint_url), environment("HF_TOKEN"));
  const std::vector<std::string>& patterns = options.include.empty() ? default_download_patterns() : options.include;
  const fs::path cache = options.cache_dir.empty() ? hub_cache_dir() : fs::path(options.cache_dir);

  // Offline, a snapshot already in the cache is the answer, as huggingface_hub
  // does: always under HF_HUB_OFFLINE=1, else when the endpoint cannot be
  // reached at all (not when it answers with an error).
  const auto cached_snapshot = [&](const std::string& why) {
    const fs::path snapshot = find_cached_snapshot(cache, repo_id, options.revision, nullptr);
    if (snapshot.empty()) return DownloadResult{};
    if (options.progress) *options.progress << why << "; using the cached snapshot\n";
    DownloadResult cached;
    cached.repo_folder = (cache / hub_repo_folder_name(repo_id)).string();
    cached.snapshot = snapshot.string();
    cached.commit = snapshot.filename().string();
    return cached;
  };
  const std::string offline = environment("HF_HUB_OFFLINE");
  if (!offline.empty() && offline != "0" && offline != "false" && offline != "FALSE") {
    DownloadResult cached = cached_snapshot("HF_HUB_OFFLINE is set");
    if (cached.snapshot.empty())
      fail(repo_id, "@", options.revision, ": HF_HUB_OFFLINE is set and the cache ", cache.string(),
           " has no snapshot of it");
    return cached;
  }
  nlohmann::json listing;
  try {
    listing = fetch_listing(http, repo_id, options.revision, endpoint_url);
  } catch (const Unreachable& error) {
    DownloadResult cached = cached_snapshot(error.what());
    if (cached.snapshot.empty()) throw;
    return cached;
  }
  DownloadResult result;
  result.commit = listing["sha"].get<std::string>();
  if (result.commit.size() != 40 || result.commit.find_first_not_of("0123456789abcdef") != std::string::npos)
    fail(endpoint_url, ": the listing's commit '", clip(result.commit), "' is not a 40-digit hash");
  const fs::path repo_folder = cache / hub_repo_folder_name(repo_id);
  const fs::path snapshot = repo_folder / "snapshots" / result.commit;
  result.repo_folder = repo_folder.string();
  result.snapshot = snapshot.string();
  fs::create_directories(repo_folder / "blobs");
  fs::create_directories(snapshot);

  bool any_weights = false;
  std::size_t selected = 0;
  for (const nlohmann::json& sibling : listing["siblings"]) {
    if (!sibling.is_object() || !sibling.contains("rfilename") || !sibling["rfilename"].is_string()) continue;
    const std::string name = sibling["rfilename"].get<std::string>();
    if (!matches_any(name, patterns)) continue;
    check_repository_path(name);
    ++selected;
    any_weights = any_weights || fs::path(name).extension() == ".safetensors";
    // The blob's name is huggingface_hub's etag: the LFS sha256, else the git blob id.
    const bool lfs = sibling.contains("lfs") && sibling["lfs"].is_object();
    std::string etag, sha256;
    std::uint64_t size = 0;
    bool size_known = false;
    if (lfs) {
      const nlohmann::json& info = sibling["lfs"];
      if (info.contains("sha256") && info["sha256"].is_string()) etag = sha256 = info["sha256"].get<std::string>();
      if (info.contains("size") && info["size"].is_number_unsigned()) size = info["size"].get<std::uint64_t>(), size_known = true;
    }
    if (etag.empty() && sibling.contains("blobId") && sibling["blobId"].is_string()) etag = sibling["blobId"].get<std::string>();
    if (!size_known && sibling.contains("size") && sibling["size"].is_number_unsigned())
      size = sibling["size"].get<std::uint64_t>(), size_known = true;
    if (etag.empty() || etag.find_first_not_of("0123456789abcdef") != std::string::npos)
      fail(endpoint_url, ": the listing gives no usable blobId / lfs.sha256 for ", name,
           " (does the endpoint implement ?blobs=true?)");

    const fs::path blob = repo_folder / "blobs" / etag;
    const fs::path partial = repo_folder / "blobs" / (etag + ".incomplete");
    DownloadedFile file{name, size, "cached"};
    std::error_code error;
    const bool have_blob = fs::is_regular_file(blob, error) && (!size_known || file_size_or_zero(blob) == size);
    if (!have_blob) {
      const std::uint64_t resumed_from = file_size_or_zero(partial);
      if (size_known && resumed_from > size) fs::remove(partial);  // longer than the file: not ours
      const auto started = std::chrono::steady_clock::now();
      result.bytes_fetched +=
          fetch_to_partial(http, repo_id, result.commit, name, size, partial, options.attempts_per_file, options.progress);
      const std::uint64_t got = file_size_or_zero(partial);
      if (size_known && got != size) {
        fs::remove(partial);
        fail(name, ": received ", got, " bytes but the Hub lists ", size, "; the download was deleted, run again");
      }
      if (!sha256.empty()) {
        const std::string actual = sha256_of_file(partial.string());
        if (actual != sha256) {
          fs::remove(partial);
          fail(name, ": sha256 mismatch: the Hub lists ", sha256, " but the downloaded bytes hash to ", actual,
               "; the download was deleted and not installed (a corrupted transfer or a bad mirror)");
        }
      } else if (etag.size() == 40) {  // not LFS: the blob is named by its git blob id, check that
        const std::string actual = git_blob_id_of_file(partial.string(), got);
        if (actual != etag) {
          fs::remove(partial);
          fail(name, ": git blob id mismatch: the Hub lists ", etag, " but the downloaded bytes give ", actual,
               "; the download was deleted and not installed (a corrupted transfer or a bad mirror)");
        }
      }
      fs::rename(partial, blob);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      file.size = got;
      file.how = resumed_from > 0 && resumed_from <= size ? "resumed at " + std::to_string(resumed_from) : "downloaded";
      if (options.progress)
        *options.progress << "  " << name << ": " << file.how << ", " << human_bytes(got)
                          << (sha256.empty() ? ", git blob id ok" : ", sha256 ok") << " ("
                          << (seconds > 0 ? human_bytes(static_cast<std::uint64_t>((got - std::min(got, resumed_from)) / seconds)) : "-")
                          << "/s)\n";
    } else if (options.progress) {
      *options.progress << "  " << name << ": cached, " << human_bytes(file_size_or_zero(blob)) << "\n";
    }

    // snapshots/<commit>/<name> -> ../../blobs/<etag> (one more ../ per folder in `name`).
    const fs::path link = snapshot / name;
    fs::create_directories(link.parent_path());
    fs::path target = "../../blobs/" + etag;
    for (std::size_t depth = std::count(name.begin(), name.end(), '/'); depth > 0; --depth) target = ".." / target;
    if (fs::is_symlink(link, error) || fs::exists(link, error)) fs::remove(link);
    fs::create_symlink(target, link, error);
    if (error) fs::copy_file(blob, link, fs::copy_options::overwrite_existing);  // no symlinks here: a copy, as huggingface_hub does
    result.files.push_back(file);
  }
  if (selected == 0) fail(repo_id, "@", options.revision, ": no file of the repository matches the --include patterns");

  // refs/<revision> -> commit, unless the revision is the commit itself (as huggingface_hub).
  if (options.revision != result.commit) {
    const fs::path ref = repo_folder / "refs" / options.revision;
    fs::create_directories(ref.parent_path());
    std::ofstream stream(ref, std::ios::binary | std::ios::trunc);
    stream << result.commit;
    if (!stream.flush()) fail(ref.string(), ": cannot write");
  }
  if (!any_weights && options.include.empty() && options.progress)
    *options.progress << "warning: " << repo_id << "@" << options.revision
                      << " has no .safetensors file; blipcpp does not read pytorch_model.bin. Some repositories keep "
                         "the safetensors conversion on a pull-request branch: --revision refs/pr/<N>\n";
  return result;
}

#else

inline DownloadResult download_model(const std::string&, const DownloadOptions&) {
  fail("this blip_weights was built without cpp-httplib (libcpp-httplib-dev), so it cannot download; "
       "install it and rebuild, or fetch the files with huggingface-cli");
}

#endif

}  // namespace blip::weights_tools
