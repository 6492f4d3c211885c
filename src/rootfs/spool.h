// An unlinked temporary file holding unpacked archive members, so a layer can
// be written in tree order from archives read in their own order without
// holding their contents in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/fs.h"
#include "rootfs/entry.h"

namespace kiln {

class Spool : public std::enable_shared_from_this<Spool> {
 public:
  // Creates the file in `dir` (it vanishes when the last reference goes).
  static std::shared_ptr<Spool> Create(const std::string& dir);

  // Appends what `fill` writes to its sink; returns a source for those bytes.
  // Fewer or more bytes than `expected_size` is an error naming `what`.
  std::shared_ptr<const ContentSource> Append(
      const std::function<void(ByteSink&)>& fill, uint64_t expected_size,
      const std::string& what);
  uint64_t size() const { return end_; }

 private:
  explicit Spool(UniqueFd fd) : fd_(std::move(fd)) {}
  friend class SpoolSource;

  UniqueFd fd_;
  uint64_t end_ = 0;
};

}  // namespace kiln
