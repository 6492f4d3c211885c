#include "store/layout.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "core/strings.h"

namespace kiln {
namespace {

constexpr char kLayoutFile[] = "{\"imageLayoutVersion\":\"1.0.0\"}";

}  // namespace

BlobWriter::BlobWriter(std::string blobs_dir, UniqueFd fd,
                       std::string temp_path)
    : blobs_dir_(std::move(blobs_dir)),
      fd_(std::move(fd)),
      temp_path_(std::move(temp_path)) {}

BlobWriter::~BlobWriter() {
  if (!committed_) ::unlink(temp_path_.c_str());
}

void BlobWriter::Write(const void* data, size_t n) {
  hasher_.Update(data, n);
  WriteAll(fd_.get(), data, n, temp_path_);
}

Descriptor BlobWriter::Commit(const std::string& media_type,
                              const std::optional<Digest>& expected) {
  Descriptor d;
  d.media_type = media_type;
  d.size = static_cast<int64_t>(hasher_.bytes());
  d.digest = hasher_.Finish();
  if (::fsync(fd_.get()) != 0) throw SystemError("fsync " + temp_path_, errno);
  if (expected && *expected != d.digest) {
    throw EnvError("blob content has digest " + d.digest.ToString() +
                   ", expected " + expected->ToString());
  }
  std::string final_path = blobs_dir_ + "/" + d.digest.hex();
  if (::rename(temp_path_.c_str(), final_path.c_str()) != 0) {
    throw SystemError("renaming blob into " + final_path, errno);
  }
  committed_ = true;
  FsyncPath(blobs_dir_);
  return d;
}

Descriptor Layout::AdoptFile(const std::string& path,
                             const std::string& media_type) const {
  UniqueFd fd = OpenRead(path);
  Sha256 hasher;
  std::vector<char> buf(1 << 20);
  while (size_t n = ReadFull(fd.get(), buf.data(), buf.size(), path))
    hasher.Update(buf.data(), n);
  Descriptor d;
  d.media_type = media_type;
  d.size = static_cast<int64_t>(hasher.bytes());
  d.digest = hasher.Finish();
  if (::fsync(fd.get()) != 0) throw SystemError("fsync " + path, errno);
  std::string final_path = BlobPath(d.digest);
  if (::rename(path.c_str(), final_path.c_str()) != 0)
    throw SystemError("renaming " + path + " into " + final_path, errno);
  FsyncPath(Dirname(final_path));
  return d;
}

Layout Layout::Open(const std::string& dir, bool create,
                    ErrorKind corrupt_kind) {
  Layout layout(dir, corrupt_kind);
  std::string marker = dir + "/oci-layout";
  if (!PathExists(marker)) {
    if (!create) {
      throw UserError(dir + " is not an OCI image layout (no oci-layout file)");
    }
    MakeDirs(dir + "/blobs/sha256");
    {
      // Under the index's lock: another process making the layout at the
      // same time may already have named an image in it.
      FileLock lock(dir, FileLock::Mode::kExclusive);
      if (!PathExists(dir + "/index.json")) {
        Index empty;
        WriteFileAtomic(dir + "/index.json", CanonicalJson(empty.ToJson()));
      }
    }
    WriteFileAtomic(marker, kLayoutFile);
  } else {
    std::string text = ReadFile(marker, 4096);
    auto j = ParseJson(text, marker);
    if (!j.is_object() || !j.contains("imageLayoutVersion") ||
        !j["imageLayoutVersion"].is_string()) {
      throw layout.Corrupt(marker + ": not an OCI layout marker");
    }
    std::string version = j["imageLayoutVersion"];
    if (!StartsWith(version, "1.")) {
      throw layout.Corrupt(marker + ": imageLayoutVersion " + version +
                           " is not supported (kiln reads 1.x)");
    }
    // A layout opened to read (an oci: input) is not written to.
    if (create) MakeDirs(dir + "/blobs/sha256");
  }
  return layout;
}

std::string Layout::BlobPath(const Digest& digest) const {
  return dir_ + "/blobs/sha256/" + digest.hex();
}

bool Layout::HasBlob(const Digest& digest) const {
  return PathExists(BlobPath(digest));
}

std::unique_ptr<BlobWriter> Layout::NewBlob() const {
  std::string blobs = dir_ + "/blobs/sha256";
  std::string temp = TempPathBeside(blobs + "/blob");
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw SystemError("creating " + temp, errno);
  // The store's files have the same modes whatever the umask.
  ::fchmod(fd, 0644);
  return std::make_unique<BlobWriter>(blobs, UniqueFd(fd), temp);
}

Descriptor Layout::PutBlob(std::string_view bytes,
                           const std::string& media_type) const {
  auto w = NewBlob();
  w->Write(bytes.data(), bytes.size());
  return w->Commit(media_type);
}

std::string Layout::ReadBlob(const Descriptor& d, uint64_t max_bytes) const {
  std::string path = BlobPath(d.digest);
  if (!PathExists(path))
    throw Corrupt(dir_ + ": blob " + d.digest.ToString() + " is missing");
  if (static_cast<uint64_t>(d.size) > max_bytes) {
    throw Corrupt(dir_ + ": blob " + d.digest.ToString() + " claims " +
                  std::to_string(d.size) + " bytes, more than " +
                  std::to_string(max_bytes) + " allowed for " + d.media_type);
  }
  std::string bytes = ReadFile(path, max_bytes);
  if (bytes.size() != static_cast<uint64_t>(d.size) ||
      Sha256Of(bytes) != d.digest) {
    throw Corrupt(dir_ + ": blob " + d.digest.ToString() +
                  " does not match its digest or size (run kiln store fsck)");
  }
  return bytes;
}

void Layout::CopyBlobFrom(const Layout& from, const Descriptor& d) const {
  if (HasBlob(d.digest)) return;
  std::string src = from.BlobPath(d.digest);
  UniqueFd in = OpenRead(src);
  auto w = NewBlob();
  constexpr size_t kBuf = 1 << 20;
  std::unique_ptr<char[]> buf(new char[kBuf]);
  while (size_t n = ReadFull(in.get(), buf.get(), kBuf, src)) {
    w->Write(buf.get(), n);
    // A file far larger than its descriptor says is not copied whole first.
    if (n < kBuf || w->size() > static_cast<uint64_t>(d.size)) break;
  }
  if (w->size() != static_cast<uint64_t>(d.size)) {
    throw from.Corrupt(from.dir_ + ": blob " + d.digest.ToString() + " has " +
                       std::to_string(w->size()) + " bytes, expected " +
                       std::to_string(d.size));
  }
  try {
    w->Commit(d.media_type, d.digest);
  } catch (const Error& e) {
    throw from.Corrupt(from.dir_ + ": blob " + d.digest.ToString() +
                       " is corrupt: " + e.message());
  }
}

Index Layout::ReadIndex() const {
  std::string path = dir_ + "/index.json";
  if (!PathExists(path)) return Index();
  std::string text = ReadFile(path, 64 << 20);
  try {
    return Index::Parse(text, path);
  } catch (const Error& e) {
    throw Corrupt(e.message());
  }
}

void Layout::UpdateIndex(const std::function<void(Index&)>& change) const {
  FileLock lock(dir_, FileLock::Mode::kExclusive);
  Index index = ReadIndex();
  change(index);
  WriteFileAtomic(dir_ + "/index.json", CanonicalJson(index.ToJson()));
}

std::optional<Descriptor> Layout::FindRef(const std::string& ref) const {
  Index index = ReadIndex();
  for (const auto& d : index.manifests) {
    auto it = d.annotations.find(annotation::kRefName);
    if (it != d.annotations.end() && it->second == ref) return d;
  }
  return std::nullopt;
}

}  // namespace kiln
