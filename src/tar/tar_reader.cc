#include "tar/tar_reader.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "core/strings.h"

namespace kiln {

// The file behind an archive, read in large blocks and hashed on the way.
struct TarReader::Source {
  UniqueFd fd;
  std::string path;
  std::vector<char> buf;  // 1 MiB for a file; a stream brings its own blocks
  Sha256 hasher;
  std::optional<Digest> expected;
  std::optional<Error> error;  // why a read failed, rethrown with its kind
  std::function<long(const void**)> pull;  // instead of fd: a stream

  static la_ssize_t Read(struct archive*, void* self, const void** out) {
    auto* s = static_cast<Source*>(self);
    if (s->pull) {
      try {
        return s->pull(out);
      } catch (const Error& e) {
        s->error = e;
        return -1;
      } catch (const std::exception& e) {
        s->error = EnvError(e.what());
        return -1;
      }
    }
    while (true) {
      ssize_t n = ::read(s->fd.get(), s->buf.data(), s->buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        s->error = SystemError("reading " + s->path, errno);
        return -1;
      }
      s->hasher.Update(s->buf.data(), static_cast<size_t>(n));
      *out = s->buf.data();
      return n;
    }
  }

  // Hashes what libarchive did not need to read (padding after the end).
  void Verify(const std::string& what) {
    if (!expected || pull) return;
    while (true) {
      ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw SystemError("reading " + path, errno);
      if (n == 0) break;
      hasher.Update(buf.data(), static_cast<size_t>(n));
    }
    Digest actual = hasher.Finish();
    if (actual != *expected) {
      throw EnvError(what + ": blob content hashes to " + actual.ToString() +
                     ", not " + expected->ToString() +
                     " (run kiln store fsck)");
    }
    expected.reset();
  }
};

TarReader::TarReader(struct archive* a, std::unique_ptr<Source> source,
                     std::string what)
    : a_(a), source_(std::move(source)), what_(std::move(what)) {}

std::unique_ptr<TarReader> TarReader::Open(const std::string& path,
                                           const std::string& what,
                                           std::optional<Digest> expected) {
  auto source = std::make_unique<Source>();
  source->fd = OpenRead(path);
  source->path = path;
  source->buf.resize(1 << 20);
  source->expected = std::move(expected);
  ::posix_fadvise(source->fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  struct archive* a = archive_read_new();
  if (!a) throw InternalError("libarchive: out of memory");
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  Source* raw = source.get();
  std::unique_ptr<TarReader> reader(new TarReader(a, std::move(source), what));
  if (archive_read_open(a, raw, nullptr, &Source::Read, nullptr) != ARCHIVE_OK)
    reader->Fail("opening");
  return reader;
}

std::unique_ptr<TarReader> TarReader::OpenStream(
    std::function<long(const void**)> pull, const std::string& what) {
  auto source = std::make_unique<Source>();
  source->pull = std::move(pull);
  source->path = what;
  struct archive* a = archive_read_new();
  if (!a) throw InternalError("libarchive: out of memory");
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  Source* raw = source.get();
  std::unique_ptr<TarReader> reader(new TarReader(a, std::move(source), what));
  if (archive_read_open(a, raw, nullptr, &Source::Read, nullptr) != ARCHIVE_OK)
    reader->Fail("opening");
  return reader;
}

TarReader::~TarReader() { archive_read_free(a_); }

void TarReader::Fail(const std::string& doing) {
  if (source_ && source_->error) {
    // A stream's errors name their source already.
    if (source_->pull) throw *source_->error;
    throw source_->error->WithContext(what_);
  }
  const char* msg = archive_error_string(a_);
  throw UserError(what_ + ": " + doing + ": " +
                  (msg ? msg : "unreadable archive"));
}

namespace {

// The header's metadata beyond what an Entry holds.
void ReadExtras(struct archive* a, struct archive_entry* e, TarHeader* h) {
  h->offset = archive_read_header_position(a);
  h->mtime = archive_entry_mtime(e);
  h->mtime_nsec = archive_entry_mtime_nsec(e);
  const char* uname = archive_entry_uname(e);
  const char* gname = archive_entry_gname(e);
  h->uname = uname ? uname : "";
  h->gname = gname ? gname : "";
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  archive_entry_xattr_reset(e);
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    h->xattrs.emplace_back(name ? name : "",
                           std::string(static_cast<const char*>(value), size));
  }
  auto add = [&](const std::string& record) {
    h->extra += (h->extra.empty() ? "" : " ") + record;
  };
  auto time = [](int64_t s, long ns) {
    return std::to_string(s) + (ns ? "." + std::to_string(ns) : "");
  };
  if (archive_entry_atime_is_set(e))
    add("atime=" + time(archive_entry_atime(e), archive_entry_atime_nsec(e)));
  if (archive_entry_ctime_is_set(e))
    add("ctime=" + time(archive_entry_ctime(e), archive_entry_ctime_nsec(e)));
  if (archive_entry_birthtime_is_set(e)) {
    add("birthtime=" +
        time(archive_entry_birthtime(e), archive_entry_birthtime_nsec(e)));
  }
  if (const char* flags = archive_entry_fflags_text(e); flags && *flags)
    add(std::string("fflags=") + flags);
  if (archive_entry_acl_types(e) != 0) {
    char* acl = archive_entry_acl_to_text(
        e, nullptr, ARCHIVE_ENTRY_ACL_STYLE_SEPARATOR_COMMA);
    if (acl) {
      add(std::string("acl=") + acl);
      std::free(acl);
    }
  }
}

}  // namespace

bool TarReader::Next(TarHeader* h) {
  struct archive_entry* e = nullptr;
  int r = archive_read_next_header(a_, &e);
  if (r == ARCHIVE_EOF) {
    source_->Verify(what_);
    return false;
  }
  if (r < ARCHIVE_WARN) Fail("reading entry header");
  *h = TarHeader();
  const char* name = archive_entry_pathname(e);
  h->name = name ? name : "";
  h->mode = archive_entry_perm(e) & 07777;
  // Ids past 32 bits would wrap (2^32 to 0, root): refused, not truncated.
  for (int64_t id : {archive_entry_uid(e), archive_entry_gid(e)}) {
    if (id < 0 || id > int64_t{UINT32_MAX}) {
      throw UserError(what_ + ": entry " + Quote(h->name) + ": owner id " +
                      std::to_string(id) + " does not fit in 32 bits");
    }
  }
  h->uid = static_cast<uint32_t>(archive_entry_uid(e));
  h->gid = static_cast<uint32_t>(archive_entry_gid(e));
  ReadExtras(a_, e, h);
  int64_t size = archive_entry_size(e);
  h->size = size > 0 ? static_cast<uint64_t>(size) : 0;
  if (const char* hard = archive_entry_hardlink(e)) {
    h->type = EntryType::kHardlink;
    h->link = hard;
    return true;
  }
  switch (archive_entry_filetype(e)) {
    case AE_IFREG:
      h->type = EntryType::kFile;
      break;
    case AE_IFDIR:
      h->type = EntryType::kDir;
      h->size = 0;
      break;
    case AE_IFLNK: {
      h->type = EntryType::kSymlink;
      const char* target = archive_entry_symlink(e);
      h->link = target ? target : "";
      h->size = 0;
      break;
    }
    case AE_IFCHR:
      h->type = EntryType::kChar;
      break;
    case AE_IFBLK:
      h->type = EntryType::kBlock;
      break;
    case AE_IFIFO:
      h->type = EntryType::kFifo;
      break;
    default:
      h->unsupported = true;
      break;
  }
  if (h->type == EntryType::kChar || h->type == EntryType::kBlock) {
    h->dev_major = static_cast<uint32_t>(archive_entry_rdevmajor(e));
    h->dev_minor = static_cast<uint32_t>(archive_entry_rdevminor(e));
    h->size = 0;
  }
  if (h->type == EntryType::kFifo) h->size = 0;
  return true;
}

uint64_t TarReader::CopyData(ByteSink& sink) {
  constexpr size_t kBuf = 1 << 18;
  static thread_local std::unique_ptr<char[]> buf(new char[kBuf]);
  uint64_t total = 0;
  while (true) {
    la_ssize_t n = archive_read_data(a_, buf.get(), kBuf);
    if (n < 0) Fail("reading entry data");
    if (n == 0) break;
    sink.Write(buf.get(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  return total;
}

}  // namespace kiln

namespace kiln {

constexpr uint64_t kUnpackRatio = 100;
constexpr uint64_t kMinUnpackLimit = 1'000'000'000;

uint64_t DefaultUnpackLimit(uint64_t archive_bytes) {
  if (archive_bytes > UINT64_MAX / kUnpackRatio) return UINT64_MAX;
  return std::max(archive_bytes * kUnpackRatio, kMinUnpackLimit);
}

std::string UnpackLimitRule(const std::string& what) {
  return what + " may unpack to " + std::to_string(kUnpackRatio) +
         " times its size or " + HumanBytes(kMinUnpackLimit) +
         ", whichever is more";
}

uint64_t Decompress(const std::string& path, ByteSink& sink,
                    const std::string& what) {
  struct archive* a = archive_read_new();
  if (!a) throw InternalError("libarchive: out of memory");
  std::unique_ptr<struct archive, int (*)(struct archive*)> owned(
      a, archive_read_free);
  archive_read_support_filter_all(a);
  archive_read_support_format_raw(a);
  if (archive_read_open_filename(a, path.c_str(), 1 << 20) != ARCHIVE_OK) {
    throw EnvError(
        what + ": " +
        (archive_error_string(a) ? archive_error_string(a) : "cannot open"));
  }
  struct archive_entry* e = nullptr;
  int r = archive_read_next_header(a, &e);
  if (r == ARCHIVE_EOF) return 0;
  if (r < ARCHIVE_WARN)
    throw EnvError(
        what + ": " +
        (archive_error_string(a) ? archive_error_string(a) : "unreadable"));
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  while (true) {
    la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
    if (n < 0)
      throw EnvError(
          what + ": " +
          (archive_error_string(a) ? archive_error_string(a) : "unreadable"));
    if (n == 0) break;
    sink.Write(buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  return total;
}

}  // namespace kiln
