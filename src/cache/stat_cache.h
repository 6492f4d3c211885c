// Digests of build-context files, remembered by (device, inode, size, mtime,
// ctime) so an unchanged file is not read again on the next build. A file
// changed within two seconds of being read is "racily clean" (as git says):
// with coarse timestamps a later write in the same tick leaves its stat
// unchanged, so it is read again every time until it is older. Kept in
// the store per machine (the file names the machine it was made on and is
// ignored anywhere else): a remote cache never trusts it.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "digest/digest.h"

namespace kiln {

class StatCache {
 public:
  // Loads `path` if it was written on this machine.
  explicit StatCache(std::string path);
  struct Stat {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
    bool operator==(const Stat&) const = default;
  };
  // The file's SHA-256: remembered if its stat is unchanged, else read.
  Digest DigestOf(const std::string& file);
  // The same, split for callers that already have the stat: what is
  // remembered (nullopt: read it), and reading it.
  std::optional<Digest> Lookup(const std::string& file, const Stat& s);
  Digest Hash(const std::string& file, const Stat& s);
  // Writes what is new (atomically); a no-op if nothing changed.
  void Save();
  size_t hashed() const { return hashed_; }  // files read this build

 private:
  struct Known {
    Stat stat;
    Digest digest;
    int64_t hashed_ns = 0;  // when it was read
  };
  std::string path_;
  std::string machine_;
  std::mutex mu_;
  std::unordered_map<std::string, Known> known_;
  bool dirty_ = false;
  size_t hashed_ = 0;
};

// What identifies this machine's file systems: /etc/machine-id and the boot id
// (inode numbers are only meaningful within one boot's mounts).
std::string MachineIdentity();

}  // namespace kiln
