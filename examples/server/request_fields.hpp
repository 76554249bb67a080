// examples/server/request_fields.hpp: what blip_server reads from a request
// body, the same way whichever form it came in:
//   * multipart/form-data: the image as the file field `image`, every other
//     field as text;
//   * application/json: an object; the image base64-encoded in `image_base64`,
//     texts as strings, numbers as numbers (or strings), do_sample as a
//     boolean, suppress_tokens as an array of integers (or "1,2,3").
// Every refusal is a RequestError: an HTTP status, a message, and the field at
// fault, which the server sends back as JSON.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "blip/core/error.hpp"
#include "blip/io/json_file.hpp"
#include "blip/io/safetensors.hpp"             // detail::first_invalid_utf8
#include "blip/text/precompiled_charsmap.hpp"  // text_detail::decode_base64

namespace blip::server {

// A request the server refuses: `status` (400, 404, 405, ...), a message, and
// the request field at fault ("" when none is).
class RequestError : public Error {
 public:
  RequestError(int status, std::string field, const std::string& message)
      : Error(message), status_(status), field_(std::move(field)) {}
  int status() const { return status_; }
  const std::string& field() const { return field_; }

 private:
  int status_;
  std::string field_;
};

template <class... Parts>
[[noreturn]] void refuse(int status, const std::string& field, Parts&&... parts) {
  throw RequestError(status, field, detail::concat(std::forward<Parts>(parts)...));
}

// The fields of one request body: the image bytes (still encoded) and the
// other fields as text.
struct RequestFields {
  std::optional<std::string> image;  // the encoded image file: PNG, JPEG, ...
  std::string image_field;           // "image" (multipart) or "image_base64" (JSON), for messages
  std::map<std::string, std::string> text;

  bool has(const std::string& name) const { return text.count(name) != 0; }
  // A text field the route needs: present and not empty.
  const std::string& required(const std::string& name) const {
    const auto found = text.find(name);
    if (found == text.end()) refuse(400, name, "missing field \"", name, "\"");
    if (found->second.empty()) refuse(400, name, "field \"", name, "\" is empty");
    return found->second;
  }
  const std::string& required_image() const {
    if (!image)
      refuse(400, "image",
             "missing image: send it as the multipart file field \"image\" or base64 in the JSON "
             "field \"image_base64\"");
    return *image;
  }
};

namespace request_detail {

// Texts go to the tokenizer and come back in JSON answers: UTF-8 only. (The
// command-line programs drop invalid bytes with a warning; a client can
// fix its request, so the server refuses it, naming the byte.)
inline void require_utf8_field(const std::string& name, const std::string& value) {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(value.data());
  const std::size_t bad = detail::first_invalid_utf8(bytes, value.size());
  if (bad != value.size()) refuse(400, name, "field \"", name, "\" is not valid UTF-8 (byte ", bad, ")");
}

// A JSON value of a non-image field as the text the command-line parser reads.
inline std::string field_text(const std::string& name, const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number()) return value.dump();
  if (value.is_array()) {
    // suppress_tokens: [1, 2, 3] -> "1,2,3"
    std::string joined;
    for (const nlohmann::json& item : value) {
      if (!item.is_number_integer())
        refuse(400, name, "field \"", name, "\" must be an array of integers, got an element of type ",
               item.type_name());
      joined += (joined.empty() ? "" : ",") + item.dump();
    }
    return joined;
  }
  refuse(400, name, "field \"", name, "\" must be a string, number or boolean, got ", value.type_name());
}

}  // namespace request_detail

// A multipart/form-data body, as httplib parsed it.
template <class MultipartFiles>
RequestFields fields_from_form(const MultipartFiles& files) {
  RequestFields fields;
  fields.image_field = "image";
  for (const auto& [name, part] : files) {
    if (files.count(name) > 1) refuse(400, name, "field \"", name, "\" is given ", files.count(name), " times");
    if (name == "image") {
      fields.image = part.content;
    } else {
      request_detail::require_utf8_field(name, part.content);
      fields.text[name] = part.content;
    }
  }
  return fields;
}

// An application/json body.
inline RequestFields fields_from_json(const std::string& body) {
  nlohmann::json document;
  try {
    document = parse_json_text(body, "request body");
  } catch (const Error& error) {
    refuse(400, "", error.what());
  }
  if (!document.is_object()) refuse(400, "", "request body: expected a JSON object, got ", document.type_name());
  RequestFields fields;
  fields.image_field = "image_base64";
  for (const auto& [name, value] : document.items()) {
    if (name == "image_base64") {
      if (!value.is_string()) refuse(400, name, "field \"image_base64\" must be a string, got ", value.type_name());
      try {
        fields.image = text_detail::decode_base64(value.get_ref<const std::string&>(), "field \"image_base64\"");
      } catch (const Error& error) {
        refuse(400, name, error.what(), " (standard base64 with '=' padding, no line breaks)");
      }
    } else if (name == "image") {
      refuse(400, name, "in a JSON body the image goes base64-encoded in \"image_base64\"");
    } else {
      fields.text[name] = request_detail::field_text(name, value);  // JSON strings are UTF-8 already
    }
  }
  return fields;
}

// Refuses any field a route does not take (a misspelt "num_beam" must not be
// silently ignored).
inline void check_known_fields(const RequestFields& fields, const std::set<std::string>& known,
                               const std::string& route) {
  for (const auto& [name, value] : fields.text) {
    if (known.count(name)) continue;
    std::string list;
    for (const std::string& field : known) list += (list.empty() ? "" : ", ") + field;
    refuse(400, name, "unknown field \"", clip(name), "\" for ", route, " (it takes ", list, ")");
  }
}

}  // namespace blip::server
