#include "store/store.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <set>

#include "core/strings.h"

namespace kiln {
namespace {

constexpr char kFormat[] = "kiln-store";
constexpr char kSourcesFormat[] = "kiln-blob-sources";
constexpr size_t kMaxSourcesPerBlob = 4;
constexpr int kVersion = 1;

std::string RefName(const Descriptor& d) {
  auto it = d.annotations.find(annotation::kRefName);
  return it == d.annotations.end() ? "" : it->second;
}

// Appends the temp files below `dir` (Store::TempFiles): ".tmp-*" names,
// or every file when `all` (kiln/tmp holds nothing else).
void FindTempFiles(const std::string& dir, const std::string& skip,
                   const std::string& tmp, bool all, int depth,
                   std::vector<std::string>* out) {
  if (depth > 8 || dir == skip) return;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;  // removed meanwhile: nothing left in it
  std::vector<std::pair<std::string, unsigned char>> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name, e->d_type);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& [name, type] : names) {
    std::string path = dir + "/" + name;
    bool temp = all || StartsWith(name, ".tmp-");
    if (type != DT_DIR && type != DT_UNKNOWN && !temp) continue;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      FindTempFiles(path, skip, tmp, all || path == tmp, depth + 1, out);
    } else if (S_ISREG(st.st_mode) && temp) {
      out->push_back(path);
    }
  }
}

// The attachments of an image no tag names any more, under any name (they
// are found so), with theirs (a disk image's .sig and .att): nothing would
// find them again, and they would keep their blobs from gc for ever.
void DropAttachments(Index& index, const Digest& replaced) {
  std::vector<std::string> orphans = {replaced.hex()};
  while (!orphans.empty()) {
    std::string hex = orphans.back();
    orphans.pop_back();
    bool named = std::any_of(
        index.manifests.begin(), index.manifests.end(), [&](const auto& d) {
          return d.digest.hex() == hex && !AttachmentSubject(RefName(d));
        });
    if (named) continue;
    std::erase_if(index.manifests, [&](const Descriptor& d) {
      if (AttachmentSubject(RefName(d)) != hex) return false;
      orphans.push_back(d.digest.hex());
      return true;
    });
  }
}

}  // namespace

std::optional<std::string> AttachmentSubject(std::string_view ref) {
  size_t colon = ref.rfind(':');
  std::string_view tag = ref.substr(colon == ref.npos ? 0 : colon + 1);
  if (!StartsWith(tag, "sha256-") || tag.size() < 7 + 64 + 4) return {};
  std::string_view hex = tag.substr(7, 64), kind = tag.substr(7 + 64);
  if (kind != ".sig" && kind != ".att" && kind != ".disk") return {};
  if (hex.find_first_not_of("0123456789abcdef") != hex.npos) return {};
  return std::string(hex);
}

std::string Store::DefaultPath() {
  if (const char* s = std::getenv("KILN_STORE"); s && *s) return s;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x)
    return std::string(x) + "/kiln/store";
  const char* home = std::getenv("HOME");
  if (!home || !*home)
    throw EnvError("cannot find the store: set KILN_STORE or HOME");
  return std::string(home) + "/.local/share/kiln/store";
}

Store Store::Open(const std::string& path) {
  std::string marker = path + "/kiln/store.json";
  Layout layout = Layout::Open(path, true, ErrorKind::kEnvironment);
  MakeDirs(path + "/kiln/tmp");
  if (!PathExists(marker)) {
    nlohmann::json j = {{"format", kFormat}, {"version", kVersion}};
    WriteFileAtomic(marker, CanonicalJson(j) + "\n");
  } else {
    auto j = ParseJson(ReadFile(marker, 4096), marker);
    if (!j.is_object() || j.value("format", "") != kFormat) {
      throw EnvError(marker + ": not a kiln store marker");
    }
    if (!j.contains("version") || !j["version"].is_number_integer() ||
        j["version"].get<int>() != kVersion) {
      throw EnvError(path + " is a kiln store of format version " +
                     j.value("version", nlohmann::json()).dump() +
                     "; this kiln reads version " + std::to_string(kVersion));
    }
  }
  return Store(std::move(layout));
}

FileLock Store::LockShared() const {
  return FileLock(path() + "/kiln/gc.lock", FileLock::Mode::kShared);
}

bool Store::Tag(const std::string& name_tag, const Descriptor& manifest,
                bool replace) const {
  bool changed = true;
  layout_.UpdateIndex([&](Index& index) {
    Descriptor entry = manifest;
    entry.annotations[annotation::kRefName] = name_tag;
    for (auto it = index.manifests.begin(); it != index.manifests.end(); ++it) {
      if (RefName(*it) != name_tag) continue;
      if (it->digest == manifest.digest) {
        changed = false;
        *it = entry;
        return;
      }
      if (!replace) {
        throw UserError(
            name_tag + " already holds " + it->digest.ToString() +
            " and versions are immutable; " + "this image is " +
            manifest.digest.ToString() +
            ". Bump the version, or pass --replace to move the tag");
      }
      Digest replaced = it->digest;
      index.manifests.erase(it);
      DropAttachments(index, replaced);
      break;
    }
    index.manifests.push_back(entry);
    std::stable_sort(index.manifests.begin(), index.manifests.end(),
                     [](const Descriptor& a, const Descriptor& b) {
                       return RefName(a) < RefName(b);
                     });
  });
  return changed;
}

std::vector<StoredImage> Store::List() const {
  std::vector<StoredImage> out;
  for (const auto& d : layout_.ReadIndex().manifests)
    out.push_back({RefName(d), d});
  std::sort(out.begin(), out.end(),
            [](const StoredImage& a, const StoredImage& b) {
              return a.name < b.name;
            });
  return out;
}

Descriptor Store::Resolve(const Reference& ref) const {
  Index index = layout_.ReadIndex();
  if (ref.digest) {
    for (const auto& d : index.manifests) {
      if (d.digest == *ref.digest &&
          (ref.tag.empty() || RefName(d) == ref.name + ":" + ref.tag))
        return d;
    }
    // Any manifest blob in the store can be named by digest.
    if (layout_.HasBlob(*ref.digest)) {
      std::string bytes = ReadFile(layout_.BlobPath(*ref.digest), 16 << 20);
      auto j = ParseJson(bytes, ref.digest->ToString());
      Descriptor d;
      d.digest = *ref.digest;
      d.size = static_cast<int64_t>(bytes.size());
      d.media_type = j.is_object() ? j.value("mediaType", media::kManifest)
                                   : media::kManifest;
      if (Sha256Of(bytes) == d.digest &&
          (IsManifestType(d.media_type) || IsIndexType(d.media_type)))
        return d;
    }
    throw UserError(ref.ToString() + ": no such image in the store " + path());
  }
  if (ref.tag.empty()) {
    std::vector<std::string> tags;
    for (const auto& d : index.manifests) {
      std::string n = RefName(d);
      if (StartsWith(n, ref.name + ":")) tags.push_back(n);
    }
    throw UserError(ref.name + ": name a tag or digest" +
                    (tags.empty()
                         ? std::string(" (the store has no image of that name)")
                         : " (the store has " + Join(tags, ", ") + ")"));
  }
  std::string want = ref.name + ":" + ref.tag;
  for (const auto& d : index.manifests) {
    if (RefName(d) == want) return d;
  }
  throw UserError(want + ": no such image in the store " + path() +
                  " (kiln images lists them)");
}

FsckReport Store::Fsck() const {
  // As a build does: gc, which removes blobs, waits until the check is done.
  FileLock guard = LockShared();
  FsckReport report;
  std::string blobs = path() + "/blobs/sha256";
  std::set<std::string> present;
  DIR* dir = ::opendir(blobs.c_str());
  if (!dir) throw SystemError("listing " + blobs, errno);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    if (StartsWith(name, ".tmp-")) {
      report.leftovers.push_back(blobs + "/" + name);
      continue;
    }
    if (!Digest::IsValid("sha256:" + name)) {
      report.corrupt.push_back(blobs + "/" + name + " (not a blob name)");
      continue;
    }
    uint64_t size = 0;
    Digest actual = Sha256OfFile(blobs + "/" + name, &size);
    report.blobs_checked++;
    report.bytes_checked += size;
    if (actual.hex() != name) {
      report.corrupt.push_back("sha256:" + name + " (content hashes to " +
                               actual.ToString() + ")");
    } else {
      present.insert(name);
    }
  }
  // Every blob an image refers to must be there and intact.
  auto need = [&](const Digest& d, const std::string& why) {
    if (!present.count(d.hex()) && !PathExists(blobs + "/" + d.hex())) {
      report.missing.push_back(d.ToString() + " (" + why + ")");
      return false;
    }
    return present.count(d.hex()) > 0;
  };
  std::function<void(const Descriptor&, const std::string&, int)> walk =
      [&](const Descriptor& d, const std::string& owner, int depth) {
        if (depth > 8 || !need(d.digest, "manifest of " + owner)) return;
        std::string bytes = ReadFile(blobs + "/" + d.digest.hex(), 16 << 20);
        try {
          if (IsIndexType(d.media_type)) {
            for (const auto& m :
                 Index::Parse(bytes, d.digest.ToString()).manifests)
              walk(m, owner, depth + 1);
            return;
          }
          Manifest m = Manifest::Parse(bytes, d.digest.ToString());
          need(m.config.digest, "config of " + owner);
          for (const auto& l : m.layers) need(l.digest, "layer of " + owner);
        } catch (const Error& e) {
          report.corrupt.push_back(d.digest.ToString() + " (" + e.message() +
                                   ")");
        }
      };
  for (const auto& d : layout_.ReadIndex().manifests) {
    std::string name = RefName(d);
    walk(d, name.empty() ? d.digest.ToString() : name, 0);
  }
  for (auto& t : TempFiles()) report.leftovers.push_back(std::move(t));
  return report;
}

std::vector<std::string> Store::TempFiles() const {
  std::vector<std::string> out;
  FindTempFiles(path(), path() + "/blobs/sha256", tmp_dir(), false, 0, &out);
  return out;
}

}  // namespace kiln

namespace kiln {

void Store::RecordBlobSources(const std::string& host, const std::string& repo,
                              const std::vector<Digest>& blobs) const {
  std::string path = this->path() + "/kiln/blob-sources.json";
  FileLock lock(path + ".lock", FileLock::Mode::kExclusive);
  nlohmann::json j = {{"format", kSourcesFormat},
                      {"version", 1},
                      {"sources", nlohmann::json::object()}};
  if (PathExists(path)) {
    try {
      auto old = ParseJson(ReadFile(path, 64 << 20), path);
      if (old.value("format", "") == kSourcesFormat &&
          old.value("version", 0) == 1)
        j = old;
    } catch (const Error&) {
      // A damaged hint file is only a lost optimisation: start over.
    }
  }
  std::string where = host + "/" + repo;
  auto& sources = j["sources"];
  for (const auto& d : blobs) {
    auto& list = sources[d.ToString()];
    std::vector<std::string> kept = {where};
    if (list.is_array()) {
      for (const auto& s : list) {
        if (s.is_string() && s != where && kept.size() < kMaxSourcesPerBlob)
          kept.push_back(s);
      }
    }
    list = kept;
  }
  WriteFileAtomic(path, CanonicalJson(j));
}

std::vector<std::string> Store::BlobSources(const std::string& host,
                                            const Digest& digest) const {
  std::string path = this->path() + "/kiln/blob-sources.json";
  std::vector<std::string> out;
  if (!PathExists(path)) return out;
  try {
    auto j = ParseJson(ReadFile(path, 64 << 20), path);
    auto list = j["sources"][digest.ToString()];
    for (const auto& s : list) {
      std::string v = s.is_string() ? s.get<std::string>() : "";
      if (StartsWith(v, host + "/")) out.push_back(v.substr(host.size() + 1));
    }
  } catch (const std::exception&) {
  }
  return out;
}

}  // namespace kiln
