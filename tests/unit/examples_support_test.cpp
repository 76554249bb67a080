// The programs' shared command line (examples/support): both spellings of an
// option, the usage errors and their exit statuses, --version, and the sampling
// seed and warnings of generation_options_from. tests/cli/check_options.sh runs
// the same through the built programs.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "support/arguments.hpp"
#include "test_support.hpp"

namespace examples_support_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

using blip::examples::CommandLine;

// argv for CommandLine: the program name, then `arguments`.
struct Arguments {
  explicit Arguments(std::vector<std::string> arguments) : storage(std::move(arguments)) {
    storage.insert(storage.begin(), "program");
    for (std::string& argument : storage) pointers.push_back(argument.data());
  }
  int argc() const { return static_cast<int>(pointers.size()); }
  char** argv() { return pointers.data(); }
  std::vector<std::string> storage;
  std::vector<char*> pointers;
};

CommandLine parse(std::vector<std::string> arguments) {
  Arguments line(std::move(arguments));
  return CommandLine(line.argc(), line.argv(), blip::examples::with({"--prompt"},
                                                                    blip::examples::generation_options_with_values()),
                     blip::examples::with({"--json"}, blip::examples::generation_switches()));
}

// The UsageError message parsing `arguments` throws ("" when it throws none, or another exception).
std::string usage_error_of(std::vector<std::string> arguments) {
  try {
    const CommandLine command = parse(std::move(arguments));
    (void)command.integer("--beams", 1, 1, 64);
    (void)command.real("--temperature", 1.0, 0, CommandLine::kNoMaximum, true);
  } catch (const blip::examples::UsageError& error) {
    return error.what();
  } catch (...) {
    return "(another exception)";
  }
  return "";
}

int run_command_with(std::vector<std::string> arguments, int body_status = 0, bool body_throws = false) {
  Arguments line(std::move(arguments));
  return blip::examples::run_command(line.argc(), line.argv(), "program", "usage: program\n", {"--size"}, {"--json"},
                                     [&](const CommandLine& command) {
                                       (void)command.integer("--size", 1, 1, 10);
                                       if (body_throws) blip::fail("a runtime error");
                                       return body_status;
                                     });
}

}  // namespace

TEST_CASE("--name=value is --name value") {
  const CommandLine spaced = parse({"model", "--beams", "3", "--prompt", "a picture of", "photo.jpg", "--json"});
  const CommandLine joined = parse({"model", "--beams=3", "--prompt=a picture of", "photo.jpg", "--json"});
  for (const CommandLine* command : {&spaced, &joined}) {
    CHECK(command->integer("--beams", 1, 1, 64) == 3);
    CHECK(command->value("--prompt") == "a picture of");
    CHECK(command->has("--json"));
    CHECK(command->positional() == std::vector<std::string>{"model", "photo.jpg"});
  }
  // Only the first '=' separates; an empty value is a value.
  CHECK(parse({"--prompt=a=b"}).value("--prompt") == "a=b");
  const CommandLine empty = parse({"--prompt="});
  CHECK(empty.has("--prompt"));
  CHECK(empty.value("--prompt", "fallback") == "");
  // Repeated options keep every value, in order, whichever spelling.
  CHECK(parse({"--prompt=one", "--prompt", "two"}).values("--prompt") == std::vector<std::string>{"one", "two"});
}

TEST_CASE("mistakes in the command line are usage errors naming the option") {
  CHECK(usage_error_of({"--bogus"}) == "unknown option --bogus");
  CHECK(usage_error_of({"--bogus=3"}) == "unknown option --bogus");
  CHECK(usage_error_of({"--json=yes"}) == "option --json takes no value, got '--json=yes'");
  CHECK(usage_error_of({"--beams"}) == "option --beams needs a value");
  CHECK(usage_error_of({"--beams=x"}) == "option --beams expects an integer in [1, 64], got 'x'");
  CHECK(usage_error_of({"--beams="}) == "option --beams expects an integer in [1, 64], got ''");
  CHECK(usage_error_of({"--temperature=0"}).find("option --temperature expects a finite number > 0") == 0);
  CHECK(usage_error_of({"--beams=2", "x"}) == "");
}

TEST_CASE("run_command: --help and --version exit 0, usage errors 2, runtime errors 1") {
  CHECK(run_command_with({"--help"}) == blip::examples::kExitSuccess);
  CHECK(run_command_with({"--version"}) == blip::examples::kExitSuccess);
  CHECK(run_command_with({"--size=3"}) == blip::examples::kExitSuccess);
  CHECK(run_command_with({}, 7) == 7);  // the body's own status
  CHECK(run_command_with({"--bogus"}) == blip::examples::kExitUsage);
  CHECK(run_command_with({"--size"}) == blip::examples::kExitUsage);
  CHECK(run_command_with({"--size=11"}) == blip::examples::kExitUsage);
  CHECK(run_command_with({"--size", "x"}) == blip::examples::kExitUsage);
  CHECK(run_command_with({"--version=1"}) == blip::examples::kExitUsage);
  CHECK(run_command_with({}, 0, true) == blip::examples::kExitFailure);
  // Model options belong to run_program only.
  CHECK(run_command_with({"--threads=2"}) == blip::examples::kExitUsage);
  CHECK(std::string(blip::examples::kProjectVersion).find('.') != std::string::npos);
}

TEST_CASE("sampling flags in a run that does not sample get HF's warning, in flags") {
  blip::generation::GenerationOptions greedy;
  const CommandLine command = parse({"--temperature=0.7", "--top-k", "5", "--seed=3", "--beams", "2"});
  const std::vector<std::string> warnings = blip::examples::sampling_flag_warnings(command, greedy);
  REQUIRE(warnings.size() == 3);
  CHECK(warnings[0] ==
        "sampling is off (no --sample, and the model's text_config has do_sample false). However, --temperature is set "
        "to 0.7 -- this flag is only used when sampling. Give --sample or leave out --temperature.");
  CHECK(warnings[1].find("However, --top-k is set to 5 --") != std::string::npos);
  CHECK(warnings[2].find("However, --seed is set to 3 --") != std::string::npos);
  CHECK(blip::examples::sampling_flag_warnings(parse({"--beams=2"}), greedy).empty());
  blip::generation::GenerationOptions sampling;
  sampling.do_sample = true;
  CHECK(blip::examples::sampling_flag_warnings(command, sampling).empty());
}

TEST_CASE("a sampling run gets a random seed unless --seed fixes it") {
  const std::string model = blip::test::fixture("blip_caption");
  if (!blip::test::have_or_skip(model + "/config.json", "blip_caption fixture")) return;
  const auto seed_of = [&](std::vector<std::string> arguments) {
    const blip::generation::GenerationOptions options =
        blip::examples::generation_options_from(parse(std::move(arguments)), model);
    CHECK(options.do_sample);
    return options.seed;
  };
  // Two random 32-bit seeds agree once in 2^32 runs.
  CHECK(seed_of({"--sample"}) != seed_of({"--sample"}));
  CHECK(seed_of({"--sample", "--seed=42"}) == 42);
  CHECK(seed_of({"--sample", "--seed", "4611686018427387904"}) == 4611686018427387904ULL);  // 2^62, the largest
  CHECK_FALSE(blip::examples::generation_options_from(parse({"--seed=42"}), model).do_sample);
}

}  // namespace examples_support_test
