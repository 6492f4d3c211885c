#include "image/compare.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <memory>
#include <utility>

#include "core/error.h"
#include "core/fs.h"
#include "core/strings.h"
#include "disk/artifact.h"

namespace kiln {
namespace {

using nlohmann::json;

constexpr char kNone[] = "(none)";
constexpr char kEnded[] = "(the layer has ended)";

void DiffJsonAt(const json& a, const json& b, const std::string& path,
                const std::set<std::string>& skip,
                std::vector<FieldChange>* out) {
  if (skip.count(path)) return;
  auto child = [&](const std::string& key) {
    return path.empty() ? key : path + "." + key;
  };
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& [k, v] : a.items()) keys.insert(k);
    for (const auto& [k, v] : b.items()) keys.insert(k);
    for (const auto& k : keys) {
      bool in_a = a.contains(k), in_b = b.contains(k);
      if (in_a && in_b) {
        DiffJsonAt(a[k], b[k], child(k), skip, out);
      } else if (!skip.count(child(k))) {
        out->push_back({child(k),
                        in_a ? std::optional(a[k].dump()) : std::nullopt,
                        in_b ? std::optional(b[k].dump()) : std::nullopt});
      }
    }
    return;
  }
  if (a.is_array() && b.is_array()) {
    for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
      std::string at = path + "[" + std::to_string(i) + "]";
      if (i < a.size() && i < b.size()) {
        DiffJsonAt(a[i], b[i], at, skip, out);
      } else {
        out->push_back(
            {at, i < a.size() ? std::optional(a[i].dump()) : std::nullopt,
             i < b.size() ? std::optional(b[i].dump()) : std::nullopt});
      }
    }
    return;
  }
  if (a != b) out->push_back({path, a.dump(), b.dump()});
}

std::string Printable(const std::string& value) {
  bool text = std::all_of(value.begin(), value.end(),
                          [](char c) { return c >= 0x20 && c < 0x7f; });
  if (text) return value;
  std::string hex = "0x";
  char buf[4];
  for (unsigned char c : value) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    hex += buf;
  }
  return hex;
}

std::string Mtime(const TarHeader& h) {
  std::string s = std::to_string(h.mtime);
  if (h.mtime_nsec) {
    char buf[16];
    std::snprintf(buf, sizeof buf, ".%09lld",
                  static_cast<long long>(h.mtime_nsec));
    s += buf;
  }
  return s + " (" + Rfc3339(h.mtime) + ")";
}

// One entry's properties in a fixed order, each with its value as shown.
using Properties = std::vector<std::pair<const char*, std::string>>;

Properties PropertiesOf(const TarHeader& h, const Digest& content) {
  Properties p;
  p.emplace_back("type", h.unsupported ? "unsupported" : EntryTypeName(h.type));
  p.emplace_back("content", h.type == EntryType::kFile && !h.unsupported
                                ? content.ToString() + " " +
                                      std::to_string(h.size) + " bytes"
                                : kNone);
  p.emplace_back("mode", OctalMode(h.mode));
  p.emplace_back("owner", std::to_string(h.uid) + ":" + std::to_string(h.gid));
  p.emplace_back("owner names", h.uname.empty() && h.gname.empty()
                                    ? kNone
                                    : h.uname + ":" + h.gname);
  p.emplace_back("mtime", Mtime(h));
  std::vector<std::string> xattrs;
  for (const auto& [name, value] : h.xattrs)
    xattrs.push_back(name + "=" + Printable(value));
  // libarchive reads an xattr once per pax record naming it (SCHILY. and
  // LIBARCHIVE.): one value, shown once.
  std::sort(xattrs.begin(), xattrs.end());
  xattrs.erase(std::unique(xattrs.begin(), xattrs.end()), xattrs.end());
  p.emplace_back("xattrs", xattrs.empty() ? kNone : Join(xattrs, "; "));
  p.emplace_back("pax", h.extra.empty() ? kNone : h.extra);
  p.emplace_back("link", h.link.empty() ? kNone : Quote(h.link));
  p.emplace_back(
      "device",
      h.type == EntryType::kChar || h.type == EntryType::kBlock
          ? std::to_string(h.dev_major) + "," + std::to_string(h.dev_minor)
          : kNone);
  return p;
}

std::string Fingerprint(const Properties& p) {
  Sha256 hash;
  for (const auto& [name, value] : p) {
    hash.Update(value);
    hash.Update("\0", 1);
  }
  return hash.Finish().hex();
}

class HashSink : public ByteSink {
 public:
  explicit HashSink(Sha256* hash) : hash_(hash) {}
  void Write(const void* data, size_t n) override { hash_->Update(data, n); }

 private:
  Sha256* hash_;
};

// One side's walk: the current header and its content's digest.
struct Side {
  TarReader& reader;
  TarHeader header;
  Digest content;
  bool more = false;
  std::map<std::string, std::string> seen;  // path#n -> fingerprint

  void Advance() {
    more = reader.Next(&header);
    if (!more) return;
    Sha256 hash;
    HashSink sink(&hash);
    if (header.type == EntryType::kFile && !header.unsupported)
      reader.CopyData(sink);
    content = hash.Finish();
  }
  Properties Record() {
    Properties p = PropertiesOf(header, content);
    std::string key = header.name + "#0";
    for (size_t n = 1; seen.count(key); ++n)
      key = header.name + "#" + std::to_string(n);
    seen[key] = Fingerprint(p);
    return p;
  }
};

// A whole blob decompressed, read in blocks (libarchive's raw format).
class RawStream {
 public:
  RawStream(const std::string& path, const std::string& what)
      : a_(archive_read_new(), archive_read_free), what_(what) {
    if (!a_) throw InternalError("libarchive: out of memory");
    archive_read_support_filter_all(a_.get());
    archive_read_support_format_raw(a_.get());
    struct archive_entry* e = nullptr;
    if (archive_read_open_filename(a_.get(), path.c_str(), 1 << 20) !=
        ARCHIVE_OK)
      Fail();
    int r = archive_read_next_header(a_.get(), &e);
    if (r == ARCHIVE_EOF) {
      done_ = true;
    } else if (r < ARCHIVE_WARN) {
      Fail();
    }
  }

  // The next block; empty at the end.
  std::string_view Next() {
    if (done_) return {};
    la_ssize_t n = archive_read_data(a_.get(), buf_.data(), buf_.size());
    if (n < 0) Fail();
    if (n == 0) done_ = true;
    return {buf_.data(), static_cast<size_t>(n)};
  }

 private:
  [[noreturn]] void Fail() {
    const char* msg = archive_error_string(a_.get());
    throw EnvError(what_ + ": " + (msg ? msg : "unreadable"));
  }

  std::unique_ptr<struct archive, int (*)(struct archive*)> a_;
  std::string what_;
  std::vector<char> buf_ = std::vector<char>(1 << 20);
  bool done_ = false;
};

std::string Hex(std::string_view bytes) {
  std::string out;
  char buf[4];
  for (unsigned char c : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out.empty() ? "(the end)" : out;
}

// Where two decompressed blobs first differ, with up to 16 bytes of each
// from there; nullopt if they do not.
std::optional<uint64_t> FirstDifferingByte(const std::string& path_a,
                                           const std::string& what_a,
                                           const std::string& path_b,
                                           const std::string& what_b,
                                           std::string* bytes_a,
                                           std::string* bytes_b) {
  RawStream a(path_a, what_a), b(path_b, what_b);
  std::string pending_a, pending_b;
  // The 16 bytes from `at` on (fewer at the end), in hex.
  auto show = [](RawStream& s, std::string& pending, size_t at) {
    while (pending.size() < at + 16) {
      std::string_view more = s.Next();
      if (more.empty()) break;
      pending += more;
    }
    return Hex(
        std::string_view(pending).substr(std::min(at, pending.size()), 16));
  };
  uint64_t offset = 0;
  while (true) {
    if (pending_a.empty()) pending_a = std::string(a.Next());
    if (pending_b.empty()) pending_b = std::string(b.Next());
    if (pending_a.empty() && pending_b.empty()) return std::nullopt;
    size_t n = std::min(pending_a.size(), pending_b.size());
    auto diff = std::mismatch(pending_a.begin(), pending_a.begin() + n,
                              pending_b.begin());
    if (n == 0 || diff.first != pending_a.begin() + n) {
      size_t at = static_cast<size_t>(diff.first - pending_a.begin());
      *bytes_a = show(a, pending_a, at);
      *bytes_b = show(b, pending_b, at);
      return offset + at;
    }
    offset += n;
    pending_a.erase(0, n);
    pending_b.erase(0, n);
  }
}

std::vector<std::string> LayerNames(const ImageConfig& config) {
  std::vector<std::string> names;
  for (const auto& h : config.history) {
    if (h.empty_layer) continue;
    std::string name = h.created_by;
    if (StartsWith(name, "kiln: layer ")) name = name.substr(12);
    names.push_back(name);
  }
  return names;
}

DiskComparison CompareDisks(const Layout& layout_a,
                            const std::optional<StoredDisk>& a,
                            const Layout& layout_b,
                            const std::optional<StoredDisk>& b);

}  // namespace

std::vector<FieldChange> DiffJson(const json& a, const json& b,
                                  const std::set<std::string>& skip) {
  std::vector<FieldChange> out;
  DiffJsonAt(a, b, "", skip, &out);
  return out;
}

TarComparison CompareTars(TarReader& reader_a, TarReader& reader_b) {
  TarComparison out;
  Side a{reader_a, {}, {}, false, {}}, b{reader_b, {}, {}, false, {}};
  a.Advance();
  b.Advance();
  for (size_t index = 0; a.more || b.more; ++index) {
    Properties pa, pb;
    if (a.more) {
      pa = a.Record();
      ++out.entries_a;
    }
    if (b.more) {
      pb = b.Record();
      ++out.entries_b;
    }
    if (!out.first) {
      EntryDifference d;
      d.index = index;
      d.path_a = a.more ? a.header.name : "";
      d.path_b = b.more ? b.header.name : "";
      if (!a.more || !b.more || a.header.name != b.header.name) {
        d.properties.push_back({"order", a.more ? a.header.name : kEnded,
                                b.more ? b.header.name : kEnded});
      } else {
        for (size_t i = 0; i < pa.size(); ++i) {
          if (pa[i].second != pb[i].second)
            d.properties.push_back({pa[i].first, pa[i].second, pb[i].second});
        }
      }
      if (!d.properties.empty()) out.first = std::move(d);
    }
    if (a.more) a.Advance();
    if (b.more) b.Advance();
  }
  for (const auto& [key, print] : a.seen) {
    auto it = b.seen.find(key);
    if (it == b.seen.end() || it->second != print) ++out.differing;
  }
  for (const auto& [key, print] : b.seen) {
    if (!a.seen.count(key)) ++out.differing;
  }
  return out;
}

namespace {

// After CompareTars found every entry alike: the first byte where the two
// blobs differ anyway, and the entry of A that holds it.
void NameTheEncodingDifference(const std::string& path_a,
                               const std::string& what_a,
                               const std::string& path_b,
                               const std::string& what_b, TarComparison& out) {
  if (out.first) return;
  std::string bytes_a, bytes_b;
  std::optional<uint64_t> at =
      FirstDifferingByte(path_a, what_a, path_b, what_b, &bytes_a, &bytes_b);
  if (!at) return;
  // The entry whose header (or data) holds the byte.
  EntryDifference d;
  d.index = out.entries_a;
  d.path_a = d.path_b = "";
  d.offset = at;
  auto reader = TarReader::Open(path_a, what_a);
  TarHeader h;
  size_t index = 0;
  while (reader->Next(&h) && static_cast<uint64_t>(h.offset) <= *at) {
    d.index = index++;
    d.path_a = d.path_b = h.name;
  }
  d.properties.push_back({"encoding", bytes_a, bytes_b});
  out.first = std::move(d);
  out.differing = std::max<size_t>(out.differing, 1);
}

}  // namespace

TarComparison CompareLayerBlobs(const std::string& path_a,
                                const std::string& what_a,
                                const std::string& path_b,
                                const std::string& what_b) {
  TarComparison out;
  {
    auto a = TarReader::Open(path_a, what_a);
    auto b = TarReader::Open(path_b, what_b);
    out = CompareTars(*a, *b);
  }
  NameTheEncodingDifference(path_a, what_a, path_b, what_b, out);
  return out;
}

namespace {

struct Region {
  std::string name;
  uint64_t begin = 0;
  uint64_t end = 0;
};

// The partitions of `info` in disk order, and what lies between and around
// them, up to `size`.
std::vector<Region> Regions(const DiskInfo& info, uint64_t size) {
  std::vector<DiskPartition> parts = info.partitions;
  std::sort(parts.begin(), parts.end(),
            [](const auto& x, const auto& y) { return x.offset < y.offset; });
  std::vector<Region> out;
  uint64_t at = 0;
  for (const auto& p : parts) {
    if (p.offset > at) {
      out.push_back({at == 0 ? "the protective MBR and primary GPT"
                             : "between partitions",
                     at, p.offset});
    }
    out.push_back({"partition " + std::to_string(p.number) + " (" + p.name +
                       (p.filesystem.empty() ? "" : ", " + p.filesystem) + ")",
                   p.offset, p.offset + p.size});
    at = std::max(at, p.offset + p.size);
  }
  if (size > at)
    out.push_back({parts.empty() ? "the disk" : "the backup GPT", at, size});
  return out;
}

// Regions whose bytes differ between two raw disk files.
std::vector<DiskRegion> CompareRawDisks(const std::string& path_a,
                                        const std::string& path_b,
                                        const DiskInfo& info) {
  UniqueFd a = OpenRead(path_a), b = OpenRead(path_b);
  uint64_t size_a = static_cast<uint64_t>(::lseek(a.get(), 0, SEEK_END));
  uint64_t size_b = static_cast<uint64_t>(::lseek(b.get(), 0, SEEK_END));
  uint64_t size = std::max(size_a, size_b);
  std::vector<DiskRegion> out;
  std::vector<char> buf_a(1 << 20), buf_b(1 << 20);
  for (const auto& r : Regions(info, size)) {
    for (uint64_t at = r.begin; at < r.end;) {
      size_t want =
          static_cast<size_t>(std::min<uint64_t>(buf_a.size(), r.end - at));
      auto read = [&](int fd, std::vector<char>& buf, uint64_t file_size,
                      const std::string& path) {
        std::fill(buf.begin(), buf.begin() + want, 0);
        if (at >= file_size) return;
        size_t n =
            static_cast<size_t>(std::min<uint64_t>(want, file_size - at));
        size_t got = 0;
        while (got < n) {
          ssize_t k = ::pread(fd, buf.data() + got, n - got,
                              static_cast<off_t>(at + got));
          if (k < 0 && errno == EINTR) continue;
          if (k < 0) throw SystemError("reading " + path, errno);
          if (k == 0) break;
          got += static_cast<size_t>(k);
        }
      };
      read(a.get(), buf_a, size_a, path_a);
      read(b.get(), buf_b, size_b, path_b);
      // A shorter file differs where it ends, even if the rest is zeros.
      auto diff =
          std::mismatch(buf_a.begin(), buf_a.begin() + want, buf_b.begin());
      uint64_t end_short = std::min(size_a, size_b);
      uint64_t first =
          diff.first == buf_a.begin() + want
              ? UINT64_MAX
              : at + static_cast<uint64_t>(diff.first - buf_a.begin());
      if (size_a != size_b && end_short >= at && end_short < at + want)
        first = std::min(first, end_short);
      if (first != UINT64_MAX) {
        out.push_back({r.name, first, first - r.begin});
        break;
      }
      at += want;
    }
  }
  return out;
}

json DiskInfoJson(const StoredDisk& d) {
  return ParseJson(d.info.ToJson(), "disk information");
}

DiskComparison CompareDisks(const Layout& layout_a,
                            const std::optional<StoredDisk>& a,
                            const Layout& layout_b,
                            const std::optional<StoredDisk>& b) {
  DiskComparison out;
  if (a) {
    out.a = a->descriptor;
    out.blob_a = a->blob;
  }
  if (b) {
    out.b = b->descriptor;
    out.blob_b = b->blob;
  }
  if (!a || !b) return out;
  out.info = DiffJson(DiskInfoJson(*a), DiskInfoJson(*b));
  if (a->blob.digest == b->blob.digest) return out;
  if (a->info.format == DiskFormat::kRaw &&
      b->info.format == DiskFormat::kRaw) {
    out.bytes_compared = true;
    out.regions = CompareRawDisks(layout_a.BlobPath(a->blob.digest),
                                  layout_b.BlobPath(b->blob.digest), a->info);
  }
  return out;
}

}  // namespace

ImageComparison CompareImages(const Image& a, const Image& b,
                              const CompareOptions& options) {
  ImageComparison out;
  out.a = a.descriptor.digest;
  out.b = b.descriptor.digest;
  out.layers_a = a.manifest.layers.size();
  out.layers_b = b.manifest.layers.size();
  if (options.layers) {
    auto manifest = [](const Image& image) {
      return ParseJson(image.layout.ReadBlob(image.descriptor, 4 << 20),
                       image.display + " manifest");
    };
    // Fields the layers below report are left out; documents whose bytes
    // differ in no field at all differ in their encoding.
    auto fields = [](const json& ja, const json& jb, const Digest& da,
                     const Digest& db, const std::string& skip) {
      if (da == db) return std::vector<FieldChange>{};
      if (DiffJson(ja, jb).empty())
        return std::vector<FieldChange>{{"(encoding)",
                                         json(da.ToString()).dump(),
                                         json(db.ToString()).dump()}};
      return DiffJson(ja, jb, {skip});
    };
    out.manifest = fields(manifest(a), manifest(b), out.a, out.b, "layers");
    out.config = fields(ParseJson(a.config_bytes, a.display + " config"),
                        ParseJson(b.config_bytes, b.display + " config"),
                        a.manifest.config.digest, b.manifest.config.digest,
                        "rootfs.diff_ids");
    std::vector<std::string> names_a = LayerNames(a.config);
    std::vector<std::string> names_b = LayerNames(b.config);
    for (size_t i = 0; i < std::max(out.layers_a, out.layers_b); ++i) {
      LayerComparison l;
      l.index = i;
      bool in_a = i < out.layers_a, in_b = i < out.layers_b;
      if (in_a) {
        l.a = a.manifest.layers[i];
        l.diff_id_a = a.config.diff_ids[i];
      }
      if (in_b) {
        l.b = b.manifest.layers[i];
        l.diff_id_b = b.config.diff_ids[i];
      }
      l.name = in_a && i < names_a.size()   ? names_a[i]
               : in_b && i < names_b.size() ? names_b[i]
                                            : "";
      if (!in_b) {
        l.verdict = LayerComparison::Verdict::kOnlyInA;
      } else if (!in_a) {
        l.verdict = LayerComparison::Verdict::kOnlyInB;
      } else if (l.a->digest == l.b->digest) {
        l.verdict = LayerComparison::Verdict::kSame;
      } else if (*l.diff_id_a == *l.diff_id_b) {
        l.verdict = LayerComparison::Verdict::kCompression;
      } else {
        l.verdict = LayerComparison::Verdict::kContent;
        {  // read to the end: media types, sizes and digests checked
          auto ra = OpenLayer(a, i);
          auto rb = OpenLayer(b, i);
          l.tar = CompareTars(*ra, *rb);
        }
        NameTheEncodingDifference(
            a.layout.BlobPath(l.a->digest), LayerWhat(a, i),
            b.layout.BlobPath(l.b->digest), LayerWhat(b, i), l.tar);
      }
      out.layers.push_back(std::move(l));
    }
  }
  if (options.files) {
    FlattenOptions f;
    f.hash_files = true;
    out.files = DiffTrees(Flatten(a, f), Flatten(b, f));
  }
  if (options.disk) {
    auto da = FindDisk(a.layout, a.descriptor.digest);
    auto db = FindDisk(b.layout, b.descriptor.digest);
    if (da || db) out.disk = CompareDisks(a.layout, da, b.layout, db);
  }
  return out;
}

}  // namespace kiln
