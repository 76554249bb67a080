// blip/evaluation/coco_caption_format.hpp: the COCO caption files, read as pycocotools' COCO and
// COCO.loadRes read them for pycocoevalcap's example (coco_eval_example.py):
//
//   annotations: {"images": [{"id": 42, ...}, ...], "annotations": [{"image_id": 42, "caption": "..."}, ...]}
//   results:     [{"image_id": 42, "caption": "..."}, ...]
//
// The images scored are those present in the results (the example sets params['image_id'] to
// coco_result.getImgIds()), in the order of the annotation file's "images" list; each has its
// reference captions in file order. Every result image must be an image of the annotation file
// (loadRes asserts that), have at least one reference caption and exactly one result caption
// (pycocoevalcap's scorers assert both); anything else is an error that names the file.
#pragma once

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/evaluation/json_input.hpp"

namespace blip::evaluation {

struct CocoCaptionCorpus {
  std::vector<std::string> image_ids;                // JSON text of each scored image's id, in scoring order
  std::vector<std::vector<std::string>> references;  // raw reference captions per image
  std::vector<std::string> candidates;               // raw result caption per image
};

inline CocoCaptionCorpus read_coco_captions(const nlohmann::json& annotations, const std::string& annotations_name,
                                            const nlohmann::json& results, const std::string& results_name) {
  using namespace json_input;
  check(annotations.is_object() && annotations.contains("images") && annotations.contains("annotations"),
        annotations_name,
        ": expected a COCO caption annotation file: a JSON object with \"images\" and \"annotations\" arrays");
  const nlohmann::json& images = array_member(annotations, "images", annotations_name);
  const nlohmann::json& captions = array_member(annotations, "annotations", annotations_name);
  check(results.is_array(), results_name,
        ": expected caption results: a JSON array of {\"image_id\", \"caption\"} objects, got ", results.type_name());
  check(!results.empty(), results_name, ": no results (an empty array)");

  std::map<std::string, std::string> result_caption;  // image id -> caption
  for (std::size_t i = 0; i < results.size(); ++i) {
    const std::string where = place(results_name, "", i);
    const std::string id = id_member(results[i], "image_id", where);
    const std::string caption = string_member(results[i], "caption", where);
    check(result_caption.emplace(id, caption).second, where, ": a second caption for image_id ", id,
          " (the COCO caption evaluation scores exactly one caption per image)");
  }
  std::map<std::string, std::vector<std::string>> reference_captions;
  for (std::size_t i = 0; i < captions.size(); ++i) {
    const std::string where = place(annotations_name, "annotations", i);
    const std::string id = id_member(captions[i], "image_id", where);
    std::string caption = string_member(captions[i], "caption", where);
    if (result_caption.count(id)) reference_captions[id].push_back(std::move(caption));
  }
  CocoCaptionCorpus corpus;
  std::map<std::string, bool> listed;
  for (std::size_t i = 0; i < images.size(); ++i) {
    const std::string id = id_member(images[i], "id", place(annotations_name, "images", i));
    if (!result_caption.count(id) || listed[id]) continue;
    listed[id] = true;
    check(reference_captions.count(id), annotations_name, ": no reference caption for image_id ", id, ", which ",
          results_name, " captions");
    corpus.image_ids.push_back(id);
    corpus.references.push_back(reference_captions[id]);
    corpus.candidates.push_back(result_caption[id]);
  }
  for (const auto& [id, caption] : result_caption) {
    check(listed.count(id), results_name, ": image_id ", id, " is not among the \"images\" of ", annotations_name);
  }
  return corpus;
}

}  // namespace blip::evaluation
