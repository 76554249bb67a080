// blip/tasks/image_text_matcher.hpp: image-text matching with a BLIP
// retrieval model (e.g. Salesforce/blip-itm-base-coco): for every (image,
// text) pair, the ITM head's match probability and the ITC cosine similarity.
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
    matcher.folder_ = open_blip_model_folder(model_dir, options, "BlipForImageTextRetrieval");
    const auto started = std::chrono::steady_clock::now();
    matcher.model_ = std::make_shared<const BlipForImageTextRetrieval>(
        BlipForImageTextRetrieval::load(*matcher.folder_.weights, matcher.folder_.model_config));
    log_step(options.verbose, "prepared the model", started);
    return matcher;
  }

  MatchTable match(const std::vector<Image>& images, const std::vector<std::string>& texts) const {
    check(!texts.empty(), "image-text matching: no texts given");
    for (std::size_t index = 0; index < texts.size(); ++index) {
      check(!texts[index].empty(), "image-text matching: text ", index, " is empty");
    }
    const Tensor<float> pixels = make_pixel_values(images, folder_.image_processor);
    const ImageEmbeddings embeddings = model_->vision_model.forward(pixels);
    const BatchEncoding batch = encode_batch(*folder_.tokenizer, texts, true);
    const std::int64_t image_count = static_cast<std::int64_t>(images.size());
    const std::int64_t text_count = batch.input_ids.dim(0), length = batch.input_ids.dim(1);

    // ITM needs the text encoder once per (image, text) pair: row i*T + t
    // holds text t and cross-attends to image i.
    Tensor<std::int64_t> pair_ids(Shape{image_count * text_count, length});
    Tensor<std::int64_t> pair_mask(Shape{image_count * text_count, length});
    for (std::int64_t image = 0; image < image_count; ++image) {
      std::copy_n(batch.input_ids.data(), text_count * length, pair_ids.data() + image * text_count * length);
      std::copy_n(batch.attention_mask.data(), text_count * length, pair_mask.data() + image * text_count * length);
    }
    const BlipForImageTextRetrieval::MatchOutput matching = model_->image_text_matching(embeddings, pair_ids, pair_mask);
    const BlipForImageTextRetrieval::ContrastiveOutput contrastive =
        model_->image_text_contrastive(embeddings, batch.input_ids, batch.attention_mask);

    MatchTable table;
    table.itm_logits = matching.logits.reshape(Shape{image_count, text_count, 2});
    table.match_probability = Tensor<float>(Shape{image_count, text_count});
    for (std::int64_t pair = 0; pair < image_count * text_count; ++pair) {
      const float no_match = matching.logits.data()[2 * pair], match = matching.logits.data()[2 * pair + 1];
      table.match_probability.data()[pair] = 1.0f / (1.0f + std::exp(no_match - match));
    }
    table.similarity = contrastive.similarity;
    return table;
  }

  const BlipForImageTextRetrieval& model() const { return *model_; }
  const BlipModelFolder& folder() const { return folder_; }

 private:
  BlipModelFolder folder_;
  std::shared_ptr<const BlipForImageTextRetrieval> model_;
};

}  // namespace blip
