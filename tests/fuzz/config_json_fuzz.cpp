// libFuzzer target: the model folder's configuration files. Any byte string
// parsed as config.json, generation_config.json and preprocessor_config.json
// must either give a config or throw blip::Error whose message stays short
// (input is quoted clipped). Deep nesting must be refused while parsing. Any
// other exception, sanitizer report or crash is a finding.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "blip/generation/options.hpp"
#include "blip/io/config.hpp"
#include "blip/io/image.hpp"
#include "blip/io/json_file.hpp"
#include "blip/models/blip.hpp"
#include "blip/models/blip2.hpp"
#include "fuzz_support.hpp"

namespace {

// Runs `parse`; a blip::Error is an accepted outcome if its message is bounded.
template <class Parse>
void error_or_result(Parse&& parse) {
  try {
    parse();
  } catch (const blip::Error& error) {
    blip::fuzz::require(std::strlen(error.what()) < 4096, "error messages quote input clipped");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  nlohmann::json document;
  try {
    document = blip::parse_json_text(text, "fuzz.json");
  } catch (const blip::Error& error) {
    blip::fuzz::require(std::strlen(error.what()) < 4096, "parse errors are bounded");
    return 0;
  }
  error_or_result([&] {
    const blip::ModelConfig model = blip::parse_model_config(document, "config.json");
    (void)blip::generation_config_from_model_config(model);
    (void)blip::generation::options_from_generation_config(blip::language_model_generation_config(model));
    if (model.family == blip::ModelFamily::Blip) {
      (void)blip::make_blip_model_config(model.blip);
    } else {
      (void)blip::make_blip2_model_config(model.blip2);
    }
  });
  error_or_result([&] {
    const blip::GenerationConfigFile generation = blip::parse_generation_config(document, "generation_config.json");
    blip::generation::validate_options(blip::generation::options_from_generation_config(generation));
  });
  error_or_result([&] { (void)blip::parse_image_processor_config(document, "preprocessor_config.json"); });
  return 0;
}
