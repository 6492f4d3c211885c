// How an image comparison (kiln diff --layers, kiln repro) reads: as text
// for people, as JSON for CI. Layers and entries are numbered from 1.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "image/compare.h"

namespace kiln::cli {

// Manifest, config, layers (the first differing entry of each with both
// values), disk; the flattened path changes too when `files`.
void PrintComparison(const ImageComparison& c, const std::string& label_a,
                     const std::string& label_b, bool files);
nlohmann::json ComparisonJson(const ImageComparison& c, bool files);
// A path change as `kiln diff` prints it: "~ /etc/motd: content (3 -> 4 bytes)"
std::string PathChangeLine(const PathChange& change);
nlohmann::json PathChangeJson(const PathChange& change);

}  // namespace kiln::cli
