#include "rootfs/plan.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <deque>
#include <map>
#include <set>

#include "core/fs.h"
#include "core/strings.h"
#include "digest/digest.h"
#include "packages/deb.h"
#include "rootfs/spool.h"
#include "tar/tar_reader.h"

namespace kiln {
namespace {

// Who wins when two sources name the same directory: an explicit `dirs:`
// entry over directories that arrive as data (a copied tree, a tarball), and
// those over parents implied by deeper paths. Non-directories never share.
enum Priority { kImplied = 0, kData = 1, kExplicit = 2 };

struct Claim {
  Entry entry;
  int priority;
  SourceLocation loc;
};

std::string JoinImage(const std::string& dir, const std::string& rel) {
  if (dir.empty()) return rel;
  if (rel.empty()) return dir;
  return dir + "/" + rel;
}

uint32_t NormalisedMode(const FileInfo& info) {
  return info.mode & 0111 ? 0755 : 0644;
}

// Linux's PATH_MAX less its terminating NUL, and NAME_MAX.
constexpr size_t kMaxPath = 4095;
constexpr size_t kMaxName = 255;

class Planner {
 public:
  Planner(const LayerSpec& spec, const PlanInputs& in) : spec_(spec), in_(in) {
    plan_.name = spec.name;
    what_ = "layer " + Quote(spec.name);
  }

  LayerPlan Run() {
    // Explicit directories first, so that paths below them resolve through
    // them rather than through a symlink the lower layers have there.
    for (size_t i = 0; i < spec_.dirs.size(); ++i)
      AddDir(spec_.dirs[i], "dirs[" + std::to_string(i) + "]");
    for (size_t i = 0; i < spec_.packages.size(); ++i)
      AddPackage(spec_.packages[i], "packages[" + std::to_string(i) + "]");
    CaCertificatesBundle();
    for (size_t i = 0; i < spec_.tarballs.size(); ++i)
      AddTarball(spec_.tarballs[i], "tarballs[" + std::to_string(i) + "]");
    for (size_t i = 0; i < spec_.files.size(); ++i)
      AddFile(spec_.files[i], "files[" + std::to_string(i) + "]");
    for (size_t i = 0; i < spec_.symlinks.size(); ++i)
      AddSymlink(spec_.symlinks[i], "symlinks[" + std::to_string(i) + "]");
    for (size_t i = 0; i < spec_.devices.size(); ++i)
      AddDevice(spec_.devices[i], "devices[" + std::to_string(i) + "]");
    for (size_t i = 0; i < spec_.hardlinks.size(); ++i)
      AddHardlink(spec_.hardlinks[i], "hardlinks[" + std::to_string(i) + "]");
    for (size_t i = 0; i < spec_.remove.size(); ++i)
      AddWhiteout(spec_.remove[i], "remove[" + std::to_string(i) + "]");
    ImplyParents();
    plan_.entries.reserve(claims_.size());
    for (auto& [path, claim] : claims_) {
      if (claim.entry.type == EntryType::kFile)
        plan_.content_bytes += claim.entry.size;
      plan_.entries.push_back(std::move(claim.entry));
    }
    OrderHardlinks(&plan_.entries);
    return std::move(plan_);
  }

 private:
  std::string Origin(const std::string& label,
                     const SourceLocation& loc) const {
    return loc.known() ? label + " at " + loc.ToString() : label;
  }

  // Places `path` below the tree, following symlinks in its parents as a
  // runtime would; fails if a parent is not a directory.
  std::string Resolve(const std::string& path, const SourceLocation& loc,
                      const std::string& label) {
    std::string out, why;
    auto overlay = [this](const std::string& p) -> const Entry* {
      auto it = claims_.find(p);
      return it == claims_.end() ? nullptr : &it->second.entry;
    };
    if (!in_.lower->ResolveParents(path, &out, &why, overlay, in_package_)) {
      throw ErrorAt(
          loc, what_ + ", " + label + ": cannot place /" + path + ": " + why);
    }
    return out;
  }

  void Put(Entry e, int priority, const SourceLocation& loc) {
    auto it = claims_.find(e.path);
    if (it == claims_.end()) {
      std::string key = e.path;
      claims_.emplace(std::move(key), Claim{std::move(e), priority, loc});
      return;
    }
    Claim& old = it->second;
    if (old.entry.IsDir() && e.IsDir() &&
        (priority != old.priority || priority != kExplicit)) {
      if (priority >= old.priority) old = Claim{std::move(e), priority, loc};
      return;
    }
    throw ErrorAt(loc, what_ + ": /" + e.path + " is declared twice: by " +
                           e.origin + " and by " + old.entry.origin);
  }

  std::pair<uint32_t, uint32_t> Owner(const std::optional<OwnerSpec>& owner) {
    return owner ? in_.owners->Resolve(*owner)
                 : std::pair<uint32_t, uint32_t>{0, 0};
  }

  // The host path of `rel` inside the context, following symlinks only while
  // they stay inside it.
  std::string ContextPath(const std::string& context, const std::string& rel,
                          const SourceLocation& loc, const std::string& label) {
    try {
      return ResolveContextPath(*in_.fs, context, rel);
    } catch (const Error& e) {
      throw ErrorAt(loc, label + ": " + e.message());
    }
  }

  void CheckName(const std::string& path, const SourceLocation& loc,
                 const std::string& label) {
    // SBOMs, provenance and pax headers carry paths as UTF-8, and runtimes
    // unpack layers through paths the kernel must accept.
    if (Utf8ValidPrefix(path) != path.size()) {
      throw ErrorAt(loc, what_ + ", " + label + ": " + Quote("/" + path) +
                             " is not valid UTF-8");
    }
    if (path.size() + 1 > kMaxPath) {
      throw ErrorAt(loc, what_ + ", " + label + ": the path is " +
                             std::to_string(path.size() + 1) +
                             " bytes long, more than Linux takes (" +
                             std::to_string(kMaxPath) + ")");
    }
    for (const auto& part : Split(path, '/')) {
      if (part.size() > kMaxName) {
        throw ErrorAt(loc, what_ + ", " + label + ": a name in /" + path +
                               " is " + std::to_string(part.size()) +
                               " bytes long, more than a Linux file system "
                               "holds (" +
                               std::to_string(kMaxName) + ")");
      }
    }
    if (StartsWith(BaseName(path), kWhiteoutPrefix)) {
      throw ErrorAt(loc, what_ + ", " + label + ": /" + path +
                             " has an OCI whiteout name (.wh.*); use remove: "
                             "to delete paths of lower layers");
    }
  }

  void AddDir(const DirSpec& d, const std::string& label) {
    Entry e;
    e.path = Resolve(d.path, d.locs.At("path"), label);
    e.type = EntryType::kDir;
    e.mode = d.mode.value_or(0755);
    std::tie(e.uid, e.gid) = Owner(d.owner);
    e.origin = Origin(label, d.locs.entry);
    Put(std::move(e), kExplicit, d.locs.entry);
  }

  void AddFile(const FileSpec& f, const std::string& label) {
    auto [uid, gid] = Owner(f.owner);
    const SourceLocation& loc = f.locs.entry;
    if (f.content) {
      if (f.into_dir)
        throw ErrorAt(
            f.locs.At("dest"),
            label + ": dest ends in / but inline content needs a file name");
      Entry e;
      e.path = Resolve(f.dest, f.locs.At("dest"), label);
      CheckName(e.path, f.locs.At("dest"), label);
      e.mode = f.mode.value_or(0644);
      e.uid = uid;
      e.gid = gid;
      e.size = f.content->size();
      if (e.size) e.content = InlineContent(*f.content);
      e.origin = Origin(label, loc);
      Put(std::move(e), kExplicit, loc);
      return;
    }
    std::string host =
        ContextPath(f.context_dir, *f.src, f.locs.At("src"), label + ".src");
    auto info = in_.fs->Lstat(host);
    if (info->type == FileInfo::Type::kDir) {
      CopyTree(host, f.dest, f, uid, gid, label);
      return;
    }
    if (info->type != FileInfo::Type::kFile) {
      throw ErrorAt(f.locs.At("src"),
                    label + ".src " + Quote(*f.src) +
                        " is not a regular file or directory");
    }
    std::string dest = f.into_dir ? JoinImage(f.dest, Basename(host)) : f.dest;
    if (dest.empty())
      throw ErrorAt(f.locs.At("dest"), label + ": a file cannot replace /");
    Entry e;
    e.path = Resolve(dest, f.locs.At("dest"), label);
    CheckName(e.path, f.locs.At("dest"), label);
    e.mode = f.mode.value_or(NormalisedMode(*info));
    e.uid = uid;
    e.gid = gid;
    e.size = info->size;
    if (e.size) e.content = in_.fs->Content(host, e.size);
    e.origin = Origin(label + " (" + *f.src + ")", loc);
    Put(std::move(e), kExplicit, loc);
  }

  // Copies a context directory's contents to `dest`, like a Dockerfile COPY:
  // files, directories and symlinks; modes normalised; owners from the
  // template.
  void CopyTree(const std::string& host_dir, const std::string& dest,
                const FileSpec& f, uint32_t uid, uint32_t gid,
                const std::string& label) {
    const SourceLocation& loc = f.locs.entry;
    if (!dest.empty()) {
      Entry d;
      d.path = Resolve(dest, f.locs.At("dest"), label);
      d.type = EntryType::kDir;
      d.mode = f.dir_mode.value_or(0755);
      d.uid = uid;
      d.gid = gid;
      d.origin = Origin(label + " (" + *f.src + ")", loc);
      Put(std::move(d), kData, loc);
    }
    std::vector<std::string> names = in_.fs->ListDir(host_dir);
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      std::string host = host_dir + "/" + name;
      std::string rel_src = *f.src + "/" + name;
      auto info = in_.fs->Lstat(host);
      if (!info) continue;  // vanished while listing
      Entry e;
      e.path = Resolve(JoinImage(dest, name), f.locs.At("dest"), label);
      CheckName(e.path, f.locs.At("src"), label + " (" + rel_src + ")");
      e.uid = uid;
      e.gid = gid;
      e.origin = Origin(label + " (" + rel_src + ")", loc);
      switch (info->type) {
        case FileInfo::Type::kDir:
          CopyTree(host, e.path, f, uid, gid, label);
          continue;
        case FileInfo::Type::kFile:
          e.mode = f.mode.value_or(NormalisedMode(*info));
          e.size = info->size;
          if (e.size) e.content = in_.fs->Content(host, e.size);
          break;
        case FileInfo::Type::kSymlink:
          e.type = EntryType::kSymlink;
          e.mode = 0777;
          e.link = info->link;
          break;
        case FileInfo::Type::kOther:
          throw ErrorAt(f.locs.At("src"),
                        label + ": " + Quote(rel_src) +
                            " is a socket, fifo or device; kiln copies files, "
                            "directories and symlinks");
      }
      Put(std::move(e), kExplicit, loc);
    }
  }

  void AddSymlink(const SymlinkSpec& s, const std::string& label) {
    Entry e;
    e.path = Resolve(s.path, s.locs.At("path"), label);
    CheckName(e.path, s.locs.At("path"), label);
    e.type = EntryType::kSymlink;
    e.mode = 0777;
    e.link = s.target;
    std::tie(e.uid, e.gid) = Owner(s.owner);
    e.origin = Origin(label, s.locs.entry);
    Put(std::move(e), kExplicit, s.locs.entry);
  }

  void AddDevice(const DeviceSpec& d, const std::string& label) {
    Entry e;
    e.path = Resolve(d.path, d.locs.At("path"), label);
    CheckName(e.path, d.locs.At("path"), label);
    e.type = d.type == DeviceType::kChar    ? EntryType::kChar
             : d.type == DeviceType::kBlock ? EntryType::kBlock
                                            : EntryType::kFifo;
    e.mode = d.mode.value_or(d.type == DeviceType::kBlock ? 0660 : 0666);
    e.dev_major = d.major;
    e.dev_minor = d.minor;
    std::tie(e.uid, e.gid) = Owner(d.owner);
    e.origin = Origin(label, d.locs.entry);
    Put(std::move(e), kExplicit, d.locs.entry);
  }

  void AddHardlink(const HardlinkSpec& h, const std::string& label) {
    std::string target = Resolve(h.target, h.locs.At("target"), label);
    auto it = claims_.find(target);
    if (it == claims_.end() ||
        (it->second.entry.type != EntryType::kFile &&
         it->second.entry.type != EntryType::kHardlink)) {
      throw ErrorAt(h.locs.At("target"),
                    what_ + ", " + label + ": hardlink target /" + h.target +
                        " must be a regular file added by this layer");
    }
    Entry e;
    e.path = Resolve(h.path, h.locs.At("path"), label);
    CheckName(e.path, h.locs.At("path"), label);
    e.type = EntryType::kHardlink;
    e.link = it->second.entry.type == EntryType::kHardlink
                 ? it->second.entry.link
                 : target;
    e.origin = Origin(label, h.locs.entry);
    Put(std::move(e), kExplicit, h.locs.entry);
  }

  void AddTarball(const TarballSpec& t, const std::string& label) {
    const SourceLocation& loc = t.locs.entry;
    std::string host =
        ContextPath(t.context_dir, t.src, t.locs.At("src"), label + ".src");
    auto info = in_.fs->Lstat(host);
    if (info->type != FileInfo::Type::kFile) {
      throw ErrorAt(t.locs.At("src"),
                    label + ".src " + Quote(t.src) + " is not a regular file");
    }
    // Check the pin before parsing a byte of the archive.
    Digest actual = Sha256OfFile(host);
    if (actual.hex() != t.sha256) {
      throw ErrorAt(t.locs.At("sha256"),
                    label + ": " + t.src + " has sha256 " + actual.hex() +
                        ", but the template pins " + t.sha256);
    }
    plan_.inputs.emplace_back(t.src, t.sha256);
    std::string archive = "tarball " + t.src;
    ArchiveState state;
    state.archive = archive;
    state.label = label;
    state.dest = t.dest;
    state.allow_devices = t.allow_devices;
    state.devices_hint =
        "set allowDevices: true on the tarball to keep device nodes";
    state.loc = loc;
    state.allow_setuid = t.allow_setuid;
    state.setuid_hint =
        "set allowSetuid: true on the tarball to keep setuid and setgid files";
    state.max_unpacked =
        t.max_unpacked_size.value_or(DefaultUnpackLimit(info->size));
    state.limit_hint = t.max_unpacked_size
                           ? "its maxUnpackedSize"
                           : UnpackLimitRule("a tarball") +
                                 "; set maxUnpackedSize on the tarball to "
                                 "allow more";
    auto reader =
        AtArchive(loc, label, [&] { return TarReader::Open(host, archive); });
    TarHeader h;
    while (AtArchive(loc, label, [&] { return reader->Next(&h); }))
      AddArchiveEntry(h, *reader, state);
  }

  // Runs fn, which reads an archive: its complaints (a truncated or corrupt
  // archive) point at the template entry that names the archive.
  // With `located`, errors thrown while it is true pass as they are.
  template <typename Fn>
  auto AtArchive(const SourceLocation& loc, const std::string& label, Fn&& fn,
                 const bool* located = nullptr) -> decltype(fn()) {
    try {
      return fn();
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kUser || (located && *located)) throw;
      throw ErrorAt(loc, what_ + ", " + label + ": " + e.message());
    }
  }

  // Whether `path` is, in this layer or below, a symlink to a directory.
  bool SymlinkToDir(const std::string& path) {
    auto mine = claims_.find(path);
    const Entry* e =
        mine != claims_.end() ? &mine->second.entry : in_.lower->Find(path);
    if (!e || e->type != EntryType::kSymlink) return false;
    std::string target, why;
    auto overlay = [this](const std::string& p) -> const Entry* {
      auto it = claims_.find(p);
      return it == claims_.end() ? nullptr : &it->second.entry;
    };
    if (!in_.lower->ResolveParents(path + "/.", &target, &why, overlay, true))
      return false;
    target = ParentPath(target);
    auto it = claims_.find(target);
    const Entry* t =
        it != claims_.end() ? &it->second.entry : in_.lower->Find(target);
    return target.empty() || (t && t->IsDir());
  }

  // What AddArchiveEntry needs to know about the archive it reads.
  struct ArchiveState {
    std::string archive;  // "tarball vendor/x.tar.gz", "package libc6 2.36"
    std::string label;
    std::string dest;  // where entries go ("" = /)
    bool allow_devices = false;
    std::string devices_hint;
    SourceLocation loc;
    std::set<std::string> seen;  // this archive's paths: duplicates, hardlinks
    bool allow_setuid = true;
    std::string setuid_hint;
    uint64_t max_unpacked = UINT64_MAX;  // all its files' bytes together
    std::string limit_hint;              // why that much, how to allow more
    uint64_t unpacked = 0;
  };

  // One archive entry, checked (names that escape, whiteout names, sockets,
  // undeclared devices and setuid files, duplicates, hardlinks to anything but
  // an earlier file of the archive, more bytes than the archive may unpack
  // to) and placed, its data spooled.
  void AddArchiveEntry(const TarHeader& h, TarReader& reader,
                       ArchiveState& st) {
    const SourceLocation& loc = st.loc;
    std::string rel, why;
    if (!NormalizeArchivePath(h.name, &rel, &why)) {
      throw ErrorAt(loc, what_ + ", " + st.label + ": " + st.archive +
                             ": entry " + Quote(h.name) + ": " + why);
    }
    std::string entry_label = st.archive + " entry " + Quote(h.name);
    if (rel.empty())
      return;  // "./": the root's own metadata is not the archive's to set
    if (h.unsupported)
      throw ErrorAt(
          loc, what_ + ": " + entry_label + " is a socket or unknown type");
    bool device = h.type == EntryType::kChar || h.type == EntryType::kBlock;
    if (device && !st.allow_devices) {
      throw ErrorAt(loc, what_ + ": " + entry_label + " is a " +
                             EntryTypeName(h.type) + "; " + st.devices_hint);
    }
    if (h.type == EntryType::kFile && (h.mode & 06000) && !st.allow_setuid) {
      throw ErrorAt(loc, what_ + ": " + entry_label + " is " +
                             (h.mode & 04000 ? "setuid" : "setgid") +
                             " (mode " + OctalMode(h.mode) + "); " +
                             st.setuid_hint);
    }
    Entry e;
    e.path = Resolve(JoinImage(st.dest, rel), loc, entry_label);
    // dpkg keeps a symlink to a directory where a package has a directory
    // (merged /usr: /bin -> usr/bin), and installs the files through it.
    if (in_package_ && h.type == EntryType::kDir && SymlinkToDir(e.path))
      return;
    CheckName(e.path, loc, entry_label);
    e.type = h.type;
    e.mode = h.mode;
    e.uid = h.uid;
    e.gid = h.gid;
    e.dev_major = h.dev_major;
    e.dev_minor = h.dev_minor;
    e.origin = Origin(entry_label, loc);
    if (st.seen.count(e.path) && h.type != EntryType::kDir) {
      throw ErrorAt(loc, what_ + ": " + entry_label + ": /" + e.path +
                             " appears twice in the archive");
    }
    st.seen.insert(e.path);
    switch (h.type) {
      case EntryType::kFile:
        e.size = h.size;
        if (h.size > st.max_unpacked - st.unpacked) {
          throw ErrorAt(loc, what_ + ": " + entry_label + " holds " +
                                 HumanBytes(h.size) + ", which takes " +
                                 st.archive + " past " +
                                 HumanBytes(st.max_unpacked) +
                                 " unpacked: " + st.limit_hint);
        }
        st.unpacked += h.size;
        if (e.size) {
          e.content = AtArchive(loc, st.label, [&] {
            return in_.spool->Append(
                [&](ByteSink& out) { reader.CopyData(out); }, h.size,
                entry_label);
          });
        }
        break;
      case EntryType::kSymlink:
        e.link = h.link;
        if (e.link.empty())
          throw ErrorAt(loc, what_ + ": " + entry_label +
                                 " is a symlink with an empty target");
        break;
      case EntryType::kHardlink: {
        std::string target_rel;
        if (!NormalizeArchivePath(h.link, &target_rel, &why) ||
            target_rel.empty()) {
          throw ErrorAt(loc, what_ + ": " + entry_label + ": hardlink target " +
                                 Quote(h.link) + " leaves the archive (" + why +
                                 ")");
        }
        std::string target =
            Resolve(JoinImage(st.dest, target_rel), loc, entry_label);
        auto it = claims_.find(target);
        if (!st.seen.count(target) || it == claims_.end() ||
            (it->second.entry.type != EntryType::kFile &&
             it->second.entry.type != EntryType::kHardlink)) {
          throw ErrorAt(loc, what_ + ": " + entry_label + ": hardlink target " +
                                 Quote(h.link) +
                                 " is not a file earlier in the archive");
        }
        e.link = it->second.entry.type == EntryType::kHardlink
                     ? it->second.entry.link
                     : target;
        break;
      }
      default:
        break;
    }
    Put(std::move(e), h.type == EntryType::kDir ? kData : kExplicit, loc);
  }

  // What ca-certificates' maintainer script would make, declaratively: the
  // bundle of every certificate it ships, in path order (as distroless does).
  void CaCertificatesBundle() {
    bool here = std::any_of(
        spec_.packages.begin(), spec_.packages.end(),
        [](const PackageSpec& p) { return p.name == "ca-certificates"; });
    const std::string bundle = "etc/ssl/certs/ca-certificates.crt";
    if (!here || claims_.count(bundle)) return;
    std::string pem;
    for (const auto& [path, claim] : claims_) {
      const Entry& e = claim.entry;
      if (e.type == EntryType::kFile &&
          StartsWith(path, "usr/share/ca-certificates/") &&
          EndsWith(path, ".crt") && e.content) {
        std::string cert = e.content->ReadAll(e.size);
        if (!cert.empty() && cert.back() != '\n') cert += '\n';
        pem += cert;
      }
    }
    if (pem.empty()) return;
    Entry e;
    e.path = Resolve(bundle, spec_.locs.entry, "ca-certificates");
    e.mode = 0644;
    e.size = pem.size();
    e.content = InlineContent(std::move(pem));
    e.origin = "the ca-certificates bundle";
    Put(std::move(e), kExplicit, spec_.locs.entry);
  }

  // A Debian package: its data, and the dpkg database entries image scanners
  // read (/var/lib/dpkg/status.d/NAME and NAME.md5sums, as distroless writes).
  void AddPackage(const PackageSpec& p, const std::string& label) {
    in_package_ = true;
    struct Reset {
      bool& flag;
      ~Reset() { flag = false; }
    } reset{in_package_};
    std::string archive = "package " + p.name + " " + p.version;
    ArchiveState state;
    state.archive = archive;
    state.label = label;
    state.allow_devices = true;  // dpkg keeps devices and setuid files
    state.loc = p.loc.known() ? p.loc : spec_.locs.entry;
    struct stat deb_stat;
    if (::stat(p.deb.c_str(), &deb_stat) != 0)
      throw SystemError("stat " + p.deb, errno);
    state.max_unpacked =
        DefaultUnpackLimit(static_cast<uint64_t>(deb_stat.st_size));
    state.limit_hint = UnpackLimitRule("a package");
    DebControl control;
    std::string copyright;
    std::string copyright_path = "usr/share/doc/" + p.name + "/copyright";
    auto entry = [&](const TarHeader& h, TarReader& reader) {
      std::string rel, why;
      if (!p.handed_over.empty() && NormalizeArchivePath(h.name, &rel, &why) &&
          p.handed_over.count(rel))
        return;  // another package Replaces this one's file
      if (h.type == EntryType::kFile &&
          NormalizeArchivePath(h.name, &rel, &why) && rel == copyright_path &&
          h.size < (1 << 20)) {
        // Kept for the SBOM's licence; the entry itself is added as usual.
        StringSink sink(&copyright);
        AtArchive(state.loc, label, [&] { return reader.CopyData(sink); });
        Entry e;
        e.path = Resolve(rel, state.loc, archive);
        e.mode = h.mode;
        e.uid = h.uid;
        e.gid = h.gid;
        e.size = copyright.size();
        if (e.size) e.content = InlineContent(copyright);
        e.origin = Origin(archive + " entry " + Quote(h.name), state.loc);
        state.seen.insert(e.path);
        Put(std::move(e), kExplicit, state.loc);
        return;
      }
      AddArchiveEntry(h, reader, state);
    };
    bool from_entry = false;  // its errors point at the template already
    AtArchive(
        state.loc, label,
        [&] {
          ReadDeb(p.deb, archive, &control,
                  [&](const TarHeader& h, TarReader& reader) {
                    try {
                      entry(h, reader);
                    } catch (const Error&) {
                      from_entry = true;
                      throw;
                    }
                  });
          return 0;
        },
        &from_entry);
    if (control.fields.Get("Package") != p.name ||
        control.fields.Get("Version") != p.version) {
      throw UserError(archive + ": the .deb says it is " +
                      control.fields.Get("Package") + " " +
                      control.fields.Get("Version"));
    }
    auto dpkg = [&](const std::string& path, const std::string& content) {
      Entry e;
      e.path = Resolve(path, state.loc, archive);
      e.mode = 0644;
      e.size = content.size();
      if (e.size) e.content = InlineContent(content);
      e.origin = Origin(archive + " (dpkg database)", state.loc);
      Put(std::move(e), kExplicit, state.loc);
    };
    dpkg("var/lib/dpkg/status.d/" + p.name, control.text);
    if (!control.md5sums.empty())
      dpkg("var/lib/dpkg/status.d/" + p.name + ".md5sums", control.md5sums);
    // "Source: name (version)"; absent when it is the package's own name.
    std::string source = control.fields.Get("Source");
    source = source.substr(0, source.find(' '));
    plan_.packages.push_back({p.name, p.version, p.architecture, p.sha256,
                              LicenseOf(copyright), control.scripts,
                              source.empty() ? p.name : source, p.url});
  }

  void AddWhiteout(const RemoveSpec& r, const std::string& label) {
    std::string path = Resolve(r.path, r.loc, label);
    if (!in_.lower->Find(path)) {
      throw ErrorAt(r.loc, what_ + ", " + label + ": /" + r.path +
                               " does not exist in the layers below");
    }
    auto it = claims_.lower_bound(path);
    if (it != claims_.end() && PathWithin(it->first, path)) {
      throw ErrorAt(
          r.loc, what_ + ", " + label + ": /" + path +
                     " is removed and also added (" + it->second.entry.origin +
                     ") in this layer; remove it in an earlier layer");
    }
    Entry e;
    e.path = JoinImage(ParentPath(path),
                       kWhiteoutPrefix + std::string(BaseName(path)));
    e.mode = 0644;
    e.origin = Origin(label, r.loc);
    Put(std::move(e), kExplicit, r.loc);
  }

  // Every parent of every entry is in the layer: as in the tree below, or a
  // plain 0755 root-owned directory if new.
  void ImplyParents() {
    std::vector<std::string> paths;
    paths.reserve(claims_.size());
    for (const auto& [p, c] : claims_) paths.push_back(p);
    for (const auto& p : paths) {
      std::string child = p;
      std::string parent = ParentPath(p);
      while (!parent.empty()) {
        auto it = claims_.find(parent);
        if (it != claims_.end()) {
          if (!it->second.entry.IsDir()) {
            const Claim& c = claims_.at(child);
            throw ErrorAt(c.loc, what_ + ": /" + child + " (" + c.entry.origin +
                                     ") needs /" + parent +
                                     " to be a directory, but it is a " +
                                     EntryTypeName(it->second.entry.type) +
                                     " (" + it->second.entry.origin + ")");
          }
          break;
        }
        Entry d;
        d.path = parent;
        d.type = EntryType::kDir;
        d.mode = 0755;
        if (const Entry* below = in_.lower->Find(parent);
            below && below->IsDir()) {
          d.mode = below->mode;
          d.uid = below->uid;
          d.gid = below->gid;
        }
        d.origin = "parent directory";
        claims_.emplace(parent, Claim{std::move(d), kImplied, {}});
        child = parent;
        parent = ParentPath(parent);
      }
    }
  }

  const LayerSpec& spec_;
  const PlanInputs& in_;
  std::string what_;
  LayerPlan plan_;
  std::map<std::string, Claim, PathOrder> claims_;
  bool in_package_ = false;  // adding a package: dpkg's ways with symlinks
};

}  // namespace

LayerPlan PlanLayer(const LayerSpec& spec, const PlanInputs& in) {
  return Planner(spec, in).Run();
}

LayerSpec AccountsLayerSpec(const AccountsOutput& accounts, const Tree& lower) {
  LayerSpec spec;
  spec.name = "accounts";
  auto add = [&](const std::string& path, const std::string& content,
                 uint32_t mode, uint32_t gid) {
    FileSpec f;
    f.dest = path;
    f.content = content;
    f.mode = mode;
    // Keep the owner and mode the layers below gave the file.
    if (const Entry* below = lower.Find(path);
        below && below->type == EntryType::kFile) {
      f.mode = below->mode;
      f.owner = OwnerSpec{
          std::to_string(below->uid) + ":" + std::to_string(below->gid), {}};
    } else {
      f.owner = OwnerSpec{"0:" + std::to_string(gid), {}};
    }
    spec.files.push_back(std::move(f));
  };
  add("etc/passwd", accounts.passwd, 0644, 0);
  add("etc/group", accounts.group, 0644, 0);
  add("etc/shadow", accounts.shadow, 0600, 0);
  if (accounts.write_gshadow) add("etc/gshadow", accounts.gshadow, 0600, 0);
  for (const auto& home : accounts.homes) {
    if (lower.Find(home.path)) continue;  // an existing home is left as it is
    DirSpec d;
    d.path = home.path;
    d.mode = 0755;
    d.owner = OwnerSpec{
        std::to_string(home.uid) + ":" + std::to_string(home.gid), {}};
    spec.dirs.push_back(std::move(d));
  }
  return spec;
}

}  // namespace kiln
