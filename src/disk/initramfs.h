// The initial RAM file system kiln builds when the image's kernel needs
// modules to reach its root: the image's own busybox, the modules (with
// their dependencies, read from each module's .modinfo) and an /init script
// that loads them, finds the root partition, mounts it read-only and
// switches to it. A newc cpio written with fixed inode numbers, owners and
// times, so the same image gives the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rootfs/tree.h"

namespace kiln {

struct InitramfsOptions {
  std::string kernel_release;           // "6.1.0-56-cloud-amd64": lib/modules/X
  std::vector<std::string> modules;     // names ("virtio_blk"), deps added
  std::string busybox = "bin/busybox";  // image path of a static busybox
  int64_t mtime = 0;
};

struct Initramfs {
  std::string cpio;                  // the uncompressed newc archive
  std::vector<std::string> modules;  // load order, dependencies first
};

// Module dependencies from the ELF .modinfo section ("depends=a,b").
// Throws UserError naming `what` if `elf` is not an ELF64 module.
std::vector<std::string> ModuleDepends(const std::string& elf,
                                       const std::string& what);

// Builds the initramfs from the image tree (entries with content). Throws
// UserError if busybox or a module (or a dependency) is not in the tree,
// naming it and the kernel release.
Initramfs BuildInitramfs(const Tree& tree, const InitramfsOptions& options);

}  // namespace kiln
