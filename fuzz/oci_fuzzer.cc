// Fuzzes the OCI model's parsers (src/oci/model.cc): the input is parsed as a
// manifest, an index and an image config, as kiln reads them from stores and
// registries. A kiln::Error is the parser refusing the input; anything else is
// a finding, and so is a document that kiln would write differently each time
// it reads back what it wrote (canonical JSON must be a fixed point).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "core/error.h"
#include "oci/model.h"

namespace {

// Parses `bytes` as a T; if it parses, checks that writing, reading and
// writing again gives the same bytes.
template <typename T>
void RoundTrip(std::string_view bytes, const char* what) {
  std::string once;
  try {
    once = kiln::CanonicalJson(T::Parse(bytes, what).ToJson());
  } catch (const kiln::Error&) {
    return;
  }
  std::string twice = kiln::CanonicalJson(T::Parse(once, what).ToJson());
  if (once != twice) {
    std::fprintf(stderr, "%s: not a fixed point:\n%s\n%s\n", what, once.c_str(),
                 twice.c_str());
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  RoundTrip<kiln::Manifest>(bytes, "manifest");
  RoundTrip<kiln::Index>(bytes, "index");
  RoundTrip<kiln::ImageConfig>(bytes, "config");
  return 0;
}
