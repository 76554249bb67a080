// examples/support/command_line.hpp: the little argument parser the example
// programs share, and JSON string output.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/tasks/model_folder.hpp"

namespace blip::examples {

// "--name value" options, "--flag" switches and positional arguments.
class CommandLine {
 public:
  CommandLine(int argc, char** argv, const std::set<std::string>& options_with_values,
              const std::set<std::string>& switches) {
    for (int index = 1; index < argc; ++index) {
      const std::string argument = argv[index];
      if (argument.size() > 2 && argument.compare(0, 2, "--") == 0) {
        if (switches.count(argument)) {
          switches_.insert(argument);
        } else if (options_with_values.count(argument)) {
          check(index + 1 < argc, "option ", argument, " needs a value");
          values_[argument].push_back(argv[++index]);
        } else {
          fail("unknown option ", argument, " (see --help)");
        }
      } else if (argument == "-h") {
        switches_.insert("--help");
      } else {
        positional_.push_back(argument);
      }
    }
  }

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
    check(!text.empty() && *end == '\0' && number >= minimum && number <= maximum, "option ", name,
          " expects an integer in [", minimum, ", ", maximum, "], got '", text, "'");
    return number;
  }
  double real(const std::string& name, double fallback) const {
    if (!values_.count(name)) return fallback;
    const std::string text = value(name);
    char* end = nullptr;
    const double number = std::strtod(text.c_str(), &end);
    check(!text.empty() && *end == '\0', "option ", name, " expects a number, got '", text, "'");
    return number;
  }
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::set<std::string> switches_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

inline std::string json_string(const std::string& text) { return nlohmann::json(text).dump(); }

// The options every model program takes: --tokenizer DIR, --threads N; load
// progress and timings go to stderr.
inline LoadOptions load_options_from(const CommandLine& command) {
  LoadOptions options;
  options.tokenizer_dir = command.value("--tokenizer");
  options.num_threads = static_cast<int>(command.integer("--threads", 0, 0, 1024));
  options.verbose = true;
  return options;
}

// Runs an example's main: parses the command line (--tokenizer, --threads and
// --help are always accepted), prints `usage` for --help, and turns an
// exception into "<name>: <message>" on stderr with exit code 1. `body`
// returns the exit code (2 for a usage error, see usage_error).
template <class Body>
int run_program(int argc, char** argv, const char* name, const char* usage, std::set<std::string> options_with_values,
                std::set<std::string> switches, Body&& body) {
  try {
    options_with_values.insert({"--tokenizer", "--threads"});
    switches.insert("--help");
    const CommandLine command(argc, argv, options_with_values, switches);
    if (command.has("--help")) {
      std::fputs(usage, stdout);
      return 0;
    }
    return body(command);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: %s\n", name, error.what());
    return 1;
  }
}

inline int usage_error(const char* usage) {
  std::fputs(usage, stderr);
  return 2;
}

}  // namespace blip::examples
