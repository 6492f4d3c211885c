// ${VAR} substitution in template strings.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "spec/source.h"

namespace kiln {

// Replaces ${NAME} with vars[NAME]; "$${" writes a literal "${". An unknown or
// malformed reference is an error at `loc` (moved to the reference's column
// when the scalar is on one line).
std::string Substitute(std::string_view text,
                       const std::map<std::string, std::string>& vars,
                       const SourceLocation& loc);

// Resolves args whose values refer to other args; a cycle is an error naming
// the chain. `locs` holds where each arg was defined.
std::map<std::string, std::string> ResolveArgs(
    const std::map<std::string, std::string>& raw,
    const std::map<std::string, SourceLocation>& locs);

}  // namespace kiln
