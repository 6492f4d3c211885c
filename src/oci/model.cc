#include "oci/model.h"

#include <algorithm>
#include <ctime>

#include "core/error.h"
#include "core/strings.h"

namespace kiln {

using nlohmann::json;

namespace {

// Sizes beyond this are absurd for one blob and would overflow later
// arithmetic.
constexpr int64_t kMaxBlobSize = int64_t{1} << 50;

const json& Field(const json& j, const char* key, const std::string& what) {
  auto it = j.find(key);
  if (it == j.end())
    throw UserError(what + ": missing \"" + std::string(key) + "\"");
  return *it;
}

std::string String(const json& j, const char* key, const std::string& what,
                   bool required = false) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required)
      throw UserError(what + ": missing \"" + std::string(key) + "\"");
    return "";
  }
  if (!it->is_string())
    throw UserError(what + ": \"" + std::string(key) + "\" must be a string");
  return it->get<std::string>();
}

std::map<std::string, std::string> StringMap(const json& j, const char* key,
                                             const std::string& what) {
  std::map<std::string, std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_object())
    throw UserError(what + ": \"" + std::string(key) + "\" must be an object");
  for (auto& [k, v] : it->items()) {
    if (!v.is_string())
      throw UserError(what + ": " + key + "." + k + " must be a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

std::optional<std::vector<std::string>> StringList(const json& j,
                                                   const char* key,
                                                   const std::string& what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_array())
    throw UserError(what + ": \"" + std::string(key) + "\" must be a list");
  std::vector<std::string> out;
  for (const auto& v : *it) {
    if (!v.is_string())
      throw UserError(what + ": \"" + std::string(key) +
                      "\" must hold strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<std::string> KeysOf(const json& j, const char* key,
                                const std::string& what) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_object())
    throw UserError(what + ": \"" + std::string(key) + "\" must be an object");
  for (auto& [k, v] : it->items()) out.push_back(k);
  std::sort(out.begin(), out.end());
  return out;
}

void CheckSchema(const json& j, const std::string& what) {
  if (!j.is_object()) throw UserError(what + ": not a JSON object");
  auto it = j.find("schemaVersion");
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() != 2) {
    throw UserError(what + ": schemaVersion must be 2");
  }
}

json Annotated(json j, const std::map<std::string, std::string>& annotations) {
  if (!annotations.empty()) j["annotations"] = annotations;
  return j;
}

// Writing JSON recurses once per level (and so does kiln diff): a document
// nested deeper than any real one is refused before it is parsed, not left to
// overflow the stack when it is written again (an image config's unknown
// fields are kept).
constexpr int kMaxJsonDepth = 512;

bool TooDeep(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

json Set(const std::vector<std::string>& keys) {
  json j = json::object();
  for (const auto& k : keys) j[k] = json::object();
  return j;
}

}  // namespace

bool IsManifestType(std::string_view t) {
  return t == media::kManifest || t == media::kDockerManifest;
}
bool IsIndexType(std::string_view t) {
  return t == media::kIndex || t == media::kDockerManifestList;
}

LayerCompression LayerCompressionOf(std::string_view t) {
  if (t == media::kLayerGzip || t == media::kDockerLayerGzip ||
      t == media::kDockerForeignLayerGzip) {
    return LayerCompression::kGzip;
  }
  if (t == media::kLayerZstd) return LayerCompression::kZstd;
  if (t == media::kLayerTar) return LayerCompression::kNone;
  return LayerCompression::kUnknown;
}

const char* LayerMediaType(Compression c) {
  return c == Compression::kZstd ? media::kLayerZstd : media::kLayerGzip;
}

std::string CanonicalJson(const json& value) {
  try {
    return value.dump();
  } catch (const json::type_error& e) {
    throw UserError(std::string("a string is not valid UTF-8: ") + e.what());
  }
}

json ParseJson(std::string_view text, const std::string& what) {
  if (TooDeep(text)) {
    throw UserError(what + ": invalid JSON: nested more than " +
                    std::to_string(kMaxJsonDepth) + " levels deep");
  }
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {  // also out_of_range: "1e999"
    throw UserError(what + ": invalid JSON: " + e.what());
  }
}

json Descriptor::ToJson() const {
  json j = {
      {"mediaType", media_type}, {"digest", digest.ToString()}, {"size", size}};
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  if (platform) {
    json p = {{"os", platform->os}, {"architecture", platform->architecture}};
    if (!platform->variant.empty()) p["variant"] = platform->variant;
    j["platform"] = p;
  }
  return Annotated(std::move(j), annotations);
}

Descriptor Descriptor::FromJson(const json& j, const std::string& what) {
  if (!j.is_object()) throw UserError(what + ": descriptor is not an object");
  Descriptor d;
  d.media_type = String(j, "mediaType", what, true);
  d.digest = WithContext(
      what, [&] { return Digest::Parse(String(j, "digest", what, true)); });
  const json& size = Field(j, "size", what);
  if (!size.is_number_integer() || size.get<int64_t>() < 0 ||
      size.get<int64_t>() > kMaxBlobSize) {
    throw UserError(what + ": size of " + d.digest.ToString() +
                    " must be a whole number from 0 to 2^50");
  }
  d.size = size.get<int64_t>();
  d.artifact_type = String(j, "artifactType", what);
  d.annotations = StringMap(j, "annotations", what);
  if (auto it = j.find("platform"); it != j.end() && it->is_object()) {
    Platform p;
    p.os = String(*it, "os", what);
    p.architecture = String(*it, "architecture", what);
    p.variant = String(*it, "variant", what);
    d.platform = p;
  }
  return d;
}

json Manifest::ToJson() const {
  json layers_json = json::array();
  for (const auto& l : layers) layers_json.push_back(l.ToJson());
  json j = {{"schemaVersion", 2},
            {"mediaType", media_type},
            {"config", config.ToJson()},
            {"layers", layers_json}};
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  if (subject) j["subject"] = subject->ToJson();
  return Annotated(std::move(j), annotations);
}

Manifest Manifest::Parse(std::string_view bytes, const std::string& what) {
  json j = ParseJson(bytes, what);
  CheckSchema(j, what);
  Manifest m;
  m.media_type = String(j, "mediaType", what);
  if (m.media_type.empty()) m.media_type = media::kManifest;
  if (!IsManifestType(m.media_type))
    throw UserError(what + ": mediaType " + Quote(m.media_type) +
                    " is not an image manifest");
  m.artifact_type = String(j, "artifactType", what);
  m.config = Descriptor::FromJson(Field(j, "config", what), what + " config");
  const json& layers = Field(j, "layers", what);
  if (!layers.is_array()) throw UserError(what + ": layers must be a list");
  for (size_t i = 0; i < layers.size(); ++i) {
    m.layers.push_back(Descriptor::FromJson(
        layers[i], what + " layers[" + std::to_string(i) + "]"));
  }
  if (auto it = j.find("subject"); it != j.end() && !it->is_null())
    m.subject = Descriptor::FromJson(*it, what + " subject");
  m.annotations = StringMap(j, "annotations", what);
  return m;
}

json Index::ToJson() const {
  json list = json::array();
  for (const auto& d : manifests) list.push_back(d.ToJson());
  json j = {
      {"schemaVersion", 2}, {"mediaType", media_type}, {"manifests", list}};
  return Annotated(std::move(j), annotations);
}

Index Index::Parse(std::string_view bytes, const std::string& what) {
  json j = ParseJson(bytes, what);
  CheckSchema(j, what);
  Index idx;
  idx.media_type = String(j, "mediaType", what);
  if (idx.media_type.empty()) idx.media_type = media::kIndex;
  if (!IsIndexType(idx.media_type))
    throw UserError(what + ": mediaType " + Quote(idx.media_type) +
                    " is not an image index");
  const json& list = Field(j, "manifests", what);
  if (!list.is_array()) throw UserError(what + ": manifests must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    idx.manifests.push_back(Descriptor::FromJson(
        list[i], what + " manifests[" + std::to_string(i) + "]"));
  }
  idx.annotations = StringMap(j, "annotations", what);
  return idx;
}

json ImageConfig::ToJson() const {
  json c = config.extra.is_object() ? config.extra : json::object();
  if (!config.user.empty()) c["User"] = config.user;
  if (!config.exposed_ports.empty())
    c["ExposedPorts"] = Set(config.exposed_ports);
  if (!config.env.empty()) c["Env"] = config.env;
  if (config.entrypoint) c["Entrypoint"] = *config.entrypoint;
  if (config.cmd) c["Cmd"] = *config.cmd;
  if (!config.volumes.empty()) c["Volumes"] = Set(config.volumes);
  if (!config.working_dir.empty()) c["WorkingDir"] = config.working_dir;
  if (!config.labels.empty()) c["Labels"] = config.labels;
  if (!config.stop_signal.empty()) c["StopSignal"] = config.stop_signal;

  json j = extra.is_object() ? extra : json::object();
  if (!created.empty()) j["created"] = created;
  if (!author.empty()) j["author"] = author;
  j["architecture"] = architecture;
  j["os"] = os;
  if (!variant.empty()) j["variant"] = variant;
  j["config"] = c;
  json ids = json::array();
  for (const auto& d : diff_ids) ids.push_back(d.ToString());
  j["rootfs"] = {{"type", "layers"}, {"diff_ids", ids}};
  json hist = json::array();
  for (const auto& h : history) {
    json e = json::object();
    if (!h.created.empty()) e["created"] = h.created;
    if (!h.created_by.empty()) e["created_by"] = h.created_by;
    if (!h.comment.empty()) e["comment"] = h.comment;
    if (h.empty_layer) e["empty_layer"] = true;
    hist.push_back(e);
  }
  if (!history.empty()) j["history"] = hist;
  return j;
}

ImageConfig ImageConfig::Parse(std::string_view bytes,
                               const std::string& what) {
  json j = ParseJson(bytes, what);
  if (!j.is_object()) throw UserError(what + ": not a JSON object");
  ImageConfig ic;
  ic.created = String(j, "created", what);
  ic.author = String(j, "author", what);
  ic.architecture = String(j, "architecture", what);
  ic.os = String(j, "os", what);
  ic.variant = String(j, "variant", what);
  const json& rootfs = Field(j, "rootfs", what);
  if (!rootfs.is_object()) throw UserError(what + ": rootfs must be an object");
  for (const auto& id : StringList(rootfs, "diff_ids", what)
                            .value_or(std::vector<std::string>{})) {
    ic.diff_ids.push_back(WithContext(what + " rootfs.diff_ids",
                                      [&] { return Digest::Parse(id); }));
  }
  if (auto it = j.find("history"); it != j.end() && it->is_array()) {
    for (const auto& h : *it) {
      if (!h.is_object())
        throw UserError(what + ": history entries must be objects");
      History e;
      e.created = String(h, "created", what);
      e.created_by = String(h, "created_by", what);
      e.comment = String(h, "comment", what);
      auto empty = h.find("empty_layer");
      e.empty_layer =
          empty != h.end() && empty->is_boolean() && empty->get<bool>();
      ic.history.push_back(std::move(e));
    }
  }
  if (auto it = j.find("config"); it != j.end() && it->is_object()) {
    const json& c = *it;
    std::string w = what + " config";
    RuntimeConfig& rc = ic.config;
    rc.user = String(c, "User", w);
    rc.exposed_ports = KeysOf(c, "ExposedPorts", w);
    rc.env = StringList(c, "Env", w).value_or(std::vector<std::string>{});
    rc.entrypoint = StringList(c, "Entrypoint", w);
    rc.cmd = StringList(c, "Cmd", w);
    rc.volumes = KeysOf(c, "Volumes", w);
    rc.working_dir = String(c, "WorkingDir", w);
    rc.labels = StringMap(c, "Labels", w);
    rc.stop_signal = String(c, "StopSignal", w);
    rc.extra = c;
    for (const char* k : {"User", "ExposedPorts", "Env", "Entrypoint", "Cmd",
                          "Volumes", "WorkingDir", "Labels", "StopSignal"}) {
      rc.extra.erase(k);
    }
  }
  ic.extra = j;
  for (const char* k : {"created", "author", "architecture", "os", "variant",
                        "config", "rootfs", "history"}) {
    ic.extra.erase(k);
  }
  return ic;
}

std::string Rfc3339(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace kiln
