// Reading a .deb (an ar archive of debian-binary, control.tar.* and
// data.tar.*) in one streaming pass with libarchive: the control member in
// memory, the data member entry by entry.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "packages/debian.h"
#include "tar/tar_reader.h"

namespace kiln {

struct DebControl {
  Paragraph fields;                  // DEBIAN/control
  std::string text;                  // the same, as written
  std::string md5sums;               // DEBIAN/md5sums, if any
  std::vector<std::string> scripts;  // maintainer scripts present (not run)
};

// `on_entry` gets each data.tar entry; it may copy the entry's data from the
// reader. Errors name `what`.
void ReadDeb(const std::string& path, const std::string& what,
             DebControl* control,
             const std::function<void(const TarHeader&, TarReader&)>& on_entry);

}  // namespace kiln
