#include "disk/fat.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string_view>

#include "core/error.h"
#include "core/strings.h"

namespace kiln {
namespace {

constexpr uint32_t kSector = 512;
constexpr uint32_t kReserved = 32;        // sectors before the first FAT
constexpr uint32_t kMinClusters = 65525;  // fewer would make it FAT16
constexpr uint32_t kEndOfChain = 0x0FFFFFFF;
constexpr uint64_t kMiB = 1 << 20;
constexpr uint8_t kAttrLabel = 0x08, kAttrDir = 0x10, kAttrFile = 0x20;

void Put16(std::string& b, size_t at, uint16_t v) {
  b[at] = static_cast<char>(v);
  b[at + 1] = static_cast<char>(v >> 8);
}
void Put32(std::string& b, size_t at, uint32_t v) {
  Put16(b, at, static_cast<uint16_t>(v));
  Put16(b, at + 2, static_cast<uint16_t>(v >> 16));
}

std::string Upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

// Characters a short (8.3) name may hold besides A-Z and 0-9; kiln leaves
// out the OEM code page's upper half so short names never depend on it.
bool ShortChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != 0 && std::string_view("!#$%&'()-@^_`{}~").find(c) !=
                        std::string_view::npos);
}

struct Node {
  std::string name;  // as given
  bool is_dir = true;
  const std::string* content = nullptr;                   // files only
  std::map<std::string, std::unique_ptr<Node>> children;  // by Upper(name)
  std::string short_name;    // 11 bytes: base and extension, space-padded
  std::u16string long_name;  // empty when the short name is the name
  uint32_t entries = 0;      // 32-byte slots of a directory
  uint32_t first_cluster = 0;

  uint32_t Clusters(uint32_t cluster_bytes) const {
    uint64_t bytes = is_dir ? uint64_t{entries} * 32 : content->size();
    // Directories take at least one cluster, empty files none.
    return static_cast<uint32_t>(std::max<uint64_t>(
        is_dir, (bytes + cluster_bytes - 1) / cluster_bytes));
  }
};

// The name as UTF-16 for its long-name entries; throws on what FAT forbids.
std::u16string CheckName(const std::string& name, const std::string& path,
                         const std::string& what) {
  auto bad = [&](const std::string& why) {
    return UserError(what + ": " + Quote(path) + ": " + why);
  };
  if (name.empty()) throw bad("empty file name");
  if (name.back() == '.' || name.back() == ' ')
    throw bad(Quote(name) + " ends in a dot or space, which FAT drops");
  std::u16string out;
  for (size_t i = 0; i < name.size();) {
    unsigned char lead = name[i];
    int n = lead < 0x80             ? 0
            : (lead & 0xE0) == 0xC0 ? 1
            : (lead & 0xF0) == 0xE0 ? 2
            : (lead & 0xF8) == 0xF0 ? 3
                                    : -1;
    if (n < 0 || i + n >= name.size()) throw bad("not UTF-8");
    char32_t cp = n == 0 ? lead : lead & (0x3F >> n);
    for (int k = 1; k <= n; ++k) {
      unsigned char c = name[i + k];
      if ((c & 0xC0) != 0x80) throw bad("not UTF-8");
      cp = cp << 6 | (c & 0x3F);
    }
    static constexpr char32_t kShortest[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kShortest[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
      throw bad("not UTF-8");
    i += n + 1;
    if (cp < 0x20 ||
        (cp < 0x80 &&
         std::string_view("\\:*?\"<>|").find(static_cast<char>(cp)) !=
             std::string_view::npos)) {
      throw bad(Quote(name) + " has a character FAT forbids");
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out += static_cast<char16_t>(0xD800 + (cp >> 10));
      out += static_cast<char16_t>(0xDC00 + (cp & 0x3FF));
    } else {
      out += static_cast<char16_t>(cp);
    }
  }
  if (out.size() > 255) throw bad("name longer than 255 characters");
  return out;
}

Node BuildTree(const std::vector<FatFile>& files, const std::string& what) {
  Node root;
  for (const FatFile& f : files) {
    if (f.content.size() > UINT32_MAX)
      throw UserError(what + ": " + Quote(f.path) + " is 4 GiB or larger");
    Node* dir = &root;
    for (size_t start = 0;;) {
      size_t slash = f.path.find('/', start);
      bool last = slash == std::string::npos;
      std::string name = f.path.substr(start, slash - start);
      std::u16string utf16 = CheckName(name, f.path, what);
      std::unique_ptr<Node>& node = dir->children[Upper(name)];
      if (!node) {
        node = std::make_unique<Node>();
        node->name = name;
        node->is_dir = !last;
        node->content = last ? &f.content : nullptr;
        node->long_name = utf16;
      } else if (node->name != name) {
        throw UserError(what + ": " + Quote(f.path) + " collides with " +
                        Quote(node->name) + " (FAT names ignore case)");
      } else if (last || !node->is_dir) {
        throw UserError(what + ": " + Quote(f.path) + " " +
                        (last && !node->is_dir
                             ? "is listed twice"
                             : "is both a file and a folder"));
      }
      if (last) break;
      dir = node.get();
      start = slash + 1;
    }
  }
  return root;
}

// The 11-byte short name if `name` is a valid 8.3 name as it stands.
std::string Exact83(const std::string& name) {
  size_t dot = name.find('.');
  std::string base = name.substr(0, dot);
  std::string ext = dot == std::string::npos ? "" : name.substr(dot + 1);
  if (base.empty() || base.size() > 8 || ext.size() > 3 ||
      (dot != std::string::npos && ext.empty()) ||
      !std::all_of(base.begin(), base.end(), ShortChar) ||
      !std::all_of(ext.begin(), ext.end(), ShortChar)) {
    return "";
  }
  base.resize(8, ' ');
  ext.resize(3, ' ');
  return base + ext;
}

// Windows' scheme without its hashes: "loader.conf" -> "LOADER~1.CON", the
// first numeric tail not yet used in the directory.
std::string GeneratedShortName(const std::string& name,
                               const std::set<std::string>& used,
                               const std::string& what) {
  std::string upper = Upper(name), base, ext;
  size_t start = upper.find_first_not_of(". ");  // never npos: see CheckName
  size_t dot = upper.rfind('.');
  if (dot < start) dot = std::string::npos;
  for (size_t i = start; i < upper.size(); ++i) {
    char c = upper[i];
    // One '_' per character FAT's short names cannot hold, UTF-8 or not.
    if (c == ' ' || c == '.' || (c & 0xC0) == 0x80) continue;
    (dot != std::string::npos && i > dot ? ext : base) +=
        ShortChar(c) ? c : '_';
  }
  ext.resize(std::min<size_t>(ext.size(), 3));
  ext.resize(3, ' ');
  for (int n = 1; n < 1000000; ++n) {
    std::string tail = "~" + std::to_string(n);
    std::string candidate = base.substr(0, 8 - tail.size()) + tail;
    candidate.resize(8, ' ');
    if (!used.count(candidate + ext)) return candidate + ext;
  }
  throw UserError(what + ": too many names like " + Quote(name));
}

// Short names for a directory's children, then their entry counts. Names
// that are 8.3 once upper-cased are claimed first, so no generated name can
// take one; the rest get tails in sorted order.
void AssignNames(Node& dir, bool is_root, const std::string& path,
                 const std::string& what) {
  std::set<std::string> used;
  for (auto& [upper, child] : dir.children) {
    child->short_name = Exact83(upper);
    if (child->short_name.empty()) continue;
    used.insert(child->short_name);
    if (child->name == upper) child->long_name.clear();
  }
  dir.entries = is_root ? 1 : 2;  // the label; "." and ".."
  for (auto& [upper, child] : dir.children) {
    if (child->short_name.empty()) {
      child->short_name = GeneratedShortName(child->name, used, what);
      used.insert(child->short_name);
    }
    dir.entries += 1 + static_cast<uint32_t>(child->long_name.size() + 12) / 13;
    if (child->is_dir)
      AssignNames(*child, false, path + child->name + "/", what);
  }
  if (dir.entries > 65536)
    throw UserError(what + ": folder " + Quote(path) + " has too many entries");
}

Node Plan(const std::vector<FatFile>& files, const std::string& what) {
  Node root = BuildTree(files, what);
  AssignNames(root, true, "/", what);
  return root;
}

uint64_t TotalClusters(const Node& dir, uint32_t cluster_bytes) {
  uint64_t total = dir.Clusters(cluster_bytes);
  for (const auto& [upper, child] : dir.children) {
    total += child->is_dir ? TotalClusters(*child, cluster_bytes)
                           : child->Clusters(cluster_bytes);
  }
  return total;
}

struct Layout {
  uint32_t sectors = 0;  // of the partition
  uint32_t cluster_sectors = 0;
  uint32_t fat_sectors = 0;  // of each of the two FATs
  uint32_t clusters = 0;     // in the data area

  uint32_t cluster_bytes() const { return cluster_sectors * kSector; }
  uint64_t data_start() const {
    return (kReserved + 2 * uint64_t{fat_sectors}) * kSector;
  }
};

// Cluster size from Microsoft's table, FAT size from its formula: both as
// in the FAT specification, so other tools would choose the same.
Layout LayoutFor(uint32_t sectors) {
  Layout l;
  l.sectors = sectors;
  l.cluster_sectors = sectors <= 532480     ? 1
                      : sectors <= 16777216 ? 8
                      : sectors <= 33554432 ? 16
                      : sectors <= 67108864 ? 32
                                            : 64;
  uint32_t per_fat_sector = (256 * l.cluster_sectors + 2) / 2;
  l.fat_sectors =
      (sectors - std::min(sectors, kReserved) + per_fat_sector - 1) /
      per_fat_sector;
  uint64_t meta = kReserved + 2 * uint64_t{l.fat_sectors};
  l.clusters = sectors > meta ? (sectors - meta) / l.cluster_sectors : 0;
  return l;
}

struct Stamp {
  uint16_t date = 0, time = 0;
  uint8_t tenths = 0;  // 10 ms units on top of `time`: its odd second
};

Stamp StampOf(int64_t t) {
  using namespace std::chrono;
  // FAT's dates run from 1980-01-01 to 2107-12-31 23:59:59.
  sys_seconds tp{seconds{std::clamp<int64_t>(t, 315532800, 4354819199)}};
  sys_days day = floor<days>(tp);
  year_month_day ymd{day};
  hh_mm_ss hms{tp - day};
  Stamp s;
  s.date = static_cast<uint16_t>((static_cast<int>(ymd.year()) - 1980) << 9 |
                                 static_cast<unsigned>(ymd.month()) << 5 |
                                 static_cast<unsigned>(ymd.day()));
  auto sec = hms.seconds().count();
  s.time = static_cast<uint16_t>(hms.hours().count() << 11 |
                                 hms.minutes().count() << 5 | sec / 2);
  s.tenths = static_cast<uint8_t>(sec % 2 * 100);
  return s;
}

void PutEntry(std::string& b, size_t at, const std::string& name11,
              uint8_t attr, uint32_t cluster, uint32_t size, const Stamp& s) {
  b.replace(at, 11, name11);
  b[at + 11] = static_cast<char>(attr);
  b[at + 13] = static_cast<char>(s.tenths);
  for (size_t field : {14, 22}) Put16(b, at + field, s.time);
  for (size_t field : {16, 18, 24}) Put16(b, at + field, s.date);
  Put16(b, at + 20, static_cast<uint16_t>(cluster >> 16));
  Put16(b, at + 26, static_cast<uint16_t>(cluster));
  Put32(b, at + 28, size);
}

// VFAT long-name entries, last part first; returns the offset after them.
size_t PutLongName(std::string& b, size_t at, const std::u16string& name,
                   const std::string& short_name) {
  uint8_t sum = 0;
  for (char c : short_name)
    sum = static_cast<uint8_t>(((sum & 1) << 7) + (sum >> 1) +
                               static_cast<uint8_t>(c));
  static constexpr size_t kChars[13] = {1,  3,  5,  7,  9,  14, 16,
                                        18, 20, 22, 24, 28, 30};
  size_t parts = (name.size() + 12) / 13;
  for (size_t p = parts; p-- > 0; at += 32) {
    b[at] = static_cast<char>((p + 1) | (p + 1 == parts ? 0x40 : 0));
    b[at + 11] = 0x0F;
    b[at + 13] = static_cast<char>(sum);
    for (size_t k = 0; k < 13; ++k) {
      size_t i = p * 13 + k;  // after the name: one 0, then 0xFFFF padding
      Put16(b, at + kChars[k],
            i < name.size()    ? name[i]
            : i == name.size() ? 0
                               : 0xFFFF);
    }
  }
  return at;
}

void PWrite(int fd, uint64_t at, const char* data, size_t n,
            const std::string& what) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(at));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw SystemError("writing " + what, w < 0 ? errno : EIO);
    data += w;
    at += static_cast<uint64_t>(w);
    n -= static_cast<size_t>(w);
  }
}

void PWriteZeros(int fd, uint64_t at, uint64_t n, const std::string& what) {
  static const std::string kZeros(1 << 16, '\0');
  for (uint64_t chunk; n > 0; at += chunk, n -= chunk) {
    chunk = std::min<uint64_t>(n, kZeros.size());
    PWrite(fd, at, kZeros.data(), chunk, what);
  }
}

class Writer {
 public:
  Writer(int fd, uint64_t offset, const Layout& layout, const FatOptions& o,
         const std::string& label, const std::string& what)
      : fd_(fd),
        offset_(offset),
        l_(layout),
        label_(label),
        what_(what),
        stamp_(StampOf(o.mtime)),
        fat_{0x0FFFFFF8, kEndOfChain} {}

  // Pre-order, sorted: a directory's clusters, then each child's in turn.
  void Place(Node& node) {
    uint32_t n = node.Clusters(l_.cluster_bytes());
    node.first_cluster = n ? static_cast<uint32_t>(fat_.size()) : 0;
    for (uint32_t i = 1; i <= n; ++i)
      fat_.push_back(i == n ? kEndOfChain : node.first_cluster + i);
    if (!node.is_dir) return;
    for (auto& [upper, child] : node.children) Place(*child);
  }

  void WriteTree(const Node& dir, const Node* parent) {
    std::string b(size_t{dir.Clusters(l_.cluster_bytes())} * l_.cluster_bytes(),
                  '\0');
    size_t at = 64;
    if (!parent) {
      // A zero first slot would end the directory: entries move up into it
      // when there is no label (its slot stays counted, unused).
      at = label_ == "NO NAME    " ? 0 : 32;
      if (at) PutEntry(b, 0, label_, kAttrLabel, 0, 0, stamp_);
    } else {
      PutEntry(b, 0, ".          ", kAttrDir, dir.first_cluster, 0, stamp_);
      // A ".." that means the root (cluster 2) holds 0 instead.
      PutEntry(b, 32, "..         ", kAttrDir,
               parent->first_cluster == 2 ? 0 : parent->first_cluster, 0,
               stamp_);
    }
    for (const auto& [upper, child] : dir.children) {
      if (!child->long_name.empty())
        at = PutLongName(b, at, child->long_name, child->short_name);
      uint32_t size =
          child->is_dir ? 0 : static_cast<uint32_t>(child->content->size());
      PutEntry(b, at, child->short_name, child->is_dir ? kAttrDir : kAttrFile,
               child->first_cluster, size, stamp_);
      at += 32;
      if (child->is_dir) {
        WriteTree(*child, &dir);
      } else if (size > 0) {
        uint64_t start = ClusterOffset(child->first_cluster);
        PWrite(fd_, start, child->content->data(), size, what_);
        uint64_t slack =
            uint64_t{child->Clusters(l_.cluster_bytes())} * l_.cluster_bytes() -
            size;
        PWriteZeros(fd_, start + size, slack, what_);
      }
    }
    PWrite(fd_, ClusterOffset(dir.first_cluster), b.data(), b.size(), what_);
  }

  // Boot sector, FSInfo and their backups in the reserved sectors; both FATs.
  void WriteMetadata(uint32_t volume_id) {
    std::string boot(kSector, '\0');
    boot.replace(0, 11,
                 "\xEB\x58\x90"
                 "KILN    ");  // jump over the BPB
    Put16(boot, 11, kSector);
    boot[13] = static_cast<char>(l_.cluster_sectors);
    Put16(boot, 14, kReserved);
    boot[16] = 2;         // FATs
    boot[21] = '\xF8';    // media: fixed disk
    Put16(boot, 24, 63);  // sectors per track and heads: unused, customary
    Put16(boot, 26, 255);
    Put32(boot, 32, l_.sectors);
    Put32(boot, 36, l_.fat_sectors);
    Put32(boot, 44, 2);  // root directory cluster
    Put16(boot, 48, 1);  // FSInfo sector
    Put16(boot, 50, 6);  // backup boot sector
    boot[64] = '\x80';   // drive number
    boot[66] = 0x29;     // extended boot signature: the next three fields
    Put32(boot, 67, volume_id);
    boot.replace(71, 11, label_);
    boot.replace(82, 8, "FAT32   ");
    boot.replace(90, 3, "\xF4\xEB\xFD");  // if started anyway: hlt forever
    Put16(boot, 510, 0xAA55);

    uint32_t used = static_cast<uint32_t>(fat_.size() - 2);
    std::string info(kSector, '\0');
    Put32(info, 0, 0x41615252);
    Put32(info, 484, 0x61417272);
    Put32(info, 488, l_.clusters - used);
    Put32(info, 492, used < l_.clusters ? used + 2 : 0xFFFFFFFF);
    Put32(info, 508, 0xAA550000);

    std::string reserved(kReserved * kSector, '\0');
    for (uint32_t first : {0, 6}) {
      reserved.replace(first * kSector, kSector, boot);
      reserved.replace((first + 1) * kSector, kSector, info);
    }
    PWrite(fd_, offset_, reserved.data(), reserved.size(), what_);

    std::string fat(fat_.size() * 4, '\0');
    for (size_t i = 0; i < fat_.size(); ++i) Put32(fat, i * 4, fat_[i]);
    uint64_t fat_bytes = uint64_t{l_.fat_sectors} * kSector;
    for (uint64_t at = offset_ + reserved.size();
         at < offset_ + l_.data_start(); at += fat_bytes) {
      PWrite(fd_, at, fat.data(), fat.size(), what_);
      PWriteZeros(fd_, at + fat.size(), fat_bytes - fat.size(), what_);
    }
  }

 private:
  uint64_t ClusterOffset(uint32_t cluster) const {
    return offset_ + l_.data_start() +
           uint64_t{cluster - 2} * l_.cluster_bytes();
  }

  int fd_;
  uint64_t offset_;
  Layout l_;
  std::string label_;  // 11 bytes
  std::string what_;
  Stamp stamp_;
  std::vector<uint32_t> fat_;  // the used part; the rest is free (0)
};

std::string LabelField(const std::string& label, const std::string& what) {
  std::string up = Upper(label);
  if (up.size() > 11 || up.starts_with(' ') ||
      !std::all_of(up.begin(), up.end(),
                   [](char c) { return c == ' ' || ShortChar(c); })) {
    throw UserError(what + ": " + Quote(label) +
                    " is not a FAT volume label (at most 11 of A-Z, 0-9, "
                    "space and !#$%&'()-@^_`{}~, not starting with a space)");
  }
  if (up.empty()) return "NO NAME    ";
  up.resize(11, ' ');
  return up;
}

}  // namespace

uint64_t FatMinimumSize(const std::vector<FatFile>& files) {
  Node root = Plan(files, "EFI system partition");
  // Larger clusters never need fewer bytes, so this is a lower bound.
  uint64_t size = TotalClusters(root, kSector) * kSector / kMiB * kMiB;
  for (size = std::max(size, kMiB);; size += kMiB) {
    if (size / kSector > UINT32_MAX)
      throw UserError("EFI system partition: the files exceed FAT32's 2 TiB");
    Layout l = LayoutFor(static_cast<uint32_t>(size / kSector));
    if (l.clusters >= kMinClusters &&
        TotalClusters(root, l.cluster_bytes()) <= l.clusters) {
      return size;
    }
  }
}

void WriteFat32(int fd, uint64_t offset, const std::vector<FatFile>& files,
                const FatOptions& options, const std::string& what) {
  if (options.size_bytes % kSector || options.size_bytes / kSector > UINT32_MAX)
    throw UserError(what + ": FAT32 needs a size in 512-byte sectors, < 2 TiB");
  std::string label = LabelField(options.label, what);
  Node root = Plan(files, what);
  Layout l = LayoutFor(static_cast<uint32_t>(options.size_bytes / kSector));
  uint64_t need = TotalClusters(root, l.cluster_bytes());
  if (l.clusters < kMinClusters || need > l.clusters) {
    throw UserError(what + ": " + std::to_string(options.size_bytes / kMiB) +
                    " MiB cannot hold the files as FAT32; they need " +
                    std::to_string(FatMinimumSize(files) / kMiB) + " MiB");
  }
  Writer writer(fd, offset, l, options, label, what);
  writer.Place(root);
  writer.WriteTree(root, nullptr);
  writer.WriteMetadata(options.volume_id);
}

}  // namespace kiln
