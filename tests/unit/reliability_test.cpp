// Hostile and broken inputs at the library level, one test per hole of the
// hardening issue (the limits are listed in docs/reliability.md). The command-line
// side (exit statuses, output files, --json, memory of a batch) is checked by
// tests/cli/check_reliability.sh.
//
// Each test would fail on the code before the fix: a crash (stack overflow in
// a recursive JSON walk, libgomp starting 100,000 threads), a hang (a FIFO),
// gigabytes allocated (a huge token id), an unbounded message, or silently
// wrong output (a truncated PPM, an empty caption from NaN weights).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <sstream>
#include <streambuf>
#include <string>
#include <thread>
#include <vector>

#include "blip/blip.hpp"
#include "blip/text/json_lines.hpp"
#include "stb_image_write.h"
#include "test_support.hpp"

#if defined(__unix__)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace reliability_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

using blip::test::error_of;

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* const kBertTokenizer = "tokenizers/blip-image-captioning-base";

fs::path scratch_dir(const std::string& name) { return blip::test::scratch_dir("reliability_test_scratch", name); }
using blip::test::write_text;

std::string read_text(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  REQUIRE(static_cast<bool>(stream));
  std::ostringstream text;
  text << stream.rdbuf();
  return text.str();
}

// [[[...]]] nested `depth` levels.
std::string deep_array(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// A copy of a tokenizer folder whose tokenizer.json is edited by `edit`.
fs::path tokenizer_copy(const std::string& name, const std::string& source, void (*edit)(json&)) {
  const fs::path directory = scratch_dir(name);
  for (const auto& entry : fs::directory_iterator(blip::test::asset(source))) {
    if (entry.path().filename() != "tokenizer.json") fs::copy_file(entry.path(), directory / entry.path().filename());
  }
  json root = json::parse(read_text(fs::path(blip::test::asset(source)) / "tokenizer.json"));
  edit(root);
  write_text(directory / "tokenizer.json", root.dump());
  return directory;
}

#if defined(__unix__)
// A FIFO at `path`. The code before the fix opened it blocking and waited for a
// writer forever. To keep such a run finite, a helper opens the write end
// after two seconds (unless the test is done by then), which releases a reader
// blocked in open(); that it did is the finding. A fixed reader never waits.
class Fifo {
 public:
  explicit Fifo(const fs::path& path) : path_(path) {
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    helper_ = std::thread([this, done = done_.get_future()]() {
      if (done.wait_for(std::chrono::seconds(2)) == std::future_status::ready) return;
      const int descriptor = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK);  // fails unless a reader waits
      if (descriptor >= 0) {
        released_a_reader_ = true;
        ::close(descriptor);
      }
    });
  }
  ~Fifo() {
    done_.set_value();
    helper_.join();
    CHECK_MESSAGE(!released_a_reader_, path_.string(), ": a reader waited for a writer");
  }

 private:
  fs::path path_;
  std::promise<void> done_;
  std::thread helper_;
  std::atomic<bool> released_a_reader_{false};
};

// Runs `call`, which must fail with a message containing `fragment`.
template <class Call>
void expect_error(Call&& call, const std::string& fragment) {
  const std::string message = error_of(call);
  CHECK_MESSAGE(message.find(fragment) != std::string::npos, message);
}
#endif

blip::LoadOptions with_tokenizer() {
  blip::LoadOptions options;
  options.tokenizer_dir = blip::test::asset(kBertTokenizer);
  return options;
}

}  // namespace

// ---- 1. Deep JSON nesting: refused while parsing, before any recursive walk ------------------

TEST_CASE("1: JSON nested 100,000 deep is refused while parsing, in every JSON the project reads") {
  const std::string deep = deep_array(100000);
  CHECK(error_of([&] { blip::parse_json_text(deep, "text"); }) == "text: JSON nested deeper than 128 levels");
  CHECK_NOTHROW(blip::parse_json_text(deep_array(128), "text"));
  CHECK_THROWS_AS(blip::parse_json_text(deep_array(129), "text"), blip::Error);

  // config.json with the deep array under a key nobody reads.
  const fs::path model = scratch_dir("deep_config");
  write_text(model / "config.json", "{\"model_type\": \"blip\", \"junk\": " + deep + "}");
  CHECK(error_of([&] { blip::load_model_config(model.string()); }).find("nested deeper than 128") != std::string::npos);

  // tokenizer.json with the deep array inside the normalizer (quoted by an error message before).
  if (blip::test::have_or_skip(blip::test::asset(kBertTokenizer), "BERT tokenizer")) {
    const fs::path folder = tokenizer_copy("deep_tokenizer", kBertTokenizer, [](json& root) {
      root["normalizer"]["type"] = "Sequence";
      root["normalizer"]["deep"] = json::parse(deep_array(100));  // the file gets 100,000 levels below
    });
    std::string text = read_text(folder / "tokenizer.json");
    const std::string marker = deep_array(100);
    text.replace(text.find(marker), marker.size(), deep);
    write_text(folder / "tokenizer.json", text);
    CHECK(error_of([&] { blip::load_tokenizer(folder.string()); }).find("nested deeper than 128") != std::string::npos);

    // A 160 KB blip_tokenize line.
    const auto tokenizer = blip::load_tokenizer(blip::test::asset(kBertTokenizer));
    std::istringstream input("{\"text\": \"ok\"}\n{\"text\": " + deep_array(80000) + "}\n");
    std::ostringstream output, errors;
    CHECK(blip::tokenize_json_lines(input, output, errors, *tokenizer) == blip::kJsonLinesBadInput);
    CHECK(errors.str() == "line 2: JSON nested deeper than 128 levels\n");
    CHECK(output.str().find("\"ids\"") != std::string::npos);  // line 1 was answered
  }
}

// ---- 3. blip_tokenize's lines: bounded, and read errors reported -----------------------------

namespace {
// A stream buffer whose reads fail after `good` bytes, as a read(2) error does.
class FailingBuffer : public std::streambuf {
 public:
  explicit FailingBuffer(std::string good) : good_(std::move(good)) {
    setg(good_.data(), good_.data(), good_.data() + good_.size());
  }

 protected:
  int_type underflow() override { throw std::ios_base::failure("read error"); }

 private:
  std::string good_;
};
}  // namespace

TEST_CASE("3: an over-long line is an error naming it; a read error is not the end of the input") {
  if (!blip::test::have_or_skip(blip::test::asset(kBertTokenizer), "BERT tokenizer")) return;
  const auto tokenizer = blip::load_tokenizer(blip::test::asset(kBertTokenizer));
  {
    const std::string long_text(blip::kMaxInputLineBytes, 'a');
    std::istringstream input("{\"text\": \"fine\"}\n{\"text\": \"" + long_text + "\"}\n{\"text\": \"never\"}\n");
    std::ostringstream output, errors;
    CHECK(blip::tokenize_json_lines(input, output, errors, *tokenizer) == blip::kJsonLinesBadInput);
    CHECK(errors.str() == "line 2: longer than 1048576 bytes, the limit per line (split the text)\n");
    const std::string written = output.str();
    CHECK(std::count(written.begin(), written.end(), '\n') == 1);
  }
  {
    std::string line;
    std::istringstream input("abc\r\ndefgh\n");
    CHECK(blip::read_bounded_line(input, line, 4) == blip::LineRead::Line);
    CHECK(line == "abc");
    CHECK(blip::read_bounded_line(input, line, 4) == blip::LineRead::TooLong);
  }
  {
    FailingBuffer buffer("{\"text\": \"a\"}\n");
    std::istream input(&buffer);
    std::ostringstream output, errors;
    CHECK(blip::tokenize_json_lines(input, output, errors, *tokenizer) == blip::kJsonLinesBadInput);
    CHECK(errors.str().find("reading the input failed") != std::string::npos);
    CHECK(output.str().find("\"ids\"") != std::string::npos);
  }
}

// ---- 4. A batch of images holds one decoded image at a time ------------------------------------

TEST_CASE("4: load_preprocessed_batch gives the pixels of load_image + preprocess_batch") {
  const std::vector<std::string> paths = {blip::test::asset("images/skimage_coffee.png"),
                                          blip::test::asset("images/pillow_hopper_exif_orientation6_420.jpg")};
  if (!blip::test::have_or_skip(paths[0], "photos")) return;
  const blip::ImageProcessorConfig config;
  const blip::Tensor<float> expected =
      blip::preprocess_batch({blip::load_image(paths[0]), blip::load_image(paths[1])}, config);
  const blip::Tensor<float> pixels = blip::load_preprocessed_batch(paths, config);
  REQUIRE(pixels.shape() == expected.shape());
  CHECK(std::equal(pixels.data(), pixels.data() + pixels.numel(), expected.data()));
}

// ---- 7. Where the generation defaults come from -------------------------------------------------

TEST_CASE("7: generation defaults come from text_config, read before loading, said in the log") {
  for (const char* name : {"blip_caption", "blip2_opt"}) {
    INFO(name);
    const std::string folder = blip::test::fixture(name);
    if (!blip::test::have_or_skip(folder, "fixture")) continue;
    const std::string tokenizer =
        blip::test::asset(std::string(name) == "blip_caption" ? kBertTokenizer : "tokenizers/blip2-opt-2.7b");
    if (!blip::test::have_or_skip(tokenizer, "tokenizer")) continue;
    blip::LoadOptions options;
    options.tokenizer_dir = tokenizer;
    const blip::Captioner captioner = blip::Captioner::load(folder, options);
    const blip::generation::GenerationOptions loaded = captioner.default_options().generation;
    const blip::generation::GenerationOptions early = blip::read_task_generation_defaults(folder);
    CHECK(early.num_beams == loaded.num_beams);
    CHECK(early.max_new_tokens == loaded.max_new_tokens);
    CHECK(early.max_length == loaded.max_length);
    CHECK(early.do_sample == loaded.do_sample);
    const std::string log = blip::describe_generation_defaults(captioner.folder());
    CHECK(log.find("config.json text_config") != std::string::npos);
    CHECK(log.find("generation_config.json is not read") != std::string::npos);  // both fixtures have one
    if (captioner.is_blip2()) CHECK(log.find("max_new_tokens 30 (blipcpp's BLIP-2 default") != std::string::npos);
  }
  // A generation_config.json the library does read (load_generation_config) must be valid JSON.
  const fs::path model = scratch_dir("bad_generation_config");
  write_text(model / "generation_config.json", "{\"num_beams\": ");
  CHECK(error_of([&] { blip::load_generation_config(model.string()); }).find("generation_config.json: invalid JSON") !=
        std::string::npos);
}

// ---- 9. Top-down BMPs and truncated PNM ---------------------------------------------------------

namespace {
std::vector<std::uint8_t> bmp_24(int width, int height, bool top_down, const blip::Image& image) {
  std::vector<std::uint8_t> bytes = {'B', 'M'};
  auto le = [&](std::uint32_t v, int count) {
    for (int i = 0; i < count; ++i) bytes.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  const int row_bytes = (width * 3 + 3) / 4 * 4;
  le(14 + 40 + row_bytes * height, 4);
  le(0, 4);
  le(14 + 40, 4);
  le(40, 4);
  le(static_cast<std::uint32_t>(width), 4);
  le(static_cast<std::uint32_t>(top_down ? -height : height), 4);
  le(1, 2);
  le(24, 2);
  for (int i = 0; i < 6; ++i) le(0, 4);
  for (int row = 0; row < height; ++row) {
    const int y = top_down ? row : height - 1 - row;
    for (int x = 0; x < width; ++x)
      for (int c = 2; c >= 0; --c) bytes.push_back(image.pixel(x, y)[c]);
    for (int pad = width * 3; pad < row_bytes; ++pad) bytes.push_back(0);
  }
  return bytes;
}

blip::Image gradient(int width, int height) {
  blip::Image image;
  image.width = width;
  image.height = height;
  image.rgb.resize(static_cast<std::size_t>(width) * height * 3);
  for (std::size_t i = 0; i < image.rgb.size(); ++i) image.rgb[i] = static_cast<std::uint8_t>(i * 37 % 251);
  return image;
}

blip::Image decode(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  return blip::decode_image(bytes.data(), bytes.size(), name);
}
}  // namespace

TEST_CASE("9: a top-down BMP decodes upright; truncated PPM and PGM are refused") {
  const blip::Image image = gradient(16, 16);
  CHECK(decode(bmp_24(16, 16, false, image), "bottom_up.bmp").rgb == image.rgb);
  const blip::Image top_down = decode(bmp_24(16, 16, true, image), "top_down.bmp");
  CHECK(top_down.height == 16);
  CHECK(top_down.rgb == image.rgb);
  const blip::Image odd = gradient(5, 3);
  CHECK(decode(bmp_24(5, 3, true, odd), "odd.bmp").rgb == odd.rgb);

  std::vector<std::uint8_t> ppm = {'P', '6', '\n', '1', '6', ' ', '1', '6', '\n', '2', '5', '5', '\n'};
  ppm.insert(ppm.end(), image.rgb.begin(), image.rgb.end());
  CHECK(decode(ppm, "whole.ppm").rgb == image.rgb);
  ppm.pop_back();
  CHECK(error_of([&] { decode(ppm, "cut.ppm"); }) ==
        "cut.ppm: truncated PNM (the pixel data needs 781 bytes, the file has 780)");
  const std::vector<std::uint8_t> pgm = {'P', '5', ' ', '4', ' ', '4', ' ', '2', '5', '5', '\n', 1, 2, 3};
  CHECK(error_of([&] { decode(pgm, "cut.pgm"); }).find("cut.pgm: truncated PNM") == 0);

  // Found by image_decode_fuzz: header values whose rows x row bytes exceed 64 bits (signed overflow before).
  std::vector<std::uint8_t> huge = bmp_24(2, 2, false, gradient(2, 2));
  for (const std::size_t at : {std::size_t{18}, std::size_t{22}}) {  // width, height: 0x7FFFFFFF
    huge[at] = huge[at + 1] = huge[at + 2] = 0xFF;
    huge[at + 3] = 0x7F;
  }
  huge[28] = huge[29] = 0xFF;  // 65535 bits per pixel
  CHECK(error_of([&] {
          blip::decode_image(huge.data(), huge.size(), "huge.bmp", 0);
        }).find("huge.bmp: truncated BMP") == 0);
}

namespace {
void append_bytes(void* context, void* data, int size) {
  auto* bytes = static_cast<std::vector<std::uint8_t>*>(context);
  bytes->insert(bytes->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
}

// A 16 x 16 baseline colour JPEG (stb_image_write: DC/AC Huffman tables 0 and 1) and the offset of its SOS.
std::vector<std::uint8_t> small_jpeg(std::size_t& start_of_scan) {
  const blip::Image image = gradient(16, 16);
  std::vector<std::uint8_t> jpeg;
  REQUIRE(stbi_write_jpg_to_func(append_bytes, &jpeg, 16, 16, 3, image.rgb.data(), 90) != 0);
  start_of_scan = 0;
  for (std::size_t at = 2; at + 1 < jpeg.size(); ++at) {
    if (jpeg[at] == 0xFF && jpeg[at + 1] == 0xDA) {
      start_of_scan = at;
      break;
    }
  }
  REQUIRE(start_of_scan > 0);
  return jpeg;
}
}  // namespace

TEST_CASE("fuzz finding: a JPEG scan using a Huffman table nobody defined is refused, not decoded") {
  // image_decode_fuzz found a JPEG whose scan names AC table 3 with no DHT for it: stb_image then reads
  // its never-initialised table memory, a wild read that crashed under AddressSanitizer (depending on
  // what the heap held). The marker walk now checks every table a scan or the frame uses.
  std::size_t start_of_scan = 0;
  std::vector<std::uint8_t> jpeg = small_jpeg(start_of_scan);
  CHECK(decode(jpeg, "good.jpg").width == 16);
  // SOS: FF DA, length (2), Ns, then (component id, Td << 4 | Ta) per component.
  const std::size_t second_component_tables = start_of_scan + 5 + 2 + 1;
  REQUIRE(jpeg[second_component_tables] == 0x11);
  std::vector<std::uint8_t> undefined_ac = jpeg;
  undefined_ac[second_component_tables] = 0x13;
  CHECK(error_of([&] { decode(undefined_ac, "ac3.jpg"); }) ==
        "ac3.jpg: JPEG scan uses AC Huffman table 3, which is not defined");
  std::vector<std::uint8_t> undefined_dc = jpeg;
  undefined_dc[second_component_tables] = 0x21;
  CHECK(error_of([&] { decode(undefined_dc, "dc2.jpg"); }) ==
        "dc2.jpg: JPEG scan uses DC Huffman table 2, which is not defined");
  // A frame component naming quantization table 2 (stb writes tables 0 and 1).
  std::vector<std::uint8_t> undefined_quantization = jpeg;
  for (std::size_t at = 2; at + 1 < undefined_quantization.size(); ++at) {
    if (undefined_quantization[at] == 0xFF && undefined_quantization[at + 1] == 0xC0) {
      undefined_quantization[at + 2 + 2 + 6 + 3 * 1 + 2] = 2;  // component 2's Tq
      break;
    }
  }
  CHECK(error_of([&] { decode(undefined_quantization, "q2.jpg"); }) ==
        "q2.jpg: JPEG frame uses quantization table 2, which is not defined");
}

// ---- 10. Token ids beyond the vocabulary -----------------------------------------------------------

TEST_CASE("10: a token id far beyond the vocabulary is an error naming the token, in all three tokenizers") {
  if (blip::test::have_or_skip(blip::test::asset(kBertTokenizer), "BERT tokenizer")) {
    // The code before allocated a table of 10^8 strings (3.1 GB) for this 700 kB file.
    const fs::path bert = tokenizer_copy("huge_id_bert", kBertTokenizer,
                                         [](json& root) { root["model"]["vocab"]["picture"] = 100000000; });
    const std::string message = error_of([&] { blip::load_tokenizer(bert.string()); });
    CHECK(message.find("'picture' has id 100000000") != std::string::npos);
    CHECK(message.find("tokenizer.json") != std::string::npos);

    // vocab.txt: a duplicated line leaves an id unused (as in HF), which is fine.
    const fs::path vocab = scratch_dir("duplicate_vocab_txt");
    write_text(vocab / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\na\nb\n");
    const auto tokenizer = blip::load_tokenizer(vocab.string());
    CHECK(tokenizer->token_to_id("a") == 6);
    CHECK(tokenizer->token_to_id("b") == 7);
  }
  if (blip::test::have_or_skip(blip::test::asset("tokenizers/blip2-opt-2.7b"), "OPT tokenizer")) {
    // 10^12 ended in a bare std::bad_alloc.
    const fs::path opt = tokenizer_copy("huge_id_bpe", "tokenizers/blip2-opt-2.7b",
                                        [](json& root) { root["model"]["vocab"]["photo"] = 1000000000000; });
    CHECK(error_of([&] { blip::load_tokenizer(opt.string()); }).find("'photo' has id 1000000000000") !=
          std::string::npos);
  }
  if (blip::test::have_or_skip(blip::test::asset("tokenizers/blip2-flan-t5-xl"), "T5 tokenizer")) {
    const fs::path t5 = tokenizer_copy("huge_id_unigram", "tokenizers/blip2-flan-t5-xl",
                                       [](json& root) { root["added_tokens"][2]["id"] = 1000000000000; });
    CHECK(error_of([&] { blip::load_tokenizer(t5.string()); }).find("has id 1000000000000") != std::string::npos);
  }
}

// ---- 11. OMP_NUM_THREADS beyond the cap ---------------------------------------------------------------

#ifdef _OPENMP
TEST_CASE("11: a thread count of 100,000 is capped at kMaxThreads before any parallel region starts") {
  const int before = omp_get_max_threads();
  omp_set_num_threads(100000);  // what OMP_NUM_THREADS=100000 gives
  CHECK(blip::num_threads() == blip::kMaxThreads);
  CHECK(blip::requested_num_threads() == 100000);
  std::vector<int> visited(64, 0);
  blip::parallel_for(0, 64, [&](std::int64_t i) { visited[static_cast<std::size_t>(i)] = 1; });
  CHECK(std::count(visited.begin(), visited.end(), 1) == 64);
  blip::set_num_threads(100000);
  CHECK(omp_get_max_threads() == blip::kMaxThreads);
  omp_set_num_threads(before);
}
#endif

// ---- 12. Special files and huge files in place of inputs ------------------------------------------------

#if defined(__unix__)
TEST_CASE("12: a FIFO, a device, a directory or a huge file in place of an input is refused before reading") {
  const fs::path folder = scratch_dir("special_files");
  const Fifo config_fifo(folder / "config.json");
  expect_error([&] { blip::load_model_config(folder.string()); }, "config.json: is a FIFO (named pipe)");
  const Fifo image_fifo(folder / "image.png");
  expect_error([&] { blip::load_image((folder / "image.png").string()); }, "image.png: is a FIFO (named pipe)");

  const fs::path zero = scratch_dir("zero_config");
  fs::create_symlink("/dev/zero", zero / "config.json");  // read 2.1 GB before failing
  expect_error([&] { blip::load_model_config(zero.string()); }, "config.json: is a character device");
  const fs::path directory = scratch_dir("directory_config");
  fs::create_directory(directory / "config.json");
  expect_error([&] { blip::load_model_config(directory.string()); }, "config.json: is a directory");
  const fs::path huge = scratch_dir("huge_config");
  write_text(huge / "config.json", "{}");
  fs::resize_file(huge / "config.json", 17 * blip::kMebibyte);  // sparse: no disk used
  expect_error([&] { blip::load_model_config(huge.string()); }, "above the 16 MiB limit for a JSON file");
  const fs::path vocab = scratch_dir("fifo_vocab");
  const Fifo vocab_fifo(vocab / "vocab.txt");
  expect_error([&] { blip::load_tokenizer(vocab.string()); }, "vocab.txt: is a FIFO (named pipe)");

  // The weights: a model folder whose model.safetensors is a FIFO.
  if (!blip::test::have_or_skip(blip::test::fixture("blip_caption"), "blip_caption fixture") ||
      !blip::test::have_or_skip(blip::test::asset(kBertTokenizer), "BERT tokenizer"))
    return;
  const fs::path model = scratch_dir("fifo_weights");
  fs::copy_file(fs::path(blip::test::fixture("blip_caption")) / "config.json", model / "config.json");
  const Fifo weights_fifo(model / "model.safetensors");
  expect_error([&] { blip::Captioner::load(model.string(), with_tokenizer()); },
               "model.safetensors: is a FIFO (named pipe)");
}
#endif

// ---- 13. Messages quote input clipped -------------------------------------------------------------------

TEST_CASE("13: a 5 MB model_type is quoted clipped, with its size") {
  const std::string huge(5000000, 'x');
  const fs::path model = scratch_dir("huge_model_type");
  write_text(model / "config.json", "{\"model_type\": \"" + huge + "\"}");
  const std::string message = error_of([&] { blip::load_model_config(model.string()); });
  CHECK(message.size() < 400);
  CHECK(message.find("... (5000000 bytes)") != std::string::npos);
  CHECK(blip::clip(huge) == std::string(blip::kMaxQuotedBytes, 'x') + "... (5000000 bytes)");
  CHECK(blip::clip("short") == "short");
  CHECK(blip::clip(std::string(79, 'a') + "\xC3\xA9" + "tail") == std::string(79, 'a') + "... (85 bytes)");
  // A value quoted from a file, through describe_json_value.
  write_text(model / "config.json",
             "{\"model_type\": \"blip\", \"vision_config\": {\"hidden_size\": \"" + huge + "\"}}");
  CHECK(error_of([&] { blip::load_model_config(model.string()); }).size() < 400);
}

// ---- 15. NaN weights ---------------------------------------------------------------------------------------

TEST_CASE("15: NaN weights are an error at the first generation step, not an empty caption") {
  const std::string fixture = blip::test::fixture("blip_caption");
  if (!blip::test::have_or_skip(fixture, "blip_caption fixture") ||
      !blip::test::have_or_skip(blip::test::asset(kBertTokenizer), "BERT tokenizer") ||
      !blip::test::have_or_skip(blip::test::asset("images/skimage_coffee.png"), "photo"))
    return;
  const fs::path model = scratch_dir("nan_weights");
  fs::copy_file(fs::path(fixture) / "config.json", model / "config.json");
  const blip::SafetensorsFile original = blip::SafetensorsFile::open(fixture + "/model.safetensors");
  blip::SafetensorsWriter writer;
  for (const blip::TensorInfo& info : original.tensors()) {
    std::vector<std::uint8_t> bytes(original.raw_data(info.name), original.raw_data(info.name) + info.bytes());
    if (info.name == "text_decoder.cls.predictions.bias") {
      const float nan = std::numeric_limits<float>::quiet_NaN();
      std::memcpy(bytes.data() + 4 * 7, &nan, 4);  // one NaN is enough
    }
    writer.add_raw(info.name, info.dtype, info.shape, bytes.data(), bytes.size());
  }
  writer.write((model / "model.safetensors").string());
  const blip::Captioner captioner = blip::Captioner::load(model.string(), with_tokenizer());
  const blip::Image image = blip::load_image(blip::test::asset("images/skimage_coffee.png"));
  const std::string message = error_of([&] { captioner.caption(image); });
  CHECK(message.find("first logits hold nan") != std::string::npos);
  CHECK(message.find("token 7") != std::string::npos);
  CHECK(message.find("NaN or Inf values") != std::string::npos);
}

}  // namespace reliability_test
