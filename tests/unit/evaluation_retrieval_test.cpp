// Image-text retrieval: Recall@K as BLIP's itm_eval() on a hand-made score matrix whose
// rankings are worked out below (ties, several captions per image, ITM re-ranking), the
// blocked ITC scores against a naive loop, and the embedding index end to end on the tiny
// BLIP and BLIP-2 retrieval fixtures: embed, save, load, search gives match()'s scores.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "blip/blip.hpp"
#include "test_support.hpp"

namespace evaluation_retrieval_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

using blip::evaluation::RecallOptions;
using blip::evaluation::RetrievalRecall;

// 3 images, 2 captions each: texts 0,1 describe image 0; 2,3 image 1; 4,5 image 2.
const std::vector<std::int64_t> kImageOfText{0, 0, 1, 1, 2, 2};
// ITC scores [image][text].
const std::vector<float> kScores{
    0.9f, 0.1f, 0.8f, 0.2f, 0.3f, 0.0f,  // image 0
    0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f,  // image 1
    0.5f, 0.5f, 0.1f, 0.2f, 0.5f, 0.0f,  // image 2
};

}  // namespace

TEST_CASE("Recall@K by ITC: each rank worked out by hand, ties to the lower index") {
  const auto source = blip::evaluation::similarity_from_matrix(kScores.data(), 3, 6);
  const RetrievalRecall recall = blip::evaluation::retrieval_recall(source, kImageOfText);
  // Image queries (the best-placed of its two captions counts):
  //   image 0: t0 .9 first                                   -> rank 0
  //   image 1: t0 .7, t1 .6, then its caption t2 .5          -> rank 2
  //   image 2: t0, t1, t4 all .5: equal scores go to the lower index, so its t4 is third -> rank 2
  CHECK(recall.image_query_ranks == std::vector<std::int64_t>{0, 2, 2});
  // Text queries (the column of scores):
  //   t0 [.9 .7 .5] -> 0;  t1 [.1 .6 .5] -> 2;  t2 [.8 .5 .1] -> 1;  t3 [.2 .4 .2] -> 0;
  //   t4 [.3 .3 .5] -> 0;  t5 [0 .2 0]: image 1 first, then images 0 and 2 tie at 0, image 0 first -> 2
  CHECK(recall.text_query_ranks == std::vector<std::int64_t>{0, 2, 1, 0, 0, 2});
  CHECK(recall.txt_r1 == doctest::Approx(100.0 / 3));
  CHECK(recall.txt_r5 == 100.0);
  CHECK(recall.txt_r10 == 100.0);
  CHECK(recall.img_r1 == doctest::Approx(50.0));
  CHECK(recall.img_r5 == 100.0);
  CHECK(recall.txt_r_mean == doctest::Approx((100.0 / 3 + 200.0) / 3));
  CHECK(recall.img_r_mean == doctest::Approx(250.0 / 3));
  CHECK(recall.r_mean == doctest::Approx((recall.txt_r_mean + recall.img_r_mean) / 2));
  const auto json = blip::evaluation::retrieval_recall_json(recall);
  CHECK(json.dump().rfind("{\"txt_r1\":", 0) == 0);
  CHECK(json.size() == 9);

  SUBCASE("Recall@1 counts only rank 0, Recall@5 ranks 0..4") {
    // One image, seven captions of another image, and ranks 5 and 6 for the right ones.
    std::vector<float> scores{0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f,   // image 0: its captions t5, t6 are 6th, 7th
                              0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};  // image 1
    const std::vector<std::int64_t> owner{1, 1, 1, 1, 1, 0, 0};
    const auto result =
        blip::evaluation::retrieval_recall(blip::evaluation::similarity_from_matrix(scores.data(), 2, 7), owner);
    CHECK(result.image_query_ranks[0] == 5);
    CHECK(result.txt_r5 == 50.0);  // image 1's captions t0..t4 at ranks 0..4 (all tie at 0, lower index first)
    CHECK(result.txt_r10 == 100.0);
  }
  SUBCASE("blocks of rows give the same ranks") {
    RecallOptions options;
    options.rows_per_block = 2;
    const RetrievalRecall blocked = blip::evaluation::retrieval_recall(source, kImageOfText, options);
    CHECK(blocked.image_query_ranks == recall.image_query_ranks);
    CHECK(blocked.text_query_ranks == recall.text_query_ranks);
  }
  SUBCASE("bad ground truth is named") {
    CHECK_THROWS_WITH(blip::evaluation::retrieval_recall(source, {0, 0, 1, 1, 1, 1}), "retrieval_recall: image 2 has no caption");
    CHECK_THROWS_WITH(blip::evaluation::retrieval_recall(source, {0, 0, 1}), "retrieval_recall: 3 image ids for 6 texts");
    RecallOptions options;
    options.rerank_k = 4;
    CHECK_THROWS_WITH(blip::evaluation::retrieval_recall(source, kImageOfText, options),
                      "retrieval_recall: rerank_k 4 needs the ITM logits (RecallOptions::itm_logits)");
  }
}

TEST_CASE("Recall@K with ITM re-ranking: the k best ITC candidates reordered by ITM logit + ITC") {
  // ITM "match" logits [image][text] (itm_head(...)[:, 1]).
  const std::vector<float> logits{
      -1.0f, 2.0f, 0.0f, 0.0f, 0.0f, 0.0f,  // image 0
      0.0f,  0.0f, 1.0f, 0.0f, 0.0f, 0.0f,  // image 1
      0.0f,  0.0f, 0.0f, 0.0f, 2.0f, 0.0f,  // image 2
  };
  RecallOptions options;
  options.rerank_k = 3;
  std::vector<std::vector<std::int64_t>> asked(3);
  options.itm_logits = [&](std::int64_t image, const std::vector<std::int64_t>& texts) {
    CHECK(asked[static_cast<std::size_t>(image)].empty());  // one call per image, for all its pairs
    asked[static_cast<std::size_t>(image)] = texts;
    std::vector<float> out;
    for (const std::int64_t text : texts) out.push_back(logits[static_cast<std::size_t>(image * 6 + text)]);
    return out;
  };
  const RetrievalRecall recall = blip::evaluation::retrieval_recall(
      blip::evaluation::similarity_from_matrix(kScores.data(), 3, 6), kImageOfText, options);
  // Image queries, their 3 best ITC texts re-scored, the rest after them in ITC order:
  //   image 0: t0 .9-1 = -.1, t2 .8+0, t4 .3+0 -> t2, t4, t0, then t3, t1, t5 -> its t0 at rank 2 (was 0);
  //            t1's logit 2 is not used: t1 is not among image 0's 3 best texts
  //   image 1: t0 .7, t1 .6, t2 .5+1 = 1.5                     -> its t2 first (was 2)
  //   image 2: t0 .5, t1 .5, t4 .5+2 = 2.5                     -> its t4 first (was 2)
  CHECK(recall.image_query_ranks == std::vector<std::int64_t>{2, 0, 0});
  // Text queries, all 3 images re-scored (k = 3):
  //   t0 [-.1 .7 .5] -> 2 (was 0);  t1 [2.1 .6 .5] -> 0 (was 2);  t2 [.8 1.5 .1] -> 0 (was 1);
  //   t3 [.2 .4 .2] -> 0;  t4 [.3 .3 2.5] -> 0;  t5 [0 .2 0] -> 2 (the tie again)
  CHECK(recall.text_query_ranks == std::vector<std::int64_t>{2, 0, 0, 0, 0, 2});
  CHECK(recall.txt_r1 == doctest::Approx(200.0 / 3));
  CHECK(recall.img_r1 == doctest::Approx(200.0 / 3));
  // Image 0 is asked about its own 3 candidates and every text's (all images are in every text's 3 best).
  CHECK(asked[0] == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("ITC scores in blocks equal a naive loop; BLIP-2 takes the best query") {
  std::mt19937 random(7);
  std::normal_distribution<float> normal;
  const std::int64_t images = 5, queries = 3, texts = 7, dimension = 16;
  std::vector<float> image_rows(images * queries * dimension), text_rows(texts * dimension);
  // Unit rows, as the models give.
  const auto unit_rows = [&](std::vector<float>& values) {
    for (std::size_t row = 0; row < values.size() / dimension; ++row) {
      double norm = 0;
      for (std::int64_t d = 0; d < dimension; ++d) norm += std::pow(values[row * dimension + d] = normal(random), 2);
      for (std::int64_t d = 0; d < dimension; ++d) values[row * dimension + d] /= static_cast<float>(std::sqrt(norm));
    }
  };
  unit_rows(image_rows);
  unit_rows(text_rows);
  blip::evaluation::EmbeddingView view{image_rows.data(), images, queries, text_rows.data(), texts, dimension};
  std::vector<float> naive(images * texts);
  for (std::int64_t i = 0; i < images; ++i)
    for (std::int64_t t = 0; t < texts; ++t) {
      double best = -1e30;
      for (std::int64_t q = 0; q < queries; ++q) {
        double dot = 0;
        for (std::int64_t d = 0; d < dimension; ++d)
          dot += static_cast<double>(image_rows[(i * queries + q) * dimension + d]) * text_rows[t * dimension + d];
        best = std::max(best, dot);
      }
      naive[i * texts + t] = static_cast<float>(best);
    }
  // Blocks of 2 texts (image rows) and 2 / 3 = 1 image (text rows): odd sizes at every edge.
  const auto source = blip::evaluation::similarity_from_embeddings(view, 2);
  std::vector<float> rows(images * texts), columns(texts * images);
  source.image_rows(0, images, rows.data());
  source.text_rows(0, texts, columns.data());
  for (std::int64_t i = 0; i < images; ++i)
    for (std::int64_t t = 0; t < texts; ++t) {
      CHECK(std::abs(rows[i * texts + t] - naive[i * texts + t]) <= 1e-6);
      // Other block shapes take other Eigen product kernels: the same score to rounding.
      CHECK(std::abs(columns[t * images + i] - rows[i * texts + t]) <= 1e-6);
    }
  const auto best = blip::evaluation::top_k(rows.data(), texts, 3);
  REQUIRE(best.size() == 3);
  CHECK(best[0].score >= best[1].score);
  CHECK(best[1].score >= best[2].score);
  CHECK(blip::evaluation::top_k(rows.data(), texts, 100).size() == static_cast<std::size_t>(texts));
}

namespace {

std::vector<std::string> index_photos() {
  return {blip::test::asset("images/skimage_coffee.png"), blip::test::asset("images/skimage_rocket.jpg"),
          blip::test::asset("images/blip_demo_beach_woman_dog_409x273.png")};
}

void check_index_round_trip(const char* fixture_case) {
  const std::string tokenizer = blip::test::asset("tokenizers/blip-image-captioning-base");
  if (!blip::test::have_or_skip(blip::test::fixture(fixture_case), fixture_case) ||
      !blip::test::have_or_skip(tokenizer, "BERT tokenizer") ||
      !blip::test::have_or_skip(blip::test::asset("images"), "photos"))
    return;
  CAPTURE(fixture_case);
  blip::LoadOptions options;
  options.tokenizer_dir = tokenizer;
  const blip::ImageTextMatcher matcher = blip::ImageTextMatcher::load(blip::test::fixture(fixture_case), options);
  const std::vector<std::string> paths = index_photos();
  const std::vector<std::string> texts{"a cup of coffee", "a rocket on its launch pad at night", "a dog on a beach",
                                       "a woman"};
  // Batches of 2: the third image is a batch of its own.
  const blip::RetrievalIndex made = blip::make_retrieval_index(matcher, paths, texts, 2);
  const auto file = blip::test::scratch_dir("retrieval", fixture_case) / "index.safetensors";
  blip::save_retrieval_index(made, file.string());
  const blip::RetrievalIndex index = blip::load_retrieval_index(file.string());
  CHECK(index.family == (matcher.is_blip2() ? "blip2" : "blip"));
  CHECK(index.queries_per_image == (matcher.is_blip2() ? matcher.blip2_model().qformer.query_count() : 1));
  CHECK(index.image_paths == paths);
  CHECK(index.texts == texts);
  REQUIRE(index.image_embeddings.shape() == made.image_embeddings.shape());
  for (std::int64_t i = 0; i < made.image_embeddings.numel(); ++i)
    REQUIRE(index.image_embeddings.data()[i] == made.image_embeddings.data()[i]);
  for (std::int64_t i = 0; i < made.text_embeddings.numel(); ++i)
    REQUIRE(index.text_embeddings.data()[i] == made.text_embeddings.data()[i]);
  blip::check_index_matches_model(index, file.string(), matcher, false);

  const blip::MatchTable table =
      matcher.match(blip::load_preprocessed_batch(paths, matcher.folder().image_processor), texts);
  for (std::size_t text = 0; text < texts.size(); ++text) {
    const auto found = blip::search_images(index, matcher.text_embeddings({texts[text]}), 10);
    REQUIRE(found.size() == paths.size());
    for (const auto& hit : found)
      CHECK(std::abs(hit.score - table.similarity.at(hit.index, static_cast<std::int64_t>(text))) <= 1e-6);
    const auto top = blip::search_images(index, matcher.text_embeddings({texts[text]}), 1);
    REQUIRE(top.size() == 1);
    CHECK(top[0].index == found[0].index);
  }
  for (std::size_t image = 0; image < paths.size(); ++image) {
    const blip::Tensor<float> query = blip::embed_images(matcher, {paths[image]});
    const auto found = blip::search_texts(index, query, 10);
    REQUIRE(found.size() == texts.size());
    for (std::size_t rank = 0; rank < found.size(); ++rank) {
      CHECK(std::abs(found[rank].score - table.similarity.at(static_cast<std::int64_t>(image), found[rank].index)) <= 1e-6);
      if (rank > 0) CHECK(found[rank - 1].score >= found[rank].score);
    }
    // The re-ranking logits, in chunks of 3 texts (a chunk of 3 and one of 1), are match()'s ITM
    // logits; the chunks pad texts to their own longest, and padding is masked.
    const std::vector<float> logits =
        matcher.match_logits(blip::load_preprocessed_batch({paths[image]}, matcher.folder().image_processor), texts, 3);
    REQUIRE(logits.size() == texts.size());
    for (std::size_t text = 0; text < texts.size(); ++text)
      CHECK(logits[text] == doctest::Approx(table.itm_logits.at(static_cast<std::int64_t>(image),
                                                                static_cast<std::int64_t>(text), 1)).epsilon(1e-4));
  }
}

}  // namespace

TEST_CASE("retrieval index on BLIP: embed, save, load, search gives match()'s ITC scores") {
  check_index_round_trip("blip_itm");
}

TEST_CASE("retrieval index on BLIP-2: the best query's score, as match()") { check_index_round_trip("blip2_itm"); }

TEST_CASE("retrieval index: another family's index is refused, a broken file is named") {
  blip::RetrievalIndex index;
  index.family = "blip2";
  index.model = "blip2_itm";
  index.queries_per_image = 2;
  index.dimension = 3;
  index.image_paths = {"a.jpg"};
  index.image_embeddings = blip::Tensor<float>(blip::Shape{1, 2, 3});
  const auto folder = blip::test::scratch_dir("retrieval", "family");
  const std::string path = (folder / "index.safetensors").string();
  blip::save_retrieval_index(index, path);
  const blip::RetrievalIndex loaded = blip::load_retrieval_index(path);
  CHECK(loaded.texts.empty());
  CHECK_THROWS_WITH(blip::search_texts(loaded, blip::Tensor<float>(blip::Shape{1, 2, 3}), 1),
                    "retrieval index: it holds no texts to search (made with --images only)");
  CHECK(blip::search_images(loaded, blip::Tensor<float>(blip::Shape{3}), 5).size() == 1);

  blip::SafetensorsWriter other;
  other.set_metadata("format", "something else");
  other.add("x", blip::Tensor<float>(blip::Shape{1}));
  other.write((folder / "other.safetensors").string());
  CHECK_THROWS_WITH(blip::load_retrieval_index((folder / "other.safetensors").string()),
                    doctest::Contains("other.safetensors: not a blipcpp retrieval index (its __metadata__ format is "
                                      "\"something else\"; blip_embed writes \"blipcpp-retrieval-index/1\")"));

  const std::string tokenizer = blip::test::asset("tokenizers/blip-image-captioning-base");
  if (!blip::test::have_or_skip(blip::test::fixture("blip_itm"), "blip_itm") ||
      !blip::test::have_or_skip(tokenizer, "BERT tokenizer"))
    return;
  blip::LoadOptions options;
  options.tokenizer_dir = tokenizer;
  const blip::ImageTextMatcher blip_matcher = blip::ImageTextMatcher::load(blip::test::fixture("blip_itm"), options);
  CHECK_THROWS_WITH(blip::check_index_matches_model(loaded, path, blip_matcher, false),
                    doctest::Contains("was made by a BLIP-2 model (2 query embeddings of 3 per image) but"));
}

}  // namespace evaluation_retrieval_test
