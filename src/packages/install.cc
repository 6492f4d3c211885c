#include "packages/install.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <future>
#include <map>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/thread_pool.h"
#include "digest/digest.h"
#include "packages/fetch.h"

namespace kiln {
namespace {

// A .deb in the cache under its SHA-256, fetched if missing. The download
// goes to a temporary file and enters the cache only once verified.
std::string CachedDeb(const LockFile::Package& p, const std::string& url,
                      HttpTransport& http, const std::string& cache_dir) {
  std::string path = cache_dir + "/" + p.sha256 + ".deb";
  if (PathExists(path) && Sha256OfFile(path).hex() == p.sha256) return path;
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
  FetchOptions o;
  o.max_bytes = p.size;
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
                   " bytes), the lock pins " + p.sha256 + " (" +
                   std::to_string(p.size) + " bytes); not used");
  }
  if (::fsync(fd) != 0) throw SystemError("fsync " + temp, errno);
  if (::rename(temp.c_str(), path.c_str()) != 0)
    throw SystemError("renaming " + temp, errno);
  cleanup.keep = true;
  return path;
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
  auto package = [&](size_t i) {
    return PackageSpec{order[i]->name, order[i]->version,
                       order[i]->architecture, paths[i], order[i]->sha256};
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
