// weights_tools/command_line.hpp: the `blip_weights` command line, the one
// program for checkpoints: shard, convert, list (weights_tools.hpp), inspect,
// make-random (model_weights.hpp) and download (hub_download.hpp). Tests call
// run_command_line directly, without spawning the program.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "hub_download.hpp"
#include "model_weights.hpp"
#include "weights_tools.hpp"

namespace blip::weights_tools {

inline constexpr const char* kUsage =
    "usage: blip_weights shard IN OUT_DIR (--shards N | --max-shard-size BYTES)\n"
    "       blip_weights convert IN OUT --dtype bf16|f16|f32\n"
    "       blip_weights convert MODEL OUT_DIR --precision int8|int4\n"
    "       blip_weights list IN\n"
    "       blip_weights inspect MODEL [--json]\n"
    "       blip_weights make-random CONFIG_DIR OUT_DIR [--dtype f32|bf16|f16] [--seed N] [--max-shard-size BYTES]\n"
    "       blip_weights download REPO_ID [--revision R] [--cache-dir D] [--endpoint URL] [--include GLOB ...]\n"
    "\n"
    "IN is a .safetensors file, a model.safetensors.index.json, or a model folder holding either.\n"
    "MODEL is a model folder, or a Hugging Face repository id (Org/Name) already in the local cache.\n"
    "\n"
    "shard        writes IN's tensors (bytes unchanged) into OUT_DIR as Hugging Face save_pretrained does:\n"
    "             model-00001-of-0000N.safetensors ... (each with __metadata__ {\"format\": \"pt\"}) and\n"
    "             model.safetensors.index.json ({\"metadata\": {\"total_size\": ...}, \"weight_map\": ...}),\n"
    "             tensors assigned in order. --max-shard-size takes bytes (or 500MB, 5GB, 2GiB, ...);\n"
    "             --shards N picks the smallest max_shard_size that gives N shards, and prints it.\n"
    "convert      stores every F32/F16/BF16 tensor as the --dtype (round to nearest even, as torch's\n"
    "             .to(torch.bfloat16)); integer tensors are copied. A sharded IN stays sharded the same\n"
    "             way in the folder OUT; a single file goes to OUT if it ends in .safetensors, else into\n"
    "             the folder OUT under its own name.\n"
    "             --precision int8|int4 instead: every Linear weight MODEL's loader packs is stored\n"
    "             quantized (int8: one scale per output feature; int4: one per 32 inputs) as <name> +\n"
    "             <name>_scale, everything else as it was, sharded as MODEL is, in the folder OUT_DIR\n"
    "             with MODEL's configs and tokenizer files (docs/weights.md: the format). blipcpp loads\n"
    "             it in that precision, exactly as MODEL loaded with --precision int8|int4.\n"
    "list         prints each tensor's name, dtype, shape and bytes, then the totals.\n"
    "inspect      list, plus the model class config.json names and the tensors its blipcpp loader asks\n"
    "             for that are missing, mis-shaped, or present but unused (\"unexpected\"). --json: one\n"
    "             JSON object instead. Exit status 1 when the model would not load.\n"
    "make-random  a checkpoint of random weights for CONFIG_DIR/config.json, with every tensor the loader\n"
    "             asks for: N(0, initializer_range), biases 0, LayerNorm weights 1 (HF's _init_weights);\n"
    "             f32 unless --dtype, --seed (default 0), sharded above --max-shard-size (default 5GB).\n"
    "             config.json, generation/preprocessor configs and tokenizer files are copied along.\n"
    "download     REPO_ID from the Hugging Face Hub into the local Hugging Face cache, in\n"
    "             huggingface_hub's layout (shared with Python both ways); prints the snapshot folder,\n"
    "             a model folder for every blipcpp program. Default files: *.json *.safetensors *.txt\n"
    "             *.model; --include GLOB (repeatable) chooses others. Cache: --cache-dir, else\n"
    "             HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. Endpoint: --endpoint,\n"
    "             else HF_ENDPOINT, else https://huggingface.co; HF_TOKEN for gated repositories.\n"
    "             Resumes partial files; checks sizes and the sha256 of the weights.\n"
    "\n"
    "shard, convert and make-random write only weights (make-random and convert --precision also copy the\n"
    "configs).\n"
    "Exit status: 0 done, 1 failed (unreadable input, write error, download error, inspect: would not\n"
    "load), 2 bad command line.\n";

// Runs the command line `arguments` (without the program name). Reports go to
// `out` (listing, summaries) and `err` (errors, download progress). Returns
// the exit status; throws nothing.
inline int run_command_line(const std::vector<std::string>& arguments, std::ostream& out, std::ostream& err) {
  try {
    static const std::vector<std::string> value_options{"--shards",   "--max-shard-size", "--dtype",    "--seed",
                                                        "--revision", "--cache-dir",      "--endpoint", "--include",
                                                        "--precision"};
    static const std::vector<std::string> flag_options{"--json"};
    const auto is_one_of = [](const std::string& name, const std::vector<std::string>& list) {
      return std::find(list.begin(), list.end(), name) != list.end();
    };
    std::vector<std::string> positional;
    std::map<std::string, std::vector<std::string>> options;
    for (std::size_t i = 0; i < arguments.size(); ++i) {
      const std::string& argument = arguments[i];
      if (argument == "--help" || argument == "-h") {
        out << kUsage;
        return 0;
      }
#ifdef BLIP_PROJECT_VERSION  // defined for the programs (blip_program_options), not for tests including this
      if (argument == "--version") {
        out << "blip_weights " BLIP_PROJECT_VERSION "\n";
        return 0;
      }
#endif
      if (argument.rfind("--", 0) == 0 && argument.size() > 2) {
        std::string name = argument, value;
        const std::size_t equals = argument.find('=');
        if (equals != std::string::npos) name = argument.substr(0, equals);
        if (is_one_of(name, flag_options)) {
          if (equals != std::string::npos) usage_fail(name, " takes no value");
        } else if (!is_one_of(name, value_options)) {
          usage_fail("unknown option ", name);
        } else if (equals != std::string::npos) {
          value = argument.substr(equals + 1);
        } else {
          if (i + 1 >= arguments.size()) usage_fail(name, " needs a value");
          value = arguments[++i];
        }
        if (options.count(name) && name != "--include") usage_fail(name, " given twice");
        options[name].push_back(value);
        continue;
      }
      positional.push_back(argument);
    }
    if (positional.empty()) usage_fail("no command given (shard, convert, list, inspect, make-random or download)");
    const std::string command = positional[0];
    const auto allow_only = [&](std::initializer_list<const char*> allowed) {
      for (const auto& [name, values] : options) {
        if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return name == a; }) == allowed.end())
          usage_fail(command, ": option ", name, " does not apply");
      }
    };
    const auto want_positional = [&](std::size_t count, const char* what) {
      if (positional.size() != count + 1) usage_fail(command, " takes ", what, " (got ", positional.size() - 1, " arguments)");
    };
    const auto option = [&](const std::string& name) { return options.count(name) ? options[name].front() : std::string(); };
    if (command == "shard") {
      want_positional(2, "IN OUT_DIR");
      allow_only({"--shards", "--max-shard-size"});
      ShardOptions shard_options;
      if (options.count("--shards")) {
        shard_options.shard_count = static_cast<std::size_t>(parse_unsigned(option("--shards"), "--shards"));
        if (shard_options.shard_count == 0) usage_fail("--shards 0: the number of shards must be at least 1");
      }
      if (options.count("--max-shard-size")) {
        shard_options.max_shard_size = parse_size(option("--max-shard-size"));
        if (shard_options.max_shard_size == 0) usage_fail("--max-shard-size 0: must be at least 1 byte");
      }
      const ShardResult result = shard_checkpoint(positional[1], positional[2], shard_options);
      out << positional[1] << ": " << result.tensor_count << " tensors, " << result.total_size << " bytes -> "
          << (result.files.size() > 1 ? result.files.size() - 1 : 1) << " shard(s) with max_shard_size "
          << result.max_shard_size << " in " << positional[2] << "\n";
      for (const std::string& file : result.files) out << "  " << file << "\n";
      return 0;
    }
    if (command == "convert") {
      want_positional(2, "IN OUT");
      allow_only({"--dtype", "--precision"});
      if (options.count("--dtype") && options.count("--precision"))
        usage_fail("convert: give --dtype (a float type) or --precision (int8 or int4), not both");
      if (options.count("--precision")) {
        WeightPrecision precision = WeightPrecision::AsStored;
        if (!parse_weight_precision(option("--precision"), precision) || !is_checkpoint_quantization(precision))
          usage_fail("--precision '", clip(option("--precision")), "': expected int8 or int4 (for bf16, f16 or f32 "
                     "use --dtype)");
        const QuantizeResult result = quantize_checkpoint(positional[1], positional[2], precision);
        out << positional[1] << " (" << result.model_class << "): " << result.quantized << " Linear weights -> "
            << weight_precision_name(precision) << ", " << result.kept << " tensors kept; " << result.bytes_before
            << " -> " << result.bytes_after << " bytes\n";
        for (const std::string& file : result.files) out << "  " << file << "\n";
        for (const std::string& file : result.copied) out << "  " << file << " (copied)\n";
        return 0;
      }
      if (!options.count("--dtype")) usage_fail("convert: --dtype bf16|f16|f32 (or --precision int8|int4) is required");
      const DType target = parse_float_dtype(option("--dtype"));
      const ConvertResult result = convert_checkpoint(positional[1], positional[2], target);
      out << positional[1] << ": " << result.converted << " floating tensors -> " << dtype_name(target) << ", "
          << result.kept << " integer tensors kept; " << result.bytes_before << " -> " << result.bytes_after
          << " bytes\n";
      for (const std::string& file : result.files) out << "  " << file << "\n";
      return 0;
    }
    if (command == "list") {
      want_positional(1, "IN");
      allow_only({});
      print_listing(list_checkpoint(positional[1]), out);
      return 0;
    }
    if (command == "inspect") {
      want_positional(1, "MODEL");
      allow_only({"--json"});
      const Inspection inspection = inspect_model(positional[1]);
      if (options.count("--json")) out << inspection_json(inspection).dump(2) << "\n";
      else print_inspection(inspection, out);
      return inspection.loadable() ? 0 : 1;
    }
    if (command == "make-random") {
      want_positional(2, "CONFIG_DIR OUT_DIR");
      allow_only({"--dtype", "--seed", "--max-shard-size"});
      RandomOptions random_options;
      if (options.count("--dtype")) random_options.dtype = parse_float_dtype(option("--dtype"));
      if (options.count("--seed")) random_options.seed = parse_unsigned(option("--seed"), "--seed");
      if (options.count("--max-shard-size")) random_options.max_shard_size = parse_size(option("--max-shard-size"));
      const RandomResult result = make_random_checkpoint(positional[1], positional[2], random_options);
      out << positional[1] << "/config.json: " << result.model_class << ", " << result.tensor_count << " tensors, "
          << result.parameter_count << " parameters, " << result.total_size << " bytes of "
          << dtype_name(random_options.dtype) << " (initializer_range " << result.initializer_range << ", seed "
          << random_options.seed << ")\n";
      for (const std::string& file : result.files) out << "  " << file << "\n";
      if (!result.copied.empty()) {
        out << "  copied:";
        for (const std::string& name : result.copied) out << " " << name;
        out << "\n";
      }
      return 0;
    }
    if (command == "download") {
      want_positional(1, "REPO_ID");
      allow_only({"--revision", "--cache-dir", "--endpoint", "--include"});
      DownloadOptions download_options;
      if (options.count("--revision")) download_options.revision = option("--revision");
      download_options.cache_dir = option("--cache-dir");
      download_options.endpoint = option("--endpoint");
      if (options.count("--include")) download_options.include = options["--include"];
      download_options.progress = &err;
      err << "downloading " << positional[1] << "@" << download_options.revision << "\n";
      const DownloadResult result = download_model(positional[1], download_options);
      err << result.files.size() << " files, " << result.bytes_fetched << " bytes fetched; commit " << result.commit
          << "\n";
      out << result.snapshot << "\n";  // the model folder, alone on stdout for scripts
      return 0;
    }
    usage_fail("unknown command '", command, "' (shard, convert, list, inspect, make-random or download)");
  } catch (const UsageError& error) {
    err << "blip_weights: " << error.what() << "\n(blip_weights --help for usage)\n";
    return 2;
  } catch (const std::exception& error) {
    err << "blip_weights: " << error.what() << "\n";
    return 1;
  } catch (...) {
    err << "blip_weights: unknown error\n";
    return 1;
  }
}

}  // namespace blip::weights_tools
