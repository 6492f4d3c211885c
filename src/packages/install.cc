#include "packages/install.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/image_path.h"
#include "core/strings.h"
#include "core/thread_pool.h"
#include "digest/digest.h"
#include "packages/deb.h"
#include "packages/fetch.h"

namespace kiln {
namespace {

// A .deb in the cache under its SHA-256, fetched if missing. The download
// goes to a temporary file and enters the cache only once verified.
std::string CachedDeb(const LockFile::Package& p, const std::string& url,
                      HttpTransport& http, const std::string& cache_dir) {
  std::string path = cache_dir + "/" + p.sha256 + ".deb";
  if (PathExists(path) && Sha256OfFile(path).hex() == p.sha256) {
    Touch(path);  // kiln store gc keeps what was used lately
    return path;
  }
  std::string temp = TempPathBeside(path);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw SystemError("creating " + temp, errno);
  UniqueFd owned(fd);
  struct Unlink {
    const std::string& p;
    bool keep = false;
    ~Unlink() {
      if (!keep) ::unlink(p.c_str());
    }
  } cleanup{temp};
  class FileSink : public ByteSink {
   public:
    FileSink(int fd, const std::string& what) : fd_(fd), what_(what) {}
    void Write(const void* d, size_t n) override {
      WriteAll(fd_, d, n, what_);
      hash.Update(d, n);
    }
    Sha256 hash;

   private:
    int fd_;
    const std::string& what_;
  } sink(fd, temp);
  auto pinned = [&] {
    return "the lock pins " + p.sha256 + " (" + std::to_string(p.size) +
           " bytes); not used";
  };
  FetchOptions o;
  o.max_bytes = p.size;
  o.too_large = [&] {
    return "package " + p.name + " " + p.version + ": the .deb from " + url +
           " is larger than " + std::to_string(p.size) + " bytes, " + pinned();
  };
  auto reset = [&] {
    if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0)
      throw SystemError("truncating " + temp, errno);
    sink.hash.Finish();
  };
  if (!Fetch(http, url, sink, reset, o)) {
    throw EnvError(
        "package " + p.name + " " + p.version + ": " + url +
        " is gone from the mirror (run kiln lock for versions it has)");
  }
  uint64_t got = sink.hash.bytes();
  Digest d = sink.hash.Finish();
  if (got != p.size || d.hex() != p.sha256) {
    throw EnvError("package " + p.name + " " + p.version + ": the .deb from " +
                   url + " has sha256 " + d.hex() + " (" + std::to_string(got) +
                   " bytes), " + pinned());
  }
  if (::fsync(fd) != 0) throw SystemError("fsync " + temp, errno);
  if (::rename(temp.c_str(), path.c_str()) != 0)
    throw SystemError("renaming " + temp, errno);
  cleanup.keep = true;
  return path;
}

// What a .deb ships, as dpkg tracks it to refuse two packages writing one
// path: each data entry's path and kind, and the Replaces field. Cached in
// JSON (deb-files/SHA256.json beside the .deb cache), so each package's data
// is read for it once.
struct DebFiles {
  struct Shipped {
    std::string path;  // normalised, relative to /
    char kind;         // 'd' directory, 'l' symlink, 'f' anything else
    std::string link;  // a symlink's target
  };
  std::string replaces;
  std::vector<Shipped> entries;
};

constexpr char kFilesFormat[] = "kiln-deb-files-1";

DebFiles FilesOf(const LockFile::Package& p, const std::string& deb,
                 const std::string& files_dir) {
  std::string cached = files_dir + "/" + p.sha256 + ".json";
  if (PathExists(cached)) {
    try {
      auto j = nlohmann::json::parse(ReadFile(cached, uint64_t{1} << 30));
      if (j.value("format", "") == kFilesFormat) {
        DebFiles f;
        f.replaces = j.at("replaces").get<std::string>();
        for (const auto& e : j.at("entries")) {
          f.entries.push_back({e.at(0).get<std::string>(),
                               e.at(1).get<std::string>().at(0),
                               e.at(2).get<std::string>()});
        }
        return f;
      }
    } catch (const std::exception&) {
      // Unreadable: made again below.
    }
  }
  DebFiles f;
  DebControl control;
  std::string what = "package " + p.name + " " + p.version;
  // Headers only, but skipping a bomb's data costs its whole expansion: the
  // planner's limit holds here too.
  uint64_t unpacked = 0, limit = DefaultUnpackLimit(p.size);
  ReadDeb(deb, what, &control, [&](const TarHeader& h, TarReader&) {
    if (h.type == EntryType::kFile) {
      if (h.size > limit - unpacked) {
        throw UserError(what + " entry " + Quote(h.name) + " holds " +
                        HumanBytes(h.size) + ", which takes " + what +
                        " past " + HumanBytes(limit) +
                        " unpacked: " + UnpackLimitRule("a package"));
      }
      unpacked += h.size;
    }
    std::string rel, why;
    if (!NormalizeArchivePath(h.name, &rel, &why) || rel.empty()) return;
    char kind = h.type == EntryType::kDir       ? 'd'
                : h.type == EntryType::kSymlink ? 'l'
                                                : 'f';
    f.entries.push_back({rel, kind, kind == 'l' ? h.link : ""});
  });
  f.replaces = control.fields.Get("Replaces");
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& e : f.entries)
    entries.push_back({e.path, std::string(1, e.kind), e.link});
  WriteFileAtomic(cached, nlohmann::json({{"format", kFilesFormat},
                                          {"replaces", f.replaces},
                                          {"entries", entries}})
                              .dump());
  return f;
}

// Whether package `by` (its Replaces field) replaces package `p`.
bool Replaces(const LockFile::Package& by, const DebFiles& files,
              const LockFile::Package& p) {
  if (files.replaces.empty()) return false;
  for (const auto& group :
       ParseDependencies(files.replaces, "package " + by.name + " Replaces")) {
    for (const auto& d : group) {
      if (d.name == p.name && d.Allows(p.version)) return true;
    }
  }
  return false;
}

// `path` with its parents resolved through the directory symlinks packages
// ship (merged /usr: bin/x is usr/bin/x).
std::string Through(const std::map<std::string, std::string>& links,
                    const std::string& path) {
  std::string out = path;
  for (int hops = 0; hops < 40; ++hops) {
    bool moved = false;
    for (size_t slash = out.find('/'); slash != std::string::npos;
         slash = out.find('/', slash + 1)) {
      auto it = links.find(out.substr(0, slash));
      if (it == links.end()) continue;
      std::string resolved;
      ResolveInRoot(ParentPath(it->first), it->second, &resolved);
      out = resolved.empty() ? out.substr(slash + 1)
                             : resolved + out.substr(slash);
      moved = true;
      break;
    }
    if (!moved) break;
  }
  return out;
}

// dpkg's rule, whatever the layering: no two packages ship one path (other
// than a directory) unless one Replaces the other, which then owns it. Returns
// for each package (in `order`) the paths it gives up to one replacing it.
std::vector<std::set<std::string>> Handovers(
    const std::vector<const LockFile::Package*>& order,
    const std::vector<DebFiles>& files,
    const std::vector<SourceLocation>& locs) {
  struct Owner {
    size_t package;
    char kind;
    std::string shipped;  // the path as the package ships it
  };
  std::map<std::string, Owner> owners;
  std::map<std::string, std::string> links;  // shipped symlinks
  std::vector<std::set<std::string>> handed(order.size());
  auto name = [&](size_t i) {
    return order[i]->name + " " + order[i]->version;
  };
  for (size_t i = 0; i < order.size(); ++i) {
    for (const auto& e : files[i].entries) {
      std::string path = Through(links, e.path);
      auto [it, fresh] = owners.emplace(path, Owner{i, e.kind, e.path});
      if (fresh || it->second.package == i) {
        if (e.kind == 'l') links[path] = e.link;
        continue;
      }
      Owner& was = it->second;
      if (was.kind == 'd' && e.kind == 'd') continue;
      if (was.kind == 'l' && e.kind == 'd') continue;  // kept, as dpkg does
      std::string clash = "packages " + name(was.package) + " and " + name(i) +
                          " both ship /" + path;
      if (was.kind == 'd' || e.kind == 'd') {
        throw ErrorAt(locs[i], clash +
                                   ", one as a directory (dpkg refuses "
                                   "to install them together)");
      }
      if (Replaces(*order[i], files[i], *order[was.package])) {
        handed[was.package].insert(was.shipped);
        was = Owner{i, e.kind, e.path};
      } else if (Replaces(*order[was.package], files[was.package], *order[i])) {
        handed[i].insert(e.path);
      } else {
        throw ErrorAt(locs[i], clash +
                                   ", and neither Replaces the other "
                                   "(dpkg refuses to install them "
                                   "together)");
      }
      if (was.kind == 'l') links[path] = e.link;
    }
  }
  return handed;
}

// Where each package comes from in the template: the first include whose
// dependencies reach it.
std::vector<SourceLocation> IncludedAt(
    const PackagesSpec& spec, const LockFile& lock,
    const std::vector<const LockFile::Package*>& order) {
  std::map<std::string, const LockFile::Package*> by_name;
  for (const auto& p : lock.packages) by_name[p.name] = &p;
  std::map<std::string, SourceLocation> at;
  for (const auto& inc : spec.include) {
    std::vector<std::string> todo = {inc.name};
    while (!todo.empty()) {
      std::string n = todo.back();
      todo.pop_back();
      auto p = by_name.find(n);
      if (p == by_name.end() || !at.emplace(n, inc.loc).second) continue;
      for (const auto& d : p->second->depends) todo.push_back(d);
    }
  }
  std::vector<SourceLocation> out;
  for (const auto* p : order) {
    auto it = at.find(p->name);
    out.push_back(it == at.end() ? spec.locs.entry : it->second);
  }
  return out;
}

}  // namespace

std::vector<const LockFile::Package*> DependencyOrder(const LockFile& lock) {
  std::map<std::string, const LockFile::Package*> by_name;
  for (const auto& p : lock.packages) by_name[p.name] = &p;
  std::vector<const LockFile::Package*> out;
  std::set<std::string> done, visiting;
  // Depth first from names in order; a cycle (Debian has a few) is broken
  // where it is met.
  std::function<void(const LockFile::Package*)> visit =
      [&](const LockFile::Package* p) {
        if (done.count(p->name) || visiting.count(p->name)) return;
        visiting.insert(p->name);
        std::vector<std::string> deps = p->depends;
        std::sort(deps.begin(), deps.end());
        for (const auto& d : deps) {
          auto it = by_name.find(d);
          if (it != by_name.end()) visit(it->second);
        }
        visiting.erase(p->name);
        done.insert(p->name);
        out.push_back(p);
      };
  for (const auto& [name, p] : by_name) visit(p);
  return out;
}

std::vector<LayerSpec> PackageLayers(const PackagesSpec& spec,
                                     const LockFile& lock, HttpTransport& http,
                                     const std::string& cache_dir, int jobs) {
  MakeDirs(cache_dir);
  std::map<std::string, std::string> urls;
  for (const auto& r : lock.repositories) urls[r.name] = r.url;
  std::vector<const LockFile::Package*> order = DependencyOrder(lock);
  std::vector<std::string> paths(order.size());
  std::vector<DebFiles> files(order.size());
  std::string files_dir = Dirname(cache_dir) + "/deb-files";
  MakeDirs(files_dir);
  std::vector<SourceLocation> locs = IncludedAt(spec, lock, order);
  {
    ThreadPool pool(std::max(1, jobs));
    std::vector<std::future<void>> done;
    for (size_t i = 0; i < order.size(); ++i) {
      done.push_back(pool.Submit([&, i] {
        const LockFile::Package& p = *order[i];
        auto repo = urls.find(p.repository);
        if (repo == urls.end())
          throw UserError("the lock names an unknown repository " +
                          p.repository);
        paths[i] =
            CachedDeb(p, repo->second + "/" + p.filename, http, cache_dir);
        try {
          files[i] = FilesOf(p, paths[i], files_dir);
        } catch (const Error& e) {  // a broken or hostile .deb
          if (e.kind() != ErrorKind::kUser) throw;
          throw ErrorAt(locs[i], e.message());
        }
      }));
    }
    std::exception_ptr first;
    for (auto& f : done) {
      try {
        f.get();
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    }
    if (first) std::rethrow_exception(first);
  }
  std::vector<std::set<std::string>> handed = Handovers(order, files, locs);
  auto package = [&](size_t i) {
    const LockFile::Package& p = *order[i];
    return PackageSpec{p.name,         p.version,
                       p.architecture, paths[i],
                       p.sha256,       urls[p.repository] + "/" + p.filename,
                       locs[i],        std::move(handed[i])};
  };
  std::vector<LayerSpec> layers;
  if (order.empty()) return layers;
  switch (spec.layering) {
    case PackageLayering::kSingle: {
      LayerSpec l;
      l.name = "packages";
      for (size_t i = 0; i < order.size(); ++i)
        l.packages.push_back(package(i));
      layers.push_back(std::move(l));
      break;
    }
    case PackageLayering::kPerPackage:
      for (size_t i = 0; i < order.size(); ++i) {
        LayerSpec l;
        l.name = "package " + order[i]->name;
        l.packages.push_back(package(i));
        layers.push_back(std::move(l));
      }
      break;
    case PackageLayering::kGrouped: {
      // Contiguous runs of the dependency order, about equal in size.
      uint64_t total = 0;
      for (const auto* p : order) total += p->size;
      size_t groups =
          std::min<size_t>(static_cast<size_t>(spec.max_layers), order.size());
      uint64_t target = (total + groups - 1) / groups;
      LayerSpec l;
      uint64_t size = 0;
      for (size_t i = 0; i < order.size(); ++i) {
        l.packages.push_back(package(i));
        size += order[i]->size;
        size_t left = order.size() - i - 1;
        bool room_for_rest = layers.size() + 2 <= groups;
        if ((size >= target && room_for_rest && left > 0) || left == 0) {
          l.name = "packages " + std::to_string(layers.size() + 1);
          layers.push_back(std::move(l));
          l = LayerSpec();
          size = 0;
        }
      }
      break;
    }
  }
  for (auto& l : layers) l.locs = spec.locs;
  return layers;
}

}  // namespace kiln
