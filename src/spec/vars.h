// ${VAR} substitution in template strings.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "spec/source.h"

namespace kiln {

// The most one template value, or all of one template's values together,
// may grow to through ${VAR} substitution and YAML aliases.
inline constexpr size_t kMaxValueBytes = 32 << 20;

// Replaces ${NAME} with vars[NAME]; "$${" writes a literal "${". An unknown or
// malformed reference is an error at `loc` (moved to the reference's column
// when the scalar is on one line), and so is a result past kMaxValueBytes.
std::string Substitute(std::string_view text,
                       const std::map<std::string, std::string>& vars,
                       const SourceLocation& loc);

// Resolves args whose values refer to other args; a cycle is an error naming
// the chain. `locs` holds where each arg was defined.
std::map<std::string, std::string> ResolveArgs(
    const std::map<std::string, std::string>& raw,
    const std::map<std::string, SourceLocation>& locs);

}  // namespace kiln
