// blip/tasks/image_text_matcher.hpp: image-text matching with a BLIP
// retrieval model (e.g. Salesforce/blip-itm-base-coco) or BLIP-2's Q-Former
// (Salesforce/blip2-itm-vit-g): for every (image, text) pair, the ITM head's
// match probability and the ITC cosine similarity (BLIP-2: the best of its
// query tokens).
//
//   blip::ImageTextMatcher matcher = blip::ImageTextMatcher::load("models/blip-itm-base-coco");
//   blip::MatchTable table = matcher.match({image}, {"a cat on a sofa", "a red car"});
//   float p = table.match_probability.at(0, 0);
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "blip/tasks/model_folder.hpp"

namespace blip {

struct MatchTable {
  Tensor<float> match_probability;  // [images, texts] softmax(itm_logits)[:, 1]
  Tensor<float> itm_logits;         // [images, texts, 2] raw ITM head output (no match, match)
  Tensor<float> similarity;         // [images, texts] ITC cosine similarity of the projected features
};

class ImageTextMatcher {
 public:
  static ImageTextMatcher load(const std::string& model_dir, const LoadOptions& options = {}) {
    ImageTextMatcher matcher;
    matcher.folder_ =
        open_blip_model_folder(model_dir, options, {"BlipForImageTextRetrieval", "Blip2ForImageTextRetrieval"});
    const auto started = std::chrono::steady_clock::now();
    if (blip::is_blip2(matcher.folder_)) {
      matcher.blip2_model_ = std::make_shared<const Blip2ForImageTextRetrieval>(
          Blip2ForImageTextRetrieval::load(*matcher.folder_.weights, matcher.folder_.blip2_config));
    } else {
      matcher.model_ = std::make_shared<const BlipForImageTextRetrieval>(
          BlipForImageTextRetrieval::load(*matcher.folder_.weights, matcher.folder_.model_config));
    }
    log_step(options.verbose, "prepared the model", started);
    return matcher;
  }

  MatchTable match(const std::vector<Image>& images, const std::vector<std::string>& texts) const {
    return match(make_pixel_values(images, folder_.image_processor), texts);
  }

  // The same from pixel_values [B, 3, H, W] made with folder().image_processor,
  // e.g. by load_preprocessed_batch, which never holds more than one decoded image.
  MatchTable match(const Tensor<float>& pixels, const std::vector<std::string>& texts) const {
    check(!texts.empty(), "image-text matching: no texts given");
    for (std::size_t index = 0; index < texts.size(); ++index) {
      check(!texts[index].empty(), "image-text matching: text ", index, " is empty");
    }
    const BatchEncoding batch = encode_batch(*folder_.tokenizer, texts, true);
    const std::int64_t image_count = pixels.dim(0);
    const std::int64_t text_count = batch.input_ids.dim(0);
    if (blip2_model_) return match_blip2(pixels, batch);
    const ImageEmbeddings embeddings = model_->vision_model.forward(pixels);

    // ITM needs the text encoder once per (image, text) pair: row i*T + t
    // holds text t and cross-attends to image i.
    const BatchEncoding pairs = repeat_texts(batch, image_count);
    const BlipForImageTextRetrieval::MatchOutput matching =
        model_->image_text_matching(embeddings, pairs.input_ids, pairs.attention_mask);
    const BlipForImageTextRetrieval::ContrastiveOutput contrastive =
        model_->image_text_contrastive(embeddings, batch.input_ids, batch.attention_mask);

    return make_table(matching.logits, contrastive.similarity, image_count, text_count);
  }

  // The unit vectors ITC compares, for callers that index images and texts
  // apart (a retrieval index, a server's /embed): match()'s similarity is the
  // cosine of an image's and a text's embeddings (BLIP-2: the best of the
  // image's query-token cosines).
  //   BLIP:   [images, D], one vector per image (D = image_text_hidden_size);
  //   BLIP-2: [images, Q, D], one vector per query token.
  // From pixel_values [B, 3, H, W] made with folder().image_processor.
  Tensor<float> image_embeddings(const Tensor<float>& pixels) const {
    if (blip2_model_) return blip2_model_->image_features(blip2_model_->vision_model.forward(pixels));
    return model_->image_features(model_->vision_model.forward(pixels));
  }
  // [texts, D], one unit vector per text.
  Tensor<float> text_embeddings(const std::vector<std::string>& texts) const {
    check(!texts.empty(), "text embeddings: no texts given");
    for (std::size_t index = 0; index < texts.size(); ++index) {
      check(!texts[index].empty(), "text embeddings: text ", index, " is empty");
    }
    const BatchEncoding batch = encode_batch(*folder_.tokenizer, texts, true);
    if (blip2_model_) return blip2_model_->text_features(batch.input_ids, batch.attention_mask);
    return model_->text_features(batch.input_ids, batch.attention_mask);
  }

  // ITM re-ranking of retrieval candidates (evaluation/retrieval.hpp): the ITM head's "match"
  // logit, itm_head(...)[:, 1] before any softmax (the value BLIP's retrieval evaluation adds to
  // the ITC score), of ONE image (pixel_values [1, 3, H, W]) against each text. The vision
  // encoder runs once; the texts `chunk` at a time, so memory is one chunk of pairs (a
  // re-ranked COCO image meets ~1,500 texts; cross-attention scores for all at once would take GBs).
  std::vector<float> match_logits(const Tensor<float>& pixels, const std::vector<std::string>& texts,
                                  std::int64_t chunk = 32) const {
    check(pixels.rank() == 4 && pixels.dim(0) == 1, "match_logits: pixel_values must hold one image [1, 3, H, W], got ",
          pixels.shape());
    check(chunk > 0, "match_logits: chunk must be > 0, got ", chunk);
    for (std::size_t index = 0; index < texts.size(); ++index)
      check(!texts[index].empty(), "match_logits: text ", index, " is empty");
    const ImageEmbeddings embeddings =
        blip2_model_ ? blip2_model_->vision_model.forward(pixels) : model_->vision_model.forward(pixels);
    std::vector<float> logits;
    logits.reserve(texts.size());
    for (std::size_t first = 0; first < texts.size(); first += static_cast<std::size_t>(chunk)) {
      const std::size_t count = std::min(texts.size() - first, static_cast<std::size_t>(chunk));
      const BatchEncoding batch =
          encode_batch(*folder_.tokenizer, std::vector<std::string>(texts.begin() + first, texts.begin() + first + count), true);
      Tensor<float> chunk_logits;
      if (blip2_model_) {
        // BLIP-2 ITM pairs text row r with image row r: the image's states once per text.
        const Tensor<float>& states = embeddings.last_hidden_state;
        ImageEmbeddings repeated;
        repeated.last_hidden_state =
            Tensor<float>(Shape{static_cast<std::int64_t>(count), states.dim(1), states.dim(2)});
        for (std::size_t row = 0; row < count; ++row)
          std::copy_n(states.data(), states.numel(), repeated.last_hidden_state.data() + row * states.numel());
        chunk_logits = blip2_model_->image_text_matching(repeated, batch.input_ids, batch.attention_mask).logits;
      } else {
        // BLIP scores text row r against image r / (rows / images): one image, all rows.
        chunk_logits = model_->image_text_matching(embeddings, batch.input_ids, batch.attention_mask).logits;
      }
      for (std::size_t row = 0; row < count; ++row) logits.push_back(chunk_logits.at(static_cast<std::int64_t>(row), 1));
    }
    return logits;
  }

  bool is_blip2() const { return blip2_model_ != nullptr; }
  const BlipForImageTextRetrieval& model() const {
    check(model_ != nullptr, folder_.directory, " holds a BLIP-2 model: use blip2_model()");
    return *model_;
  }
  const Blip2ForImageTextRetrieval& blip2_model() const {
    check(blip2_model_ != nullptr, folder_.directory, " holds a BLIP model: use model()");
    return *blip2_model_;
  }
  const BlipModelFolder& folder() const { return folder_; }

 private:
  // Row i*T + t of the result holds text t (for image i): ITM runs once per pair.
  static BatchEncoding repeat_texts(const BatchEncoding& batch, std::int64_t image_count) {
    const std::int64_t text_count = batch.input_ids.dim(0), length = batch.input_ids.dim(1);
    BatchEncoding pairs{Tensor<std::int64_t>(Shape{image_count * text_count, length}),
                        Tensor<std::int64_t>(Shape{image_count * text_count, length})};
    for (std::int64_t image = 0; image < image_count; ++image) {
      std::copy_n(batch.input_ids.data(), text_count * length, pairs.input_ids.data() + image * text_count * length);
      std::copy_n(batch.attention_mask.data(), text_count * length,
                  pairs.attention_mask.data() + image * text_count * length);
    }
    return pairs;
  }

  // ITM logits [pairs, 2] and ITC similarity [images, texts] into the table.
  static MatchTable make_table(const Tensor<float>& itm_logits, const Tensor<float>& similarity,
                               std::int64_t image_count, std::int64_t text_count) {
    MatchTable table;
    table.itm_logits = itm_logits.reshape(Shape{image_count, text_count, 2});
    table.match_probability = Tensor<float>(Shape{image_count, text_count});
    for (std::int64_t pair = 0; pair < image_count * text_count; ++pair) {
      const float no_match = itm_logits.data()[2 * pair], match = itm_logits.data()[2 * pair + 1];
      table.match_probability.data()[pair] = 1.0f / (1.0f + std::exp(no_match - match));
    }
    table.similarity = similarity;
    return table;
  }

  // BLIP-2 ITM pairs text row r with image row r, so each (image, text) pair
  // gets its own row: the image embeddings are repeated once per text.
  MatchTable match_blip2(const Tensor<float>& pixels, const BatchEncoding& batch) const {
    const ImageEmbeddings embeddings = blip2_model_->vision_model.forward(pixels);
    const std::int64_t image_count = pixels.dim(0), text_count = batch.input_ids.dim(0);
    const Tensor<float>& image_states = embeddings.last_hidden_state;
    const std::int64_t per_image = image_states.numel() / image_count;
    ImageEmbeddings pairs;
    pairs.last_hidden_state = Tensor<float>(Shape{image_count * text_count, image_states.dim(1), image_states.dim(2)});
    for (std::int64_t pair = 0; pair < image_count * text_count; ++pair) {
      std::copy_n(image_states.data() + (pair / text_count) * per_image, per_image,
                  pairs.last_hidden_state.data() + pair * per_image);
    }
    const BatchEncoding pair_texts = repeat_texts(batch, image_count);
    const Blip2ForImageTextRetrieval::MatchOutput matching =
        blip2_model_->image_text_matching(pairs, pair_texts.input_ids, pair_texts.attention_mask);
    const Blip2ForImageTextRetrieval::ContrastiveOutput contrastive =
        blip2_model_->image_text_contrastive(embeddings, batch.input_ids, batch.attention_mask);
    return make_table(matching.logits, contrastive.similarity, image_count, text_count);
  }

  BlipModelFolder folder_;
  std::shared_ptr<const BlipForImageTextRetrieval> model_;          // BLIP folders
  std::shared_ptr<const Blip2ForImageTextRetrieval> blip2_model_;  // BLIP-2 folders
};

}  // namespace blip
