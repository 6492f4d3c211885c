#include "build/record.h"

#include "core/error.h"
#include "oci/model.h"

namespace kiln {

using nlohmann::json;

std::string BuildRecord::ToJson() const {
  auto named = [](const std::vector<Named>& list) {
    json a = json::array();
    for (const auto& n : list)
      a.push_back({{"name", n.name}, {"sha256", n.sha256}});
    return a;
  };
  json layers_json = json::array();
  for (const auto& l : layers) {
    layers_json.push_back({{"name", l.name},
                           {"digest", l.digest.ToString()},
                           {"diffId", l.diff_id.ToString()},
                           {"fromBase", l.from_base}});
  }
  json packages_json = json::array();
  for (const auto& p : packages) {
    packages_json.push_back({{"name", p.name},
                             {"version", p.version},
                             {"architecture", p.architecture},
                             {"sha256", p.sha256},
                             {"license", p.license},
                             {"source", p.source},
                             {"download", p.download}});
  }
  json j = {{"format", "kiln-build-record"},
            {"version", 1},
            {"kiln", kiln_version},
            {"image", image},
            {"imageVersion", version},
            {"templates", named(templates)},
            {"args", args},
            {"sets", sets},
            {"buildDate", build_date},
            {"platform", platform},
            {"compression", compression},
            {"compressionLevel", compression_level},
            {"base", base},
            {"baseDigest", base_digest},
            {"inputs", named(inputs)},
            {"packages", packages_json},
            {"layers", layers_json}};
  return CanonicalJson(j);
}

BuildRecord BuildRecord::Parse(std::string_view text, const std::string& what) {
  json j = ParseJson(text, what);
  if (!j.is_object() || j.value("format", "") != "kiln-build-record")
    throw UserError(what + " is not a kiln build record");
  if (j.value("version", 0) != 1)
    throw UserError(what + ": build record version " +
                    j.value("version", json()).dump() +
                    " is not one this kiln reads");
  BuildRecord r;
  try {
    auto named = [](const json& a) {
      std::vector<Named> out;
      for (const auto& n : a)
        out.push_back({n.at("name").get<std::string>(),
                       n.at("sha256").get<std::string>()});
      return out;
    };
    r.kiln_version = j.at("kiln").get<std::string>();
    r.image = j.at("image").get<std::string>();
    r.version = j.at("imageVersion").get<std::string>();
    r.templates = named(j.at("templates"));
    r.args = j.at("args").get<std::map<std::string, std::string>>();
    r.sets = j.at("sets").get<std::map<std::string, std::string>>();
    r.build_date = j.at("buildDate").get<int64_t>();
    r.platform = j.at("platform").get<std::string>();
    r.compression = j.at("compression").get<std::string>();
    r.compression_level = j.at("compressionLevel").get<int>();
    r.base = j.at("base").get<std::string>();
    r.base_digest = j.at("baseDigest").get<std::string>();
    r.inputs = named(j.at("inputs"));
    for (const auto& p : j.value("packages", json::array())) {
      r.packages.push_back({p.at("name"), p.at("version"), p.at("architecture"),
                            p.at("sha256"), p.at("license"),
                            p.value("source", ""), p.value("download", "")});
    }
    for (const auto& l : j.at("layers")) {
      r.layers.push_back({l.at("name").get<std::string>(),
                          Digest::Parse(l.at("digest").get<std::string>()),
                          Digest::Parse(l.at("diffId").get<std::string>()),
                          l.at("fromBase").get<bool>()});
    }
  } catch (const json::exception& e) {
    throw UserError(what + ": malformed build record (" + e.what() + ")");
  }
  return r;
}

}  // namespace kiln
