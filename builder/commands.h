// One function per command: call the engine, print the result. Errors
// propagate as kiln::Error; main maps them to exit codes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "registry/client.h"

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
  bool locked = false;
};

struct RegistryArgs;
int RunBuild(const Globals& g, const BuildArgs& args,
             const RegistryArgs& registry);
int RunImages(const Globals& g);
int RunInspect(const Globals& g, const std::string& ref, bool files);
int RunDiff(const Globals& g, const std::string& a, const std::string& b);
int RunExport(const Globals& g, const std::string& ref, const std::string& dest,
              bool replace);
int RunFsck(const Globals& g);

// Registry commands (registry_commands.cc).
struct RegistryArgs {
  std::string creds;  // --creds USER:PASS (else $KILN_REGISTRY_CREDS)
  bool insecure = false;
  std::string ca_file;
  int jobs = 4;
};
RegistryOptions MakeRegistryOptions(const RegistryArgs& r);
int RunPush(const Globals& g, const RegistryArgs& r, const std::string& ref,
            const std::string& dest, const std::vector<std::string>& also_tags);
int RunPull(const Globals& g, const RegistryArgs& r, const std::string& src,
            const std::string& name);
int RunPromote(const Globals& g, const RegistryArgs& r, const std::string& ref,
               const std::string& channel);
int RunRollback(const Globals& g, const RegistryArgs& r, const std::string& ref,
                const std::string& channel);
int RunHistory(const Globals& g, const RegistryArgs& r, const std::string& ref,
               const std::string& channel);

}  // namespace kiln::cli
