// Writes the fuzz seed corpora, one folder per target under argv[1]:
//   safetensors_header  small valid safetensors files made with SafetensorsWriter, and small fixture files
//   config_json         the fixtures' config.json and generation_config.json, the assets' preprocessor_config.json
//   tokenizer_files     [kind byte] + file: the real tokenizer.json files cut to a few hundred tokens, a vocab.txt
//   tokenizer_text      sentences, and JSON lines for blip_tokenize's loop
//   image_decode        the small photos of the assets, and tiny BMP / PPM / PGM / GIF files
//   safetensors_index   indexes of the two shards safetensors_index_fuzz writes
// argv[2] is the fixtures folder, argv[3] the assets folder; seeds from absent ones are skipped.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "blip/io/safetensors.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int written = 0;

void write_seed(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  stream << bytes;
  ++written;
}

std::string read_file(const fs::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::ostringstream text;
  text << stream.rdbuf();
  return text.str();
}

// A copy of a read-only fixture file (replaced, not overwritten).
void copy_seed(const fs::path& source, const fs::path& target) {
  if (!fs::exists(source)) return;
  write_seed(target, read_file(source));
}

void safetensors_seeds(const fs::path& corpus, const fs::path& fixtures) {
  using blip::Shape;
  using blip::Tensor;
  blip::SafetensorsWriter mixed;
  Tensor<float> weight(Shape{3, 2});
  for (int i = 0; i < 6; ++i) weight.data()[i] = 0.25f * static_cast<float>(i) - 0.5f;
  mixed.add("vision_model.embeddings.class_embedding", Tensor<float>(Shape{1, 1, 2}));
  mixed.add("text_decoder.bert.encoder.layer.0.crossattention.self.key.weight", weight);
  mixed.add_f32_as("half", weight, blip::DType::F16);
  mixed.add_f32_as("brain", weight, blip::DType::BF16);
  mixed.add("ids", Tensor<std::int64_t>(Shape{2, 3}));
  mixed.add("mask", Tensor<std::int32_t>(Shape{1}));
  mixed.add("bytes", Tensor<std::uint8_t>(Shape{3}));
  mixed.add("signed", Tensor<std::int8_t>(Shape{1, 1, 1, 1}));
  mixed.add("empty", Tensor<float>(Shape{0}));
  mixed.add("scalar", Tensor<float>(Shape{}));
  mixed.set_metadata("format", "pt");
  fs::create_directories(corpus);
  mixed.write((corpus / "seed_mixed.safetensors").string());

  blip::SafetensorsWriter single;
  single.add("w", weight);
  single.write((corpus / "seed_single.safetensors").string());

  blip::SafetensorsWriter metadata_only;
  metadata_only.set_metadata("a", "b");
  metadata_only.write((corpus / "seed_metadata_only.safetensors").string());

  blip::SafetensorsWriter().write((corpus / "seed_empty.safetensors").string());
  written += 4;
  for (const char* relative : {"blip_itm/outputs.safetensors", "blip_caption/outputs.safetensors"})
    copy_seed(fixtures / relative, corpus / ("fixture_" + fs::path(relative).parent_path().string() + ".safetensors"));
}

void config_seeds(const fs::path& corpus, const fs::path& fixtures, const fs::path& assets) {
  if (fs::is_directory(fixtures)) {
    for (const auto& entry : fs::directory_iterator(fixtures)) {
      for (const char* name : {"config.json", "generation_config.json"})
        copy_seed(entry.path() / name, corpus / (entry.path().filename().string() + "_" + name));
    }
  }
  for (const char* name : {"blip-image-captioning-base", "blip2-opt-2.7b", "blip2-flan-t5-xl"}) {
    for (const char* file : {"config.json", "generation_config.json", "preprocessor_config.json"})
      copy_seed(assets / "tokenizers" / name / file, corpus / (std::string(name) + "_" + file));
  }
  write_seed(corpus / "size_list.json", R"({"size": [224, 224], "image_mean": 0.5, "resample": null})");
}

// The real tokenizer.json cut to its first `keep` vocabulary entries, with the merges and added tokens that
// still fit; T5's precompiled charsmap (hundreds of kB) is dropped from its normalizer.
std::string small_tokenizer_json(const fs::path& path, std::size_t keep) {
  json root = json::parse(read_file(path));
  json& model = root["model"];
  std::set<std::string> kept;
  if (model["vocab"].is_array()) {  // Unigram: [piece, score] pairs
    json pieces = json::array();
    for (std::size_t i = 0; i < keep && i < model["vocab"].size(); ++i) pieces.push_back(model["vocab"][i]);
    model["vocab"] = pieces;
  } else {
    json vocab = json::object();
    for (const auto& [token, id] : model["vocab"].items()) {
      if (id.get<std::int64_t>() < static_cast<std::int64_t>(keep)) {
        vocab[token] = id;
        kept.insert(token);
      }
    }
    model["vocab"] = vocab;
  }
  if (model.contains("merges")) {
    json merges = json::array();
    for (const json& merge : model["merges"]) {
      const std::string left = merge.is_array()
                                   ? merge[0].get<std::string>()
                                   : merge.get<std::string>().substr(0, merge.get<std::string>().find(' '));
      const std::string right = merge.is_array()
                                    ? merge[1].get<std::string>()
                                    : merge.get<std::string>().substr(merge.get<std::string>().find(' ') + 1);
      if (kept.count(left) && kept.count(right) && kept.count(left + right)) merges.push_back(merge);
    }
    model["merges"] = merges;
  }
  json added = json::array();
  for (const json& token : root["added_tokens"]) {
    if (token["id"].get<std::int64_t>() < static_cast<std::int64_t>(keep)) added.push_back(token);
  }
  root["added_tokens"] = added;
  if (root["normalizer"].is_object() && root["normalizer"].value("type", "") == "Sequence") {
    json steps = json::array();
    for (const json& step : root["normalizer"]["normalizers"]) {
      if (step.value("type", "") != "Precompiled") steps.push_back(step);
    }
    root["normalizer"]["normalizers"] = steps;
  }
  return root.dump();
}

void tokenizer_seeds(const fs::path& corpus, const fs::path& assets) {
  const fs::path tokenizers = assets / "tokenizers";
  const std::pair<const char*, std::size_t> sources[] = {
      {"blip-image-captioning-base", 1200}, {"blip2-opt-2.7b", 600}, {"blip2-flan-t5-xl", 400}};
  for (const auto& [name, keep] : sources) {
    if (fs::exists(tokenizers / name / "tokenizer.json"))
      write_seed(corpus / (std::string(name) + ".tokenizer.json"),
                 std::string(1, '\0') + small_tokenizer_json(tokenizers / name / "tokenizer.json", keep));
  }
  write_seed(corpus / "vocab.txt",
             std::string(1, '\1') + "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nphoto\n##s\nof\ncat\n.\n");
}

void text_seeds(const fs::path& corpus) {
  const char* texts[] = {"A photo of two cats.", "{\"text\": \"a picture of\"}\n{\"text\": \"\"}\n",
                         "caf\xC3\xA9 na\xC3\xAFve \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 [SEP] </s> <extra_id_0>",
                         "  Hello,\tworld!\r\n  it's   don't  ", "\xFF\xFE\xC3 broken \xED\xA0\x80 utf-8"};
  int index = 0;
  for (const char* text : texts) write_seed(corpus / ("text_" + std::to_string(index++)), text);
}

void image_seeds(const fs::path& corpus, const fs::path& fixtures, const fs::path& assets) {
  copy_seed(fixtures / "preprocess" / "test_image.png", corpus / "test_image.png");
  for (const char* name :
       {"pillow_hopper_exif_orientation6_420.jpg", "pillow_hopper_gray.jpg", "pillow_transparent_rgba.png"})
    copy_seed(assets / "images" / name, corpus / name);
  // 2 x 2 BMP (24-bit, bottom-up), PPM and PGM; a 1 x 1 GIF.
  std::string bmp = "BM";
  auto le = [&](std::uint32_t v, int count) {
    for (int i = 0; i < count; ++i) bmp.push_back(static_cast<char>(v >> (8 * i)));
  };
  le(14 + 40 + 16, 4), le(0, 4), le(54, 4), le(40, 4), le(2, 4), le(2, 4), le(1, 2), le(24, 2);
  for (int i = 0; i < 6; ++i) le(0, 4);
  bmp += std::string("\x10\x20\x30\x40\x50\x60\0\0\x70\x80\x90\xA0\xB0\xC0\0\0", 16);
  write_seed(corpus / "tiny.bmp", bmp);
  write_seed(corpus / "tiny.ppm", std::string("P6\n# c\n2 1\n255\n\x01\x02\x03\x04\x05\x06", 21));
  write_seed(corpus / "tiny.pgm", std::string("P5 2 2 255\n\x00\x40\x80\xFF", 15));
  write_seed(corpus / "tiny.gif", std::string("GIF89a\x01\x00\x01\x00\x80\x00\x00\xFF\x00\x00\x00\x00\xFF"
                                              "\x2C\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3B",
                                              35));
}

void index_seeds(const fs::path& corpus) {
  write_seed(
      corpus / "index.json",
      R"({"metadata": {"total_size": 12}, "weight_map": {"x": "shard_a.safetensors", "y": "shard_b.safetensors"}})");
  write_seed(corpus / "index_all.json",
             R"({"weight_map": {"x": "shard_a.safetensors", "z": "shard_a.safetensors", "y": "shard_b.safetensors"}})");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [FIXTURES_DIR [ASSETS_DIR]]\n", argv[0]);
    return 2;
  }
  const fs::path corpus = argv[1];
  const fs::path fixtures = argc >= 3 ? argv[2] : "", assets = argc >= 4 ? argv[3] : "";
  safetensors_seeds(corpus / "safetensors_header", fixtures);
  config_seeds(corpus / "config_json", fixtures, assets);
  tokenizer_seeds(corpus / "tokenizer_files", assets);
  text_seeds(corpus / "tokenizer_text");
  image_seeds(corpus / "image_decode", fixtures, assets);
  index_seeds(corpus / "safetensors_index");
  std::printf("wrote %d seeds under %s\n", written, corpus.string().c_str());
  return 0;
}
