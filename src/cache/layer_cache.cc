#include "cache/layer_cache.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <map>

#include "core/error.h"
#include "core/fs.h"
#include "core/strings.h"

namespace kiln {

using nlohmann::json;

namespace {

constexpr char kFormat[] = "kiln-layer-cache";
// Of the entry files; another is a miss (made again).
constexpr int kVersion = 2;
constexpr uint64_t kMaxInlineContent = 1 << 20;

bool KeepContent(const std::string& path) {
  return path == "etc/passwd" || path == "etc/group" || path == "etc/shadow" ||
         path == "etc/gshadow";
}

json EntriesJson(const std::vector<Entry>& entries) {
  json list = json::array();
  for (const auto& e : entries) {
    json j = json::array({e.path, static_cast<int>(e.type), e.mode, e.uid,
                          e.gid, e.size, e.link, e.dev_major, e.dev_minor});
    if (KeepContent(e.path) && e.content && e.size <= kMaxInlineContent)
      j.push_back(e.content->ReadAll(e.size));
    list.push_back(std::move(j));
  }
  return list;
}

std::vector<Entry> EntriesFrom(const json& list) {
  std::vector<Entry> out;
  out.reserve(list.size());
  for (const auto& j : list) {
    Entry e;
    e.path = j.at(0).get<std::string>();
    e.type = static_cast<EntryType>(j.at(1).get<int>());
    e.mode = j.at(2).get<uint32_t>();
    e.uid = j.at(3).get<uint32_t>();
    e.gid = j.at(4).get<uint32_t>();
    e.size = j.at(5).get<uint64_t>();
    e.link = j.at(6).get<std::string>();
    e.dev_major = j.at(7).get<uint32_t>();
    e.dev_minor = j.at(8).get<uint32_t>();
    if (j.size() > 9) e.content = InlineContent(j.at(9).get<std::string>());
    out.push_back(std::move(e));
  }
  return out;
}

json PackagesJson(const std::vector<CachedPackage>& packages) {
  json list = json::array();
  for (const auto& p : packages) {
    list.push_back(json::array({p.name, p.version, p.architecture, p.sha256,
                                p.license, p.scripts, p.source}));
  }
  return list;
}

// An entry file: the record and a digest of it, so damage is noticed.
std::string Seal(const json& record) {
  std::string body = CanonicalJson(record);
  return CanonicalJson(
      {{"check", Sha256Of(body).ToString()}, {"record", record}});
}

std::optional<json> Unseal(const std::string& text) {
  try {
    json j = json::parse(text);
    const json& record = j.at("record");
    if (j.at("check").get<std::string>() !=
        Sha256Of(CanonicalJson(record)).ToString())
      return std::nullopt;
    if (record.value("format", "") != kFormat ||
        record.value("version", 0) != kVersion)
      return std::nullopt;
    return record;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

Digest KeyParts::Key() const { return Sha256Of(ToJson()); }

std::string KeyParts::ToJson() const {
  json list = json::array();
  for (const auto& [n, v] : parts) list.push_back(json::array({n, v}));
  return CanonicalJson(list);
}

KeyParts KeyParts::Parse(std::string_view text) {
  KeyParts k;
  for (const auto& p : json::parse(text))
    k.Add(p.at(0).get<std::string>(), p.at(1).get<std::string>());
  return k;
}

std::vector<std::string> Changes(const KeyParts& before, const KeyParts& now) {
  std::map<std::string, std::string> a(before.parts.begin(),
                                       before.parts.end());
  std::map<std::string, std::string> b(now.parts.begin(), now.parts.end());
  std::vector<std::string> out;
  for (const auto& [name, value] : b) {
    auto it = a.find(name);
    if (it == a.end()) {
      out.push_back(name + ": added");
    } else if (it->second != value) {
      out.push_back(name + ": " + it->second + " -> " + value);
    }
  }
  for (const auto& [name, value] : a) {
    if (!b.count(name)) out.push_back(name + ": removed");
  }
  return out;
}

LayerCache::LayerCache(const Store& store)
    : store_(store), dir_(store.path() + "/kiln/cache/layers") {}

std::string LayerCache::Path(const Digest& key) const {
  return dir_ + "/" + key.hex();
}

std::optional<std::string> LayerCache::Raw(const Digest& key) const {
  std::string path = Path(key);
  if (!PathExists(path)) return std::nullopt;
  try {
    return ReadFile(path, 1 << 30);
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::optional<CachedLayer> LayerCache::Get(const Digest& key,
                                           bool with_entries) const {
  auto raw = Raw(key);
  if (!raw) return std::nullopt;
  auto record = Unseal(*raw);
  if (!record) return std::nullopt;  // damaged: rebuilt, then overwritten
  try {
    CachedLayer c;
    c.blob =
        Descriptor::FromJson(record->at("blob"), "cache entry " + key.Short());
    c.diff_id = Digest::Parse(record->at("diffId").get<std::string>());
    c.uncompressed_size = record->at("uncompressedSize").get<uint64_t>();
    c.entry_count = record->at("entryCount").get<size_t>();
    for (const auto& p : record->at("packages")) {
      c.packages.push_back({p.at(0), p.at(1), p.at(2), p.at(3), p.at(4),
                            p.at(5).get<bool>(), p.at(6)});
    }
    if (!store_.layout().HasBlob(c.blob.digest))
      return std::nullopt;  // collected by gc
    if (with_entries) c.entries = EntriesFrom(record->at("entries"));
    // Touch it: gc keeps recently used entries.
    Touch(Path(key));
    return c;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void LayerCache::Put(const Digest& key, const CachedLayer& layer) const {
  json record = {{"format", kFormat},
                 {"version", kVersion},
                 {"key", key.ToString()},
                 {"blob", layer.blob.ToJson()},
                 {"diffId", layer.diff_id.ToString()},
                 {"uncompressedSize", layer.uncompressed_size},
                 {"entryCount", layer.entry_count},
                 {"packages", PackagesJson(layer.packages)},
                 {"entries", EntriesJson(layer.entries)}};
  PutRaw(key, Seal(record));
}

std::optional<Descriptor> LayerCache::BlobOf(const std::string& raw) {
  auto record = Unseal(raw);
  if (!record) return std::nullopt;
  try {
    return Descriptor::FromJson(record->at("blob"), "cache entry");
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void LayerCache::PutRaw(const Digest& key, const std::string& raw) const {
  if (!Unseal(raw))
    throw EnvError("cache entry " + key.ToString() + " is damaged");
  MakeDirs(dir_);
  WriteFileAtomic(Path(key), raw);
}

std::optional<std::vector<Entry>> LayerCache::GetTree(
    const Digest& image) const {
  std::string path = store_.path() + "/kiln/cache/trees/" + image.hex();
  if (!PathExists(path)) return std::nullopt;
  try {
    auto record = Unseal(ReadFile(path, 1 << 30));
    if (!record) return std::nullopt;
    return EntriesFrom(record->at("entries"));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void LayerCache::PutTree(const Digest& image,
                         const std::vector<Entry>& entries) const {
  std::string dir = store_.path() + "/kiln/cache/trees";
  MakeDirs(dir);
  json record = {{"format", kFormat},
                 {"version", kVersion},
                 {"image", image.ToString()},
                 {"entries", EntriesJson(entries)}};
  WriteFileAtomic(dir + "/" + image.hex(), Seal(record));
}

std::optional<KeyParts> LayerCache::Previous(const std::string& scope) const {
  std::string path =
      store_.path() + "/kiln/cache/explain/" + Sha256Of(scope).hex();
  if (!PathExists(path)) return std::nullopt;
  try {
    return KeyParts::Parse(ReadFile(path, 1 << 30));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void LayerCache::Remember(const std::string& scope,
                          const KeyParts& parts) const {
  std::string dir = store_.path() + "/kiln/cache/explain";
  MakeDirs(dir);
  WriteFileAtomic(dir + "/" + Sha256Of(scope).hex(), parts.ToJson());
}

}  // namespace kiln
