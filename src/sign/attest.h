// What kiln attests about an image, as in-toto statements: an SBOM in SPDX 2.3
// and in CycloneDX 1.5 (every regular file of the flattened image with its
// SHA-256, the image, its base, the templates and input archives with their
// checksums) and SLSA provenance v1 (the builder, the templates by digest,
// the parameters, the resolved inputs). Derived from the image and its build
// record only: no wall-clock time, hostname, random id or host path, so the
// same build gives byte-identical statements.
#pragma once

#include <string>
#include <vector>

#include "build/record.h"
#include "image/image.h"

namespace kiln {

inline constexpr char kSpdxPredicate[] = "https://spdx.dev/Document";
inline constexpr char kCycloneDxPredicate[] = "https://cyclonedx.org/bom";
inline constexpr char kSlsaPredicate[] = "https://slsa.dev/provenance/v1";

struct SbomInputs {
  const Image* image = nullptr;
  const Tree* files = nullptr;          // flattened, with sha256, sha1, layer
  const BuildRecord* record = nullptr;  // null for an image built elsewhere
  std::string name;                     // the image's name, for the documents
};

// The documents themselves (canonical JSON).
std::string SpdxDocument(const SbomInputs& in);
std::string CycloneDxDocument(const SbomInputs& in);
std::string ProvenancePredicate(const BuildRecord& record);

// An in-toto Statement v1 about one image (and what was made of it: its
// disk image is a second subject of the same statements).
std::string Statement(const std::string& subject_name, const Digest& subject,
                      const std::string& predicate_type,
                      const std::string& predicate_json,
                      const std::vector<Digest>& also = {});

struct StatementSet {
  std::vector<std::pair<std::string, std::string>>
      statements;  // predicate type -> statement JSON
};
// SPDX, CycloneDX and (with a record) provenance statements for an image,
// and for `also` (its disk image's artifact), which has the same content.
// Reads the image's layers once to hash every file.
StatementSet MakeStatements(const Image& image, const BuildRecord* record,
                            const std::string& subject_name,
                            const std::vector<Digest>& also = {});

}  // namespace kiln
