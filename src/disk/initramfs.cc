#include "disk/initramfs.h"

#include <archive.h>
#include <archive_entry.h>

#include <map>
#include <memory>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/image_path.h"
#include "core/strings.h"

namespace kiln {
namespace {

// The whole boot logic. The kernel runs it with the console as stdin, stdout
// and stderr and without PATH; only /bin/busybox and /bin/sh exist, so every
// command other than an ash builtin is "busybox APPLET". The contract (what
// it reads from /proc/cmdline) is in src/disk/README.md.
constexpr char kInitScript[] = R"sh(#!/bin/busybox sh
# kiln initramfs: load the modules the root needs, find the root named on the
# kernel command line, mount it and switch to it.
export PATH=/bin

busybox mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
busybox mount -t proc -o nosuid,nodev,noexec proc /proc
busybox mount -t sysfs -o nosuid,nodev,noexec sysfs /sys

say() {
  echo "kiln-initramfs: $*"
}

# init must not exit (the kernel panics and a VM hangs), so a failure stops
# the machine, or opens a shell when kiln.debug asks for one.
fail() {
  say "$*"
  if [ -n "$debug" ]; then
    say "kiln.debug is set: starting a shell"
    exec busybox sh
  fi
  say "add kiln.debug to the kernel command line for a shell; powering off"
  busybox sleep 1
  busybox poweroff -f
  exit 1
}

root=
rootfstype=
rootflags=
init=/sbin/init
mode=ro
debug=
read -r cmdline < /proc/cmdline
set -f
for arg in $cmdline; do
  case $arg in
    root=*) root=${arg#root=} ;;
    rootfstype=*) rootfstype=${arg#rootfstype=} ;;
    rootflags=*) rootflags=${arg#rootflags=} ;;
    init=*) init=${arg#init=} ;;
    ro) mode=ro ;;
    rw) mode=rw ;;
    kiln.debug|kiln.debug=1) debug=1 ;;
  esac
done
set +f

while IFS= read -r module; do
  [ -n "$module" ] || continue
  busybox insmod "$module" || say "cannot load $module (continuing)"
done < /etc/kiln-modules

# The partition whose GPT name is $1, from the kernel's uevent files.
by_partlabel() {
  for uevent in /sys/class/block/*/uevent; do
    [ -r "$uevent" ] || continue
    name=
    found=
    while IFS= read -r line; do
      case $line in
        DEVNAME=*) name=${line#DEVNAME=} ;;
        "PARTNAME=$1") found=1 ;;
      esac
    done < "$uevent"
    if [ -n "$found" ] && [ -n "$name" ]; then
      echo "/dev/$name"
      return 0
    fi
  done
  return 1
}

# The partition whose GPT unique GUID is $1 (lowercase). The kernel does not
# publish it, so read each disk's table: the header at LBA 1 gives the entry
# array's LBA and entry size, the entry (partition number - 1) the GUID.
by_partuuid() {
  want=$1
  for part in /sys/class/block/*; do
    [ -r "$part/partition" ] || continue
    read -r number < "$part/partition"
    disk=$(busybox readlink -f "$part/..")
    disk=${disk##*/}
    [ -b "/dev/$disk" ] || continue
    sector=512
    if [ -r "/sys/class/block/$disk/queue/logical_block_size" ]; then
      read -r sector < "/sys/class/block/$disk/queue/logical_block_size"
    fi
    # One positional parameter per byte.
    # shellcheck disable=SC2046
    set -- $(busybox od -An -tx1 -v -j "$sector" -N 88 "/dev/$disk" 2>/dev/null)
    [ $# -eq 88 ] || continue
    [ "$1$2$3$4$5$6$7$8" = 4546492050415254 ] || continue  # "EFI PART"
    array=$((0x${80}${79}${78}${77}${76}${75}${74}${73}))
    size=$((0x${88}${87}${86}${85}))
    offset=$((array * sector + (number - 1) * size + 16))
    # shellcheck disable=SC2046
    set -- $(busybox od -An -tx1 -v -j "$offset" -N 16 "/dev/$disk" 2>/dev/null)
    [ $# -eq 16 ] || continue
    guid=$4$3$2$1-$6$5-$8$7-$9${10}-${11}${12}${13}${14}${15}${16}
    if [ "$guid" = "$want" ]; then
      echo "/dev/${part##*/}"
      return 0
    fi
  done
  return 1
}

find_root() {
  case $root in
    PARTLABEL=*) by_partlabel "${root#PARTLABEL=}" ;;
    PARTUUID=*)
      by_partuuid "$(echo "${root#PARTUUID=}" | busybox tr A-F a-f)" ;;
    UUID=*|LABEL=*) busybox findfs "$root" 2>/dev/null ;;
    *) echo "$root" ;;
  esac
}

case $root in
  PARTLABEL=?*|PARTUUID=?*|UUID=?*|LABEL=?*|/dev/?*) ;;
  "") fail "cannot mount root: no root= on the kernel command line" ;;
  *) fail "cannot mount root $root: use root=PARTLABEL=, PARTUUID=, UUID=, LABEL= or a /dev path" ;;
esac

dev=
tries=0
while :; do
  dev=$(find_root)
  if [ -n "$dev" ] && [ -b "$dev" ]; then
    break
  fi
  tries=$((tries + 1))
  if [ $tries -ge 300 ]; then
    fail "cannot mount root $root: no such device after 30 s"
  fi
  if [ $tries -eq 10 ]; then
    say "waiting up to 30 s for $root"
  fi
  busybox sleep 0.1 2>/dev/null || busybox usleep 100000
done

options=$mode
if [ -n "$rootflags" ]; then
  options=$options,$rootflags
fi
if [ -n "$rootfstype" ]; then
  busybox mount -t "$rootfstype" -o "$options" "$dev" /root
else
  busybox mount -o "$options" "$dev" /root
fi || fail "cannot mount root $root ($dev, type ${rootfstype:-auto}, options $options)"

if [ ! -e "/root$init" ] && [ ! -L "/root$init" ]; then
  fail "no $init on the root $root ($dev)"
fi

# The root's init expects /dev, /proc and /sys mounted if it has the folders.
for fs in dev proc sys; do
  if [ -d "/root/$fs" ]; then
    busybox mount --move "/$fs" "/root/$fs" || busybox umount -l "/$fs"
  else
    busybox umount -l "/$fs"
  fi
done
exec busybox switch_root /root "$init" "$@"
)sh";

// The load order, one absolute path a line, read by /init.
constexpr char kModuleList[] = "etc/kiln-modules";

constexpr int kMaxLinkHops = 40;

// Kernel module names treat '-' and '_' alike; '_' is the canonical form.
std::string ModuleName(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c == '-') c = '_';
  }
  return out;
}

// The ELF identification: magic, 64-bit class, little-endian data.
bool IsElf64Le(const std::string& data) {
  return data.size() >= 64 && data.compare(0, 4, "\177ELF") == 0 &&
         data[4] == 2 && data[5] == 1;
}

// Bounds-checked little-endian reads of an ELF64 file.
class Elf {
 public:
  Elf(const std::string& data, const std::string& what)
      : data_(data), what_(what) {
    if (!IsElf64Le(data)) {
      throw UserError(what + ": not an ELF64 little-endian file");
    }
  }

  uint64_t U(uint64_t offset, int bytes) const {
    if (offset > data_.size() || data_.size() - offset < uint64_t(bytes)) {
      throw UserError(what_ + ": truncated ELF file (offset " +
                      std::to_string(offset) + ")");
    }
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) {
      v = v << 8 | static_cast<uint8_t>(data_[offset + i]);
    }
    return v;
  }

  std::string_view Bytes(uint64_t offset, uint64_t size) const {
    if (offset > data_.size() || data_.size() - offset < size) {
      throw UserError(what_ + ": truncated ELF file (offset " +
                      std::to_string(offset) + ")");
    }
    return std::string_view(data_).substr(offset, size);
  }

 private:
  const std::string& data_;
  const std::string& what_;
};

// The program interpreter of an ELF executable, empty if it has none (it is
// statically linked) or is not ELF64.
std::string Interpreter(const std::string& data) {
  if (!IsElf64Le(data)) return "";
  Elf elf(data, "");
  uint64_t phoff = elf.U(0x20, 8);
  uint64_t phentsize = elf.U(0x36, 2);
  uint64_t phnum = elf.U(0x38, 2);
  for (uint64_t i = 0; i < phnum; ++i) {
    uint64_t ph = phoff + i * phentsize;
    if (elf.U(ph, 4) != 3) continue;  // PT_INTERP
    std::string_view interp =
        elf.Bytes(elf.U(ph + 0x08, 8), elf.U(ph + 0x20, 8));
    return std::string(interp.substr(0, interp.find('\0')));
  }
  return "";
}

// Follows symlinks and hardlinks inside the image root to a regular file;
// nullptr with `why` set if there is none.
const Entry* FindFile(const Tree& tree, const std::string& path,
                      std::string* why) {
  std::string p = path;
  for (int hops = 0; hops <= kMaxLinkHops; ++hops) {
    std::string real;
    if (!tree.ResolveParents(p, &real, why)) return nullptr;
    const Entry* e = tree.Find(real);
    if (!e) {
      *why = "/" + real + " is not in the image";
      return nullptr;
    }
    switch (e->type) {
      case EntryType::kFile:
        return e;
      case EntryType::kHardlink:
        p = e->link;
        break;
      case EntryType::kSymlink:
        ResolveInRoot(ParentPath(real), e->link, &p);
        break;
      default:
        *why = "/" + real + " is a " + EntryTypeName(e->type) +
               ", not a regular file";
        return nullptr;
    }
  }
  *why = "too many levels of symbolic links at /" + path;
  return nullptr;
}

std::string ReadContent(const Entry& e) {
  if (e.size == 0) return "";
  if (!e.content) throw InternalError("no content for /" + e.path);
  return e.content->ReadAll(e.size);
}

struct Module {
  std::string path;  // in the tree (may be a link)
  std::string rel;   // below lib/modules/<release>
};

// The modules of one kernel release in the image, by name.
class ModuleIndex {
 public:
  ModuleIndex(const Tree& tree, const std::string& release)
      : tree_(tree), release_(release) {
    std::string dir = "lib/modules/" + release;
    std::string real, why;
    // Merged-/usr images reach lib/modules through the lib -> usr/lib link.
    if (!tree.ResolveParents(dir + "/x", &real, &why)) {
      throw UserError("kernel " + release + ": cannot read /" + dir + ": " +
                      why);
    }
    real = ParentPath(real);
    const Entry* d = tree.Find(real);
    if (!d || !d->IsDir()) {
      throw UserError("kernel " + release + ": /" + dir +
                      " is not a folder in the image (is the kernel "
                      "installed?)");
    }
    for (auto it = tree.entries().upper_bound(real);
         it != tree.entries().end() && PathWithin(it->first, real); ++it) {
      const Entry& e = it->second;
      if (e.IsDir()) continue;
      std::string rel = e.path.substr(real.size() + 1);
      std::string_view base = BaseName(rel);
      if (EndsWith(base, ".ko")) {
        std::string name = ModuleName(base.substr(0, base.size() - 3));
        // Tree order decides between copies, except that updates/ wins, as
        // depmod's default search order has it.
        auto [slot, added] = modules_.try_emplace(name, Module{e.path, rel});
        if (!added && StartsWith(rel, "updates/") &&
            !StartsWith(slot->second.rel, "updates/")) {
          slot->second = Module{e.path, rel};
        }
      } else if (EndsWith(base, ".ko.xz") || EndsWith(base, ".ko.zst") ||
                 EndsWith(base, ".ko.gz")) {
        compressed_.try_emplace(ModuleName(base.substr(0, base.find(".ko."))),
                                rel);
      }
    }
    std::string builtin_why;
    if (const Entry* b =
            FindFile(tree, real + "/modules.builtin", &builtin_why)) {
      for (const auto& line : Split(ReadContent(*b), '\n')) {
        std::string_view base = BaseName(line);
        if (EndsWith(base, ".ko"))
          builtin_.insert(ModuleName(base.substr(0, base.size() - 3)));
      }
    }
  }

  // Load order for `names` and their dependencies, dependencies first.
  std::vector<std::string> Resolve(const std::vector<std::string>& names) {
    for (const auto& n : names) Visit(ModuleName(n), "");
    return order_;
  }

  const Module& Get(const std::string& name) const { return modules_.at(name); }

 private:
  enum class State { kVisiting, kDone };

  void Visit(const std::string& name, const std::string& needed_by) {
    auto st = state_.find(name);
    if (st != state_.end()) {
      if (st->second == State::kVisiting) {
        throw UserError("kernel " + release_ + ": modules " + name + " and " +
                        needed_by + " depend on each other");
      }
      return;
    }
    auto it = modules_.find(name);
    if (it == modules_.end()) throw Missing(name, needed_by);
    state_[name] = State::kVisiting;
    std::string why;
    const Entry* e = FindFile(tree_, it->second.path, &why);
    if (!e) {
      throw UserError("kernel " + release_ + ": module " + name + ": " + why);
    }
    for (const auto& dep : ModuleDepends(ReadContent(*e), "/" + e->path)) {
      Visit(dep, name);
    }
    state_[name] = State::kDone;
    order_.push_back(name);
  }

  Error Missing(const std::string& name, const std::string& needed_by) const {
    std::string msg = "module " + name;
    if (!needed_by.empty()) msg += " (needed by " + needed_by + ")";
    msg += " is not in /lib/modules/" + release_ + " of the image";
    if (builtin_.count(name)) {
      msg += "; it is built into kernel " + release_ +
             " (modules.builtin): leave it out";
    } else if (auto c = compressed_.find(name); c != compressed_.end()) {
      msg += "; only the compressed " + c->second +
             " is there, and kiln reads uncompressed .ko modules";
    }
    return UserError(msg);
  }

  const Tree& tree_;
  const std::string& release_;
  std::map<std::string, Module> modules_;
  std::map<std::string, std::string> compressed_;
  std::set<std::string> builtin_;
  std::map<std::string, State> state_;
  std::vector<std::string> order_;
};

struct CpioEntry {
  EntryType type = EntryType::kDir;
  uint32_t mode = 0755;
  std::string data;  // file content or symlink target
  uint32_t rdev_major = 0;
  uint32_t rdev_minor = 0;
};

using CpioTree = std::map<std::string, CpioEntry, PathOrder>;

void AddWithParents(CpioTree* tree, const std::string& path, CpioEntry e) {
  for (std::string p = ParentPath(path); !p.empty(); p = ParentPath(p)) {
    tree->try_emplace(p, CpioEntry{});
  }
  (*tree)[path] = std::move(e);
}

la_ssize_t AppendToString(struct archive*, void* out, const void* data,
                          size_t n) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(data), n);
  return static_cast<la_ssize_t>(n);
}

// A newc archive of `tree` in tree order (parents first), inodes numbered
// from 1 in that order, owned by root, all with one time.
std::string WriteCpio(const CpioTree& tree, int64_t mtime) {
  std::string out;
  std::unique_ptr<struct archive, decltype(&archive_write_free)> a(
      archive_write_new(), archive_write_free);
  auto check = [&](int r, const std::string& doing) {
    if (r != ARCHIVE_OK) {
      const char* msg = archive_error_string(a.get());
      throw InternalError("writing the initramfs: " + doing + ": " +
                          (msg ? msg : "libarchive error"));
    }
  };
  check(archive_write_set_format_cpio_newc(a.get()), "setting the format");
  // Unblocked: the archive ends at its trailer, with no padding after it.
  check(archive_write_set_bytes_per_block(a.get(), 0), "setting blocking");
  check(archive_write_open(a.get(), &out, nullptr, AppendToString, nullptr),
        "opening");
  int64_t ino = 0;
  for (const auto& [path, e] : tree) {
    std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)> ae(
        archive_entry_new(), archive_entry_free);
    archive_entry_copy_pathname(ae.get(), path.c_str());
    archive_entry_set_ino(ae.get(), ++ino);
    archive_entry_set_perm(ae.get(), e.mode);
    archive_entry_set_uid(ae.get(), 0);
    archive_entry_set_gid(ae.get(), 0);
    archive_entry_set_mtime(ae.get(), mtime, 0);
    archive_entry_set_nlink(ae.get(), e.type == EntryType::kDir ? 2 : 1);
    archive_entry_set_size(ae.get(), 0);
    switch (e.type) {
      case EntryType::kDir:
        archive_entry_set_filetype(ae.get(), AE_IFDIR);
        break;
      case EntryType::kSymlink:
        archive_entry_set_filetype(ae.get(), AE_IFLNK);
        archive_entry_copy_symlink(ae.get(), e.data.c_str());
        break;
      case EntryType::kChar:
        archive_entry_set_filetype(ae.get(), AE_IFCHR);
        archive_entry_set_rdevmajor(ae.get(), e.rdev_major);
        archive_entry_set_rdevminor(ae.get(), e.rdev_minor);
        break;
      default:
        archive_entry_set_filetype(ae.get(), AE_IFREG);
        archive_entry_set_size(ae.get(), static_cast<int64_t>(e.data.size()));
        break;
    }
    check(archive_write_header(a.get(), ae.get()), "/" + path);
    if (e.type == EntryType::kFile && !e.data.empty()) {
      la_ssize_t n = archive_write_data(a.get(), e.data.data(), e.data.size());
      check(n == static_cast<la_ssize_t>(e.data.size()) ? ARCHIVE_OK
                                                        : ARCHIVE_FATAL,
            "/" + path);
    }
  }
  check(archive_write_close(a.get()), "closing");
  return out;
}

}  // namespace

std::vector<std::string> ModuleDepends(const std::string& elf_bytes,
                                       const std::string& what) {
  Elf elf(elf_bytes, what);
  if (elf.U(0x10, 2) != 1) {  // ET_REL: modules are relocatable objects
    throw UserError(what + ": not a kernel module (not a relocatable ELF)");
  }
  uint64_t shoff = elf.U(0x28, 8);
  uint64_t shentsize = elf.U(0x3a, 2);
  uint64_t shnum = elf.U(0x3c, 2);
  uint64_t shstrndx = elf.U(0x3e, 2);
  if (shoff == 0 || shentsize < 64) {
    throw UserError(what + ": not a kernel module (no section headers)");
  }
  // Past 0xff00 sections the counts live in section 0 (ELF gABI).
  if (shnum == 0) shnum = elf.U(shoff + 0x20, 8);
  if (shstrndx == 0xffff) shstrndx = elf.U(shoff + 0x28, 4);
  if (shstrndx >= shnum) {
    throw UserError(what + ": bad section name table index");
  }
  auto section = [&](uint64_t i) { return shoff + i * shentsize; };
  uint64_t names_off = elf.U(section(shstrndx) + 0x18, 8);
  std::string_view names =
      elf.Bytes(names_off, elf.U(section(shstrndx) + 0x20, 8));
  std::optional<std::string_view> modinfo;
  for (uint64_t i = 0; i < shnum && !modinfo; ++i) {
    uint64_t name = elf.U(section(i), 4);
    if (name >= names.size()) continue;
    std::string_view n = names.substr(name);
    if (n.substr(0, n.find('\0')) != ".modinfo") continue;
    modinfo =
        elf.Bytes(elf.U(section(i) + 0x18, 8), elf.U(section(i) + 0x20, 8));
  }
  if (!modinfo) {
    throw UserError(what + ": not a kernel module (no .modinfo section)");
  }
  std::vector<std::string> deps;
  for (const auto& field : Split(*modinfo, '\0')) {
    if (!StartsWith(field, "depends=")) continue;
    for (const auto& dep : Split(field.substr(8), ',')) {
      if (!dep.empty()) deps.push_back(ModuleName(dep));
    }
  }
  return deps;
}

Initramfs BuildInitramfs(const Tree& tree, const InitramfsOptions& options) {
  const std::string& release = options.kernel_release;
  if (release.empty() || release == "." || release == ".." ||
      release.find_first_of("/\n") != std::string::npos) {
    throw UserError("invalid kernel release " + Quote(release));
  }
  // newc keeps times as 32-bit unsigned seconds.
  if (options.mtime < 0 || options.mtime > 0xFFFFFFFFLL) {
    throw UserError("build date " + std::to_string(options.mtime) +
                    " is out of range for an initramfs (cpio)");
  }

  CpioTree cpio;
  for (const char* dir : {"dev", "proc", "sys", "root"}) {
    AddWithParents(&cpio, dir, CpioEntry{});
  }
  // The kernel opens /dev/console for init's stdio before devtmpfs exists.
  AddWithParents(&cpio, "dev/console",
                 CpioEntry{EntryType::kChar, 0600, "", 5, 1});

  std::string why;
  const Entry* busybox = FindFile(tree, options.busybox, &why);
  if (!busybox) {
    throw UserError("initramfs for kernel " + release + ": busybox /" +
                    options.busybox + ": " + why);
  }
  std::string busybox_bytes = ReadContent(*busybox);
  // Nothing but busybox is in the initramfs: no loader, no libc.
  if (std::string interp = Interpreter(busybox_bytes); !interp.empty()) {
    throw UserError("initramfs for kernel " + release + ": busybox /" +
                    options.busybox + " is dynamically linked (needs " +
                    interp + "); install a static busybox (busybox-static)");
  }
  AddWithParents(&cpio, "bin/busybox",
                 CpioEntry{EntryType::kFile, 0755, std::move(busybox_bytes)});
  AddWithParents(&cpio, "bin/sh",
                 CpioEntry{EntryType::kSymlink, 0777, "busybox"});
  AddWithParents(&cpio, "init", CpioEntry{EntryType::kFile, 0755, kInitScript});

  Initramfs result;
  std::string list;
  if (!options.modules.empty()) {
    ModuleIndex index(tree, release);
    result.modules = index.Resolve(options.modules);
    for (const auto& name : result.modules) {
      const Module& m = index.Get(name);
      if (m.rel.find('\n') != std::string::npos) {
        throw UserError("module path " + Quote(m.rel) + " has a newline");
      }
      const Entry* e = FindFile(tree, m.path, &why);
      if (!e) throw UserError("module " + name + ": " + why);  // resolved above
      std::string path = "lib/modules/" + release + "/" + m.rel;
      AddWithParents(&cpio, path,
                     CpioEntry{EntryType::kFile, 0644, ReadContent(*e)});
      list += "/" + path + "\n";
    }
  }
  AddWithParents(&cpio, kModuleList,
                 CpioEntry{EntryType::kFile, 0644, std::move(list)});
  result.cpio = WriteCpio(cpio, options.mtime);
  return result;
}

}  // namespace kiln
