// Fuzzes the tar reader (src/tar): the input is an archive, plain or
// compressed, read entry by entry as kiln reads tarballs and layers. A
// kiln::Error is the reader refusing the input; anything else is a finding.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "tar/tar_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bool given = false;
  try {
    auto reader = kiln::TarReader::OpenStream(
        [&](const void** out) -> long {
          if (given) return 0;
          given = true;
          *out = data;
          return static_cast<long>(size);
        },
        "fuzz input");
    kiln::TarHeader h;
    kiln::fuzz::CappedSink sink;
    // Copy every other entry's data; libarchive skips the rest, as it does
    // for entries kiln does not read.
    for (size_t i = 0; reader->Next(&h); ++i) {
      if (i % 2 == 0) reader->CopyData(sink);
    }
  } catch (const kiln::Error&) {
  }
  return 0;
}
