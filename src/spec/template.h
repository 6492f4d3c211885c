// A kiln template (apiVersion kiln.dev/v1) as plain structs. Every value that a
// later stage may reject keeps its SourceLocation, so planning errors point at
// the template line too. Strings are already ${VAR}-substituted.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "spec/source.h"

namespace kiln {

inline constexpr char kApiVersion[] = "kiln.dev/v1";

// Locations of an entry's fields (pointing at the values), by key.
struct FieldLocations {
  SourceLocation entry;  // the entry (map) itself
  std::map<std::string, SourceLocation> fields;
  const SourceLocation& At(const std::string& key) const;
};

// "uid:gid", "uid", "user", "user:group": numbers, or names from accounts.
struct OwnerSpec {
  std::string text;
  SourceLocation loc;
};

// Copies a context file or directory tree, or writes inline content.
struct FileSpec {
  std::optional<std::string> src;      // relative to context_dir
  std::optional<std::string> content;  // inline bytes
  std::string dest;                    // normalised image path
  bool into_dir = false;         // dest ended in '/': a file goes inside it
  std::optional<uint32_t> mode;  // files; default: 0755 if executable else 0644
  std::optional<uint32_t>
      dir_mode;  // directories of a copied tree; default 0755
  std::optional<OwnerSpec> owner;
  std::string context_dir;  // absolute; the folder `src` is relative to
  FieldLocations locs;
};

struct DirSpec {
  std::string path;
  std::optional<uint32_t> mode;  // default 0755
  std::optional<OwnerSpec> owner;
  FieldLocations locs;
};

struct SymlinkSpec {
  std::string path;
  std::string target;  // kept verbatim: symlink targets are data
  std::optional<OwnerSpec> owner;
  FieldLocations locs;
};

struct HardlinkSpec {
  std::string path;
  std::string target;  // normalised image path of a file in the same layer
  FieldLocations locs;
};

enum class DeviceType { kChar, kBlock, kFifo };

struct DeviceSpec {
  std::string path;
  DeviceType type = DeviceType::kChar;
  uint32_t major = 0;
  uint32_t minor = 0;
  std::optional<uint32_t> mode;  // default 0666 for char/fifo, 0660 for block
  std::optional<OwnerSpec> owner;
  FieldLocations locs;
};

// A tar archive (plain, gzip, xz, bzip2 or zstd) unpacked into the layer.
struct TarballSpec {
  std::string src;     // relative to context_dir
  std::string sha256;  // hex of the archive file as stored
  std::string dest;    // normalised image path the entries go under ("" = /)
  bool allow_devices = false;  // device nodes are refused unless declared
  bool allow_setuid = false;   // so are setuid and setgid files
  // What its files may unpack to; default 100 times the archive, at least
  // 1 GB (a decompression bomb is refused, not unpacked).
  std::optional<uint64_t> max_unpacked_size;
  std::string context_dir;
  FieldLocations locs;
};

// A Debian package the lock chose, downloaded and verified.
struct PackageSpec {
  std::string name, version, architecture;
  std::string deb;     // local path of the verified .deb
  std::string sha256;  // hex
  std::string url;     // where it was fetched from (for the SBOM)
  SourceLocation loc;  // the include that brings it
  // Paths the package gives up to another that Replaces it (dpkg's rule).
  std::set<std::string> handed_over;
};

struct RemoveSpec {
  std::string path;  // normalised; becomes an OCI whiteout
  SourceLocation loc;
};

struct LayerSpec {
  std::string name;
  std::vector<FileSpec> files;
  std::vector<DirSpec> dirs;
  std::vector<SymlinkSpec> symlinks;
  std::vector<HardlinkSpec> hardlinks;
  std::vector<DeviceSpec> devices;
  std::vector<TarballSpec> tarballs;
  std::vector<PackageSpec> packages;  // filled by the build from kiln.lock
  std::vector<RemoveSpec> remove;
  FieldLocations locs;
};

struct GroupSpec {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
  FieldLocations locs;
};

struct UserSpec {
  std::string name;
  uint32_t uid = 0;
  std::optional<uint32_t>
      gid;            // default: the group named like the user, else uid
  std::string home;   // default /home/NAME (/root for uid 0)
  std::string shell;  // default /sbin/nologin
  std::string gecos;
  std::vector<std::string> groups;  // supplementary groups, by name
  bool create_home = true;
  FieldLocations locs;
};

struct AccountsSpec {
  std::vector<GroupSpec> groups;
  std::vector<UserSpec> users;
  bool empty() const { return groups.empty() && users.empty(); }
};

// The image's runtime configuration; unset fields inherit from the base.
struct ConfigSpec {
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::map<std::string, std::string> env;
  std::optional<std::string> workdir;
  std::optional<std::string> user;
  std::map<std::string, std::string> labels;
  std::vector<std::string> exposed_ports;  // "8080/tcp"
  std::vector<std::string> volumes;
  std::optional<std::string> stop_signal;
  FieldLocations locs;
};

// Debian packages: where they come from, which ones, how they are layered.
struct RepositorySpec {
  std::string name;  // how the lock file names it
  std::string url;   // the archive root, e.g. http://deb.debian.org/debian
  std::string suite;
  std::vector<std::string> components;
  std::string architecture;        // default: the platform's
  std::string keyring;             // absolute path of the OpenPGP keyring
  std::string keyring_as_written;  // as the template has it (for the lock)
  FieldLocations locs;
};

struct PackageIncludeSpec {
  std::string name;
  std::string version;  // "" = the newest
  SourceLocation loc;
};

enum class PackageLayering { kSingle, kPerPackage, kGrouped };

struct PackagesSpec {
  std::vector<RepositorySpec> repositories;
  std::vector<PackageIncludeSpec> include;
  std::vector<std::string> exclude;
  // Left out even where others depend on them (a static base keeps
  // ca-certificates' data without its openssl dependency, as distroless).
  std::vector<std::string> prune;
  PackageLayering layering = PackageLayering::kSingle;
  int max_layers = 0;  // kGrouped
  FieldLocations locs;
  bool empty() const { return include.empty(); }
};

// A bootable (or data) disk image made from the image's flattened tree.
enum class DiskFormat { kRaw, kQcow2 };
enum class DiskFilesystem { kExt4, kErofs, kSquashfs };
enum class DiskBoot { kSystemdBoot, kNone };
const char* DiskFormatName(DiskFormat f);
const char* DiskFilesystemName(DiskFilesystem f);
const char* DiskBootName(DiskBoot b);

struct DiskSpec {
  DiskFormat format = DiskFormat::kRaw;
  uint64_t size = 0;      // bytes, a multiple of 1 MiB; 0: fit the content
  uint64_t esp_size = 0;  // bytes; 0: fit the boot files
  DiskFilesystem filesystem = DiskFilesystem::kExt4;
  DiskBoot boot = DiskBoot::kSystemdBoot;
  std::string kernel;   // image path; "": the only boot/vmlinuz-*
  std::string cmdline;  // kiln adds root=, rootfstype= and ro
  // Modules the initramfs loads besides the root file system's; nullopt:
  // the virtio ones (virtio_pci, virtio_blk, virtio_scsi, sd_mod) that the
  // kernel has.
  std::optional<std::vector<std::string>> modules;
  std::string busybox = "bin/busybox";  // image path, the initramfs' /init
  std::string bootloader = "usr/lib/systemd/boot/efi/systemd-bootx64.efi";
  FieldLocations locs;
};

struct Platform {
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;
  std::string ToString() const;
};

enum class Compression { kGzip, kZstd };
const char* CompressionName(Compression c);
// "gzip" or "zstd"; false on anything else.
bool ParseCompression(std::string_view name, Compression* out);

struct Template {
  std::string name;
  std::string version;  // semver
  std::string base = "scratch";
  Platform platform;
  Compression compression = Compression::kGzip;
  std::map<std::string, std::string> args;  // final values, after --set
  PackagesSpec packages;  // their layers come first, below the template's own
  std::vector<LayerSpec> layers;
  AccountsSpec accounts;
  ConfigSpec config;
  std::map<std::string, std::string> annotations;
  // Floating tags `kiln push` adds beside the version ("1.4", "latest").
  std::vector<std::string> publish_tags;
  std::optional<DiskSpec> disk;
  // The files read, the template first, then what it extends (for provenance).
  std::vector<std::string> sources;
  // The same files for provenance: as named (no host path), and their SHA-256.
  struct SourceRef {
    std::string name;
    std::string sha256;
  };
  std::vector<SourceRef> source_refs;
  std::vector<std::pair<std::string, std::string>>
      sets;  // the --set values given
  std::string
      dir;  // absolute folder of the template file: relative bases resolve here
  FieldLocations locs;

  // The version as an image tag: semver's '+' is not allowed in tags, so "_".
  std::string Tag() const;
  std::string Reference() const { return name + ":" + Tag(); }
};

struct LoadOptions {
  std::string path;                                       // the template file
  std::optional<std::string> context;                     // default: its folder
  std::vector<std::pair<std::string, std::string>> sets;  // --set KEY=VALUE
  // Folders searched for stock templates named in `extends:` without a path.
  std::vector<std::string> template_path;
};

// Reads, extends, substitutes and validates a template. Throws UserError
// pointing at file:line:col.
Template LoadTemplate(const LoadOptions& options);

// Semantic version 2.0.0 check.
bool IsSemver(std::string_view version);
// OCI distribution repository name ("acme/hello"), and tag grammar.
bool IsRepositoryName(std::string_view name);
bool IsTag(std::string_view tag);
// Parses "linux/amd64[/variant]"; false with `why` on unknown values.
bool ParsePlatform(std::string_view text, Platform* out, std::string* why);

}  // namespace kiln
