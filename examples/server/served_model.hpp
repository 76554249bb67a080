// examples/server/served_model.hpp: the one model blip_server loads, and the
// tasks it answers, each taking a request's fields and returning JSON.
//
// The architecture in config.json picks the task classes, as the
// command-line programs do:
//   BlipForConditionalGeneration    caption                (blip_caption)
//   BlipForQuestionAnswering        vqa                    (blip_vqa)
//   Blip2ForConditionalGeneration   caption, vqa           (one copy of the weights for both)
//   Blip(2)ForImageTextRetrieval    match, embed           (blip_match)
// The models are immutable after loading; every request builds its own state
// (tests/unit/blip_concurrency_test.cpp), so worker threads share this object.
#pragma once

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "../support/arguments.hpp"
#include "blip/blip.hpp"
#include "request_fields.hpp"

namespace blip::server {

// The generation fields a request may set: HF GenerationConfig keys, the
// same the programs take as flags (--num-beams is --beams), with do_sample as
// a boolean where the programs have --sample.
inline std::map<std::string, std::string> generation_fields() {
  std::map<std::string, std::string> field_flags;
  for (const std::string& flag : examples::generation_options_with_values()) {
    std::string field = flag == "--beams" ? "num_beams" : flag.substr(2);
    for (char& c : field) c = c == '-' ? '_' : c;
    field_flags[field] = flag;
  }
  return field_flags;
}

class ServedModel {
 public:
  // Loads MODEL_DIR's model; `threads_per_request` is the kernels' thread
  // count in each request (OpenMP's count is per thread, so each worker sets it).
  static ServedModel load(const std::string& model_dir, const LoadOptions& options, int threads_per_request) {
    ServedModel served;
    served.directory_ = model_dir;
    served.threads_per_request_ = threads_per_request;
    const ModelConfig config = load_model_config(model_dir);
    served.architecture_ = config.architecture;
    const std::string& architecture = config.architecture;
    if (architecture == "BlipForConditionalGeneration" || architecture == "Blip2ForConditionalGeneration") {
      served.captioner_.emplace(Captioner::load(model_dir, options));
      if (served.captioner_->is_blip2()) served.vqa_.emplace(VisualQA::sharing_model_of(*served.captioner_));
    } else if (architecture == "BlipForQuestionAnswering") {
      served.vqa_.emplace(VisualQA::load(model_dir, options));
    } else if (architecture == "BlipForImageTextRetrieval" || architecture == "Blip2ForImageTextRetrieval") {
      served.matcher_.emplace(ImageTextMatcher::load(model_dir, options));
    } else {
      fail(model_dir, "/config.json: architecture ", clip(architecture),
           " has no task to serve (blip_server serves BlipForConditionalGeneration, BlipForQuestionAnswering, "
           "BlipForImageTextRetrieval, Blip2ForConditionalGeneration and Blip2ForImageTextRetrieval)");
    }
    return served;
  }

  const BlipModelFolder& folder() const {
    return captioner_ ? captioner_->folder() : vqa_ ? vqa_->folder() : matcher_->folder();
  }
  const std::string& directory() const { return directory_; }
  const std::string& architecture() const { return architecture_; }
  std::string family() const { return is_blip2(folder()) ? "BLIP-2" : "BLIP"; }
  std::vector<std::string> tasks() const {
    std::vector<std::string> names;
    if (captioner_) names.push_back("caption");
    if (vqa_) names.push_back("vqa");
    if (matcher_) names.insert(names.end(), {"match", "embed"});
    return names;
  }
  bool serves(const std::string& task) const {
    for (const std::string& name : tasks()) {
      if (name == task) return true;
    }
    return false;
  }

  nlohmann::json health() const {
    return {{"status", "ok"},     {"model", directory_}, {"architecture", architecture_},
            {"family", family()}, {"tasks", tasks()},    {"threads_per_request", threads_per_request_}};
  }

  // ---- the tasks: each checks its fields, runs the model, returns the answer

  nlohmann::json caption(const RequestFields& fields) const {
    require_task("caption");
    check_known_fields(fields, with_generation_fields({"prompt"}), "/caption");
    CaptionOptions options;
    options.prompt = fields.has("prompt") ? fields.text.at("prompt") : "";
    options.generation = generation_options(fields);
    const Tensor<float> pixels = decode_pixels(fields);
    const Caption best = run_model([&] { return captioner_->caption(pixels, options).front().front(); });
    nlohmann::json answer = {{"caption", best.text}};
    if (!std::isnan(best.score)) answer["score"] = best.score;  // beam search: HF's sequences_scores
    return answer;
  }

  nlohmann::json vqa(const RequestFields& fields) const {
    require_task("vqa");
    check_known_fields(fields, with_generation_fields({"question"}), "/vqa");
    const std::string& question = fields.required("question");
    const generation::GenerationOptions options = generation_options(fields);
    const Image image = decode(fields);
    const std::string answer = run_model([&] { return vqa_->answer(image, question, options); });
    return {{"answer", answer}};
  }

  nlohmann::json match(const RequestFields& fields) const {
    require_task("match");
    check_known_fields(fields, {"text"}, "/match");
    const std::string& text = fields.required("text");
    const Tensor<float> pixels = decode_pixels(fields);
    const MatchTable table = run_model([&] { return matcher_->match(pixels, {text}); });
    return {{"itm", table.match_probability.at(0, 0)}, {"itc", table.similarity.at(0, 0)}};
  }

  // The ITC embeddings of an image, a text, or both: BLIP gives one unit
  // vector per image, BLIP-2 one per query token (its ITC score is the best
  // of their cosines with the text's vector).
  nlohmann::json embed(const RequestFields& fields) const {
    require_task("embed");
    check_known_fields(fields, {"text"}, "/embed");
    if (!fields.image && !fields.has("text"))
      refuse(400, "image", "/embed needs an image (\"image\" or \"image_base64\"), a \"text\", or both");
    nlohmann::json answer = nlohmann::json::object();
    if (fields.image) {
      const Tensor<float> pixels = decode_pixels(fields);
      const Tensor<float> embedding = run_model([&] { return matcher_->image_embeddings(pixels); });
      const std::int64_t width = embedding.dim(embedding.rank() - 1);
      if (embedding.rank() == 2) {
        answer["image_embedding"] = std::vector<float>(embedding.data(), embedding.data() + width);
      } else {
        nlohmann::json rows = nlohmann::json::array();
        for (std::int64_t query = 0; query < embedding.dim(1); ++query) {
          const float* row = embedding.data() + query * width;
          rows.push_back(std::vector<float>(row, row + width));
        }
        answer["image_embedding"] = std::move(rows);
      }
    }
    if (fields.has("text")) {
      const std::string& text = fields.required("text");
      const Tensor<float> embedding = run_model([&] { return matcher_->text_embeddings({text}); });
      answer["text_embedding"] = std::vector<float>(embedding.data(), embedding.data() + embedding.dim(1));
    }
    return answer;
  }

 private:
  void require_task(const std::string& task) const {
    if (serves(task)) return;
    std::string served;
    for (const std::string& name : tasks()) served += (served.empty() ? "/" : ", /") + name;
    refuse(404, "", "this server's model (", architecture_, ", ", directory_, ") does not do /", task, "; it serves ",
           served);
  }

  static std::set<std::string> with_generation_fields(std::set<std::string> own) {
    for (const auto& [field, flag] : generation_fields()) own.insert(field);
    own.insert("do_sample");
    return own;
  }

  // The model's defaults (task_generation_defaults, as the programs) with the
  // request's fields over them, checked by the programs' rules
  // (read_generation_flags, generation::validate_options); a refusal names the field.
  generation::GenerationOptions generation_options(const RequestFields& fields) const {
    generation::GenerationOptions options = task_generation_defaults(folder());
    std::map<std::string, std::vector<std::string>> values;
    std::map<std::string, std::string> display_names;
    std::map<std::string, std::string> field_of_flag;
    for (const auto& [field, flag] : generation_fields()) {
      field_of_flag[flag] = field;
      display_names[flag] = "field \"" + field + "\"";
      if (fields.has(field)) values[flag] = {fields.text.at(field)};
    }
    if (fields.has("do_sample")) {
      const std::string& value = fields.text.at("do_sample");
      if (value != "true" && value != "false")
        refuse(400, "do_sample", "field \"do_sample\" expects true or false, got '", clip(value), "'");
      options.do_sample = value == "true";
    }
    try {
      examples::read_generation_flags(examples::CommandLine(values, {}, display_names), options);
    } catch (const examples::UsageError& error) {
      // "field \"num_beams\" expects an integer in [1, 64], got '100'"
      std::string field;
      for (const auto& [flag, name] : field_of_flag) {
        if (std::string(error.what()).find("\"" + name + "\"") != std::string::npos) field = name;
      }
      refuse(400, field, error.what());
    }
    try {
      generation::validate_options(options);
    } catch (const Error& error) {
      // The field at fault: the first one named that the request set.
      std::string field_at_fault;
      const std::string message = examples::rename_generation_fields(error.what(), [&](const std::string& name) {
        if (field_at_fault.empty() && fields.has(name)) field_at_fault = name;
        return fields.has(name) ? "field \"" + name + "\"" : "the model's default " + name;
      });
      refuse(400, field_at_fault, message);
    }
    return options;
  }

  // The request's image, decoded in memory with load_image's limits and messages.
  Image decode(const RequestFields& fields) const {
    const std::string& bytes = fields.required_image();
    try {
      if (bytes.size() > kMaxImageFileBytes)
        fail(fields.image_field, ": ", bytes.size(), " bytes, above the ", kMaxImageFileBytes,
             "-byte limit for an image");
      return decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(),
                          "field \"" + fields.image_field + "\"");
    } catch (const Error& error) {
      refuse(400, fields.image_field, error.what());
    }
  }
  Tensor<float> decode_pixels(const RequestFields& fields) const {
    return make_pixel_values({decode(fields)}, folder().image_processor);
  }

  // Runs a model call on this worker thread with the request's thread count.
  // The library's errors here are about the input the model was given (a
  // prompt longer than the text model's positions, a max_length the prompt
  // already fills): 422, with the library's message.
  template <class Call>
  auto run_model(Call&& call) const -> decltype(call()) {
    set_num_threads(threads_per_request_);
    try {
      return call();
    } catch (const Error& error) {
      refuse(422, "", error.what());
    }
  }

  std::string directory_;
  std::string architecture_;
  int threads_per_request_ = 1;
  std::optional<Captioner> captioner_;
  std::optional<VisualQA> vqa_;
  std::optional<ImageTextMatcher> matcher_;
};

}  // namespace blip::server
