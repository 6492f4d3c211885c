#include "disk/disk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/process.h"
#include "core/strings.h"
#include "core/temp_dir.h"
#include "disk/fat.h"
#include "disk/gpt.h"
#include "disk/initramfs.h"
#include "spec/source.h"

namespace kiln {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kBlock = 4096;
constexpr char kEspDir[] = "kiln";
// Long enough for a tree of a few hundred thousand files on a slow disk.
constexpr int kToolTimeout = 3600;

uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

// The entry at `path` with symlinks (parents and the last part) resolved.
const Entry* Resolve(const Tree& tree, const std::string& path) {
  std::string current = path;
  for (int hops = 0; hops < 40; ++hops) {
    std::string real, why;
    if (!tree.ResolveParents(current, &real, &why)) return nullptr;
    const Entry* e = tree.Find(real);
    if (!e || e->type != EntryType::kSymlink) {
      if (e && e->type == EntryType::kHardlink) return tree.Find(e->link);
      return e;
    }
    std::string target = e->link;
    if (!target.empty() && target[0] == '/') {
      current = target.substr(1);
    } else {
      std::string dir = Dirname(real);
      current = (dir == "." || dir.empty() ? "" : dir + "/") + target;
    }
    std::string normal, ignored;
    if (!NormalizeImagePath("/" + current, &normal, &ignored)) return nullptr;
    current = normal;
  }
  return nullptr;
}

std::string ReadContent(const Entry& e) {
  if (e.size == 0 || !e.content) return "";
  return e.content->ReadAll(e.size);
}

// CONFIG_X=y|m lines of the kernel's config, if the image has it.
std::map<std::string, std::string> KernelConfig(const Tree& tree,
                                                const std::string& release) {
  std::map<std::string, std::string> out;
  const Entry* e = Resolve(tree, "boot/config-" + release);
  if (!e || e->type != EntryType::kFile || (e->size && !e->content)) return out;
  for (const auto& line : Split(ReadContent(*e), '\n')) {
    size_t eq = line.find('=');
    if (StartsWith(line, "CONFIG_") && eq != std::string::npos)
      out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

// Module names ("virtio_blk") the tree has for `release`.
std::set<std::string> ModuleNames(const Tree& tree,
                                  const std::string& release) {
  std::set<std::string> names;
  for (const char* root : {"lib/modules/", "usr/lib/modules/"}) {
    std::string prefix = root + release + "/";
    for (auto it = tree.entries().lower_bound(prefix);
         it != tree.entries().end() && StartsWith(it->first, prefix); ++it) {
      std::string base = Basename(it->first);
      if (!EndsWith(base, ".ko")) continue;
      base.resize(base.size() - 3);
      std::replace(base.begin(), base.end(), '-', '_');
      names.insert(base);
    }
  }
  return names;
}

struct FsSupport {
  const char* config;
  const char* module;
};
FsSupport SupportOf(DiskFilesystem fs) {
  switch (fs) {
    case DiskFilesystem::kExt4:
      return {"CONFIG_EXT4_FS", "ext4"};
    case DiskFilesystem::kErofs:
      return {"CONFIG_EROFS_FS", "erofs"};
    case DiskFilesystem::kSquashfs:
      return {"CONFIG_SQUASHFS", "squashfs"};
  }
  return {"", ""};
}

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04X-%04X", v >> 16, v & 0xffff);
  return buf;
}

uint32_t VolumeId(const Guid& g) {
  const auto& b = g.bytes();
  return uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 |
         b[3];
}

// What the plan found, beyond DiskInfo: the contents the ESP needs.
struct Plan {
  DiskInfo info;
  const Entry* kernel = nullptr;
  std::string kernel_bytes;
  const Entry* bootloader = nullptr;
  uint64_t root_estimate = 0;  // bytes an ext4 root needs
  uint64_t root_minimum = 0;   // bytes any root of this file system needs
  uint64_t inodes = 0;
  std::string squashfs_comp = "gzip";
  Guid root_guid, root_fs_uuid, esp_guid;
  std::string root_label;
};

std::string ShortHex(const Digest& d) { return d.hex().substr(0, 8); }

Plan MakePlan(const DiskSpec& spec, const Tree& tree,
              const DiskBuildOptions& options) {
  Plan plan;
  DiskInfo& info = plan.info;
  info.format = spec.format;
  info.filesystem = spec.filesystem;
  info.boot = spec.boot;
  info.disk_guid = Guid::FromDigest(options.image, "disk").ToString();
  plan.root_guid = Guid::FromDigest(options.image, "root");
  plan.root_fs_uuid = Guid::FromDigest(options.image, "root-fs");
  plan.esp_guid = Guid::FromDigest(options.image, "esp");
  plan.root_label = "kiln-root-" + ShortHex(options.image);

  // The root file system's content: ext4 needs whole blocks per file and
  // directory, and an inode each.
  uint64_t blocks = 0, inodes = 0;
  for (const auto& [path, e] : tree.entries()) {
    ++inodes;
    switch (e.type) {
      case EntryType::kFile:
        info.content_bytes += e.size;
        blocks += (e.size + kBlock - 1) / kBlock;
        blocks += e.size / (128 * kMiB);  // extent tree blocks
        break;
      case EntryType::kDir:
        blocks += 1;
        break;
      case EntryType::kSymlink:
        if (e.link.size() >= 60) blocks += 1;
        break;
      default:
        break;
    }
  }
  plan.inodes = inodes + inodes / 10 + 64;
  // Inode tables (256 bytes each), bitmaps and descriptors, the large
  // directories' extra blocks, and 5% slack.
  plan.root_estimate = RoundUp(
      (blocks * kBlock + plan.inodes * 256) * 105 / 100 + 4 * kMiB, kMiB);

  // erofs stores files uncompressed; squashfs compresses, so only the
  // finished file system can say.
  switch (spec.filesystem) {
    case DiskFilesystem::kExt4:
      plan.root_minimum = plan.root_estimate;
      break;
    case DiskFilesystem::kErofs:
      plan.root_minimum = RoundUp(info.content_bytes, kMiB);
      break;
    case DiskFilesystem::kSquashfs:
      plan.root_minimum = kMiB;
      break;
  }
  if (spec.boot == DiskBoot::kNone) return plan;

  // The kernel: the one named, or the only boot/vmlinuz-*.
  const SourceLocation& kernel_loc = spec.locs.At("kernel");
  std::string kernel_path = spec.kernel;
  if (kernel_path.empty()) {
    std::vector<std::string> found;
    for (auto it = tree.entries().lower_bound("boot/vmlinuz-");
         it != tree.entries().end() && StartsWith(it->first, "boot/vmlinuz-");
         ++it) {
      if (it->second.type == EntryType::kFile) found.push_back(it->first);
    }
    if (found.empty()) {
      throw ErrorAt(spec.locs.entry,
                    "disk: the image has no kernel (no /boot/vmlinuz-*): add "
                    "a kernel package such as linux-image-cloud-amd64, or "
                    "name the kernel with disk.kernel");
    }
    if (found.size() > 1) {
      throw ErrorAt(spec.locs.entry, "disk: the image has " +
                                         std::to_string(found.size()) +
                                         " kernels (/" + Join(found, ", /") +
                                         "): name one with disk.kernel");
    }
    kernel_path = found[0];
  }
  plan.kernel = Resolve(tree, kernel_path);
  if (!plan.kernel || plan.kernel->type != EntryType::kFile) {
    throw ErrorAt(kernel_loc, "disk.kernel: /" + kernel_path +
                                  " is not a file in the image");
  }
  info.kernel = kernel_path;
  // What must exist first, then what must be in it (which a layer the
  // cache holds as metadata cannot tell yet): the same mistake gets the same
  // message whatever the cache holds.
  plan.bootloader = Resolve(tree, spec.bootloader);
  if (!plan.bootloader || plan.bootloader->type != EntryType::kFile) {
    throw ErrorAt(spec.locs.At("bootloader"),
                  "disk: the image has no boot loader /" + spec.bootloader +
                      ": add the systemd-boot-efi package, or name the EFI "
                      "binary with disk.bootloader");
  }
  // A layer the cache holds as metadata has no contents to check yet.
  bool readable = plan.kernel->content || plan.kernel->size == 0;
  if (readable) plan.kernel_bytes = ReadContent(*plan.kernel);
  const std::string& header = plan.kernel_bytes;
  if (readable &&
      (header.size() < 0x210 || header.compare(0x202, 4, "HdrS") != 0 ||
       header.compare(0, 2, "MZ") != 0)) {
    throw ErrorAt(kernel_loc, "disk.kernel: /" + kernel_path +
                                  " is not a Linux kernel with an EFI stub "
                                  "(bzImage with \"MZ\" and \"HdrS\")");
  }
  std::string base = Basename(kernel_path);
  if (StartsWith(base, "vmlinuz-")) {
    info.kernel_release = base.substr(8);
  } else {
    std::set<std::string> releases;
    for (const char* root : {"lib/modules/", "usr/lib/modules/"}) {
      for (auto it = tree.entries().lower_bound(root);
           it != tree.entries().end() && StartsWith(it->first, root); ++it) {
        std::string rest = it->first.substr(std::string(root).size());
        if (!rest.empty() && rest.find('/') == std::string::npos &&
            it->second.IsDir())
          releases.insert(rest);
      }
    }
    if (releases.size() == 1) info.kernel_release = *releases.begin();
  }

  // What the kernel needs to mount the root: its config says built in (y),
  // a module (m) or absent; without a config, modules are used if present.
  auto config = KernelConfig(tree, info.kernel_release);
  std::set<std::string> available = ModuleNames(tree, info.kernel_release);
  FsSupport fs = SupportOf(spec.filesystem);
  std::vector<std::string> modules;
  const char* fs_name = DiskFilesystemName(spec.filesystem);
  if (!config.empty()) {
    auto it = config.find(fs.config);
    if (it == config.end()) {
      throw ErrorAt(spec.locs.At("filesystem"),
                    std::string("disk.filesystem ") + fs_name + ": kernel " +
                        info.kernel_release + " cannot mount it (" + fs.config +
                        " is not set in /boot/config-" + info.kernel_release +
                        "); choose another file system");
    }
    if (it->second == "m") modules.push_back(fs.module);
  } else if (available.count(fs.module)) {
    modules.push_back(fs.module);
  }
  if (spec.filesystem == DiskFilesystem::kSquashfs) {
    // The strongest compressor the kernel reads.
    for (auto [key, comp] : {std::pair{"CONFIG_SQUASHFS_ZSTD", "zstd"},
                             {"CONFIG_SQUASHFS_XZ", "xz"}}) {
      if (config.count(key) && config[key] == "y") {
        plan.squashfs_comp = comp;
        break;
      }
    }
  }
  if (spec.modules) {
    for (const auto& m : *spec.modules) {
      std::string name = m;
      std::replace(name.begin(), name.end(), '-', '_');
      if (!available.count(name)) {
        throw ErrorAt(spec.locs.At("initrd"),
                      "disk.initrd.modules: kernel " + info.kernel_release +
                          " has no module " + Quote(m) + " in /lib/modules/" +
                          info.kernel_release);
      }
      modules.push_back(name);
    }
  } else {
    for (const char* m : {"virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod"})
      if (available.count(m)) modules.push_back(m);
  }
  std::set<std::string> seen;
  for (const auto& m : modules)
    if (seen.insert(m).second) info.modules.push_back(m);
  if (!info.modules.empty()) {
    const Entry* bb = Resolve(tree, spec.busybox);
    if (!bb || bb->type != EntryType::kFile) {
      throw ErrorAt(spec.locs.At("initrd"),
                    "disk: the kernel needs modules (" +
                        Join(info.modules, ", ") +
                        ") from an initramfs, whose /init runs on busybox, "
                        "and the image has no /" +
                        spec.busybox +
                        ": add the busybox-static package, or name another "
                        "with disk.initrd.busybox");
    }
  }

  std::string root = info.modules.empty()
                         ? "root=PARTUUID=" + plan.root_guid.ToString()
                         : "root=PARTLABEL=" + plan.root_label;
  info.cmdline = root + " rootfstype=" + fs_name + " ro";
  if (!spec.cmdline.empty()) info.cmdline += " " + spec.cmdline;
  return plan;
}

// --- the ESP -------------------------------------------------------------

std::vector<FatFile> EspFiles(const Plan& plan, const Tree& tree,
                              const DiskSpec& spec,
                              const DiskBuildOptions& options) {
  const DiskInfo& info = plan.info;
  std::vector<FatFile> files;
  files.push_back({"EFI/BOOT/BOOTX64.EFI", ReadContent(*plan.bootloader)});
  files.push_back(
      {"loader/loader.conf", "timeout 0\ndefault kiln.conf\neditor no\n"});
  std::string entry = "title " + options.name + " " + options.version +
                      "\nversion " + info.kernel_release + "\nlinux /" +
                      kEspDir + "/vmlinuz\n";
  if (!info.modules.empty()) {
    InitramfsOptions o;
    o.kernel_release = info.kernel_release;
    o.modules = info.modules;
    o.busybox = spec.busybox;
    o.mtime = options.build_date;
    Initramfs initramfs = BuildInitramfs(tree, o);
    files.push_back({std::string(kEspDir) + "/initrd", initramfs.cpio});
    entry += "initrd /" + std::string(kEspDir) + "/initrd\n";
  }
  entry += "options " + info.cmdline + "\n";
  files.push_back({"loader/entries/kiln.conf", entry});
  files.push_back({std::string(kEspDir) + "/vmlinuz", plan.kernel_bytes});
  return files;
}

// --- the root file system ------------------------------------------------

class FdSink : public ByteSink {
 public:
  FdSink(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  void Write(const void* data, size_t n) override {
    WriteAll(fd_, data, n, what_);
  }

 private:
  int fd_;
  std::string what_;
};

void Check(int rc, const std::string& what) {
  if (rc != 0) throw SystemError(what, errno);
}

// The tree's entries in order, with the directories a path implies but the
// image lacks (layers need not list parents) made 0755 root.
std::vector<const Entry*> Complete(const Tree& tree,
                                   std::deque<Entry>* implied) {
  std::vector<const Entry*> out;
  std::set<std::string> dirs;
  for (const auto& [path, e] : tree.entries()) {
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      std::string parent = path.substr(0, slash);
      if (dirs.count(parent) || tree.Find(parent)) continue;
      Entry d;
      d.path = parent;
      d.type = EntryType::kDir;
      d.mode = 0755;
      implied->push_back(d);
      out.push_back(&implied->back());
      dirs.insert(parent);
    }
    out.push_back(&e);
  }
  return out;
}

// Writes the tree under `dir` with its owners (as root), modes and times.
void Stage(const Tree& tree, const std::string& dir, int64_t build_date) {
  bool root = ::geteuid() == 0;
  std::vector<const Entry*> dirs;
  std::deque<Entry> implied;
  for (const Entry* entry : Complete(tree, &implied)) {
    const Entry& e = *entry;
    std::string p = dir + "/" + e.path;
    switch (e.type) {
      case EntryType::kDir:
        if (::mkdir(p.c_str(), 0700) != 0 && errno != EEXIST)
          throw SystemError("creating " + p, errno);
        dirs.push_back(&e);
        continue;
      case EntryType::kFile: {
        UniqueFd fd(
            ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!fd.valid()) throw SystemError("creating " + p, errno);
        if (e.size > 0) {
          FdSink sink(fd.get(), p);
          e.content->CopyTo(sink, e.size);
        }
        break;
      }
      case EntryType::kSymlink:
        Check(::symlink(e.link.c_str(), p.c_str()), "creating symlink " + p);
        break;
      case EntryType::kHardlink:
        Check(::link((dir + "/" + e.link).c_str(), p.c_str()),
              "creating hard link " + p);
        continue;  // the file it links to has the metadata
      case EntryType::kChar:
      case EntryType::kBlock:
      case EntryType::kFifo: {
        mode_t type = e.type == EntryType::kChar    ? S_IFCHR
                      : e.type == EntryType::kBlock ? S_IFBLK
                                                    : S_IFIFO;
        Check(
            ::mknod(p.c_str(), type | 0600, makedev(e.dev_major, e.dev_minor)),
            "creating device node " + p);
        break;
      }
    }
    if (root)
      Check(::lchown(p.c_str(), e.uid, e.gid), "setting the owner of " + p);
    if (e.type != EntryType::kSymlink)
      Check(::chmod(p.c_str(), e.mode), "setting the mode of " + p);
    struct timespec times[2] = {{build_date, 0}, {build_date, 0}};
    Check(::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW),
          "setting the times of " + p);
  }
  // Directories last, deepest first: creating their children changed them.
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    const Entry& e = **it;
    std::string p = dir + "/" + e.path;
    if (root)
      Check(::lchown(p.c_str(), e.uid, e.gid), "setting the owner of " + p);
    Check(::chmod(p.c_str(), e.mode), "setting the mode of " + p);
    struct timespec times[2] = {{build_date, 0}, {build_date, 0}};
    Check(::utimensat(AT_FDCWD, p.c_str(), times, 0),
          "setting the times of " + p);
  }
  // The root directory: 0755, whatever kiln's umask made the stage.
  Check(::chmod(dir.c_str(), 0755), "setting the mode of " + dir);
  struct timespec times[2] = {{build_date, 0}, {build_date, 0}};
  Check(::utimensat(AT_FDCWD, dir.c_str(), times, 0),
        "setting the times of " + dir);
}

// A tool's command line with an environment of kiln's choosing: the
// caller's SOURCE_DATE_EPOCH (mksquashfs refuses it beside -all-time), locale
// and time zone do not reach it; `env` adds variables.
std::vector<std::string> ToolCommand(const std::vector<std::string>& argv,
                                     const std::vector<std::string>& env = {}) {
  std::vector<std::string> out = {"env", "-u", "SOURCE_DATE_EPOCH", "LC_ALL=C",
                                  "TZ=UTC"};
  out.insert(out.end(), env.begin(), env.end());
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

void RunTool(const std::vector<std::string>& argv, const std::string& what,
             const std::vector<std::string>& env = {}) {
  ProcessResult r = RunProcess(ToolCommand(argv, env), "", kToolTimeout);
  std::string err(Trim(r.err));
  if (r.exit_code != 0) {
    if (err.empty()) err = Trim(r.out);
    // A usage text after the complaint says nothing more.
    std::vector<std::string> lines = Split(err, '\n');
    if (lines.size() > 3)
      err = Join({lines[0], lines[1], lines[2]}, "\n") + "\n…";
    throw EnvError(what + ": " + argv[0] + " failed (exit " +
                   std::to_string(r.exit_code) + "): " + err);
  }
}

void NeedTool(const std::string& tool, const std::string& package,
              const std::string& why) {
  if (!OnPath(tool)) {
    throw EnvError(tool + " is not installed (Debian package " + package +
                   "); kiln needs it " + why);
  }
}

// debugfs quotes arguments with double quotes; nothing escapes a quote.
std::string DebugfsArg(const std::string& path) {
  if (path.find_first_of("\"\n\r") != std::string::npos) {
    throw UserError("disk: /" + path +
                    ": a name with a double quote or a line break cannot be "
                    "written to ext4 by kiln");
  }
  return "\"" + path + "\"";
}

std::string Octal(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0%o", v);
  return buf;
}

// ext4 without -d: mke2fs -d adds files in readdir order, which differs from
// machine to machine, so debugfs adds them in the tree's order instead.
void MakeExt4(const Tree& tree, const Plan& plan, const std::string& image,
              uint64_t size, const DiskBuildOptions& options,
              const std::string& scratch) {
  NeedTool("mke2fs", "e2fsprogs", "for ext4 root file systems");
  NeedTool("debugfs", "e2fsprogs", "for ext4 root file systems");
  std::string files = scratch + "/files";
  MakeDirs(files);
  std::string config = scratch + "/mke2fs.conf";
  // The host's mke2fs.conf must not decide the features.
  WriteFileAtomic(config,
                  "[defaults]\n\tbase_features = sparse_super,large_file,"
                  "filetype,dir_index,ext_attr\n\tblocksize = 4096\n"
                  "\tinode_size = 256\n\tinode_ratio = 16384\n[fs_types]\n"
                  "\text4 = {\n\t\tfeatures = extent,huge_file,flex_bg,"
                  "metadata_csum,64bit,dir_nlink,extra_isize\n\t}\n");
  std::string fake_time =
      // e2fsprogs reads a fake time of 0 as none (the clock): the epoch
      // itself is written as its first second.
      "E2FSPROGS_FAKE_TIME=" +
      std::to_string(std::max<int64_t>(options.build_date, 1));
  uint64_t inodes = std::max<uint64_t>(plan.inodes, size / 16384);
  UniqueFd fd(
      ::open(image.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) throw SystemError("creating " + image, errno);
  Check(::ftruncate(fd.get(), static_cast<off_t>(size)), "sizing " + image);
  fd = UniqueFd();
  RunTool({"mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-N",
           std::to_string(inodes), "-U", plan.root_fs_uuid.ToString(), "-E",
           "hash_seed=" +
               Guid::FromDigest(options.image, "root-fs-hash").ToString() +
               ",root_owner=0:0,lazy_itable_init=0,nodiscard",
           "-L", "root", "-m", "0", image},
          "making the ext4 file system",
          {fake_time, "MKE2FS_CONFIG=" + config});

  std::string script;
  std::map<const Entry*, int> links;
  size_t n = 0;
  std::deque<Entry> implied;
  for (const Entry* entry : Complete(tree, &implied)) {
    const Entry& e = *entry;
    const std::string& path = e.path;
    std::string arg = DebugfsArg(path);
    switch (e.type) {
      case EntryType::kDir:
        script += "mkdir " + arg + "\n";
        break;
      case EntryType::kFile: {
        std::string host = files + "/" + std::to_string(n++);
        UniqueFd out(::open(host.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!out.valid()) throw SystemError("creating " + host, errno);
        if (e.size > 0) {
          FdSink sink(out.get(), host);
          e.content->CopyTo(sink, e.size);
        }
        script += "write " + host + " " + arg + "\n";
        break;
      }
      case EntryType::kSymlink:
        script += "symlink " + arg + " " + DebugfsArg(e.link) + "\n";
        break;
      case EntryType::kHardlink: {
        script += "ln " + DebugfsArg(e.link) + " " + arg + "\n";
        const Entry* target = tree.Find(e.link);
        if (target) ++links[target];
        continue;
      }
      case EntryType::kChar:
      case EntryType::kBlock:
      case EntryType::kFifo: {
        std::string dir = Dirname(path);
        script += "cd /" + (dir == "." ? std::string() : dir) + "\n";
        std::string kind = e.type == EntryType::kChar    ? "c"
                           : e.type == EntryType::kBlock ? "b"
                                                         : "p";
        script += "mknod " + DebugfsArg(Basename(path)) + " " + kind;
        if (e.type != EntryType::kFifo) {
          script += " " + std::to_string(e.dev_major) + " " +
                    std::to_string(e.dev_minor);
        }
        script += "\ncd /\n";
        break;
      }
    }
    uint32_t type_bits = e.type == EntryType::kDir       ? S_IFDIR
                         : e.type == EntryType::kSymlink ? S_IFLNK
                         : e.type == EntryType::kChar    ? S_IFCHR
                         : e.type == EntryType::kBlock   ? S_IFBLK
                         : e.type == EntryType::kFifo    ? S_IFIFO
                                                         : S_IFREG;
    uint32_t mode = e.type == EntryType::kSymlink ? 0777 : e.mode;
    script += "sif " + arg + " mode " + Octal(type_bits | mode) + "\n";
    if (e.uid) script += "sif " + arg + " uid " + std::to_string(e.uid) + "\n";
    if (e.gid) script += "sif " + arg + " gid " + std::to_string(e.gid) + "\n";
  }
  for (const auto& [e, extra] : links) {
    script += "sif " + DebugfsArg(e->path) + " links_count " +
              std::to_string(1 + extra) + "\n";
  }
  std::string script_path = scratch + "/debugfs.script";
  WriteFileAtomic(script_path, script);
  ProcessResult r = RunProcess(
      ToolCommand({"debugfs", "-w", "-f", script_path, image}, {fake_time}), "",
      kToolTimeout);
  // debugfs reports a failed command on stderr and goes on: any line there
  // but its banner is a failure.
  std::string errors;
  for (const auto& line : Split(r.err, '\n')) {
    if (!line.empty() && !StartsWith(line, "debugfs ")) errors += line + "\n";
  }
  if (r.exit_code != 0 || !errors.empty()) {
    if (errors.size() > 2000) errors = errors.substr(0, 2000) + "…";
    throw EnvError("writing the files into the ext4 file system: debugfs: " +
                   std::string(Trim(errors)));
  }
  RunTool({"e2fsck", "-fn", image}, "checking the ext4 file system",
          {fake_time});
}

bool AllRootOwned(const Tree& tree) {
  for (const auto& [path, e] : tree.entries())
    if (e.uid != 0 || e.gid != 0) return false;
  return true;
}

bool HasDevices(const Tree& tree) {
  for (const auto& [path, e] : tree.entries())
    if (e.type == EntryType::kChar || e.type == EntryType::kBlock) return true;
  return false;
}

void MakeReadOnlyFs(const DiskSpec& spec, const Tree& tree, const Plan& plan,
                    const std::string& image, const DiskBuildOptions& options,
                    const std::string& scratch) {
  bool root = ::geteuid() == 0;
  bool erofs = spec.filesystem == DiskFilesystem::kErofs;
  if (erofs) {
    NeedTool("mkfs.erofs", "erofs-utils", "for erofs root file systems");
  } else {
    NeedTool("mksquashfs", "squashfs-tools", "for squashfs root file systems");
  }
  std::string date = std::to_string(options.build_date);
  // The tools copy owners and device nodes from a staged tree, which only
  // root can make; ext4 needs neither.
  bool all_root = !root && AllRootOwned(tree);
  if (!root && (!all_root || HasDevices(tree))) {
    throw UserError(std::string("disk: the image has ") +
                    (all_root ? "device nodes" : "files not owned by root") +
                    ", which kiln writes to " + (erofs ? "erofs" : "squashfs") +
                    " only when it runs as root (or use filesystem: ext4)");
  }
  std::string stage = scratch + "/root";
  MakeDirs(stage);
  Stage(tree, stage, options.build_date);
  int threads = options.threads > 0
                    ? options.threads
                    : static_cast<int>(std::thread::hardware_concurrency());
  std::vector<std::string> argv;
  if (erofs) {
    argv = {"mkfs.erofs", "--quiet", "-x-1", "-T" + date,
            "-U" + plan.root_fs_uuid.ToString()};
    if (all_root) argv.push_back("--all-root");
    argv.push_back(image);
    argv.push_back(stage);
  } else {
    argv = {"mksquashfs",
            stage,
            image,
            "-noappend",
            "-reproducible",
            "-mkfs-time",
            date,
            "-all-time",
            date,
            "-no-xattrs",
            "-comp",
            plan.squashfs_comp,
            "-processors",
            std::to_string(std::max(threads, 1)),
            "-quiet",
            "-no-progress"};
    if (all_root) argv.push_back("-all-root");
    // zstd's default (15) takes ten times as long as 9 for 7% less.
    if (plan.squashfs_comp == "zstd") {
      argv.push_back("-Xcompression-level");
      argv.push_back("9");
    }
  }
  RunTool(argv, std::string("making the ") + (erofs ? "erofs" : "squashfs") +
                    " file system");
}

std::string MiB(uint64_t bytes) {
  return std::to_string((bytes + kMiB - 1) / kMiB) + " MiB";
}

}  // namespace

std::string DiskInfo::ToJson() const {
  nlohmann::json parts = nlohmann::json::array();
  for (const auto& p : partitions) {
    parts.push_back({{"number", p.number},
                     {"name", p.name},
                     {"type", p.type},
                     {"guid", p.guid},
                     {"filesystem", p.filesystem},
                     {"uuid", p.fs_uuid},
                     {"offset", p.offset},
                     {"size", p.size}});
  }
  nlohmann::json j = {{"format", DiskFormatName(format)},
                      {"filesystem", DiskFilesystemName(filesystem)},
                      {"boot", DiskBootName(boot)},
                      {"virtualSize", virtual_size},
                      {"diskGuid", disk_guid},
                      {"partitions", parts},
                      {"contentBytes", content_bytes}};
  if (boot != DiskBoot::kNone) {
    j["kernel"] = "/" + kernel;
    j["kernelRelease"] = kernel_release;
    j["cmdline"] = cmdline;
    j["modules"] = modules;
  }
  return j.dump();
}

DiskInfo DiskInfo::FromJson(const std::string& json, const std::string& what) {
  DiskInfo info;
  try {
    auto j = nlohmann::json::parse(json);
    std::string format = j.at("format"), fs = j.at("filesystem"),
                boot = j.at("boot");
    info.format = format == "qcow2" ? DiskFormat::kQcow2 : DiskFormat::kRaw;
    info.filesystem = fs == "erofs"      ? DiskFilesystem::kErofs
                      : fs == "squashfs" ? DiskFilesystem::kSquashfs
                                         : DiskFilesystem::kExt4;
    info.boot = boot == "none" ? DiskBoot::kNone : DiskBoot::kSystemdBoot;
    info.virtual_size = j.at("virtualSize");
    info.disk_guid = j.at("diskGuid");
    info.content_bytes = j.value("contentBytes", uint64_t{0});
    for (const auto& p : j.at("partitions")) {
      DiskPartition part;
      part.number = p.at("number");
      part.name = p.at("name");
      part.type = p.at("type");
      part.guid = p.at("guid");
      part.filesystem = p.at("filesystem");
      part.fs_uuid = p.at("uuid");
      part.offset = p.at("offset");
      part.size = p.at("size");
      info.partitions.push_back(part);
    }
    std::string kernel = j.value("kernel", "");
    info.kernel = kernel.empty() ? "" : kernel.substr(1);
    info.kernel_release = j.value("kernelRelease", "");
    info.cmdline = j.value("cmdline", "");
    info.modules = j.value("modules", std::vector<std::string>{});
  } catch (const nlohmann::json::exception& e) {
    throw UserError(what + ": not a kiln disk description: " + e.what());
  }
  return info;
}

DiskInfo PlanDisk(const DiskSpec& spec, const Tree& tree,
                  const DiskBuildOptions& options) {
  Plan plan = MakePlan(spec, tree, options);
  if (spec.size) {
    // The ESP's own size is known once its files are: FAT32's least here.
    uint64_t esp = spec.boot == DiskBoot::kNone ? 0 : 33 * kMiB;
    uint64_t need = 2 * kMiB + esp + plan.root_minimum;
    if (spec.size < need) {
      throw ErrorAt(spec.locs.At("size"),
                    "disk.size " + MiB(spec.size) +
                        " is too small: the content needs at least " +
                        MiB(need) + " (" + HumanBytes(plan.info.content_bytes) +
                        " in files)");
    }
  }
  return plan.info;
}

DiskInfo BuildDisk(const DiskSpec& spec, const Tree& tree,
                   const DiskBuildOptions& options, const std::string& out) {
  Plan plan = MakePlan(spec, tree, options);
  DiskInfo& info = plan.info;
  const char* fs_name = DiskFilesystemName(spec.filesystem);

  // The ESP first: it is small, and its size decides the root's.
  std::vector<FatFile> esp_files;
  uint64_t esp_size = 0;
  if (spec.boot != DiskBoot::kNone) {
    esp_files = EspFiles(plan, tree, spec, options);
    uint64_t minimum = FatMinimumSize(esp_files);
    esp_size = std::max(minimum, spec.esp_size);
    if (spec.esp_size && spec.esp_size < minimum) {
      throw ErrorAt(spec.locs.At("espSize"),
                    "disk.espSize " + MiB(spec.esp_size) +
                        " is too small: the boot files need " + MiB(minimum));
    }
  }
  uint64_t root_start = kMiB + esp_size;
  uint64_t root_size = 0;
  if (spec.size) {
    uint64_t need = root_start + plan.root_minimum + kMiB;
    if (spec.size < need) {
      throw ErrorAt(spec.locs.At("size"),
                    "disk.size " + MiB(spec.size) +
                        " is too small: the content needs at least " +
                        MiB(need) + " (ESP " + MiB(esp_size) + ", root " +
                        MiB(plan.root_minimum) + ")");
    }
    root_size = spec.size - root_start - kMiB;
  }

  TempDir scratch(options.scratch_dir, "disk-");
  std::string root_image = scratch.path() + "/root.img";
  if (spec.filesystem == DiskFilesystem::kExt4) {
    if (!root_size) root_size = plan.root_estimate;
    MakeExt4(tree, plan, root_image, root_size, options, scratch.path());
  } else {
    MakeReadOnlyFs(spec, tree, plan, root_image, options, scratch.path());
    struct stat st;
    Check(::stat(root_image.c_str(), &st), "reading " + root_image);
    uint64_t fs_size = RoundUp(static_cast<uint64_t>(st.st_size), kMiB);
    if (root_size && fs_size > root_size) {
      throw ErrorAt(spec.locs.At("size"),
                    "disk.size " + MiB(spec.size) + " is too small: the " +
                        fs_name + " root file system is " + MiB(fs_size) +
                        ", the disk has room for " + MiB(root_size));
    }
    if (!root_size) root_size = fs_size;
  }
  uint64_t disk_size = root_start + root_size + kMiB;
  info.virtual_size = disk_size;

  GptDisk gpt;
  gpt.disk_guid = Guid::Parse(info.disk_guid);
  gpt.size_bytes = disk_size;
  int number = 1;
  if (esp_size) {
    Guid esp_fs = Guid::FromDigest(options.image, "esp-fs");
    gpt.partitions.push_back({Guid::Parse(gpt_type::kEsp), plan.esp_guid, "esp",
                              kMiB / kSectorSize,
                              (kMiB + esp_size) / kSectorSize - 1, 0});
    info.partitions.push_back({number++, "esp", gpt_type::kEsp,
                               plan.esp_guid.ToString(), "vfat",
                               Hex32(VolumeId(esp_fs)), kMiB, esp_size});
  }
  gpt.partitions.push_back({Guid::Parse(gpt_type::kRootX86_64), plan.root_guid,
                            plan.root_label, root_start / kSectorSize,
                            (root_start + root_size) / kSectorSize - 1, 0});
  info.partitions.push_back({number, plan.root_label, gpt_type::kRootX86_64,
                             plan.root_guid.ToString(), fs_name,
                             plan.root_fs_uuid.ToString(), root_start,
                             root_size});
  if (spec.filesystem != DiskFilesystem::kExt4) {
    info.partitions.back().fs_uuid = spec.filesystem == DiskFilesystem::kErofs
                                         ? plan.root_fs_uuid.ToString()
                                         : "";  // squashfs has none
  }

  std::string raw =
      spec.format == DiskFormat::kRaw ? out : scratch.path() + "/disk.raw";
  bool done = false;
  struct Remove {
    const std::string& path;
    bool& done;
    ~Remove() {
      if (!done) ::unlink(path.c_str());
    }
  } remove_out{out, done};
  {
    UniqueFd fd(
        ::open(raw.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) throw SystemError("creating " + raw, errno);
    Check(::ftruncate(fd.get(), static_cast<off_t>(disk_size)),
          "sizing " + raw);
    WriteGpt(fd.get(), gpt, "the disk");
    if (esp_size) {
      FatOptions fo;
      fo.size_bytes = esp_size;
      fo.volume_id = VolumeId(Guid::FromDigest(options.image, "esp-fs"));
      fo.label = "ESP";
      fo.mtime = options.build_date;
      WriteFat32(fd.get(), kMiB, esp_files, fo, "the EFI system partition");
    }
    CopySparseInto(root_image, fd.get(), root_start, raw);
    Check(::fsync(fd.get()), "writing " + raw);
  }
  if (spec.format == DiskFormat::kQcow2) {
    NeedTool("qemu-img", "qemu-utils", "for qcow2 disk images");
    // One coroutine, in order: the clusters land where they always do.
    RunTool({"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-m", "1", "-o",
             "compat=1.1,lazy_refcounts=off", raw, out},
            "converting the disk to qcow2");
  }
  done = true;
  return info;
}

}  // namespace kiln
