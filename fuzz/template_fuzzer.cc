// Fuzzes the template loader (src/spec): the input is a kiln.yaml, loaded as
// `kiln build` loads it. A kiln::Error is the loader refusing the input; any
// other exception, a crash, a leak or a sanitizer report is a finding.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "spec/template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static kiln::fuzz::ScratchFile file("kiln.yaml");
  kiln::LoadOptions options;
  options.path = file.Write(data, size);
  // `extends: NAME` finds the checkout's stock templates.
  options.template_path = {KILN_FUZZ_TEMPLATES};
  try {
    kiln::Template t = kiln::LoadTemplate(options);
    (void)t.Tag();
  } catch (const kiln::Error&) {
  }
  return 0;
}
