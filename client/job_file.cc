#include "client/job_file.h"

#include <yaml.h>

#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"

namespace muppet::client {
namespace {

using nlohmann::json;

// Builds JSON from libyaml's event stream. Plain (unquoted) scalars that read as a boolean,
// null or number become one; everything else is a string.
class YamlToJson {
 public:
  explicit YamlToJson(const std::string& path) : path_(path) {}

  absl::StatusOr<json> Convert(const std::string& text) {
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
    absl::StatusOr<json> result = Parse(parser);
    yaml_parser_delete(&parser);
    return result;
  }

 private:
  absl::StatusOr<json> Parse(yaml_parser_t& parser) {
    std::vector<json> stack;  // Open collections; a mapping's pending key is stored beside it.
    std::vector<std::optional<std::string>> keys;  // Per open mapping: its pending key.
    std::vector<std::map<std::string, size_t>> lines;  // Per open mapping: line of each key.
    std::optional<json> root;
    while (true) {
      yaml_event_t event;
      if (!yaml_parser_parse(&parser, &event)) {
        return absl::InvalidArgumentError(absl::StrCat(
            path_, ":", parser.problem_mark.line + 1, ":", parser.problem_mark.column + 1,
            ": YAML syntax error: ", parser.problem ? parser.problem : "unknown"));
      }
      const yaml_event_type_t type = event.type;
      std::optional<json> value;
      if (type == YAML_SCALAR_EVENT) {
        value = Scalar(event);
      } else if (type == YAML_MAPPING_START_EVENT) {
        stack.push_back(json::object());
        keys.emplace_back();
        lines.emplace_back();
      } else if (type == YAML_SEQUENCE_START_EVENT) {
        stack.push_back(json::array());
        keys.emplace_back();
        lines.emplace_back();
      } else if (type == YAML_MAPPING_END_EVENT || type == YAML_SEQUENCE_END_EVENT) {
        value = std::move(stack.back());
        stack.pop_back();
        keys.pop_back();
        lines.pop_back();
      } else if (type == YAML_ALIAS_EVENT) {
        const size_t line = event.start_mark.line + 1;
        yaml_event_delete(&event);
        return absl::InvalidArgumentError(
            absl::StrCat(path_, ":", line, ": YAML aliases are not supported in job files"));
      }
      const size_t line = event.start_mark.line + 1;
      yaml_event_delete(&event);
      if (type == YAML_STREAM_END_EVENT) break;
      if (!value) continue;
      if (stack.empty()) {
        if (root) {
          return absl::InvalidArgumentError(
              absl::StrCat(path_, ":", line, ": a job file holds one document"));
        }
        root = std::move(*value);
      } else if (stack.back().is_array()) {
        stack.back().push_back(std::move(*value));
      } else if (!keys.back()) {
        if (!value->is_string()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path_, ":", line, ": mapping keys must be plain names"));
        }
        const std::string key = value->get<std::string>();
        // YAML requires unique keys, and a repeated one would silently override the first.
        if (const auto [first, inserted] = lines.back().emplace(key, line); !inserted) {
          return absl::InvalidArgumentError(absl::StrCat(path_, ":", line, ": duplicate key \"",
                                                         key, "\" (first on line ", first->second,
                                                         ")"));
        }
        keys.back() = key;
      } else {
        stack.back()[*keys.back()] = std::move(*value);
        keys.back().reset();
      }
    }
    if (!root) return absl::InvalidArgumentError(absl::StrCat(path_, ": the file is empty"));
    return *root;
  }

  static json Scalar(const yaml_event_t& event) {
    const std::string text(reinterpret_cast<const char*>(event.data.scalar.value),
                           event.data.scalar.length);
    if (event.data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return text;
    if (text == "true" || text == "True") return true;
    if (text == "false" || text == "False") return false;
    if (text == "null" || text == "~") return nullptr;
    int64_t i;
    if (absl::SimpleAtoi(text, &i)) return i;
    double d;
    if (absl::SimpleAtod(text, &d) && text.find_first_of("0123456789") != std::string::npos) {
      return d;
    }
    return text;
  }

  const std::string path_;
};

// The first key that a JSON object of `text` repeats, as an error naming it and its object;
// OK for text without one (syntax errors are left to the JSON-to-JobSpec parser, whose
// messages say more).
absl::Status CheckJsonKeysUnique(const std::string& path, const std::string& text) {
  std::vector<std::set<std::string>> objects;  // Keys of each open object.
  std::vector<std::string> where;              // The key path of each open object.
  std::string last_key, duplicate;
  const json::parser_callback_t callback = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      where.push_back(where.empty()       ? "the top level"
                      : where.size() == 1 ? last_key
                                          : absl::StrCat(where.back(), ".", last_key));
      objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      objects.pop_back();
      where.pop_back();
    } else if (event == json::parse_event_t::key) {
      last_key = parsed.get<std::string>();
      if (!objects.back().insert(last_key).second && duplicate.empty()) {
        duplicate = absl::StrCat("duplicate key \"", last_key, "\" in ", where.back());
      }
    }
    return true;
  };
  json::parse(text, callback, /*allow_exceptions=*/false);
  if (duplicate.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", duplicate));
}

}  // namespace

absl::StatusOr<v1::JobSpec> ParseJobFile(const std::string& path, const std::string& text) {
  std::string json_text;
  if (absl::EndsWith(path, ".json")) {
    if (absl::Status unique = CheckJsonKeysUnique(path, text); !unique.ok()) return unique;
    json_text = text;
  } else {
    absl::StatusOr<json> converted = YamlToJson(path).Convert(text);
    if (!converted.ok()) return converted.status();
    if (!converted->is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": a job file is a mapping of JobSpec fields"));
    }
    json_text = converted->dump();
  }
  v1::JobSpec spec;
  const auto status = google::protobuf::util::JsonStringToMessage(json_text, &spec);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a valid JobSpec: ", status.message().as_string()));
  }
  return spec;
}

absl::StatusOr<v1::JobSpec> ReadJobFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read the job file"));
  std::stringstream text;
  text << in.rdbuf();
  return ParseJobFile(path, text.str());
}

}  // namespace muppet::client
