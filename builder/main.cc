// kiln: the command-line front end. Parses arguments, runs one command, maps
// kiln::Error kinds to exit codes (0 ok, 1 the user's input, 2 the
// environment, 3 kiln itself).
#include <CLI/CLI.hpp>
#include <clocale>
#include <csignal>
#include <cstdio>

#include "build/build.h"
#include "commands.h"
#include "core/error.h"

namespace {

int ExitCode(kiln::ErrorKind kind) {
  switch (kind) {
    case kiln::ErrorKind::kUser:
      return 1;
    case kiln::ErrorKind::kEnvironment:
      return 2;
    case kiln::ErrorKind::kInternal:
      return 3;
  }
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  // The same bytes whatever the user's locale: archive names are UTF-8.
  std::setlocale(LC_ALL, "C.UTF-8");
  // A helper or peer that goes away is an error to report, not a reason to die.
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{"kiln: reproducible machine images from YAML templates"};
  app.require_subcommand(1);
  app.footer("Example: kiln build examples/hello/kiln.yaml");
  app.set_version_flag("--version", std::string("kiln ") + kiln::kKilnVersion);
  kiln::cli::Globals g;
  app.add_option("--store", g.store,
                 "Local store directory (default: $KILN_STORE, else "
                 "~/.local/share/kiln/store)");

  std::function<int()> run;

  kiln::cli::BuildArgs b;
  kiln::cli::RegistryArgs reg;
  auto* build =
      app.add_subcommand("build", "Build a template into the local store");
  build->add_option("template", b.template_path, "Template file (kiln.yaml)")
      ->required();
  build->add_option(
      "--context", b.context,
      "Folder that files: src paths are relative to (default: the template's)");
  build->add_option("--set", b.sets,
                    "Override an arg: --set KEY=VALUE (repeatable)");
  build->add_option("--source-date-epoch", b.source_date_epoch,
                    "Build date for every mtime and `created` (default: "
                    "$SOURCE_DATE_EPOCH, else 0)");
  build->add_option(
      "--output", b.outputs,
      "Also write the image to oci:DIR[:REF], docker-archive:FILE[:NAME:TAG] "
      "rootfs:FILE.tar or disk:FILE.qcow2 (repeatable)");
  build->add_option("--compression", b.compression,
                    "Layer compression: gzip (default) or zstd");
  build->add_option("--compression-level", b.compression_level,
                    "gzip 1-12 (default 6), zstd 1-19 (default 3)");
  build->add_option(
      "--jobs", b.jobs,
      "Compression threads (default: all CPUs; the bytes do not depend on it)");
  build->add_flag("--replace", b.replace,
                  "Let NAME:VERSION move to different content (versions are "
                  "immutable otherwise)");
  build->add_option(
      "--sign", b.sign_key,
      "Sign the image (and attest SBOM and provenance) with this private key");
  build->add_option(
      "--identity", b.identity,
      "The repository the signature names (default: the image name)");
  build->add_flag("--explain", b.explain,
                  "Say for each layer whether it came from the cache, and if "
                  "not, what changed");
  build->add_flag("--no-disk", b.no_disk,
                  "Build only the OCI image, not the template's disk image");
  build->add_flag("--locked", b.locked,
                  "Build only from pins: refuse a docker:// base not pinned "
                  "by digest, and a missing or stale kiln.lock");
  build->add_option("--cache-from", b.cache_from,
                    "Reuse layers another machine built: docker://HOST/REPO "
                    "of a remote layer cache (asked on a local miss)");
  build->add_option("--cache-to", b.cache_to,
                    "Share this build's layers: push them to the remote layer "
                    "cache docker://HOST/REPO");
  build->add_option(
      "--creds", reg.creds,
      "USER:PASSWORD for the registry of a docker:// base or cache");
  build->add_flag("--insecure", reg.insecure,
                  "Allow plain HTTP and unverified TLS for a docker:// base "
                  "or cache");
  build->add_option("--ca-file", reg.ca_file,
                    "PEM bundle of CAs to trust besides the system's");
  build->add_flag("--json", g.json, "Print the result as JSON");
  build->add_flag("-q,--quiet", g.quiet, "Print only the reference and digest");
  build->footer(
      "Example: kiln build examples/hello/kiln.yaml --set GREETING=hi --output "
      "oci:out");
  build->callback(
      [&] { run = [&] { return kiln::cli::RunBuild(g, b, reg); }; });

  auto* lock = app.add_subcommand(
      "lock", "Resolve a template's Debian packages into kiln.lock");
  lock->add_option("template", b.template_path, "Template file (kiln.yaml)")
      ->required();
  lock->add_option("--set", b.sets,
                   "Override an arg: --set KEY=VALUE (repeatable)");
  lock->add_flag("--json", g.json, "Print the result as JSON");
  lock->footer(
      "Example: kiln lock templates/debian.yaml   # writes "
      "templates/debian.lock");
  lock->callback([&] { run = [&] { return kiln::cli::RunLock(g, b); }; });

  auto* images =
      app.add_subcommand("images", "List the images in the local store");
  images->add_flag("--json", g.json, "Print as JSON");
  images->footer("Example: kiln images --json");
  images->callback([&] { run = [&] { return kiln::cli::RunImages(g); }; });

  std::string ref, ref2;
  bool files = false, replace = false;
  auto* inspect = app.add_subcommand(
      "inspect", "Show an image's manifest, config and layers");
  inspect
      ->add_option("ref", ref,
                   "Image: NAME:TAG, NAME@sha256:..., oci:DIR[:REF]")
      ->required();
  inspect->add_flag("--files", files,
                    "List every path of every layer with mode, owner and size");
  inspect->add_flag("--json", g.json, "Print as JSON");
  inspect->footer("Example: kiln inspect hello:1.0.0 --files");
  inspect->callback(
      [&] { run = [&] { return kiln::cli::RunInspect(g, ref, files); }; });

  auto* diff = app.add_subcommand(
      "diff", "List paths added, removed or changed between two images");
  diff->add_option("a", ref, "First image")->required();
  diff->add_option("b", ref2, "Second image")->required();
  bool layers = false;
  diff->add_flag("--layers", layers,
                 "Also compare manifests, configs, each layer's tar entries "
                 "(the first that differs, and in what) and disk images");
  diff->add_flag("--json", g.json, "Print as JSON");
  diff->footer(
      "Example: kiln diff hello:1.0.0 hello:1.1.0\n"
      "         kiln diff hello:1.0.0 oci:out:1.0.0 --layers");
  diff->callback(
      [&] { run = [&] { return kiln::cli::RunDiff(g, ref, ref2, layers); }; });

  kiln::cli::ReproArgs rp;
  auto* repro = app.add_subcommand(
      "repro",
      "Build a template twice, each in a fresh store under other conditions "
      "(path, file order and times, time zone, locale, umask, environment, "
      "CPUs, HOME, host name, user), and check the digests agree");
  repro
      ->add_option("template", rp.build.template_path,
                   "Template file (kiln.yaml)")
      ->required();
  repro->add_option(
      "--context", rp.build.context,
      "Folder that files: src paths are relative to (default: the template's)");
  repro->add_option("--set", rp.build.sets,
                    "Override an arg: --set KEY=VALUE (repeatable)");
  repro->add_option("--source-date-epoch", rp.build.source_date_epoch,
                    "Build date of both builds (default: $SOURCE_DATE_EPOCH, "
                    "else 0)");
  repro->add_flag("--locked", rp.build.locked,
                  "Build only from pins (as kiln build --locked)");
  repro->add_option("--against", rp.against,
                    "Rebuild once and compare with this image instead: "
                    "NAME:TAG, oci:DIR[:REF] or docker://HOST/REPO[:TAG]");
  repro->add_flag("--keep", rp.keep,
                  "Keep the builds' folders (stores, source copies, logs)");
  repro->add_option(
      "--creds", reg.creds,
      "USER:PASSWORD for the registry of a docker:// base or --against");
  repro->add_flag("--insecure", reg.insecure,
                  "Allow plain HTTP and unverified TLS for registries");
  repro->add_option("--ca-file", reg.ca_file,
                    "PEM bundle of CAs to trust besides the system's");
  repro->add_flag("--json", g.json, "Print the result as JSON");
  repro->add_flag("-q,--quiet", g.quiet, "Print only the result");
  repro->footer(
      "Example: kiln repro examples/hello/kiln.yaml\n"
      "         kiln repro examples/hello/kiln.yaml --against "
      "docker://registry.example.com/team/hello:1.0.0\n"
      "Exit codes: 0 reproducible, 1 not (the report says where the images "
      "differ), or what a failed build exited with.");
  repro->callback(
      [&] { run = [&] { return kiln::cli::RunRepro(g, rp, reg); }; });

  auto* exp =
      app.add_subcommand("export", "Write an image to another reference");
  exp->add_option("ref", ref, "Image to export")->required();
  exp->add_option("dest", ref2,
                  "oci:DIR[:REF], docker-archive:FILE[:NAME:TAG], "
                  "rootfs:FILE.tar, disk:FILE.qcow2|.raw (the image's disk "
                  "image) or NAME:TAG")
      ->required();
  exp->add_flag("--replace", replace,
                "Let a store NAME:TAG move to this image");
  exp->add_flag("--json", g.json, "Print as JSON");
  exp->footer(
      "Example: kiln export hello:1.0.0 docker-archive:hello.tar && docker "
      "load -i hello.tar");
  exp->callback([&] {
    run = [&] { return kiln::cli::RunExport(g, ref, ref2, replace); };
  });

  auto* store = app.add_subcommand("store", "Look after the local store");
  store->require_subcommand(1);
  auto* fsck = store->add_subcommand(
      "fsck", "Re-hash every blob; report corrupt and missing ones");
  fsck->add_flag("--json", g.json, "Print as JSON");
  fsck->footer("Example: kiln store fsck");
  fsck->callback([&] { run = [&] { return kiln::cli::RunFsck(g); }; });
  kiln::cli::GcArgs gc_args;
  auto* gc = store->add_subcommand(
      "gc",
      "Remove blobs no image needs, and cache entries unused for a while or "
      "over the cache's size cap (least recently used first)");
  gc->add_option("--keep-days", gc_args.keep_days,
                 "Keep cache entries, .debs and indexes used in the last N "
                 "days (default 14)");
  gc->add_option("--max-cache-size", gc_args.max_cache_size,
                 "The layer cache's size cap, e.g. 10G (default), 512M");
  gc->add_flag("--dry-run", gc_args.dry_run,
               "Report what would be removed; remove nothing");
  gc->add_flag("--json", g.json, "Print as JSON");
  gc->footer("Example: kiln store gc --keep-days 7 --max-cache-size 20G");
  gc->callback([&] { run = [&] { return kiln::cli::RunGc(g, gc_args); }; });

  auto registry_flags = [&](CLI::App* cmd) {
    cmd->add_option("--creds", reg.creds,
                    "USER:PASSWORD for the registry (default: "
                    "$KILN_REGISTRY_CREDS, docker config)");
    cmd->add_flag("--insecure", reg.insecure,
                  "Allow plain HTTP and unverified TLS (never for production)");
    cmd->add_option("--ca-file", reg.ca_file,
                    "PEM bundle of CAs to trust besides the system's");
    cmd->add_flag("--json", g.json, "Print the result as JSON");
  };
  std::vector<std::string> also_tags;
  std::string sign_key, verify_key;
  auto* push = app.add_subcommand(
      "push", "Publish an image to a registry (versions are immutable)");
  push->add_option("ref", ref, "Image in the store (NAME:TAG) or oci:DIR[:REF]")
      ->required();
  push->add_option(
          "dest", ref2,
          "docker://HOST[:PORT]/REPO[:TAG] (the tag defaults to the image's)")
      ->required();
  push->add_option("--also-tag", also_tags,
                   "Floating tags that follow this push, e.g. 1.4,1,latest")
      ->delimiter(',');
  push->add_option("--jobs", reg.jobs, "Blobs in flight (default 4)");
  push->add_option(
      "--sign", sign_key,
      "Sign the image for its new repository with this private key");
  push->add_flag("-q,--quiet", g.quiet,
                 "Print only the destination and digest");
  registry_flags(push);
  push->footer(
      "Example: kiln push hello:1.0.0 docker://registry.example.com/team/hello "
      "--also-tag latest");
  push->callback([&] {
    run = [&] {
      return kiln::cli::RunPush(g, reg, ref, ref2, also_tags, sign_key);
    };
  });

  auto* pull = app.add_subcommand(
      "pull", "Fetch an image (or index) from a registry into the store");
  pull->add_option("src", ref, "docker://HOST[:PORT]/REPO[:TAG|@DIGEST]")
      ->required();
  pull->add_option("name", ref2, "Local NAME:TAG (default: REPO:TAG)");
  pull->add_option("--jobs", reg.jobs, "Blobs in flight (default 4)");
  pull->add_option(
      "--verify-key", verify_key,
      "Store the image only if its signature verifies with this public key");
  pull->add_flag("-q,--quiet", g.quiet, "Print only the name and digest");
  registry_flags(pull);
  pull->footer("Example: kiln pull docker://localhost:5000/hello:1.0.0");
  pull->callback([&] {
    run = [&] { return kiln::cli::RunPull(g, reg, ref, ref2, verify_key); };
  });

  std::string key, identity, format = "spdx";
  std::vector<std::string> require;
  auto* keygen = app.add_subcommand(
      "keygen", "Make an ECDSA P-256 key pair for signing (PEM)");
  std::string prefix = "kiln";
  keygen->add_option("--out", prefix,
                     "Write PREFIX.key (0600) and PREFIX.pub (default: kiln)");
  keygen->add_flag("--json", g.json, "Print as JSON");
  keygen->footer(
      "Example: KILN_PASSWORD=... kiln keygen --out release   # encrypted with "
      "the passphrase");
  keygen->callback(
      [&] { run = [&] { return kiln::cli::RunKeygen(g, prefix); }; });

  auto* sign = app.add_subcommand(
      "sign",
      "Sign an image (cosign format) and attest its SBOM and provenance");
  sign->add_option(
          "ref", ref,
          "NAME:TAG, oci:DIR[:REF] or docker://HOST/REPO[:TAG|@DIGEST]")
      ->required();
  sign->add_option(
          "--key", key,
          "Private key (PEM; passphrase from $KILN_PASSWORD or the terminal)")
      ->required();
  sign->add_option(
      "--identity", identity,
      "Repository the signature names (default: where the image is)");
  registry_flags(sign);
  sign->footer(
      "Example: kiln sign docker://reg.example.com/team/hello:1.0.0 --key "
      "release.key");
  sign->callback([&] {
    run = [&] { return kiln::cli::RunSign(g, reg, ref, key, identity); };
  });

  auto* verify = app.add_subcommand(
      "verify",
      "Check an image's signature and attestations with a public key");
  verify
      ->add_option(
          "ref", ref,
          "NAME:TAG, oci:DIR[:REF] or docker://HOST/REPO[:TAG|@DIGEST]")
      ->required();
  verify->add_option("--key", key, "Public key (PEM)")->required();
  verify
      ->add_option("--require", require,
                   "Attestations that must verify too: sbom, spdx, cyclonedx, "
                   "provenance")
      ->delimiter(',');
  verify->add_option("--identity", identity,
                     "The repository the signature must name");
  registry_flags(verify);
  verify->footer(
      "Example: kiln verify docker://reg.example.com/team/hello:1.0.0 --key "
      "release.pub --require sbom,provenance");
  verify->callback([&] {
    run = [&] {
      return kiln::cli::RunVerify(g, reg, ref, key, require, identity);
    };
  });

  auto* sbom = app.add_subcommand(
      "sbom", "Print an image's SBOM (SPDX 2.3 or CycloneDX 1.5 JSON)");
  sbom->add_option("ref", ref, "NAME:TAG or oci:DIR[:REF]")->required();
  sbom->add_option("--format", format, "spdx (default) or cyclonedx");
  sbom->add_flag("--json", g.json, "Compact JSON on one line");
  sbom->footer("Example: kiln sbom hello:1.0.0 --format cyclonedx");
  sbom->callback(
      [&] { run = [&] { return kiln::cli::RunSbom(g, ref, format); }; });

  std::string channel;
  auto* promote = app.add_subcommand(
      "promote", "Point a channel tag (stable, canary...) at an image");
  promote
      ->add_option(
          "ref", ref,
          "docker://HOST/REPO@sha256:... or docker://HOST/REPO:VERSION")
      ->required();
  promote->add_option("--channel", channel, "Channel tag to move")->required();
  registry_flags(promote);
  promote->footer(
      "Example: kiln promote docker://reg.example.com/app:1.4.2 --channel "
      "stable");
  promote->callback([&] {
    run = [&] { return kiln::cli::RunPromote(g, reg, ref, channel); };
  });

  auto* rollback = app.add_subcommand(
      "rollback", "Point a channel back at the image it held before");
  rollback->add_option("ref", ref, "docker://HOST/REPO")->required();
  rollback->add_option("--channel", channel, "Channel tag to move back")
      ->required();
  registry_flags(rollback);
  rollback->footer(
      "Example: kiln rollback docker://reg.example.com/app --channel stable");
  rollback->callback([&] {
    run = [&] { return kiln::cli::RunRollback(g, reg, ref, channel); };
  });

  auto* history = app.add_subcommand(
      "history", "List a channel's moves (kept in the registry)");
  history->add_option("ref", ref, "docker://HOST/REPO")->required();
  history->add_option("--channel", channel, "Channel tag")->required();
  registry_flags(history);
  history->footer(
      "Example: kiln history docker://reg.example.com/app --channel stable");
  history->callback([&] {
    run = [&] { return kiln::cli::RunHistory(g, reg, ref, channel); };
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 1;
  }
  try {
    return run();
  } catch (const kiln::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "kiln: error: %s\n", e.message().c_str());
    return ExitCode(e.kind());
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "kiln: internal error: %s\n", e.what());
    return 3;
  }
}
