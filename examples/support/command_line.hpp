// examples/support/command_line.hpp: the little argument parser the example
// programs share (--name value and --name=value), how each program's main
// runs (run_command, run_program: --help, --version), the generation flags,
// and JSON string output. Every mistake it finds is a UsageError naming the
// option (exit status 2, see program.hpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/tasks/model_folder.hpp"
#include "program.hpp"

namespace blip::examples {

// "--name value" (or "--name=value") options, "--flag" switches and positional arguments.
class CommandLine {
 public:
  static constexpr double kNoMaximum = std::numeric_limits<double>::max();

  CommandLine(int argc, char** argv, const std::set<std::string>& options_with_values,
              const std::set<std::string>& switches) {
    for (int index = 1; index < argc; ++index) {
      const std::string argument = argv[index];
      if (argument.size() > 2 && argument.compare(0, 2, "--") == 0) {
        // GNU getopt_long's two spellings: "--name value" and "--name=value" (the value may be empty
        // or hold '=' itself: only the first '=' separates).
        const std::size_t equals = argument.find('=');
        const std::string name = argument.substr(0, equals);
        if (switches.count(name)) {
          if (equals != std::string::npos) usage_fail("option ", name, " takes no value, got '", clip(argument), "'");
          switches_.insert(name);
        } else if (options_with_values.count(name)) {
          if (equals != std::string::npos) {
            values_[name].push_back(argument.substr(equals + 1));
          } else {
            if (index + 1 >= argc) usage_fail("option ", name, " needs a value");
            values_[name].push_back(argv[++index]);
          }
        } else {
          usage_fail("unknown option ", clip(name));
        }
      } else if (argument == "-h") {
        switches_.insert("--help");
      } else {
        positional_.push_back(argument);
      }
    }
  }

  // Values given by name rather than parsed from argv, checked by the same
  // rules: blip_server reads a request's fields this way. `display_names`
  // says how messages name each option ("--beams" -> "field num_beams").
  CommandLine(std::map<std::string, std::vector<std::string>> values, std::set<std::string> switches,
              std::map<std::string, std::string> display_names)
      : switches_(std::move(switches)), values_(std::move(values)), display_names_(std::move(display_names)) {}

  bool has(const std::string& name) const { return switches_.count(name) || values_.count(name); }
  std::string value(const std::string& name, const std::string& fallback = "") const {
    auto found = values_.find(name);
    return found == values_.end() ? fallback : found->second.back();
  }
  std::vector<std::string> values(const std::string& name) const {
    auto found = values_.find(name);
    return found == values_.end() ? std::vector<std::string>{} : found->second;
  }
  long integer(const std::string& name, long fallback, long minimum, long maximum) const {
    if (!values_.count(name)) return fallback;
    const std::string text = value(name);
    char* end = nullptr;
    const long number = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || number < minimum || number > maximum)
      usage_fail(display_name(name), " expects an integer in [", minimum, ", ", maximum, "], got '", clip(text), "'");
    return number;
  }
  // "--name 1,2,3": integers in [minimum, maximum], separated by commas; `fallback` when absent.
  std::vector<std::int64_t> integer_list(const std::string& name, const std::vector<std::int64_t>& fallback,
                                         long minimum, long maximum) const {
    if (!values_.count(name)) return fallback;
    const std::string text = value(name);
    std::vector<std::int64_t> numbers;
    std::size_t start = 0;
    while (true) {
      const std::size_t comma = text.find(',', start);
      const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      char* end = nullptr;
      const long number = std::strtol(item.c_str(), &end, 10);
      if (item.empty() || *end != '\0' || number < minimum || number > maximum)
        usage_fail(display_name(name), " expects comma-separated integers in [", minimum, ", ", maximum, "], got '",
                   clip(text), "'");
      numbers.push_back(number);
      if (comma == std::string::npos) return numbers;
      start = comma + 1;
    }
  }
  // A finite number in [minimum, maximum], or in (minimum, maximum] when minimum_excluded.
  double real(const std::string& name, double fallback, double minimum = -kNoMaximum, double maximum = kNoMaximum,
              bool minimum_excluded = false) const {
    if (!values_.count(name)) return fallback;
    const std::string text = value(name);
    char* end = nullptr;
    const double number = std::strtod(text.c_str(), &end);
    const bool in_range =
        std::isfinite(number) && (minimum_excluded ? number > minimum : number >= minimum) && number <= maximum;
    if (text.empty() || *end != '\0' || !in_range) {
      const char* low = minimum_excluded ? "(" : "[";
      if (maximum == kNoMaximum)
        usage_fail(display_name(name), " expects a finite number ", minimum_excluded ? "> " : ">= ", minimum, ", got '",
                   clip(text), "'");
      usage_fail(display_name(name), " expects a number in ", low, minimum, ", ", maximum, "], got '", clip(text), "'");
    }
    return number;
  }
  const std::vector<std::string>& positional() const { return positional_; }

  // How messages name an option: "option --beams", or its display name.
  std::string display_name(const std::string& name) const {
    const auto found = display_names_.find(name);
    return found == display_names_.end() ? "option " + name : found->second;
  }

 private:
  std::set<std::string> switches_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
  std::map<std::string, std::string> display_names_;
};

// `text` as a JSON string. The programs check their arguments are UTF-8 before
// any work (arguments.hpp); should anything else hold invalid bytes, they
// become U+FFFD rather than an exception after the work is done.
inline std::string json_string(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// ---- the generation flags every generating program takes (HF GenerationConfig keys, kebab-cased); each
// starts from the model's generation config (Captioner::default_options() and the like).
inline constexpr const char* kGenerationUsage =
    "  --beams N              beam search with N beams (default: the model's generation config, usually 1 = greedy)\n"
    "  --max-new-tokens N     at most N new tokens\n"
    "  --min-new-tokens N     at least N new tokens\n"
    "  --repetition-penalty X HF repetition_penalty (1 = off)\n"
    "  --num-beam-groups G    diverse beam search: G groups of N / G beams (needs --diversity-penalty)\n"
    "  --diversity-penalty X  a group's score loss per earlier group that chose the same token at a step\n"
    "  --suppress-tokens IDS  comma-separated token ids that are never generated\n"
    "  --sample               sample instead of searching (with the options below)\n"
    "  --temperature X  --top-k N  --top-p X  --typical-p X\n"
    "  --seed N               the sampler's seed (default: a random one; stderr says which, to repeat a run)\n"
    "                         In a run that does not sample (no --sample, and text_config's do_sample false)\n"
    "                         these five do nothing, and a warning says so, as HF's GenerationConfig.validate\n"
    "                         warns.\n";

inline std::set<std::string> generation_options_with_values() {
  return {"--beams",           "--max-new-tokens", "--min-new-tokens", "--repetition-penalty",
          "--num-beam-groups", "--diversity-penalty", "--suppress-tokens", "--temperature",
          "--top-k",           "--top-p",          "--typical-p",      "--seed"};
}
inline std::set<std::string> generation_switches() { return {"--sample"}; }

// Applies the generation flags present on the command line to `options`; absent ones keep their value.
// Each value is checked against its own range here, naming the flag (generation_options_from runs this
// before the model loads).
inline void read_generation_flags(const CommandLine& command, generation::GenerationOptions& options) {
  options.num_beams = command.integer("--beams", options.num_beams, 1, 64);
  options.max_new_tokens = command.integer("--max-new-tokens", options.max_new_tokens, 1, 512);
  options.min_new_tokens = command.integer("--min-new-tokens", options.min_new_tokens, 0, 512);
  options.repetition_penalty =
      command.real("--repetition-penalty", options.repetition_penalty, 0, CommandLine::kNoMaximum, true);
  options.num_beam_groups = command.integer("--num-beam-groups", options.num_beam_groups, 1, 64);
  options.diversity_penalty = command.real("--diversity-penalty", options.diversity_penalty, 0);
  options.suppress_tokens = command.integer_list("--suppress-tokens", options.suppress_tokens, 0, 1L << 30);
  if (command.has("--sample")) options.do_sample = true;
  options.temperature = command.real("--temperature", options.temperature, 0, CommandLine::kNoMaximum, true);
  options.top_k = command.integer("--top-k", options.top_k, 0, 1 << 30);
  options.top_p = command.real("--top-p", options.top_p, 0, 1, true);
  options.typical_p = command.real("--typical-p", options.typical_p, 0, 1, true);
  options.seed = static_cast<std::uint64_t>(command.integer("--seed", static_cast<long>(options.seed), 0, 1L << 62));
}

// The sets above joined with a program's own options.
inline std::set<std::string> with(std::set<std::string> own, const std::set<std::string>& more) {
  own.insert(more.begin(), more.end());
  return own;
}

// The options every model program takes: --tokenizer DIR, --threads N,
// --precision P, --activations A; load progress and timings go to stderr.
inline LoadOptions load_options_from(const CommandLine& command) {
  LoadOptions options;
  options.tokenizer_dir = command.value("--tokenizer");
  options.num_threads = static_cast<int>(command.integer("--threads", 0, 0, kMaxThreads));
  const std::string precision = command.value("--precision");
  if (!precision.empty() && !parse_weight_precision(precision, options.weight_precision))
    usage_fail("option --precision expects as-stored, f32, bf16, f16, int8 or int4, got '", clip(precision), "'");
  const std::string activations = command.value("--activations");
  if (!activations.empty() && !parse_activation_precision(activations, options.activation_precision))
    usage_fail("option --activations expects f32, bf16 or int8, got '", clip(activations), "'");
  if (options.weight_precision != WeightPrecision::AsStored &&
      !activations_apply_to(options.activation_precision, options.weight_precision)) {
    const char* needed = weights_for_activations_name(options.activation_precision);
    usage_fail("option --activations ", activation_precision_name(options.activation_precision), " applies to ",
               needed, " weights; it needs --precision ", needed, " (or as-stored with a ", needed,
               " checkpoint), not --precision ", weight_precision_name(options.weight_precision));
  }
  options.verbose = true;
  return options;
}


// Runs a program's main: parses the command line with `options_with_values`
// and `switches` (--help and --version are always accepted), prints `usage`,
// the common options and the exit statuses for --help, or the version for
// --version, and ends as run_main (program.hpp) says. `body` returns the exit
// code (2 for a usage error, see usage_error). For programs without a model;
// the model programs use run_program.
template <class Body>
int run_command(int argc, char** argv, const char* name, const char* usage, std::set<std::string> options_with_values,
                std::set<std::string> switches, Body&& body) {
  return run_main(name, [&]() {
    switches.insert({"--help", "--version"});
    const CommandLine command(argc, argv, options_with_values, switches);
    if (command.has("--help")) {
      std::fputs(usage, stdout);
      std::fputs(kCommonOptionsHelp, stdout);
      std::fputs(kExitStatusHelp, stdout);
      return kExitSuccess;
    }
    if (command.has("--version")) {
      print_version(name);
      return kExitSuccess;
    }
    return body(command);
  });
}

// run_command for the programs that load a model: --tokenizer, --threads,
// --precision and --activations are accepted too (load_options_from reads them).
template <class Body>
int run_program(int argc, char** argv, const char* name, const char* usage, std::set<std::string> options_with_values,
                std::set<std::string> switches, Body&& body) {
  options_with_values.insert({"--tokenizer", "--threads", "--precision", "--activations"});
  return run_command(argc, argv, name, usage, std::move(options_with_values), std::move(switches),
                     std::forward<Body>(body));
}

inline int usage_error(const char* usage) {
  std::fputs(usage, stderr);
  return kExitUsage;
}

}  // namespace blip::examples
