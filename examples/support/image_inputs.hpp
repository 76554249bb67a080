// examples/support/image_inputs.hpp: the pieces a program needs to run a model
// over many images: which files (expand_image_inputs), read in bounded batches
// by a reader thread (ImageBatchReader), results written as text, JSON lines or
// CSV in input order (ResultWriter), a caption file beside each image
// (write_sidecar), a progress line on a terminal (Progress).
//
// What it promises the programs' users:
//   * memory is bounded by the batch, not by the number of files: a batch holds
//     the preprocessed pixels of at most `batch` images (each decoded image is
//     dropped once preprocessed), and the reader is at most one batch ahead;
//   * a file that cannot be read or decoded is an error record in its place,
//     and the run goes on (the program's exit status then says 1);
//   * output is written, and flushed, batch by batch.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/regular_file.hpp"
#include "blip/core/tensor.hpp"
#include "blip/core/threading.hpp"
#include "blip/io/image.hpp"
#include "blip/io/output_file.hpp"
#include "blip/io/safetensors.hpp"  // detail::first_invalid_utf8
#include "blip/text/json_lines.hpp"  // read_bounded_line
#include "command_line.hpp"         // json_string
#include "image_files.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace blip::examples {

// ---- which files ------------------------------------------------------------

// Folders give their files with an image extension (image_files.hpp).

// One input of a run: a path, and the reason it fails when that is known
// before reading it (a folder that cannot be listed, a missing file, ...).
struct ImageInput {
  std::string path;
  std::string error;  // empty: to be read
};

namespace inputs_detail {

// The images of `folder` sorted by name (byte order: "10.jpg" before "2.jpg"),
// its subfolders' images at their place in that order when `recursive`; names
// starting with a dot are hidden and left out. Symbolic links to folders are not
// followed (as `find` does not), so a link loop cannot recurse forever; links
// to files are listed like files.
inline void add_folder(const std::filesystem::path& folder, bool recursive, std::vector<ImageInput>& out) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::directory_iterator entries(folder, error);
  if (error) {
    out.push_back({folder.string(), "cannot list the folder " + folder.string() + " (" + error.message() + ")"});
    return;
  }
  struct Entry {
    std::string name;
    bool is_folder;
  };
  std::vector<Entry> listed;
  for (; entries != fs::directory_iterator(); entries.increment(error)) {
    if (error) break;
    const fs::directory_entry& entry = *entries;
    // Hidden names are left out, as ls and file browsers do: macOS leaves "._photo.jpg" resource
    // forks beside every photo it copies to a foreign file system, which are not images.
    if (entry.path().filename().string().rfind('.', 0) == 0) continue;
    std::error_code kind_error;
    const bool is_folder = entry.is_directory(kind_error) && !entry.is_symlink(kind_error);
    if (is_folder) {
      if (recursive) listed.push_back({entry.path().filename().string(), true});
    } else if (!entry.is_directory(kind_error) && has_image_extension(entry.path())) {
      listed.push_back({entry.path().filename().string(), false});
    }
  }
  if (error) {
    out.push_back({folder.string(), "listing the folder " + folder.string() + " failed (" + error.message() + ")"});
    return;
  }
  std::sort(listed.begin(), listed.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  for (const Entry& entry : listed) {
    if (entry.is_folder) {
      add_folder(folder / entry.name, recursive, out);
    } else {
      out.push_back({(folder / entry.name).string(), ""});
    }
  }
}

}  // namespace inputs_detail

// The lines of a list file (`-`: standard input), blank lines skipped, each
// `what` ("a path", "a question"). A line above kMaxInputLineBytes, or a file
// that cannot be read, is an error naming the file and line.
inline std::vector<std::string> read_list_file(const std::string& list_file, const char* what = "a path") {
  std::ifstream file;
  if (list_file != "-") {
    require_regular_file(list_file);
    file.open(list_file, std::ios::binary);
    check(file.is_open(), "cannot open the list file ", list_file);
  }
  std::istream& input = list_file == "-" ? std::cin : file;
  const std::string name = list_file == "-" ? "the list on standard input" : list_file;
  std::vector<std::string> paths;
  std::string line;
  long line_number = 0;
  while (true) {
    errno = 0;
    const LineRead read = read_bounded_line(input, line);
    if (read == LineRead::End) break;
    ++line_number;
    if (read == LineRead::TooLong)
      fail(name, ": line ", line_number, " is longer than ", kMaxInputLineBytes, " bytes, too long for ", what);
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    paths.push_back(line);
  }
  if (input.bad()) fail(name, ": ", describe_read_failure("the list"), " after line ", line_number);
  return paths;
}

// The inputs of a run, in order: each argument that is a folder becomes its
// images (see add_folder); anything else (a file, a missing path, a FIFO) is
// kept as it is, to be tried and, if it fails, reported in its place.
inline std::vector<ImageInput> expand_image_inputs(const std::vector<std::string>& arguments, bool recursive) {
  namespace fs = std::filesystem;
  std::vector<ImageInput> inputs;
  for (const std::string& argument : arguments) {
    std::error_code error;
    if (fs::is_directory(argument, error)) {
      inputs_detail::add_folder(fs::path(argument), recursive, inputs);
    } else {
      inputs.push_back({argument, ""});
    }
  }
  return inputs;
}

// What can be found wrong without reading a file, found before the model
// loads: the path is not a regular file (missing, a FIFO, a device), or, for
// JSON output, it is not UTF-8. Returns how many inputs are still to be read.
inline std::size_t precheck_inputs(std::vector<ImageInput>& inputs, bool needs_utf8) {
  std::size_t readable = 0;
  for (ImageInput& input : inputs) {
    if (!input.error.empty()) continue;
    if (needs_utf8) {
      const auto* bytes = reinterpret_cast<const std::uint8_t*>(input.path.data());
      const std::size_t bad = detail::first_invalid_utf8(bytes, input.path.size());
      if (bad != input.path.size()) {
        input.error = "the path " + clip(input.path) + " is not valid UTF-8 (byte " + std::to_string(bad) +
                      "); --json output needs UTF-8 (rename the file, or leave out --json)";
        continue;
      }
    }
    try {
      require_regular_file(input.path);
      ++readable;
    } catch (const Error& error) {
      input.error = error.what();
    }
  }
  return readable;
}

// ---- reading in batches -------------------------------------------------------

// Consecutive inputs: up to `batch` images that decoded, and the inputs between
// them that did not, in input order.
struct ImageBatch {
  static constexpr std::size_t kNoRow = static_cast<std::size_t>(-1);
  std::vector<ImageInput> entries;  // an entry with an error has no row
  std::vector<std::size_t> rows;    // rows[i]: entries[i]'s row of pixels, or kNoRow
  Tensor<float> pixels;             // [images that decoded, 3, H, W]; empty when none did
  std::size_t images() const { return pixels.empty() ? 0 : static_cast<std::size_t>(pixels.dim(0)); }
};

// Reads `inputs` in batches of `batch_size` decoded images. Each image is
// decoded and preprocessed into its slot of the batch and dropped (only the
// pixels stay, as load_preprocessed_batch does), so a batch holds one image at
// full resolution while it is read. With read_ahead, a thread decodes the next
// batch while the caller works on the current one, and no further: at most two
// batches exist at once. The thread decodes serially (one OpenMP thread): it
// overlaps with the model, which has the cores.
class ImageBatchReader {
 public:
  ImageBatchReader(std::vector<ImageInput> inputs, std::size_t batch_size, ImageProcessorConfig config,
                   bool read_ahead)
      : inputs_(std::move(inputs)), batch_size_(std::max<std::size_t>(batch_size, 1)), config_(config),
        read_ahead_(read_ahead) {
    if (read_ahead_ && !inputs_.empty()) {
      pending_ = requested_ = true;
      worker_ = std::thread([this]() { work(); });
    }
  }
  ImageBatchReader(const ImageBatchReader&) = delete;
  ImageBatchReader& operator=(const ImageBatchReader&) = delete;
  ~ImageBatchReader() {
    if (worker_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
      }
      changed_.notify_all();
      worker_.join();
    }
  }

  std::size_t total() const { return inputs_.size(); }

  // The next batch into `batch` (the previous one it held is freed first);
  // false after the last.
  bool next(ImageBatch& batch) {
    if (!read_ahead_) {
      if (cursor_ >= inputs_.size()) return false;
      batch = ImageBatch{};
      batch = read_batch();
      return true;
    }
    if (!pending_) return false;
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this]() { return ready_; });
    ready_ = pending_ = false;
    if (failure_) std::rethrow_exception(failure_);
    batch = std::move(ready_batch_);
    ready_batch_ = ImageBatch{};
    if (more_) {  // the next one, while the caller works on this one
      pending_ = requested_ = true;
      lock.unlock();
      changed_.notify_all();
    }
    return true;
  }

 private:
  // Decodes from cursor_ on: up to batch_size_ images, with the failures between them.
  ImageBatch read_batch() {
    ImageBatch batch;
    const std::size_t slot = static_cast<std::size_t>(3) * config_.height * config_.width;
    Tensor<float> pixels(
        Shape{static_cast<std::int64_t>(std::min(batch_size_, inputs_.size() - cursor_)), 3, config_.height,
              config_.width});
    std::size_t decoded = 0;
    while (decoded < static_cast<std::size_t>(pixels.dim(0)) && cursor_ < inputs_.size()) {
      ImageInput input = std::move(inputs_[cursor_]);
      inputs_[cursor_++] = ImageInput{};  // the batch holds it now
      if (input.error.empty()) {
        try {
          preprocess_into(load_image(input.path), config_, pixels.data() + decoded * slot);
        } catch (const std::bad_alloc&) {
          input.error = input.path + ": out of memory decoding the image";
        } catch (const std::exception& error) {
          input.error = error.what();
        }
      }
      batch.rows.push_back(input.error.empty() ? decoded++ : ImageBatch::kNoRow);
      batch.entries.push_back(std::move(input));
    }
    if (decoded == static_cast<std::size_t>(pixels.dim(0))) {
      batch.pixels = std::move(pixels);
    } else if (decoded > 0) {  // failures at the end of the input: fewer rows
      batch.pixels = Tensor<float>(Shape{static_cast<std::int64_t>(decoded), 3, config_.height, config_.width});
      std::memcpy(batch.pixels.data(), pixels.data(), decoded * slot * sizeof(float));
    }
    return batch;
  }

  void work() {
    set_num_threads(1);
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [this]() { return requested_ || stop_; });
        if (stop_) return;
        requested_ = false;
      }
      ImageBatch batch;
      std::exception_ptr failure;
      try {
        batch = read_batch();
      } catch (...) {  // e.g. std::bad_alloc for the batch itself: the caller's to report
        failure = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ready_batch_ = std::move(batch);
        failure_ = failure;
        more_ = cursor_ < inputs_.size() && !failure;
        ready_ = true;
      }
      changed_.notify_all();
    }
  }

  std::vector<ImageInput> inputs_;  // read and emptied in order
  std::size_t cursor_ = 0;          // the next input to read (the worker's, when reading ahead)
  const std::size_t batch_size_;
  const ImageProcessorConfig config_;
  const bool read_ahead_;
  bool pending_ = false;  // the caller's: a batch was requested and not yet taken
  // Shared with the worker, under mutex_:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool requested_ = false, ready_ = false, more_ = false, stop_ = false;
  ImageBatch ready_batch_;
  std::exception_ptr failure_;
  std::thread worker_;
};

// ---- writing results ------------------------------------------------------------

enum class OutputFormat { Text, Json, Csv };

// A CSV field as RFC 4180 quotes it: in double quotes, with its quotes doubled,
// when it holds a comma, a quote, a CR or an LF (or starts or ends with a space,
// which some readers would trim); as it is otherwise.
inline std::string csv_field(const std::string& value) {
  const bool needs_quotes = value.find_first_of(",\"\r\n") != std::string::npos ||
                            (!value.empty() && (value.front() == ' ' || value.back() == ' '));
  if (!needs_quotes) return value;
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

// Writes one record per result or failed input, in the order given, to stdout:
//   Text: the values joined by the separators ("a.jpg: a dog"); failures only on stderr.
//   Json: {"column": value, ...} per line; failures as {"image": path, "error": reason}.
//   Csv:  a header "column,...,error", then one row per record (LF line ends):
//         results with an empty error field, failures with only the first
//         column and the error filled in.
// Every failure also goes to stderr as "<program>: <reason>".
class ResultWriter {
 public:
  ResultWriter(OutputFormat format, std::string program, std::vector<std::string> columns,
               std::vector<std::string> text_separators)
      : format_(format), program_(std::move(program)), columns_(std::move(columns)),
        separators_(std::move(text_separators)) {
    if (format_ == OutputFormat::Csv) {
      std::string header;
      for (const std::string& column : columns_) header += column + ",";
      std::printf("%serror\n", header.c_str());
    }
  }

  // `values` in the order of the columns; `score` (beam search's) is added to JSON records when not NaN.
  void result(const std::vector<std::string>& values, float score = std::numeric_limits<float>::quiet_NaN()) {
    check(values.size() == columns_.size(), "ResultWriter: ", values.size(), " values for ", columns_.size(),
          " columns");
    std::string line;
    for (std::size_t index = 0; index < values.size(); ++index) {
      switch (format_) {
        case OutputFormat::Text:
          if (index > 0) line += separators_[std::min(index - 1, separators_.size() - 1)];
          line += values[index];
          break;
        case OutputFormat::Json:
          line += (index == 0 ? "{" : ", ") + json_string(columns_[index]) + ": " + json_string(values[index]);
          break;
        case OutputFormat::Csv: line += csv_field(values[index]) + ","; break;
      }
    }
    if (format_ == OutputFormat::Json) {
      if (!std::isnan(score)) {
        char number[32];
        std::snprintf(number, sizeof number, ", \"score\": %.6f", score);
        line += number;
      }
      line += "}";
    }
    std::printf("%s\n", line.c_str());
  }

  void error(const std::string& image, const std::string& reason) {
    ++errors_;
    std::fflush(stdout);  // stdout and stderr into one file stay in input order
    std::fprintf(stderr, "%s: %s\n", program_.c_str(), reason.c_str());
    if (format_ == OutputFormat::Json) {
      std::printf("{\"image\": %s, \"error\": %s}\n", json_string(image).c_str(), json_string(reason).c_str());
    } else if (format_ == OutputFormat::Csv) {
      std::printf("%s,%s%s\n", csv_field(image).c_str(), std::string(columns_.size() - 1, ',').c_str(),
                  csv_field(reason).c_str());
    }
  }

  // After each batch, so that a reader of the output sees it batch by batch. Output that cannot be
  // written (a full disk) ends the run here, not after the last image.
  void flush() {
    if (std::fflush(stdout) != 0 || std::ferror(stdout))
      fail("writing standard output failed (", std::strerror(errno), ")");
    std::fflush(stderr);
  }

  std::size_t errors() const { return errors_; }

 private:
  OutputFormat format_;
  std::string program_;
  std::vector<std::string> columns_, separators_;
  std::size_t errors_ = 0;
};

// ---- sidecar files ----------------------------------------------------------------

// The caption file of an image, as training-data tools (kohya-ss sd-scripts,
// OneTrainer) read them: the image's name with the extension ".txt".
inline std::string sidecar_path(const std::string& image_path) {
  return std::filesystem::path(image_path).replace_extension(".txt").string();
}

// Writes `text` and a newline to `path` without harming what is there:
//   * nothing there: written beside it (<path>.XXXXXX) and linked into place,
//     which fails rather than replace a file that appeared meanwhile;
//   * something there: refused unless `overwrite`; then a regular file is
//     replaced by rename (never left half-written), a symbolic link, FIFO or
//     character device is written through (output_file.hpp), a directory refused.
// Errors name the file.
inline void write_sidecar(const std::string& path, const std::string& text, bool overwrite) {
  namespace fs = std::filesystem;
  const std::string content = text + "\n";
  std::error_code status_error;
  const bool exists = fs::exists(fs::symlink_status(path, status_error));
  if (exists && !overwrite) fail(path, ": exists; pass --overwrite to replace it");
  if (exists && output_kind(path) == OutputKind::WriteThrough) {
    write_through(path, std::vector<std::uint8_t>(content.begin(), content.end()));
    return;
  }
#if defined(__unix__) || defined(__APPLE__)
  std::string temporary = path + ".XXXXXX";
  const int descriptor = ::mkstemp(temporary.data());
  if (descriptor < 0) fail(path, ": cannot create a file beside it (", std::strerror(errno), ")");
  auto give_up = [&](const char* doing) {
    const int error = errno;
    ::close(descriptor);
    ::unlink(temporary.c_str());
    fail(path, ": ", doing, " failed (", std::strerror(error), ")");
  };
  ::fchmod(descriptor, 0644);  // mkstemp's 0600 would hide the caption from other users' tools
  std::size_t written = 0;
  while (written < content.size()) {
    const ssize_t count = ::write(descriptor, content.data() + written, content.size() - written);
    if (count < 0) {
      if (errno == EINTR) continue;
      give_up("writing");
    }
    written += static_cast<std::size_t>(count);
  }
  if (::close(descriptor) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    fail(path, ": writing failed (", std::strerror(error), ")");
  }
  if (overwrite) {
    if (::rename(temporary.c_str(), path.c_str()) != 0) {
      const int error = errno;
      ::unlink(temporary.c_str());
      fail(path, ": cannot rename the written file into place (", std::strerror(error), ")");
    }
    return;
  }
  // link() refuses an existing name: no file that appeared since the check is replaced.
  if (::link(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    if (error == EEXIST) fail(path, ": exists; pass --overwrite to replace it");
    fail(path, ": cannot move the written file into place (", std::strerror(error), ")");
  }
  ::unlink(temporary.c_str());
#else
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  stream << content;
  stream.flush();
  if (!stream) fail(path, ": write failed");
#endif
}

// The sidecars of one run: refuses a second image with the same sidecar
// (a.jpg and a.png both caption into a.txt), which would overwrite the first.
class SidecarWriter {
 public:
  explicit SidecarWriter(bool overwrite) : overwrite_(overwrite) {}

  // The sidecar path of an image that is to be read, or the reason it cannot
  // get one (it exists, and --overwrite was not given); checked before the
  // model loads, so that no image is captioned for nothing.
  std::string precheck(const std::string& image_path) const {
    const std::string path = sidecar_path(image_path);
    if (path == image_path) return image_path + ": its sidecar would be the image itself (the image is named .txt)";
    std::error_code error;
    if (!overwrite_ && std::filesystem::exists(std::filesystem::symlink_status(path, error)))
      return path + ": exists; pass --overwrite to replace it";
    return "";
  }

  void write(const std::string& image_path, const std::string& text) {
    const std::string path = sidecar_path(image_path);
    if (path == image_path) fail(image_path, ": its sidecar would be the image itself (the image is named .txt)");
    const auto [earlier, inserted] = written_.emplace(path, image_path);
    if (!inserted) fail(path, ": already written for ", earlier->second, " in this run (two images share a name)");
    write_sidecar(path, text, overwrite_);
  }

 private:
  bool overwrite_;
  std::map<std::string, std::string> written_;  // sidecar -> image
};

// ---- progress ---------------------------------------------------------------------

// "12/200 images, 3.1 images/s, ETA 61 s" on stderr, redrawn in place, only
// when stderr is a terminal (a log file gets no carriage returns).
class Progress {
 public:
  Progress(std::size_t total, std::string unit)
      : total_(total), unit_(std::move(unit)), enabled_(::isatty(2) == 1),
        started_(std::chrono::steady_clock::now()) {}

  void advance(std::size_t done) {
    done_ += done;
    if (!enabled_) return;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0.0;
    char eta[32] = "";
    if (rate > 0 && done_ < total_) std::snprintf(eta, sizeof eta, ", ETA %.0f s", (total_ - done_) / rate);
    std::fprintf(stderr, "\r%zu/%zu %s, %.2f %s/s%s\033[K", done_, total_, unit_.c_str(), rate, unit_.c_str(), eta);
    std::fflush(stderr);
    shown_ = true;
  }
  // Before other stderr output, and at the end.
  void clear() {
    if (!shown_) return;
    std::fputs("\r\033[K", stderr);
    shown_ = false;
  }

 private:
  std::size_t total_, done_ = 0;
  std::string unit_;
  bool enabled_, shown_ = false;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace blip::examples
