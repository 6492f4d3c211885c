#include "tar/tar_writer.h"

#include <cstring>
#include <string_view>

#include "core/error.h"
#include "core/image_path.h"

namespace kiln {
namespace {

constexpr size_t kBlock = 512;
// Largest values the octal ustar fields hold.
constexpr uint64_t kMaxOctal7 = 07777777;  // uid, gid: 8-byte fields
constexpr uint64_t kMaxOctal11 =
    077777777777ULL;  // size, mtime: 12-byte fields

struct Header {
  char name[100];
  char mode[8];
  char uid[8];
  char gid[8];
  char size[12];
  char mtime[12];
  char chksum[8];
  char typeflag;
  char linkname[100];
  char magic[6];
  char version[2];
  char uname[32];
  char gname[32];
  char devmajor[8];
  char devminor[8];
  char prefix[155];
  char pad[12];
};
static_assert(sizeof(Header) == kBlock);

void Octal(char* field, size_t width, uint64_t value) {
  // width-1 digits, then NUL.
  field[width - 1] = '\0';
  for (size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
}

// Splits a long name into ustar prefix (<=155) + name (<=100) at a '/'.
bool SplitUstar(const std::string& path, std::string* prefix,
                std::string* name) {
  if (path.size() <= 100) {
    prefix->clear();
    *name = path;
    return true;
  }
  if (path.size() > 256) return false;
  for (size_t i = path.size() > 101 ? path.size() - 101 : 0;
       i < path.size() && i <= 155; ++i) {
    if (path[i] != '/') continue;
    if (path.size() - i - 1 <= 100 && i > 0 && path.size() - i - 1 > 0) {
      *prefix = path.substr(0, i);
      *name = path.substr(i + 1);
      return true;
    }
  }
  return false;
}

void AddRecord(std::string* pax, std::string_view key, std::string_view value) {
  // "LEN KEY=VALUE\n" where LEN counts itself.
  size_t body = 1 + key.size() + 1 + value.size() + 1;
  size_t len = body + 1;
  while (std::to_string(len).size() + body != len) ++len;
  *pax += std::to_string(len);
  *pax += ' ';
  *pax += key;
  *pax += '=';
  *pax += value;
  *pax += '\n';
}

char TypeFlag(EntryType type) {
  switch (type) {
    case EntryType::kFile:
      return '0';
    case EntryType::kHardlink:
      return '1';
    case EntryType::kSymlink:
      return '2';
    case EntryType::kChar:
      return '3';
    case EntryType::kBlock:
      return '4';
    case EntryType::kDir:
      return '5';
    case EntryType::kFifo:
      return '6';
  }
  return '0';
}

}  // namespace

void TarWriter::Emit(const void* data, size_t n) {
  out_.Write(data, n);
  bytes_ += n;
}

void TarWriter::Pad(uint64_t size) {
  static const char kZeros[kBlock] = {};
  size_t rem = static_cast<size_t>(size % kBlock);
  if (rem) Emit(kZeros, kBlock - rem);
}

void TarWriter::WriteHeader(const std::string& name, char typeflag,
                            const Entry& e, uint64_t size,
                            const std::string& link) {
  std::string prefix, short_name, pax;
  if (!SplitUstar(name, &prefix, &short_name)) {
    AddRecord(&pax, "path", name);
    short_name = name.substr(0, 99);
    prefix.clear();
  }
  if (link.size() > 100) AddRecord(&pax, "linkpath", link);
  if (e.uid > kMaxOctal7) AddRecord(&pax, "uid", std::to_string(e.uid));
  if (e.gid > kMaxOctal7) AddRecord(&pax, "gid", std::to_string(e.gid));
  if (size > kMaxOctal11) AddRecord(&pax, "size", std::to_string(size));

  if (!pax.empty()) {
    // The extended header's own name is derived from the entry's, never from
    // the process (GNU tar's default puts the pid in it).
    std::string base(
        BaseName(name.back() == '/' ? name.substr(0, name.size() - 1) : name));
    Entry meta;
    meta.mode = 0644;
    WriteHeader("PaxHeaders/" + base.substr(0, 80), 'x', meta, pax.size(), "");
    Emit(pax.data(), pax.size());
    Pad(pax.size());
  }

  Header h;
  std::memset(&h, 0, sizeof h);
  std::memcpy(h.name, short_name.data(),
              std::min<size_t>(short_name.size(), sizeof h.name));
  std::memcpy(h.prefix, prefix.data(),
              std::min<size_t>(prefix.size(), sizeof h.prefix));
  Octal(h.mode, sizeof h.mode, e.mode & 07777);
  Octal(h.uid, sizeof h.uid, e.uid > kMaxOctal7 ? 0 : e.uid);
  Octal(h.gid, sizeof h.gid, e.gid > kMaxOctal7 ? 0 : e.gid);
  Octal(h.size, sizeof h.size, size > kMaxOctal11 ? 0 : size);
  Octal(h.mtime, sizeof h.mtime, static_cast<uint64_t>(mtime_));
  h.typeflag = typeflag;
  std::memcpy(h.linkname, link.data(),
              std::min<size_t>(link.size(), sizeof h.linkname));
  std::memcpy(h.magic, "ustar", 6);
  std::memcpy(h.version, "00", 2);
  Octal(h.devmajor, sizeof h.devmajor, e.dev_major);
  Octal(h.devminor, sizeof h.devminor, e.dev_minor);
  std::memset(h.chksum, ' ', sizeof h.chksum);
  unsigned sum = 0;
  const auto* bytes = reinterpret_cast<const unsigned char*>(&h);
  for (size_t i = 0; i < kBlock; ++i) sum += bytes[i];
  Octal(h.chksum, 7, sum);
  h.chksum[7] = ' ';
  Emit(&h, sizeof h);
}

void TarWriter::Add(const Entry& e) {
  if (mtime_ < 0 || static_cast<uint64_t>(mtime_) > kMaxOctal11) {
    throw UserError("build date " + std::to_string(mtime_) +
                    " is out of range for tar");
  }
  std::string name = e.path;
  if (e.IsDir()) name += '/';
  uint64_t size = e.type == EntryType::kFile ? e.size : 0;
  WriteHeader(name, TypeFlag(e.type), e, size, e.link);
  if (size == 0) return;
  if (!e.content) throw InternalError("no content for /" + e.path);
  CountingSink counter(out_);  // a short or long source is caught
  e.content->CopyTo(counter, size);
  if (counter.count != size) {
    throw UserError(e.content->Describe() + ": expected " +
                    std::to_string(size) + " bytes, read " +
                    std::to_string(counter.count));
  }
  bytes_ += size;
  Pad(size);
}

void TarWriter::Finish() {
  static const char kZeros[2 * kBlock] = {};
  Emit(kZeros, sizeof kZeros);
}

}  // namespace kiln
