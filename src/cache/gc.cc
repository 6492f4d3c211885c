#include "cache/gc.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <functional>
#include <set>

#include "cache/layer_cache.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/strings.h"

namespace kiln {
namespace {

struct FileInfoLite {
  std::string path;
  std::string name;
  uint64_t size = 0;
  int64_t mtime = 0;
};

// The entries of `type` (S_IFREG, S_IFDIR) directly in `dir`, by name (none
// if it does not exist).
std::vector<FileInfoLite> EntriesIn(const std::string& dir, mode_t type) {
  std::vector<FileInfoLite> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return out;
    throw SystemError("listing " + dir, errno);
  }
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || (st.st_mode & S_IFMT) != type)
      continue;
    out.push_back({path, name, static_cast<uint64_t>(st.st_size),
                   static_cast<int64_t>(st.st_mtime)});
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::vector<FileInfoLite> FilesIn(const std::string& dir) {
  return EntriesIn(dir, S_IFREG);
}

class Collector {
 public:
  Collector(const Store& store, const GcOptions& o, GcReport* report)
      : store_(store), o_(o), r_(*report) {
    now_ = o.now ? o.now : static_cast<int64_t>(::time(nullptr));
    keep_after_ = now_ - int64_t{o.keep_days} * 86400;
  }

  void Run() {
    Roots();
    CacheEntries();
    Blobs();
    Files(store_.path() + "/kiln/cache/explain", keep_after_);
    debs_gone_ = Files(store_.path() + "/kiln/cache/debs", keep_after_);
    Files(store_.path() + "/kiln/cache/apt/indexes", keep_after_);
    DebFiles();
    BaseTrees();
    ScratchDirs();
    Files(store_.tmp_dir(), now_ - 86400);
    TempFiles();
  }

 private:
  std::string BlobsDir() const { return store_.path() + "/blobs/sha256"; }

  void Remove(const std::string& path) {
    removed_.insert(path);
    if (o_.dry_run) return;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      throw SystemError("removing " + path, errno);
  }

  // Everything the index's entries refer to, however deep.
  void Roots() {
    std::function<void(const Descriptor&, int)> walk = [&](const Descriptor& d,
                                                           int depth) {
      if (!roots_.insert(d.digest.hex()).second || depth > 8) return;
      std::string path = BlobsDir() + "/" + d.digest.hex();
      if (!PathExists(path)) return;  // fsck's business
      std::string bytes = ReadFile(path, 16 << 20);
      try {
        if (IsIndexType(d.media_type)) {
          for (const auto& m :
               Index::Parse(bytes, d.digest.ToString()).manifests)
            walk(m, depth + 1);
          return;
        }
        if (!IsManifestType(d.media_type)) return;
        Manifest m = Manifest::Parse(bytes, d.digest.ToString());
        roots_.insert(m.config.digest.hex());
        for (const auto& l : m.layers) roots_.insert(l.digest.hex());
        if (m.subject) roots_.insert(m.subject->digest.hex());
      } catch (const Error&) {
        // Not a manifest kiln can read: keep it, and what fsck reports.
      }
    };
    for (const auto& d : store_.layout().ReadIndex().manifests) {
      ++r_.images;
      walk(d, 0);
      auto record = d.annotations.find(kBuildRecordAnnotation);
      if (record != d.annotations.end() && Digest::IsValid(record->second))
        roots_.insert(Digest::Parse(record->second).hex());
    }
  }

  // Recent entries, newest first, while the blobs only they keep fit the cap.
  void CacheEntries() {
    struct Candidate {
      FileInfoLite file;
      std::optional<Descriptor> blob;
    };
    std::vector<Candidate> entries;
    for (auto& f : FilesIn(store_.path() + "/kiln/cache/layers")) {
      std::optional<Descriptor> blob;
      if (f.mtime >= keep_after_) {
        try {
          if (Digest::IsValid("sha256:" + f.name)) {
            blob = LayerCache::BlobOf(ReadFile(f.path, uint64_t{1} << 30),
                                      Digest::FromHex(f.name));
          }
        } catch (const Error&) {
        }
        // An entry whose blob is gone is a miss for every build: useless.
        if (blob && !PathExists(BlobsDir() + "/" + blob->digest.hex()))
          blob.reset();
      }
      entries.push_back({std::move(f), blob});
    }
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto& a, const auto& b) {
                       return a.file.mtime > b.file.mtime;
                     });
    std::set<std::string> counted;
    for (auto& e : entries) {
      bool keep = e.blob.has_value();  // recent and well-formed
      uint64_t more = 0;
      if (keep && !roots_.count(e.blob->digest.hex()) &&
          !counted.count(e.blob->digest.hex()))
        more = static_cast<uint64_t>(e.blob->size);
      if (keep && r_.cache_bytes + more > o_.max_cache_bytes) keep = false;
      if (keep) {
        ++r_.cache_entries_kept;
        r_.cache_bytes += more;
        counted.insert(e.blob->digest.hex());
        cached_.insert(e.blob->digest.hex());
      } else {
        ++r_.cache_entries_removed;
        Remove(e.file.path);
      }
    }
  }

  void Blobs() {
    for (const auto& f : FilesIn(BlobsDir())) {
      if (StartsWith(f.name, ".tmp-")) {
        if (f.mtime < now_ - 86400) {
          ++r_.files_removed;
          r_.file_bytes_removed += f.size;
          Remove(f.path);
        }
        continue;
      }
      if (roots_.count(f.name) || cached_.count(f.name)) {
        ++r_.blobs_kept;
        r_.bytes_kept += f.size;
        continue;
      }
      // A blob written in the last minute may belong to a writer that holds
      // no lock (a signature being attached): leave it for next time.
      if (f.mtime > now_ - 60) continue;
      ++r_.blobs_removed;
      r_.bytes_removed += f.size;
      Remove(f.path);
    }
  }

  // Files in `dir` last used before `before`; returns their names.
  std::set<std::string> Files(const std::string& dir, int64_t before) {
    std::set<std::string> gone;
    for (const auto& f : FilesIn(dir)) {
      if (f.mtime >= before) continue;
      ++r_.files_removed;
      r_.file_bytes_removed += f.size;
      Remove(f.path);
      gone.insert(f.name);
    }
    return gone;
  }

  // The file lists of .debs no longer in the cache (or leaving it now).
  void DebFiles() {
    std::string debs = store_.path() + "/kiln/cache/debs/";
    for (const auto& f : FilesIn(store_.path() + "/kiln/cache/deb-files")) {
      std::string deb = f.name.substr(0, f.name.find('.')) + ".deb";
      if (PathExists(debs + deb) && !debs_gone_.count(deb)) continue;
      ++r_.files_removed;
      r_.file_bytes_removed += f.size;
      Remove(f.path);
    }
  }

  // Temp files of writes interrupted more than a day ago that the steps
  // above left (index.json's, the stat cache's, explain files'...).
  void TempFiles() {
    const std::string tmp = store_.tmp_dir() + "/";
    for (const auto& path : store_.TempFiles()) {
      // In a folder of kiln/tmp: a build's, whole or not at all (above).
      if (StartsWith(path, tmp) && path.find('/', tmp.size()) != path.npos)
        continue;
      struct stat st;
      if (removed_.count(path) || ::lstat(path.c_str(), &st) != 0 ||
          st.st_mtime >= now_ - 86400)
        continue;
      ++r_.files_removed;
      r_.file_bytes_removed += static_cast<uint64_t>(st.st_size);
      Remove(path);
    }
  }

  // The folders in kiln/tmp untouched for a day, whole: the scratch
  // folders of killed disk builds (an erofs or squashfs build's staged tree
  // holds links, devices, hard links, deep and read-only folders as well as
  // files). Only builds make them, under the shared lock gc waits for: none
  // is in use now. What cannot go (another user's files) stays, and fsck
  // lists it.
  void ScratchDirs() {
    namespace fs = std::filesystem;
    for (const auto& dir : EntriesIn(store_.tmp_dir(), S_IFDIR)) {
      if (dir.mtime >= now_ - 86400) continue;
      std::set<std::pair<dev_t, ino_t>> counted;  // a hard link counts once
      std::error_code ec;
      for (fs::recursive_directory_iterator
               it(dir.path, fs::directory_options::skip_permission_denied, ec),
           end;
           !ec && it != end; it.increment(ec)) {
        struct stat st;
        if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode))
          continue;
        if (!counted.insert({st.st_dev, st.st_ino}).second) continue;
        ++r_.files_removed;
        r_.file_bytes_removed += static_cast<uint64_t>(st.st_size);
      }
      if (!o_.dry_run) RemoveFolder(dir.path);
    }
  }

  // Trees of base images the store no longer holds.
  void BaseTrees() {
    for (const auto& f : FilesIn(store_.path() + "/kiln/cache/trees")) {
      if (roots_.count(f.name)) continue;
      ++r_.files_removed;
      r_.file_bytes_removed += f.size;
      Remove(f.path);
    }
  }

  const Store& store_;
  const GcOptions& o_;
  GcReport& r_;
  int64_t now_ = 0, keep_after_ = 0;
  std::set<std::string> roots_;      // hex digests the index needs
  std::set<std::string> cached_;     // hex digests kept cache entries need
  std::set<std::string> debs_gone_;  // .debs removed (or to be, dry run)
  std::set<std::string> removed_;    // paths removed (or to be, dry run)
};

}  // namespace

GcReport CollectGarbage(const Store& store, const GcOptions& options) {
  if (options.keep_days < 0) throw UserError("--keep-days must be 0 or more");
  FileLock lock(store.path() + "/kiln/gc.lock", FileLock::Mode::kExclusive);
  GcReport report;
  Collector(store, options, &report).Run();
  return report;
}

}  // namespace kiln
