#include "cache/layer_cache.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <charconv>
#include <map>
#include <stdexcept>

#include "core/error.h"
#include "core/fs.h"
#include "core/strings.h"

namespace kiln {

using nlohmann::json;

namespace {

constexpr char kFormat[] = "kiln-layer-cache";
// Of the entry files; another is a miss (made again).
constexpr int kVersion = 3;
constexpr uint64_t kMaxInlineContent = 1 << 20;

bool KeepContent(const std::string& path) {
  return path == "etc/passwd" || path == "etc/group" || path == "etc/shadow" ||
         path == "etc/gshadow";
}

// Entries, one per line, binary-safe and quick to write and read (a big
// layer has tens of thousands): "type mode uid gid size major minor" then
// length-prefixed path, link and (for account files) content.
void AppendField(std::string* out, std::string_view v) {
  *out += ' ';
  *out += std::to_string(v.size());
  *out += ':';
  out->append(v.data(), v.size());
}

std::string EncodeEntries(const std::vector<Entry>& entries) {
  std::string out;
  out.reserve(entries.size() * 96);
  for (const auto& e : entries) {
    out += std::to_string(static_cast<int>(e.type)) + " " +
           std::to_string(e.mode) + " " + std::to_string(e.uid) + " " +
           std::to_string(e.gid) + " " + std::to_string(e.size) + " " +
           std::to_string(e.dev_major) + " " + std::to_string(e.dev_minor);
    AppendField(&out, e.path);
    AppendField(&out, e.link);
    if (KeepContent(e.path) && e.content && e.size <= kMaxInlineContent)
      AppendField(&out, e.content->ReadAll(e.size));
    out += '\n';
  }
  return out;
}

class EntryReader {
 public:
  explicit EntryReader(std::string_view text) : s_(text) {}
  bool Done() const { return at_ >= s_.size(); }
  uint64_t Number() {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s_.data() + at_, s_.data() + s_.size(), v);
    if (ec != std::errc()) throw std::runtime_error("bad number");
    at_ = static_cast<size_t>(end - s_.data());
    if (at_ < s_.size() && s_[at_] == ' ') ++at_;
    return v;
  }
  std::string Field() {
    uint64_t n = Number();  // consumed "N" and stops at ':'
    if (at_ >= s_.size() || s_[at_] != ':' || n > s_.size() - at_ - 1)
      throw std::runtime_error("bad field");
    std::string v(s_.substr(at_ + 1, n));
    at_ += 1 + n;
    if (at_ < s_.size() && s_[at_] == ' ') ++at_;
    return v;
  }
  bool EndOfLine() {
    if (at_ < s_.size() && s_[at_] == '\n') {
      ++at_;
      return true;
    }
    return false;
  }

 private:
  std::string_view s_;
  size_t at_ = 0;
};

std::vector<Entry> DecodeEntries(std::string_view text) {
  std::vector<Entry> out;
  EntryReader r(text);
  while (!r.Done()) {
    Entry e;
    e.type = static_cast<EntryType>(r.Number());
    e.mode = static_cast<uint32_t>(r.Number());
    e.uid = static_cast<uint32_t>(r.Number());
    e.gid = static_cast<uint32_t>(r.Number());
    e.size = r.Number();
    e.dev_major = static_cast<uint32_t>(r.Number());
    e.dev_minor = static_cast<uint32_t>(r.Number());
    e.path = r.Field();
    e.link = r.Field();
    if (!r.EndOfLine()) {
      e.content = InlineContent(r.Field());
      if (!r.EndOfLine()) throw std::runtime_error("bad entry line");
    }
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

// An entry file: a first line with the format and the SHA-256 of the rest
// (so damage is noticed before anything is trusted), the record as one line
// of JSON, then the entries. Reading a hit needs only the record.
std::string Seal(const json& record, const std::string& entries) {
  std::string body = CanonicalJson(record) + "\n" + entries;
  return std::string(kFormat) + " " + std::to_string(kVersion) + " " +
         Sha256Of(body).hex() + "\n" + body;
}

struct Unsealed {
  json record;
  std::string_view entries;
};

std::optional<Unsealed> Unseal(std::string_view text) {
  try {
    size_t first = text.find('\n');
    if (first == std::string_view::npos) return std::nullopt;
    std::string want = std::string(kFormat) + " " + std::to_string(kVersion) +
                       " " + Sha256Of(text.substr(first + 1)).hex();
    if (text.substr(0, first) != want) return std::nullopt;
    size_t second = text.find('\n', first + 1);
    if (second == std::string_view::npos) return std::nullopt;
    return Unsealed{json::parse(text.substr(first + 1, second - first - 1)),
                    text.substr(second + 1)};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

void KeyParts::Set(const std::string& name, std::string value) {
  for (auto& [n, v] : parts) {
    if (n == name) {
      v = std::move(value);
      return;
    }
  }
  throw InternalError("no key part " + name);
}

Digest KeyParts::Key() const { return Sha256Of(ToJson()); }

// Canonical JSON ([["name","value"],…]) written directly: a layer of a big
// tree has a part per file, and this runs on every build.
std::string KeyParts::ToJson() const {
  std::string out = "[";
  auto quote = [&out](const std::string& v) {
    out += '"';
    size_t plain = 0;  // start of the run not yet copied
    for (size_t i = 0; i < v.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(v[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out.append(v, plain, i - plain);
      plain = i + 1;
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default: {
          static const char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        }
      }
    }
    out.append(v, plain, std::string::npos);
    out += '"';
  };
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += ',';
    out += '[';
    quote(parts[i].first);
    out += ',';
    quote(parts[i].second);
    out += ']';
  }
  out += ']';
  return out;
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
  auto sealed = Unseal(*raw);
  // Damaged, or another key's (copied under this name): rebuilt, then
  // overwritten.
  if (!sealed || sealed->record.value("key", "") != key.ToString())
    return std::nullopt;
  try {
    const json& record = sealed->record;
    CachedLayer c;
    c.blob =
        Descriptor::FromJson(record.at("blob"), "cache entry " + key.Short());
    c.diff_id = Digest::Parse(record.at("diffId").get<std::string>());
    c.uncompressed_size = record.at("uncompressedSize").get<uint64_t>();
    c.entry_count = record.at("entryCount").get<size_t>();
    for (const auto& p : record.at("packages")) {
      c.packages.push_back({p.at(0), p.at(1), p.at(2), p.at(3), p.at(4),
                            p.at(5).get<bool>(), p.at(6)});
    }
    if (!store_.layout().HasBlob(c.blob.digest))
      return std::nullopt;  // collected by gc
    if (with_entries) c.entries = DecodeEntries(sealed->entries);
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
                 {"packages", PackagesJson(layer.packages)}};
  PutRaw(key, Seal(record, EncodeEntries(layer.entries)));
}

std::optional<Descriptor> LayerCache::BlobOf(const std::string& raw,
                                             const Digest& key) {
  auto sealed = Unseal(raw);
  if (!sealed || sealed->record.value("key", "") != key.ToString())
    return std::nullopt;
  try {
    return Descriptor::FromJson(sealed->record.at("blob"), "cache entry");
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void LayerCache::PutRaw(const Digest& key, const std::string& raw) const {
  if (!BlobOf(raw, key)) {
    throw EnvError("cache entry " + key.ToString() +
                   " is damaged or names another key");
  }
  MakeDirs(dir_);
  WriteFileAtomic(Path(key), raw);
}

std::optional<std::vector<Entry>> LayerCache::GetTree(
    const Digest& image) const {
  std::string path = store_.path() + "/kiln/cache/trees/" + image.hex();
  if (!PathExists(path)) return std::nullopt;
  try {
    std::string raw = ReadFile(path, 1 << 30);
    auto sealed = Unseal(raw);
    if (!sealed) return std::nullopt;
    return DecodeEntries(sealed->entries);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void LayerCache::PutTree(const Digest& image,
                         const std::vector<Entry>& entries) const {
  std::string dir = store_.path() + "/kiln/cache/trees";
  MakeDirs(dir);
  json record = {
      {"format", kFormat}, {"version", kVersion}, {"image", image.ToString()}};
  WriteFileAtomic(dir + "/" + image.hex(),
                  Seal(record, EncodeEntries(entries)));
}

std::optional<KeyParts> LayerCache::Previous(const std::string& scope) const {
  std::string path =
      store_.path() + "/kiln/cache/explain/" + Sha256Of(scope).hex();
  if (!PathExists(path)) return std::nullopt;
  try {
    std::string text = ReadFile(path, 1 << 30);
    return KeyParts::Parse(std::string_view(text).substr(text.find('\n') + 1));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void LayerCache::Remember(const std::string& scope,
                          const std::string& parts_json) const {
  std::string dir = store_.path() + "/kiln/cache/explain";
  std::string path = dir + "/" + Sha256Of(scope).hex();
  const std::string& body = parts_json;
  std::string key = Sha256Of(body).ToString() + "\n";
  // The first line names the parts: unchanged parts are not written again.
  if (PathExists(path)) {
    try {
      if (ReadPrefix(path, key.size()) == key) return;
    } catch (const Error&) {
    }
  }
  MakeDirs(dir);
  WriteFileAtomic(path, key + body);
}

}  // namespace kiln
