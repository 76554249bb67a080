// Opens every safetensors file of the fixtures and checks each tensor's name,
// dtype and shape against what the case's config.json / case.json imply: the
// tables below are derived independently from the Hugging Face module
// structure (transformers 4.45: modeling_blip*.py, modeling_blip_2.py,
// modeling_opt.py, modeling_t5.py), with HF's config defaults for keys a
// config.json leaves out. The same tables must reproduce, name for name, the
// weight indexes of the real Salesforce/blip2-opt-2.7b and blip2-flan-t5-xl
// checkpoints, so they double as a reference of what the model loaders fetch.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "blip/io/safetensors.hpp"
#include "test_support.hpp"

namespace io_fixture_tensors_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace fs = std::filesystem;
using namespace blip;
using Json = nlohmann::json;

namespace {

Json read_json(const std::string& path) {
  std::ifstream stream(path);
  REQUIRE_MESSAGE(stream.good(), "cannot read ", path);
  return Json::parse(stream);
}

// config[key] when present and not null, else HF's default.
std::int64_t value_or(const Json& config, const char* key, std::int64_t fallback) {
  const auto found = config.find(key);
  return found == config.end() || found->is_null() ? fallback : found->get<std::int64_t>();
}
bool flag_or(const Json& config, const char* key, bool fallback) {
  const auto found = config.find(key);
  return found == config.end() || found->is_null() ? fallback : found->get<bool>();
}
const Json& section(const Json& config, const char* key) {
  static const Json empty = Json::object();
  const auto found = config.find(key);
  return found == config.end() || found->is_null() ? empty : *found;
}

// Expected tensors of a checkpoint: name -> shape.
class Expected {
 public:
  void add(const std::string& name, const Shape& shape) {
    CHECK_MESSAGE(shapes_.emplace(name, shape).second, "table lists ", name, " twice");
  }
  void linear(const std::string& name, std::int64_t out, std::int64_t in, bool bias = true) {
    add(name + ".weight", Shape{out, in});
    if (bias) add(name + ".bias", Shape{out});
  }
  void layer_norm(const std::string& name, std::int64_t width, bool bias = true) {
    add(name + ".weight", Shape{width});
    if (bias) add(name + ".bias", Shape{width});
  }
  const std::map<std::string, Shape>& shapes() const { return shapes_; }

 private:
  std::map<std::string, Shape> shapes_;
};

// ---- vision transformer (BlipVisionModel / Blip2VisionModel) --------------
struct VisionSizes {
  std::int64_t hidden;
};
VisionSizes add_vision(Expected& expected, const Json& vision, bool blip2) {
  // BlipVisionConfig: 768/3072/12 layers/384 px/patch 16; Blip2VisionConfig: 1408/6144/39/224/14.
  const std::int64_t hidden = value_or(vision, "hidden_size", blip2 ? 1408 : 768);
  const std::int64_t intermediate = value_or(vision, "intermediate_size", blip2 ? 6144 : 3072);
  const std::int64_t layers = value_or(vision, "num_hidden_layers", blip2 ? 39 : 12);
  const std::int64_t image = value_or(vision, "image_size", blip2 ? 224 : 384);
  const std::int64_t patch = value_or(vision, "patch_size", blip2 ? 14 : 16);
  const std::int64_t positions = (image / patch) * (image / patch) + 1;  // patches + CLS
  expected.add("vision_model.embeddings.class_embedding", Shape{1, 1, hidden});
  expected.add("vision_model.embeddings.patch_embedding.weight", Shape{hidden, 3, patch, patch});  // in_channels=3 in HF
  expected.add("vision_model.embeddings.patch_embedding.bias", Shape{hidden});
  expected.add("vision_model.embeddings.position_embedding", Shape{1, positions, hidden});
  for (std::int64_t i = 0; i < layers; ++i) {
    const std::string layer = "vision_model.encoder.layers." + std::to_string(i);
    // BLIP-2 keeps q_bias / v_bias apart in memory but saves them as one qkv.bias [3h].
    expected.linear(layer + ".self_attn.qkv", 3 * hidden, hidden);
    expected.linear(layer + ".self_attn.projection", hidden, hidden);
    expected.layer_norm(layer + ".layer_norm1", hidden);
    expected.layer_norm(layer + ".layer_norm2", hidden);
    expected.linear(layer + ".mlp.fc1", intermediate, hidden);
    expected.linear(layer + ".mlp.fc2", hidden, intermediate);
  }
  expected.layer_norm("vision_model.post_layernorm", hidden);
  return {hidden};
}

// ---- BLIP text transformer (BlipTextModel, add_pooling_layer=False) ------
void add_blip_text(Expected& expected, const std::string& prefix, const Json& text, std::int64_t vision_hidden) {
  const std::int64_t hidden = value_or(text, "hidden_size", 768);
  const std::int64_t intermediate = value_or(text, "intermediate_size", 3072);
  const std::int64_t layers = value_or(text, "num_hidden_layers", 12);
  const std::int64_t vocab = value_or(text, "vocab_size", 30524);
  const std::int64_t positions = value_or(text, "max_position_embeddings", 512);
  expected.add(prefix + ".embeddings.word_embeddings.weight", Shape{vocab, hidden});
  expected.add(prefix + ".embeddings.position_embeddings.weight", Shape{positions, hidden});
  expected.layer_norm(prefix + ".embeddings.LayerNorm", hidden);
  for (std::int64_t i = 0; i < layers; ++i) {
    const std::string layer = prefix + ".encoder.layer." + std::to_string(i);
    for (const char* projection : {"query", "key", "value"})
      expected.linear(layer + ".attention.self." + projection, hidden, hidden);
    expected.linear(layer + ".attention.output.dense", hidden, hidden);
    expected.layer_norm(layer + ".attention.output.LayerNorm", hidden);
    // BlipTextConfig.is_decoder defaults to True, so encoders have cross-attention
    // too; BlipConfig sets its encoder_hidden_size to the vision width.
    expected.linear(layer + ".crossattention.self.query", hidden, hidden);
    expected.linear(layer + ".crossattention.self.key", hidden, vision_hidden);
    expected.linear(layer + ".crossattention.self.value", hidden, vision_hidden);
    expected.linear(layer + ".crossattention.output.dense", hidden, hidden);
    expected.layer_norm(layer + ".crossattention.output.LayerNorm", hidden);
    expected.linear(layer + ".intermediate.dense", intermediate, hidden);
    expected.linear(layer + ".output.dense", hidden, intermediate);
    expected.layer_norm(layer + ".output.LayerNorm", hidden);
  }
}

void add_blip_decoder(Expected& expected, const Json& text, std::int64_t vision_hidden) {
  add_blip_text(expected, "text_decoder.bert", text, vision_hidden);
  const std::int64_t hidden = value_or(text, "hidden_size", 768);
  const std::int64_t vocab = value_or(text, "vocab_size", 30524);
  expected.linear("text_decoder.cls.predictions.transform.dense", hidden, hidden);
  expected.layer_norm("text_decoder.cls.predictions.transform.LayerNorm", hidden);
  // HF does not tie the decoder weight to the word embeddings here; the
  // decoder's bias IS tied to cls.predictions.bias and saved once, as the latter.
  expected.add("text_decoder.cls.predictions.decoder.weight", Shape{vocab, hidden});
  expected.add("text_decoder.cls.predictions.bias", Shape{vocab});
}

// ---- Q-Former (Blip2QFormerModel) ------------------------------------------
std::int64_t add_qformer(Expected& expected, const Json& qformer, std::int64_t vision_hidden) {
  const std::int64_t hidden = value_or(qformer, "hidden_size", 768);
  const std::int64_t intermediate = value_or(qformer, "intermediate_size", 3072);
  const std::int64_t layers = value_or(qformer, "num_hidden_layers", 12);
  const std::int64_t frequency = value_or(qformer, "cross_attention_frequency", 2);
  const bool text_input = flag_or(qformer, "use_qformer_text_input", false);
  expected.layer_norm("qformer.layernorm", hidden);
  for (std::int64_t i = 0; i < layers; ++i) {
    const std::string layer = "qformer.encoder.layer." + std::to_string(i);
    for (const char* projection : {"query", "key", "value"})
      expected.linear(layer + ".attention.attention." + projection, hidden, hidden);
    expected.linear(layer + ".attention.output.dense", hidden, hidden);
    expected.layer_norm(layer + ".attention.output.LayerNorm", hidden);
    if (i % frequency == 0) {  // Blip2Config sets encoder_hidden_size to the vision width
      expected.linear(layer + ".crossattention.attention.query", hidden, hidden);
      expected.linear(layer + ".crossattention.attention.key", hidden, vision_hidden);
      expected.linear(layer + ".crossattention.attention.value", hidden, vision_hidden);
      expected.linear(layer + ".crossattention.output.dense", hidden, hidden);
      expected.layer_norm(layer + ".crossattention.output.LayerNorm", hidden);
    }
    if (text_input) {
      expected.linear(layer + ".intermediate.dense", intermediate, hidden);
      expected.linear(layer + ".output.dense", hidden, intermediate);
      expected.layer_norm(layer + ".output.LayerNorm", hidden);
    }
    expected.linear(layer + ".intermediate_query.dense", intermediate, hidden);
    expected.linear(layer + ".output_query.dense", hidden, intermediate);
    expected.layer_norm(layer + ".output_query.LayerNorm", hidden);
  }
  return hidden;
}

// ---- OPT (OPTForCausalLM) -------------------------------------------------
std::int64_t add_opt(Expected& expected, const Json& text) {
  const std::int64_t hidden = value_or(text, "hidden_size", 768);
  const std::int64_t ffn = value_or(text, "ffn_dim", 3072);
  const std::int64_t layers = value_or(text, "num_hidden_layers", 12);
  const std::int64_t vocab = value_or(text, "vocab_size", 50272);
  const std::int64_t positions = value_or(text, "max_position_embeddings", 2048);
  const std::int64_t projected = value_or(text, "word_embed_proj_dim", hidden);
  const bool bias = flag_or(text, "enable_bias", true);
  const std::string decoder = "language_model.model.decoder";
  expected.add(decoder + ".embed_tokens.weight", Shape{vocab, projected});
  expected.add(decoder + ".embed_positions.weight", Shape{positions + 2, hidden});  // OPT's learned offset of 2
  if (projected != hidden) {
    expected.linear(decoder + ".project_in", hidden, projected, false);
    expected.linear(decoder + ".project_out", projected, hidden, false);
  }
  if (flag_or(text, "do_layer_norm_before", true) && !flag_or(text, "_remove_final_layer_norm", false))
    expected.layer_norm(decoder + ".final_layer_norm", hidden);
  for (std::int64_t i = 0; i < layers; ++i) {
    const std::string layer = decoder + ".layers." + std::to_string(i);
    for (const char* projection : {"q_proj", "k_proj", "v_proj", "out_proj"})
      expected.linear(layer + ".self_attn." + projection, hidden, hidden, bias);
    expected.layer_norm(layer + ".self_attn_layer_norm", hidden);
    expected.linear(layer + ".fc1", ffn, hidden, bias);
    expected.linear(layer + ".fc2", hidden, ffn, bias);
    expected.layer_norm(layer + ".final_layer_norm", hidden);
  }
  // lm_head.weight is tied to embed_tokens (tie_word_embeddings defaults to true): saved once.
  if (!flag_or(text, "tie_word_embeddings", true)) expected.linear("language_model.lm_head", vocab, projected, false);
  return hidden;
}

// ---- T5 (T5ForConditionalGeneration) ----------------------------------------
std::int64_t add_t5(Expected& expected, const Json& text) {
  const std::int64_t model = value_or(text, "d_model", 512);
  const std::int64_t inner = value_or(text, "d_kv", 64) * value_or(text, "num_heads", 8);
  const std::int64_t heads = value_or(text, "num_heads", 8);
  const std::int64_t ff = value_or(text, "d_ff", 2048);
  const std::int64_t encoder_layers = value_or(text, "num_layers", 6);
  const std::int64_t decoder_layers = value_or(text, "num_decoder_layers", encoder_layers);
  const std::int64_t buckets = value_or(text, "relative_attention_num_buckets", 32);
  const std::int64_t vocab = value_or(text, "vocab_size", 32128);
  const bool gated = text.value("feed_forward_proj", std::string("relu")).rfind("gated-", 0) == 0;
  const auto attention = [&](const std::string& name, bool relative_bias) {
    expected.linear(name + ".q", inner, model, false);
    expected.linear(name + ".k", inner, model, false);
    expected.linear(name + ".v", inner, model, false);
    expected.linear(name + ".o", model, inner, false);
    // Only the first block of each stack owns the relative position bias table.
    if (relative_bias) expected.add(name + ".relative_attention_bias.weight", Shape{buckets, heads});
  };
  const auto feed_forward = [&](const std::string& name) {
    if (gated) {
      expected.linear(name + ".DenseReluDense.wi_0", ff, model, false);
      expected.linear(name + ".DenseReluDense.wi_1", ff, model, false);
    } else {
      expected.linear(name + ".DenseReluDense.wi", ff, model, false);
    }
    expected.linear(name + ".DenseReluDense.wo", model, ff, false);
    expected.layer_norm(name + ".layer_norm", model, false);  // T5's RMS norm: weight only
  };
  for (std::int64_t b = 0; b < encoder_layers; ++b) {
    const std::string block = "language_model.encoder.block." + std::to_string(b);
    attention(block + ".layer.0.SelfAttention", b == 0);
    expected.layer_norm(block + ".layer.0.layer_norm", model, false);
    feed_forward(block + ".layer.1");
  }
  for (std::int64_t b = 0; b < decoder_layers; ++b) {
    const std::string block = "language_model.decoder.block." + std::to_string(b);
    attention(block + ".layer.0.SelfAttention", b == 0);
    expected.layer_norm(block + ".layer.0.layer_norm", model, false);
    attention(block + ".layer.1.EncDecAttention", false);
    expected.layer_norm(block + ".layer.1.layer_norm", model, false);
    feed_forward(block + ".layer.2");
  }
  expected.layer_norm("language_model.encoder.final_layer_norm", model, false);
  expected.layer_norm("language_model.decoder.final_layer_norm", model, false);
  // encoder/decoder.embed_tokens are tied to shared and saved once as shared.
  expected.add("language_model.shared.weight", Shape{vocab, model});
  if (!flag_or(text, "tie_word_embeddings", true)) expected.linear("language_model.lm_head", vocab, model, false);
  return model;
}

// The whole table for a config.json.
Expected expected_for(const Json& config) {
  Expected expected;
  const std::string architecture = config.at("architectures").at(0).get<std::string>();
  const Json& vision = section(config, "vision_config");
  const Json& text = section(config, "text_config");
  const std::int64_t image_text_hidden = value_or(config, "image_text_hidden_size", 256);
  if (architecture.rfind("Blip2", 0) == 0) {
    const VisionSizes vision_sizes = add_vision(expected, vision, true);
    const std::int64_t qformer_hidden = add_qformer(expected, section(config, "qformer_config"), vision_sizes.hidden);
    expected.add("query_tokens", Shape{1, value_or(config, "num_query_tokens", 32), qformer_hidden});
    if (architecture == "Blip2ForConditionalGeneration") {
      const std::string language = text.value("model_type", std::string("opt"));
      const std::int64_t text_hidden = language == "t5" ? add_t5(expected, text) : add_opt(expected, text);
      expected.linear("language_projection", text_hidden, qformer_hidden);
    } else if (architecture == "Blip2ForImageTextRetrieval") {
      const Json& qformer = section(config, "qformer_config");
      expected.add("embeddings.word_embeddings.weight", Shape{value_or(qformer, "vocab_size", 30522), qformer_hidden});
      expected.add("embeddings.position_embeddings.weight",
                   Shape{value_or(qformer, "max_position_embeddings", 512), qformer_hidden});
      expected.linear("vision_projection", image_text_hidden, qformer_hidden);
      expected.linear("text_projection", image_text_hidden, qformer_hidden);
      expected.linear("itm_head", 2, qformer_hidden);
    } else {
      FAIL("no table for ", architecture);
    }
    return expected;
  }
  const VisionSizes vision_sizes = add_vision(expected, vision, false);
  const std::int64_t text_hidden = value_or(text, "hidden_size", 768);
  if (architecture == "BlipForConditionalGeneration") {
    add_blip_decoder(expected, text, vision_sizes.hidden);
  } else if (architecture == "BlipForQuestionAnswering") {
    add_blip_text(expected, "text_encoder", text, vision_sizes.hidden);
    add_blip_decoder(expected, text, vision_sizes.hidden);
  } else if (architecture == "BlipForImageTextRetrieval") {
    add_blip_text(expected, "text_encoder", text, vision_sizes.hidden);
    expected.linear("vision_proj", image_text_hidden, vision_sizes.hidden);
    expected.linear("text_proj", image_text_hidden, text_hidden);
    expected.linear("itm_head", 2, text_hidden);
  } else {
    FAIL("no table for ", architecture);
  }
  return expected;
}

// Compares a file's tensors with a table; every difference is reported.
void check_file_against(const SafetensorsFile& file, const std::map<std::string, Shape>& shapes,
                        const std::map<std::string, DType>& dtypes) {
  CHECK_MESSAGE(file.tensors().size() == shapes.size(), file.path(), ": ", file.tensors().size(),
                " tensors, expected ", shapes.size());
  // (Plain pairs, not structured bindings: clang 14 cannot capture those in
  // the lambdas doctest's CHECK macros expand to.)
  for (const auto& item : shapes) {
    const std::string& name = item.first;
    const Shape& shape = item.second;
    if (!file.contains(name)) {
      FAIL_CHECK(file.path(), ": missing ", name, " ", shape);
      continue;
    }
    const TensorInfo& info = file.info(name);
    CHECK_MESSAGE(info.shape == shape, file.path(), ": ", name, " has shape ", info.shape, ", expected ", shape);
    CHECK_MESSAGE(info.dtype == dtypes.at(name), file.path(), ": ", name, " is ", dtype_name(info.dtype));
  }
  for (const TensorInfo& info : file.tensors())
    CHECK_MESSAGE(shapes.count(info.name) == 1, file.path(), ": unexpected tensor ", info.name, " ", info.shape);
}

std::map<std::string, DType> all_f32(const std::map<std::string, Shape>& shapes) {
  std::map<std::string, DType> dtypes;
  for (const auto& item : shapes) dtypes.emplace(item.first, DType::F32);
  return dtypes;
}

// case.json's "inputs" / "outputs": {name: {"shape": [...], "dtype": "float32" | "int64"}}.
void check_against_case(const SafetensorsFile& file, const Json& listing) {
  std::map<std::string, Shape> shapes;
  std::map<std::string, DType> dtypes;
  for (const auto& item : listing.items()) {
    const std::string name = item.key();
    const Json& description = item.value();
    Shape shape;
    for (const Json& dim : description.at("shape")) shape.push_back(dim.get<std::int64_t>());
    shapes.emplace(name, shape);
    const std::string dtype = description.at("dtype").get<std::string>();
    REQUIRE_MESSAGE((dtype == "float32" || dtype == "int64"), "unexpected dtype ", dtype, " for ", name);
    dtypes.emplace(name, dtype == "float32" ? DType::F32 : DType::I64);
  }
  check_file_against(file, shapes, dtypes);
}

const char* const kCases[] = {"blip_caption", "blip_vqa", "blip_itm", "blip2_opt", "blip2_opt_imgtok", "blip2_t5",
                              "blip2_itm"};

}  // namespace

TEST_CASE("fixture models: every tensor name and shape follows from config.json") {
  for (const std::string name : kCases) {
    const std::string folder = test::fixture(name);
    if (!test::have_or_skip(folder + "/model.safetensors", name.c_str())) continue;
    CAPTURE(name);
    const Json config = read_json(folder + "/config.json");
    const Expected expected = expected_for(config);
    const SafetensorsFile file = SafetensorsFile::open(folder + "/model.safetensors");
    check_file_against(file, expected.shapes(), all_f32(expected.shapes()));
    CHECK(file.metadata().at("format") == "pt");
    MESSAGE(name, ": ", file.tensors().size(), " tensors match the table derived from config.json");
  }
}

TEST_CASE("fixture inputs and outputs: names, dtypes and shapes from case.json") {
  for (const std::string name : kCases) {
    const std::string folder = test::fixture(name);
    if (!test::have_or_skip(folder + "/case.json", name.c_str())) continue;
    CAPTURE(name);
    const Json description = read_json(folder + "/case.json");
    const SafetensorsFile inputs = SafetensorsFile::open(folder + "/inputs.safetensors");
    const SafetensorsFile outputs = SafetensorsFile::open(folder + "/outputs.safetensors");
    check_against_case(inputs, description.at("inputs"));
    check_against_case(outputs, description.at("outputs"));
    // Token ids read back as int64; pixels as f32 (zero-copy).
    for (const TensorInfo& info : inputs.tensors()) {
      if (info.dtype == DType::I64) CHECK(inputs.to_i64(info.name).numel() == info.shape.numel());
      else CHECK(inputs.to_f32(info.name).data() == inputs.view<float>(info.name).data());
    }
    // The batch is 2 everywhere (case.json params.batch).
    const std::int64_t batch = description.at("params").at("batch").get<std::int64_t>();
    CHECK(inputs.info("pixel_values").shape == Shape{batch, 3, description.at("params").at("image_size").get<std::int64_t>(),
                                                     description.at("params").at("image_size").get<std::int64_t>()});
  }
}

TEST_CASE("fixture preprocess outputs: pixel_values [1, 3, S, S] with S from the file name") {
  const std::string folder = test::fixture("preprocess");
  if (!test::have_or_skip(folder, "preprocess fixtures")) return;
  int files = 0;
  for (const auto& item : fs::directory_iterator(folder)) {
    if (item.path().extension() != ".safetensors") continue;
    const std::string stem = item.path().stem().string();
    const std::int64_t size = std::stoll(stem.substr(stem.size() - 3));  // ..._224 / ..._384 / pv224
    REQUIRE((size == 224 || size == 384));
    const SafetensorsFile file = SafetensorsFile::open(item.path().string());
    REQUIRE(file.tensors().size() == 1);
    CHECK(file.info("pixel_values").shape == Shape{1, 3, size, size});
    CHECK(file.info("pixel_values").dtype == DType::F32);
    ++files;
  }
  CHECK(files >= 10);
}

TEST_CASE("the tables reproduce the real BLIP-2 checkpoints' weight indexes name for name") {
  for (const std::string model : {"blip2-opt-2.7b", "blip2-flan-t5-xl"}) {
    const std::string folder = test::asset("tokenizers/" + model);
    if (!test::have_or_skip(folder + "/model.safetensors.index.json", model.c_str())) continue;
    CAPTURE(model);
    const Expected expected = expected_for(read_json(folder + "/config.json"));
    const Json index = read_json(folder + "/model.safetensors.index.json");
    std::set<std::string> listed;
    for (const auto& item : index.at("weight_map").items()) listed.insert(item.key());
    std::set<std::string> derived;
    for (const auto& item : expected.shapes()) derived.insert(item.first);
    for (const std::string& name : derived) CHECK_MESSAGE(listed.count(name), model, ": index lacks ", name);
    for (const std::string& name : listed) CHECK_MESSAGE(derived.count(name), model, ": table lacks ", name);
    MESSAGE(model, ": ", listed.size(), " names in the index, ", derived.size(), " derived from config.json");
  }
}

}  // namespace io_fixture_tensors_test
