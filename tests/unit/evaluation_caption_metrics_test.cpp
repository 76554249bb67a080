// BLEU and CIDEr-D: small cases computed by hand with every step of the formula visible, then a few
// hundred random corpora scored by pycocoevalcap itself (tests/oracle/make_evaluation_references.py).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "blip/evaluation/bleu.hpp"
#include "blip/evaluation/cider.hpp"
#include "test_support.hpp"

namespace evaluation_caption_metrics_test {  // one namespace per file: see "Areas" in tests/CMakeLists.txt

namespace {

using blip::evaluation::cider_d;
using blip::evaluation::corpus_bleu;
using blip::evaluation::TokenizedCaptions;

constexpr double kTiny = 1e-15, kSmall = 1e-9;  // bleu_scorer.py's smoothing constants

}  // namespace

TEST_CASE("BLEU by hand: clipped n-gram matches, geometric mean, brevity penalty") {
  // candidate "a cat sat on the mat" against two references:
  //   1-grams: all 6 appear in a reference                               -> 6 / 6
  //   2-grams: a cat, cat sat, sat on, on the, the mat all appear         -> 5 / 5
  //   3-grams: "a cat sat" appears in neither; the other 3 do             -> 3 / 4
  //   4-grams: "cat sat on the", "sat on the mat" appear; "a cat sat on" not -> 2 / 3
  const std::vector<TokenizedCaptions> images = {
      {"a cat sat on the mat", {"the cat sat on the mat", "a cat is on the mat"}}};
  const auto scores = corpus_bleu(images);
  const double p1 = (6 + kTiny) / (6 + kSmall), p2 = (5 + kTiny) / (5 + kSmall);
  const double p3 = (3 + kTiny) / (4 + kSmall), p4 = (2 + kTiny) / (3 + kSmall);
  // c = 6 and r = 6 (both references have 6 words), yet ratio = (6 + tiny) / (6 + small) is just
  // below 1, so the reference's brevity penalty is exp(1 - 1/ratio) ~ 1 - 1.7e-10, not exactly 1.
  const double ratio = (6 + kTiny) / (6 + kSmall);
  const double penalty = std::exp(1 - 1 / ratio);
  CHECK(penalty < 1.0);
  CHECK(scores.corpus[0] == doctest::Approx(p1 * penalty).epsilon(1e-14));
  CHECK(scores.corpus[1] == doctest::Approx(std::pow(p1 * p2, 1.0 / 2) * penalty).epsilon(1e-14));
  CHECK(scores.corpus[2] == doctest::Approx(std::pow(p1 * p2 * p3, 1.0 / 3) * penalty).epsilon(1e-14));
  CHECK(scores.corpus[3] == doctest::Approx(std::pow(p1 * p2 * p3 * p4, 1.0 / 4) * penalty).epsilon(1e-14));
  CHECK(scores.corpus[2] == doctest::Approx(0.908560296));  // 0.75^(1/3)
  CHECK(scores.corpus[3] == doctest::Approx(0.840896415));  // 0.5^(1/4)
  CHECK(scores.per_image[0] == scores.corpus);              // one image: the same numbers
}

TEST_CASE("BLEU: candidate counts are clipped by the largest count in one reference") {
  // "the" 4 times; the references hold it at most twice in one caption -> 2 of 4 unigrams match.
  const auto scores = corpus_bleu({{"the the the the", {"the cat on the mat", "the dog"}}});
  const double p1 = (2 + kTiny) / (4 + kSmall);
  // closest reference length: |5 - 4| = 1 < |2 - 4| = 2 -> r = 5, c = 4: penalty exp(1 - 5/4)
  const double ratio = (4 + kTiny) / (5 + kSmall);
  CHECK(scores.reference_length == 5);
  CHECK(scores.corpus[0] == doctest::Approx(p1 * std::exp(1 - 1 / ratio)).epsilon(1e-14));
  // No bigram matches: BLEU-2 is tiny but not 0 (the reference's 1e-15 in the numerator).
  CHECK(scores.corpus[1] > 0);
  CHECK(scores.corpus[1] < 1e-6);
}

TEST_CASE("BLEU: the closest reference length, the shorter one on a tie, summed over the corpus") {
  // Image 1: c = 4, references of 3 and 5 words are equally close -> r = 3.
  // Image 2: c = 5, references of 2 and 7 words -> 7 is closer (2 < 3) -> r = 7.
  const std::vector<TokenizedCaptions> images = {{"a b c d", {"a b c", "a b c d e"}},
                                                 {"a b c d e", {"a b", "a b c d e f g"}}};
  const auto scores = corpus_bleu(images);
  CHECK(scores.candidate_length == 9);
  CHECK(scores.reference_length == 10);
  // Corpus: unigram matches 4 + 5 of 9 guesses, bigrams 3 + 4 of 7, ...; c / r = 9 / 10.
  const double ratio = (9 + kTiny) / (10 + kSmall);
  CHECK(scores.corpus[0] == doctest::Approx((9 + kTiny) / (9 + kSmall) * std::exp(1 - 1 / ratio)).epsilon(1e-14));
  // Per image: image 1 has c = 4 > r = 3, no penalty; image 2 has c / r = 5 / 7.
  CHECK(scores.per_image[0][0] == doctest::Approx((4 + kTiny) / (4 + kSmall)).epsilon(1e-14));
  CHECK(scores.per_image[1][0] ==
        doctest::Approx((5 + kTiny) / (5 + kSmall) * std::exp(1 - (7 + kSmall) / (5 + kTiny))).epsilon(1e-14));
  // The other reference-length options.
  CHECK(corpus_bleu(images, 4, blip::evaluation::ReferenceLength::kShortest).reference_length == 5);
  CHECK(corpus_bleu(images, 4, blip::evaluation::ReferenceLength::kAverage).reference_length == 4 + 4.5);
}

TEST_CASE("CIDEr-D by hand: tf-idf cosine per n-gram order, clipping, bigram-length penalty, x10") {
  // Two images, so every n-gram weight is tf * (log 2 - log df). Image 2 shares nothing with
  // image 1, so each of image 1's n-grams has df = 1 and weight tf * log 2.
  const double log2 = std::log(2.0);
  const double sigma = 6.0;
  SUBCASE("identical caption: cosine 1 for the orders it has, 0 for the others") {
    const auto scores = cider_d({{"x y", {"x y"}}, {"q", {"r"}}});
    // orders 1 and 2: cosine 1; orders 3 and 4: both vectors empty -> 0; mean = 2/4; 1 reference; x10
    CHECK(scores.per_image[0] == doctest::Approx(10 * (1 + 1 + 0 + 0) / 4.0).epsilon(1e-14));
    CHECK(scores.per_image[1] == 0);  // "q" and "r" share nothing
    CHECK(scores.corpus == doctest::Approx((5 + 0) / 2.0).epsilon(1e-14));
  }
  SUBCASE("a shorter candidate: partial cosines and the Gaussian length penalty on bigram counts") {
    const auto scores = cider_d({{"x y", {"x y z w"}}, {"q", {"r"}}});
    // order 1: candidate (x, y) . reference (x, y, z, w) = 2 log2^2 / (sqrt(2) log2 * 2 log2) = 1/sqrt(2)
    // order 2: "x y" . ("x y", "y z", "z w") = log2^2 / (log2 * sqrt(3) log2)                  = 1/sqrt(3)
    // orders 3, 4: the candidate has none -> 0
    // length = number of bigrams: 1 and 3 -> delta = -2 -> penalty exp(-4 / (2 sigma^2))
    const double penalty = std::exp(-4 / (2 * sigma * sigma));
    const double expected = 10 * (1 / std::sqrt(2.0) + 1 / std::sqrt(3.0)) / 4 * penalty;
    CHECK(scores.per_image[0] == doctest::Approx(expected).epsilon(1e-14));
    (void)log2;
  }
  SUBCASE("clipping: repeating a word does not raise the score (the -D of CIDEr-D)") {
    const auto scores = cider_d({{"x x x", {"x"}}, {"q", {"r"}}});
    // order 1: min(3 log2, log2) * log2 / (3 log2 * log2) = 1/3 (without the min it would be 1)
    // order 2: the reference has no bigram -> its norm is 0 -> 0
    // lengths in bigrams: 2 ("x x" twice) and 0 -> delta = 2
    const double expected = 10 * (1 / 3.0) / 4 * std::exp(-4 / (2 * sigma * sigma));
    CHECK(scores.per_image[0] == doctest::Approx(expected).epsilon(1e-14));
  }
  SUBCASE("several references: the similarities are averaged over them") {
    const auto one = cider_d({{"x y", {"x y"}}, {"q", {"r"}}}).per_image[0];
    const auto two = cider_d({{"x y", {"x y", "q r s"}}, {"q", {"r"}}}).per_image[0];
    // "q r s" shares nothing with "x y" but is 2 bigrams long; df changes for nothing x/y-related.
    CHECK(two == doctest::Approx(one / 2).epsilon(1e-14));
  }
  SUBCASE("a single image: log(1) = 0, every weight is 0, CIDEr-D is 0") {
    CHECK(cider_d({{"a b c", {"a b c"}}}).corpus == 0);
  }
}

TEST_CASE("BLEU and CIDEr-D agree with pycocoevalcap on random corpora") {
  const nlohmann::json data = blip::test::load_json(blip::test::test_data("evaluation/caption_metric_cases.json"));
  const nlohmann::json& cases = data.at("cases");
  REQUIRE(cases.size() >= 300);
  double worst_bleu = 0, worst_cider = 0;
  std::size_t images_checked = 0;
  for (const nlohmann::json& item : cases) {
    std::vector<TokenizedCaptions> images;
    for (std::size_t i = 0; i < item.at("candidates").size(); ++i) {
      images.push_back(
          {item.at("candidates")[i].get<std::string>(), item.at("references")[i].get<std::vector<std::string>>()});
    }
    const auto bleu = corpus_bleu(images);
    const auto cider = cider_d(images);
    for (std::size_t n = 0; n < 4; ++n) {
      worst_bleu = std::max(worst_bleu, std::abs(bleu.corpus[n] - item.at("bleu")[n].get<double>()));
      for (std::size_t i = 0; i < images.size(); ++i) {
        worst_bleu =
            std::max(worst_bleu, std::abs(bleu.per_image[i][n] - item.at("bleu_per_image")[i][n].get<double>()));
      }
    }
    worst_cider = std::max(worst_cider, std::abs(cider.corpus - item.at("cider").get<double>()));
    for (std::size_t i = 0; i < images.size(); ++i) {
      worst_cider = std::max(worst_cider, std::abs(cider.per_image[i] - item.at("cider_per_image")[i].get<double>()));
    }
    images_checked += images.size();
  }
  MESSAGE(cases.size(), " corpora, ", images_checked, " images: worst |BLEU difference| ", worst_bleu,
          ", worst |CIDEr-D difference| ", worst_cider);
  CHECK(worst_bleu <= 1e-12);
  CHECK(worst_cider <= 1e-12);
}

}  // namespace evaluation_caption_metrics_test
