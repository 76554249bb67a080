// examples/support/arguments.hpp: the checks the model programs make on their
// arguments BEFORE loading a model: a typo must not cost the load time.
//
//   generation_options_from  the model's generation defaults with the flags over them, checked;
//                            messages name the flag, not the library's field; the sampling seed
//                            (random unless --seed) and warnings for sampling flags that do nothing
//   check_input_files        the image paths exist and are regular files
//   require_utf8             --json output repeats the argument: UTF-8 only
//   valid_utf8_text          a text argument with its invalid bytes dropped (and said so)
#pragma once

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/core/regular_file.hpp"
#include "blip/generation/options.hpp"
#include "blip/io/safetensors.hpp"  // detail::first_invalid_utf8
#include "command_line.hpp"

namespace blip::examples {

// Where the generation defaults come from; for the --help of the programs that generate.
inline constexpr const char* kGenerationDefaultsHelp =
    "Generation defaults are Hugging Face's for the folder: HF 4.45's BLIP generate() runs\n"
    "text_decoder.generate() and BLIP-2's runs language_model.generate(); both models are built from\n"
    "config.json's text_config and take their generation config from it, so generation_config.json is\n"
    "NOT read (a file there changes nothing, as in HF). BLIP-2 adds one default of blipcpp's: at most 30\n"
    "new tokens when text_config sets no max_new_tokens (HF's max_length 20 would count the image queries).\n"
    "The load log on stderr says where each default came from and its value.\n";

// `message` (from generation::validate_options) with each
// "GenerationOptions::<field>" replaced by name_of(field): the programs name
// the flag or the request field that set it, not the library's field.
template <class NameOf>
std::string rename_generation_fields(const std::string& message, NameOf&& name_of) {
  const std::string prefix = "GenerationOptions::";
  std::string renamed;
  std::size_t copied = 0;
  for (std::size_t at = message.find(prefix); at != std::string::npos; at = message.find(prefix, copied)) {
    std::size_t end = at + prefix.size();
    while (end < message.size() && (std::isalnum(static_cast<unsigned char>(message[end])) || message[end] == '_'))
      ++end;
    renamed +=
        message.substr(copied, at - copied) + name_of(message.substr(at + prefix.size(), end - at - prefix.size()));
    copied = end;
  }
  return renamed + message.substr(copied);
}

// The flag that sets a GenerationOptions field: HF's key kebab-cased, except
// these two.
inline std::string generation_flag(const std::string& field) {
  std::string flag = field == "num_beams" ? "--beams" : field == "do_sample" ? "--sample" : "--" + field;
  for (char& c : flag) c = c == '_' ? '-' : c;
  return flag;
}

// Warnings for the sampling-only flags given to a run that does not sample, as HF's
// GenerationConfig.validate() warns for the same keys ("`do_sample` is set to `False`. However,
// `temperature` is set to `0.7` -- this flag is only used in sample-based generation modes. You should
// set `do_sample=True` or unset `temperature`."), in terms of flags. HF warns when a value differs from
// its neutral one (temperature 1, top_k 50, top_p 1, typical_p 1), because it cannot tell what the caller
// set; here a flag is known to be given, so every one given is named. --seed is blipcpp's own.
inline std::vector<std::string> sampling_flag_warnings(const CommandLine& command,
                                                       const generation::GenerationOptions& options) {
  std::vector<std::string> warnings;
  if (options.do_sample) return warnings;
  for (const char* flag : {"--temperature", "--top-k", "--top-p", "--typical-p", "--seed"}) {
    if (!command.has(flag)) continue;
    warnings.push_back(detail::concat("sampling is off (no --sample, and the model's text_config has do_sample ",
                                      "false). However, ", flag, " is set to ", clip(command.value(flag)),
                                      " -- this flag is only used when sampling. Give --sample or leave out ", flag,
                                      "."));
  }
  return warnings;
}

// The seed a sampling run gets when --seed is absent. HF's generate() samples from torch's global
// generator, so two runs differ unless the caller seeds it; the programs do the same, and print the
// seed so that a run can be repeated. 32 bits: short enough to type back.
inline std::uint64_t random_seed() { return std::random_device{}(); }

// The generation options a program asks for: the model folder's defaults
// (read from its config.json alone, before any weights load) with the flags
// over them, checked as a whole before the model loads. A flag value that
// does not parse or is out of range is a usage error naming the flag
// (read_generation_flags); so is a combination generation::validate_options
// refuses. Its messages name GenerationOptions fields ("GenerationOptions::top_p");
// here they name the flag that set the field ("--top-p"), or say the value is
// the model's default ("text_config's num_return_sequences").
inline generation::GenerationOptions generation_options_from(const CommandLine& command, const std::string& model_dir) {
  // Each flag's own syntax and range first, so that a typo is a usage error (2) even when MODEL_DIR
  // is wrong (a runtime error, 1).
  generation::GenerationOptions flags_alone;
  read_generation_flags(command, flags_alone);
  generation::GenerationOptions options = read_task_generation_defaults(model_dir);
  read_generation_flags(command, options);
  try {
    generation::validate_options(options);
  } catch (const Error& error) {
    usage_fail(rename_generation_fields(error.what(), [&](const std::string& field) {
      const std::string flag = generation_flag(field);
      return command.has(flag) ? flag : "text_config's " + field;
    }));
  }
  for (const std::string& warning : sampling_flag_warnings(command, options))
    std::fprintf(stderr, "[blip] warning: %s\n", warning.c_str());
  if (options.do_sample) {
    if (!command.has("--seed")) options.seed = random_seed();
    const auto seed = static_cast<unsigned long long>(options.seed);
    std::fprintf(stderr, "[blip] sampling with seed %llu (--seed %llu repeats this run)\n", seed, seed);
  }
  return options;
}

// Image paths, checked before the model loads.
inline void check_input_files(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) require_regular_file(path);
}

// --json prints arguments back (image paths, questions, texts) as JSON
// strings, which hold UTF-8 only: any other argument is a usage error, found
// before any work.
inline void require_utf8(const std::string& value, const char* what) {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(value.data());
  const std::size_t bad = detail::first_invalid_utf8(bytes, value.size());
  if (bad != value.size())
    usage_fail(what, " '", clip(value), "' is not valid UTF-8 (byte ", bad,
               "); --json output needs UTF-8 (rename the file, or leave out --json)");
}

// `text` with its invalid UTF-8 bytes dropped (HF tokenizes Python strings,
// which cannot hold them); when there were any, says so on stderr, naming
// `what` ("the question").
inline std::string valid_utf8_text(const std::string& text, const char* program, const std::string& what) {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(text.data());
  std::string valid;
  std::size_t position = 0, dropped = 0;
  while (position < text.size()) {
    const std::size_t run = detail::first_invalid_utf8(bytes + position, text.size() - position);
    valid.append(text, position, run);
    position += run;
    if (position < text.size()) {
      ++position;  // one invalid byte
      ++dropped;
    }
  }
  if (dropped > 0)
    std::fprintf(stderr, "%s: %s is not valid UTF-8: %zu invalid byte%s dropped\n", program, what.c_str(), dropped,
                 dropped == 1 ? "" : "s");
  return valid;
}

}  // namespace blip::examples
