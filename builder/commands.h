// One function per command: call the engine, print the result. Errors
// propagate as kiln::Error; main maps them to exit codes.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kiln::cli {

struct Globals {
  std::string store;  // --store, else Store::DefaultPath()
  bool json = false;
  bool quiet = false;
};

struct BuildArgs {
  std::string template_path;
  std::optional<std::string> context;
  std::vector<std::string> sets;
  std::optional<std::string> source_date_epoch;
  std::vector<std::string> outputs;
  std::optional<std::string> compression;
  int compression_level = 0;
  int jobs = 0;
  bool replace = false;
};

int RunBuild(const Globals& g, const BuildArgs& args);
int RunImages(const Globals& g);
int RunInspect(const Globals& g, const std::string& ref, bool files);
int RunDiff(const Globals& g, const std::string& a, const std::string& b);
int RunExport(const Globals& g, const std::string& ref, const std::string& dest,
              bool replace);
int RunFsck(const Globals& g);

}  // namespace kiln::cli
