// Retrieval benchmark: the similarity + top-k part of image-text retrieval at a catalogue's
// size (1,000 images x 5,000 texts by default, five captions per image as COCO), on random
// unit embeddings of BLIP-base's ITC width (256) and of BLIP-2's (32 query embeddings of 256
// per image); and, given a retrieval model folder, the embedding throughput of blip_embed's path.
//
//   build/bench/retrieval_bench [--images 1000] [--texts 5000] [--dimension 256] [--runs 3]
//       [--model ../shared/fixtures/blip_itm --tokenizer ../shared/assets/tokenizers/blip-image-captioning-base
//        --photos ../shared/assets/images --embed-images 48 --embed-texts 512]
//
// Prints one JSON line per measurement: median seconds over --runs, and the peak RSS (MiB)
// of that stage (VmHWM reset before it where Linux allows). Stages:
//   <family>_recall         retrieval_recall: every score both ways, in blocks, ranks, Recall@1/5/10
//   <family>_search_text    one text query against the index's images (search_images), top 10
//   <family>_index_io       save_retrieval_index + load_retrieval_index of the whole index
//   embed_images / embed_texts   make_retrieval_index's embedding, images/s and texts/s (the model
//                                given; the tiny fixtures measure the pipeline, not a real model's cost)
// Not a Google Benchmark program: each call is long and the output is read by docs/evaluation.md.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <unistd.h>
#include <string>
#include <vector>

#include "blip/blip.hpp"
#include "process_memory.hpp"

namespace {

struct Options {
  std::int64_t images = 1000, texts = 5000, dimension = 256;
  int runs = 3;
  std::string model_dir, tokenizer_dir, photos_dir;
  std::int64_t embed_images = 48, embed_texts = 512;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Median seconds of `runs` calls, and the peak RSS over them.
std::pair<double, double> measure(int runs, const std::function<void()>& work) {
  blip::bench::reset_peak_rss();
  std::vector<double> times;
  for (int run = 0; run < runs; ++run) {
    const auto start = std::chrono::steady_clock::now();
    work();
    times.push_back(seconds_since(start));
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], blip::bench::peak_rss_mib()};
}

void fill_unit_rows(blip::Tensor<float>& tensor, std::int64_t dimension, std::mt19937& random) {
  std::normal_distribution<float> normal;
  const std::int64_t rows = tensor.numel() / dimension;
  for (std::int64_t row = 0; row < rows; ++row) {
    float* values = tensor.data() + row * dimension;
    double norm = 0;
    for (std::int64_t d = 0; d < dimension; ++d) {
      values[d] = normal(random);
      norm += static_cast<double>(values[d]) * values[d];
    }
    for (std::int64_t d = 0; d < dimension; ++d) values[d] = static_cast<float>(values[d] / std::sqrt(norm));
  }
}

void print(nlohmann::ordered_json line) {
  line["load_average"] = blip::bench::load_average();
  std::printf("%s\n", line.dump().c_str());
  std::fflush(stdout);
}

void bench_similarity(const Options& options, const char* family, std::int64_t queries) {
  std::mt19937 random(1234);
  blip::RetrievalIndex index;
  index.family = family;
  index.model = "random";
  index.queries_per_image = queries;
  index.dimension = options.dimension;
  for (std::int64_t i = 0; i < options.images; ++i) index.image_paths.push_back("image_" + std::to_string(i) + ".jpg");
  for (std::int64_t t = 0; t < options.texts; ++t) index.texts.push_back("caption number " + std::to_string(t));
  index.image_embeddings = blip::Tensor<float>(blip::Shape{options.images, queries, options.dimension});
  index.text_embeddings = blip::Tensor<float>(blip::Shape{options.texts, options.dimension});
  fill_unit_rows(index.image_embeddings, options.dimension, random);
  fill_unit_rows(index.text_embeddings, options.dimension, random);
  std::vector<std::int64_t> image_of_text(static_cast<std::size_t>(options.texts));
  for (std::int64_t t = 0; t < options.texts; ++t)
    image_of_text[static_cast<std::size_t>(t)] = t * options.images / options.texts;

  const std::string prefix = std::string(family) + "_";
  double r_mean = 0;
  const auto [recall_seconds, recall_peak] = measure(options.runs, [&] {
    r_mean = blip::evaluation::retrieval_recall(blip::evaluation::similarity_from_embeddings(index.view()), image_of_text)
                 .r_mean;
  });
  print({{"name", prefix + "recall"}, {"images", options.images}, {"texts", options.texts},
         {"queries_per_image", queries}, {"dimension", options.dimension}, {"seconds", recall_seconds},
         {"scores_per_second", 2.0 * static_cast<double>(options.images * options.texts) / recall_seconds},
         {"peak_rss_mib", recall_peak}, {"r_mean_random", r_mean}});

  blip::Tensor<float> query(blip::Shape{options.dimension});
  fill_unit_rows(query, options.dimension, random);
  const auto [search_seconds, search_peak] =
      measure(std::max(options.runs, 20), [&] { blip::search_images(index, query, 10); });
  print({{"name", prefix + "search_text"}, {"images", options.images}, {"seconds", search_seconds},
         {"peak_rss_mib", search_peak}});

  const std::string path =
      (std::filesystem::temp_directory_path() / ("retrieval_bench_" + std::to_string(::getpid()) + ".safetensors")).string();
  const auto [io_seconds, io_peak] = measure(options.runs, [&] {
    blip::save_retrieval_index(index, path);
    blip::load_retrieval_index(path);
  });
  const auto bytes = std::filesystem::file_size(path);
  std::filesystem::remove(path);
  print({{"name", prefix + "index_io"}, {"seconds", io_seconds}, {"file_mib", static_cast<double>(bytes) / (1 << 20)},
         {"peak_rss_mib", io_peak}});
}

void bench_embedding(const Options& options) {
  blip::LoadOptions load;
  load.tokenizer_dir = options.tokenizer_dir;
  const blip::ImageTextMatcher matcher = blip::ImageTextMatcher::load(options.model_dir, load);
  std::vector<std::string> photos;
  for (const auto& entry : std::filesystem::directory_iterator(options.photos_dir))
    if (entry.is_regular_file()) photos.push_back(entry.path().string());
  std::sort(photos.begin(), photos.end());
  std::vector<std::string> paths, texts;
  for (std::int64_t i = 0; i < options.embed_images; ++i) paths.push_back(photos[static_cast<std::size_t>(i) % photos.size()]);
  for (std::int64_t t = 0; t < options.embed_texts; ++t)
    texts.push_back("a photo of item " + std::to_string(t) + " on a wooden table next to a window");
  blip::bench::reset_peak_rss();
  auto start = std::chrono::steady_clock::now();
  blip::embed_images(matcher, paths, 8);
  const double image_seconds = seconds_since(start);
  print({{"name", "embed_images"}, {"model", options.model_dir}, {"images", options.embed_images},
         {"seconds", image_seconds}, {"images_per_second", static_cast<double>(options.embed_images) / image_seconds},
         {"peak_rss_mib", blip::bench::peak_rss_mib()}});
  blip::bench::reset_peak_rss();
  start = std::chrono::steady_clock::now();
  blip::embed_texts(matcher, texts, 64);
  const double text_seconds = seconds_since(start);
  print({{"name", "embed_texts"}, {"model", options.model_dir}, {"texts", options.embed_texts},
         {"seconds", text_seconds}, {"texts_per_second", static_cast<double>(options.embed_texts) / text_seconds},
         {"peak_rss_mib", blip::bench::peak_rss_mib()}});
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options options;
    for (int index = 1; index < argc; ++index) {
      const std::string argument = argv[index];
      const auto value = [&]() -> std::string {
        if (index + 1 >= argc) throw blip::Error(argument + " needs a value");
        return argv[++index];
      };
      if (argument == "--images") options.images = std::stoll(value());
      else if (argument == "--texts") options.texts = std::stoll(value());
      else if (argument == "--dimension") options.dimension = std::stoll(value());
      else if (argument == "--runs") options.runs = std::stoi(value());
      else if (argument == "--model") options.model_dir = value();
      else if (argument == "--tokenizer") options.tokenizer_dir = value();
      else if (argument == "--photos") options.photos_dir = value();
      else if (argument == "--embed-images") options.embed_images = std::stoll(value());
      else if (argument == "--embed-texts") options.embed_texts = std::stoll(value());
      else {
        std::printf("usage: retrieval_bench [--images N] [--texts N] [--dimension D] [--runs N] [--model DIR --tokenizer DIR "
                    "--photos DIR --embed-images N --embed-texts N]\n");
        return argument == "--help" ? 0 : 2;
      }
    }
    blip::check(options.images > 0 && options.texts > 0 && options.dimension > 0 && options.runs > 0,
                "sizes and --runs must be positive");
    bench_similarity(options, "blip", 1);
    bench_similarity(options, "blip2", 32);
    if (!options.model_dir.empty()) bench_embedding(options);
    print({{"name", "process"}, {"peak_rss_mib_since_last_reset", blip::bench::peak_rss_mib()},
           {"rss_mib", blip::bench::rss_mib()}});
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "retrieval_bench: %s\n", error.what());
    return 1;
  }
}
