// One function per command: call the engine, print the result. Errors
// propagate as kiln::Error; main maps them to exit codes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "registry/client.h"
#include "sign/sign.h"
#include "store/store.h"

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
  bool explain = false;    // --explain
  bool no_disk = false;    // --no-disk
  std::string sign_key;    // --sign KEY
  std::string identity;    // --identity REPO
  std::string cache_from;  // --cache-from docker://HOST/REPO
  std::string cache_to;    // --cache-to docker://HOST/REPO
};

struct RegistryArgs;
int RunBuild(const Globals& g, const BuildArgs& args,
             const RegistryArgs& registry);
int RunImages(const Globals& g);
// kiln lock (package_commands.cc).
int RunLock(const Globals& g, const BuildArgs& args);
// The template loading options a build or lock uses (--set, --context, stock
// templates).
LoadOptions MakeLoadOptions(const BuildArgs& args);
int RunInspect(const Globals& g, const std::string& ref, bool files);
// With `layers`, the manifest, config, layers (down to the first differing
// tar entry) and disk are compared too.
int RunDiff(const Globals& g, const std::string& a, const std::string& b,
            bool layers);
// The build date: --source-date-epoch, else $SOURCE_DATE_EPOCH, else 0.
int64_t BuildDate(const std::optional<std::string>& flag);
int RunExport(const Globals& g, const std::string& ref, const std::string& dest,
              bool replace);
int RunFsck(const Globals& g);
struct GcArgs {
  int keep_days = 14;
  std::string max_cache_size = "10G";
  bool dry_run = false;
};
int RunGc(const Globals& g, const GcArgs& args);

// Registry commands (registry_commands.cc).
struct RegistryArgs {
  std::string creds;  // --creds USER:PASS (else $KILN_REGISTRY_CREDS)
  bool insecure = false;
  std::string ca_file;
  int jobs = 4;
};
RegistryOptions MakeRegistryOptions(const RegistryArgs& r);
int RunPush(const Globals& g, const RegistryArgs& r, const std::string& ref,
            const std::string& dest, const std::vector<std::string>& also_tags,
            const std::string& sign_key);
int RunPull(const Globals& g, const RegistryArgs& r, const std::string& src,
            const std::string& name, const std::string& verify_key);
int RunPromote(const Globals& g, const RegistryArgs& r, const std::string& ref,
               const std::string& channel);
int RunRollback(const Globals& g, const RegistryArgs& r, const std::string& ref,
                const std::string& channel);
// Signing (sign_commands.cc).
int RunKeygen(const Globals& g, const std::string& prefix);
int RunSign(const Globals& g, const RegistryArgs& r, const std::string& ref,
            const std::string& key, const std::string& identity);
int RunVerify(const Globals& g, const RegistryArgs& r, const std::string& ref,
              const std::string& key, const std::vector<std::string>& require,
              const std::string& identity);
int RunSbom(const Globals& g, const std::string& ref,
            const std::string& format);
// Exports an image, and its signature and attestations when the destination
// can hold them (the store, oci:).
std::string ExportWithAttachments(const Store& store, const std::string& source,
                                  const Reference& dest, bool replace = false);
void SignAfterBuild(const Store& store, const std::string& reference,
                    const std::string& key, const std::string& identity);
std::vector<std::string> CarryAttachments(const Store& store,
                                          const std::string& source,
                                          RegistryClient& client,
                                          const std::string& repo,
                                          const Digest& digest);
SignResult SignInRegistry(const Store& store, RegistryClient& client,
                          const std::string& repo, const Digest& digest,
                          const std::string& key);
void VerifyInRegistry(RegistryClient& client, const std::string& repo,
                      const Digest& digest, const std::string& key);

int RunHistory(const Globals& g, const RegistryArgs& r, const std::string& ref,
               const std::string& channel);

// kiln repro (repro_commands.cc): the template's build flags, and what to
// compare with.
struct ReproArgs {
  BuildArgs build;      // template, --context, --set, --source-date-epoch
  std::string against;  // --against REF: rebuild once and compare with it
  bool keep = false;    // --keep: leave the builds' folders
};
int RunRepro(const Globals& g, const ReproArgs& args,
             const RegistryArgs& registry);

}  // namespace kiln::cli
