#include "image/export.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "compress/compressor.h"
#include "core/strings.h"
#include "disk/artifact.h"
#include "tar/tar_reader.h"
#include "tar/tar_writer.h"

namespace kiln {
namespace {

// The uncompressed bytes of a layer blob, streamed when the archive is written.
class DecompressedLayer : public ContentSource {
 public:
  DecompressedLayer(std::string path, std::string what)
      : path_(std::move(path)), what_(std::move(what)) {}
  void CopyTo(ByteSink& sink, uint64_t size) const override {
    uint64_t n = Decompress(path_, sink, what_);
    if (n != size) throw EnvError(what_ + " changed while it was exported");
  }
  std::string Describe() const override { return what_; }

 private:
  std::string path_;
  std::string what_;
};

class CountHash : public ByteSink {
 public:
  void Write(const void* data, size_t n) override { hash.Update(data, n); }
  Sha256 hash;
};

// A file written under a temporary name and renamed over `path` on Commit().
class AtomicFile : public ByteSink {
 public:
  explicit AtomicFile(std::string path)
      : path_(std::move(path)), temp_(TempPathBeside(path_)) {
    int fd =
        ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) throw SystemError("creating " + temp_, errno);
    fd_ = UniqueFd(fd);
    buf_.reserve(1 << 20);
  }
  ~AtomicFile() override {
    if (!done_) ::unlink(temp_.c_str());
  }
  void Write(const void* data, size_t n) override {
    if (buf_.size() + n > buf_.capacity()) Flush();
    if (n >= buf_.capacity()) {
      WriteAll(fd_.get(), data, n, temp_);
      return;
    }
    buf_.insert(buf_.end(), static_cast<const char*>(data),
                static_cast<const char*>(data) + n);
  }
  void Commit() {
    Flush();
    if (::fsync(fd_.get()) != 0) throw SystemError("fsync " + temp_, errno);
    if (::rename(temp_.c_str(), path_.c_str()) != 0)
      throw SystemError("renaming " + temp_ + " to " + path_, errno);
    done_ = true;
  }

 private:
  void Flush() {
    WriteAll(fd_.get(), buf_.data(), buf_.size(), temp_);
    buf_.clear();
  }
  std::string path_, temp_;
  UniqueFd fd_;
  std::vector<char> buf_;
  bool done_ = false;
};

int64_t CreatedEpoch(const ImageConfig& config) {
  struct tm tm = {};
  if (config.created.empty() ||
      !strptime(config.created.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
    return 0;
  return static_cast<int64_t>(timegm(&tm));
}

Entry FileEntry(const std::string& path, std::string bytes) {
  Entry e;
  e.path = path;
  e.size = bytes.size();
  e.content = InlineContent(std::move(bytes));
  return e;
}

std::string DefaultRefName(const Image& image) {
  return image.name.empty() ? image.tag : image.name + ":" + image.tag;
}

void CopyBlobs(const Image& image, const Layout& to) {
  for (const auto& l : image.manifest.layers) to.CopyBlobFrom(image.layout, l);
  to.CopyBlobFrom(image.layout, image.manifest.config);
  to.CopyBlobFrom(image.layout, image.descriptor);
}

std::string ExportOci(const Image& image, const Reference& dest) {
  // A layout this export makes is removed again if a blob turns out corrupt:
  // no half-made layout is left behind.
  bool fresh = !PathExists(dest.path);
  Layout to = Layout::Open(dest.path, true, ErrorKind::kUser);
  try {
    CopyBlobs(image, to);
  } catch (const Error&) {
    std::error_code ec;
    if (fresh) std::filesystem::remove_all(dest.path, ec);
    throw;
  }
  std::string ref_name = dest.tag.empty() ? image.tag : dest.tag;
  to.UpdateIndex([&](Index& index) {
    Descriptor d = image.descriptor;
    d.annotations.clear();
    if (!ref_name.empty()) d.annotations[annotation::kRefName] = ref_name;
    std::vector<Descriptor> kept;
    for (const auto& m : index.manifests) {
      auto it = m.annotations.find(annotation::kRefName);
      bool same_name = !ref_name.empty() && it != m.annotations.end() &&
                       it->second == ref_name;
      bool same_unnamed =
          ref_name.empty() && m.digest == d.digest && it == m.annotations.end();
      if (!same_name && !same_unnamed) kept.push_back(m);
    }
    kept.push_back(d);
    index.manifests = std::move(kept);
  });
  return "oci:" + dest.path + (ref_name.empty() ? "" : ":" + ref_name);
}

std::string ExportDockerArchive(const Image& image, const Reference& dest) {
  std::string repo_tag =
      dest.name.empty() ? DefaultRefName(image) : dest.name + ":" + dest.tag;
  if (repo_tag.find(':') == std::string::npos || StartsWith(repo_tag, ":")) {
    throw UserError(dest.ToString() +
                    ": name the image as docker-archive:FILE:NAME:TAG");
  }
  std::vector<Entry> entries;
  std::string config_name = image.manifest.config.digest.hex() + ".json";
  entries.push_back(FileEntry(config_name, image.config_bytes));
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < image.manifest.layers.size(); ++i) {
    const Descriptor& d = image.manifest.layers[i];
    std::string what = image.display + " layer " + std::to_string(i + 1);
    std::string path = image.layout.BlobPath(d.digest);
    // docker load wants uncompressed layers whose digests are the diff_ids:
    // a first pass measures and checks them.
    CountHash counter;
    uint64_t size = Decompress(path, counter, what);
    Digest diff_id = counter.hash.Finish();
    if (diff_id != image.config.diff_ids[i]) {
      throw EnvError(what + ": uncompressed content is " + diff_id.ToString() +
                     ", the config says " +
                     image.config.diff_ids[i].ToString());
    }
    Entry e;
    e.path = diff_id.hex() + ".tar";
    e.size = size;
    e.content = std::make_shared<DecompressedLayer>(path, what);
    layers.push_back(e.path);
    entries.push_back(std::move(e));
  }
  nlohmann::json manifest =
      nlohmann::json::array({{{"Config", config_name},
                              {"RepoTags", nlohmann::json::array({repo_tag})},
                              {"Layers", layers}}});
  entries.push_back(FileEntry("manifest.json", CanonicalJson(manifest)));
  AtomicFile out(dest.path);
  TarWriter tar(out, CreatedEpoch(image.config));
  for (const auto& e : entries) tar.Add(e);
  tar.Finish();
  out.Commit();
  return "docker-archive:" + dest.path + ":" + repo_tag;
}

std::string ExportRootfs(const Image& image, const Reference& dest,
                         const Store& store) {
  FlattenOptions options;
  options.spool = Spool::Create(store.tmp_dir());
  Tree tree = Flatten(image, options);
  std::vector<Entry> entries;
  entries.reserve(tree.size());
  for (const auto& [path, e] : tree.entries()) entries.push_back(e);
  OrderHardlinks(&entries);
  AtomicFile out(dest.path);
  // FILE.tar.gz / .tgz / .tar.zst are compressed as their names say.
  std::unique_ptr<Compressor> compressor;
  const std::string& p = dest.path;
  if (EndsWith(p, ".gz") || EndsWith(p, ".tgz")) {
    compressor = NewCompressor({Compression::kGzip, 0, 0}, out);
  } else if (EndsWith(p, ".zst") || EndsWith(p, ".tzst")) {
    compressor = NewCompressor({Compression::kZstd, 0, 0}, out);
  }
  ByteSink& sink = compressor ? static_cast<ByteSink&>(*compressor) : out;
  TarWriter tar(sink, CreatedEpoch(image.config));
  for (const auto& e : entries) tar.Add(e);
  tar.Finish();
  if (compressor) compressor->Finish();
  out.Commit();
  return "rootfs:" + dest.path;
}

// The disk file, in the format its name asks for (.qcow2; .raw or .img),
// else as stored.
std::string ExportDisk(const Image& image, const Reference& dest,
                       const Store& store) {
  auto disk = FindDisk(image.layout, image.descriptor.digest);
  if (!disk) {
    throw UserError(image.display +
                    " has no disk image (its template has no disk: section, "
                    "or it was built with --no-disk or copied without it)");
  }
  DiskFormat format = disk->info.format;
  if (EndsWith(dest.path, ".qcow2")) {
    format = DiskFormat::kQcow2;
  } else if (EndsWith(dest.path, ".raw") || EndsWith(dest.path, ".img")) {
    format = DiskFormat::kRaw;
  }
  MakeDirs(store.tmp_dir());
  WriteDiskFile(image.layout, *disk, format, dest.path, store.tmp_dir());
  return "disk:" + dest.path;
}

}  // namespace

std::string ExportImage(const Image& image, const Reference& dest,
                        const Store& store, bool replace) {
  return WithContext(
      "exporting " + image.display + " to " + dest.ToString(),
      [&]() -> std::string {
        switch (dest.kind) {
          case Reference::Kind::kStore: {
            if (dest.digest || dest.tag.empty())
              throw UserError("name the store destination as NAME:TAG");
            // As a build does: gc must not take a blob found present (and
            // so not copied) before the tag names it.
            FileLock gc_guard = store.LockShared();
            CopyBlobs(image, store.layout());
            store.Tag(dest.name + ":" + dest.tag, image.descriptor, replace);
            return dest.NameAndTag();
          }
          case Reference::Kind::kOciLayout:
            return ExportOci(image, dest);
          case Reference::Kind::kDockerArchive:
            return ExportDockerArchive(image, dest);
          case Reference::Kind::kRootfs:
            return ExportRootfs(image, dest, store);
          case Reference::Kind::kDisk:
            return ExportDisk(image, dest, store);
          case Reference::Kind::kRegistry:
            throw UserError("kiln push publishes to registries");
        }
        return "";
      });
}

}  // namespace kiln
