// Debian's formats: version ordering (dpkg's rules), RFC 822-style control
// paragraphs, and dependency fields ("a (>= 1.2) | b, c:any").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln {

// dpkg --compare-versions: <0, 0, >0. Epochs, upstream versions and
// revisions compared with "~" sorting before everything, even the end.
int CompareDebianVersions(std::string_view a, std::string_view b);
bool IsDebianVersion(std::string_view v);

// One paragraph of a control file; field names compare case-insensitively.
class Paragraph {
 public:
  void Set(std::string name, std::string value);
  // The value ("" if absent); continuation lines joined with '\n'.
  const std::string& Get(std::string_view name) const;
  bool Has(std::string_view name) const;
  // The paragraph as text, fields in their original order.
  std::string Text() const;
  const std::vector<std::pair<std::string, std::string>>& fields() const {
    return fields_;
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// Splits control text into paragraphs. `what` names the source in errors.
std::vector<Paragraph> ParseControl(std::string_view text,
                                    const std::string& what);
// Calls fn for each paragraph without keeping them all (Packages indexes).
template <typename Fn>
void ForEachParagraph(std::string_view text, const std::string& what, Fn&& fn);

enum class Relation {
  kAny,
  kLess,
  kLessEqual,
  kEqual,
  kGreaterEqual,
  kGreater
};
struct Dependency {
  std::string name;  // without an architecture qualifier
  std::string arch;  // "any", "amd64"... or ""
  Relation relation = Relation::kAny;
  std::string version;  // when relation != kAny
  std::string ToString() const;
  bool Allows(std::string_view version) const;
};
// "a (>= 1) | b" -> one group of alternatives; the field -> groups.
using Alternatives = std::vector<Dependency>;
std::vector<Alternatives> ParseDependencies(std::string_view field,
                                            const std::string& what);

// The licences a machine-readable (DEP-5) copyright file names, as an SPDX
// expression where kiln knows the SPDX identifiers ("GPL-2.0-or-later AND
// MIT"); "NOASSERTION" otherwise.
std::string LicenseOf(std::string_view copyright);

}  // namespace kiln

#include "packages/debian_inl.h"
