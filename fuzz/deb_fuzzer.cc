// Fuzzes the .deb reader (src/packages/deb.*): the input is a .deb (an ar
// archive of debian-binary, control.tar.* and data.tar.*), read in one pass
// as kiln installs packages. A kiln::Error is the reader refusing the input;
// anything else is a finding.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "packages/deb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static kiln::fuzz::ScratchFile file("fuzz.deb");
  const std::string& path = file.Write(data, size);
  try {
    kiln::DebControl control;
    kiln::fuzz::CappedSink sink;
    size_t i = 0;
    kiln::ReadDeb(path, "fuzz.deb", &control,
                  [&](const kiln::TarHeader&, kiln::TarReader& reader) {
                    if (i++ % 2 == 0) reader.CopyData(sink);
                  });
    (void)control.fields.Text();
  } catch (const kiln::Error&) {
  }
  return 0;
}
