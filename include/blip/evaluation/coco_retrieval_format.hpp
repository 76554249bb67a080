// blip/evaluation/coco_retrieval_format.hpp: the retrieval test set from a COCO caption file,
//
//   {"images": [{"id": 42, "file_name": "COCO_val2014_000000000042.jpg"}, ...],
//    "annotations": [{"image_id": 42, "caption": "..."}, ...]}
//
// as BLIP's retrieval datasets lay it out (data/coco_karpathy_dataset.py, flickr30k_dataset.py:
// for each image in order, its captions in order; txt2img / img2txt): the images in the order
// of "images", the texts grouped by image in annotation order. Flickr30k converted to this
// format works the same. Every image needs a caption and every caption a listed image;
// anything else is an error naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/evaluation/json_input.hpp"

namespace blip::evaluation {

struct RetrievalTestSet {
  std::vector<std::string> image_ids;     // JSON text of each image's id
  std::vector<std::string> image_files;   // each image's "file_name"
  std::vector<std::string> texts;         // the captions, grouped by image
  std::vector<std::int64_t> image_of_text;  // texts[t] describes image image_of_text[t]
};

inline RetrievalTestSet read_coco_retrieval_set(const nlohmann::json& annotations, const std::string& name) {
  using namespace json_input;
  check(annotations.is_object() && annotations.contains("images") && annotations.contains("annotations"), name,
        ": expected a COCO caption annotation file: a JSON object with \"images\" and \"annotations\" arrays");
  const nlohmann::json& images = array_member(annotations, "images", name);
  const nlohmann::json& captions = array_member(annotations, "annotations", name);
  RetrievalTestSet set;
  std::map<std::string, std::size_t> image_index;
  for (std::size_t i = 0; i < images.size(); ++i) {
    const std::string where = place(name, "images", i);
    const std::string id = id_member(images[i], "id", where);
    check(image_index.emplace(id, set.image_ids.size()).second, where, ": image id ", id, " listed twice");
    set.image_ids.push_back(id);
    set.image_files.push_back(string_member(images[i], "file_name", where));
  }
  check(!set.image_ids.empty(), name, ": no images");
  std::vector<std::vector<std::string>> captions_of_image(set.image_ids.size());
  for (std::size_t i = 0; i < captions.size(); ++i) {
    const std::string where = place(name, "annotations", i);
    const std::string id = id_member(captions[i], "image_id", where);
    const auto found = image_index.find(id);
    check(found != image_index.end(), where, ": image_id ", id, " is not among the \"images\"");
    std::string caption = string_member(captions[i], "caption", where);
    check(!caption.empty(), where, ": empty caption");
    captions_of_image[found->second].push_back(std::move(caption));
  }
  for (std::size_t image = 0; image < captions_of_image.size(); ++image) {
    check(!captions_of_image[image].empty(), name, ": image ", set.image_ids[image], " (", set.image_files[image],
          ") has no caption; every image of a retrieval test set needs one");
    for (std::string& caption : captions_of_image[image]) {
      set.texts.push_back(std::move(caption));
      set.image_of_text.push_back(static_cast<std::int64_t>(image));
    }
  }
  return set;
}

}  // namespace blip::evaluation
