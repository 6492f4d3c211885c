// keygen, sign, verify, sbom, and the signing done by build, push and pull.
#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "build/record.h"
#include "commands.h"
#include "core/fs.h"
#include "core/strings.h"
#include "disk/artifact.h"
#include "image/export.h"
#include "image/image.h"
#include "sign/attest.h"
#include "sign/sign.h"
#include "store/store.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

// The passphrase: $KILN_PASSWORD if set (empty: none), else asked on the
// terminal, else none. Never echoed, never printed.
std::optional<std::string> Passphrase(const char* prompt, bool confirm) {
  if (const char* env = std::getenv("KILN_PASSWORD")) {
    if (!*env) return std::nullopt;
    return std::string(env);
  }
  int tty = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (tty < 0 || !isatty(STDIN_FILENO)) {
    if (tty >= 0) ::close(tty);
    return std::nullopt;
  }
  UniqueFd owned(tty);
  auto ask = [&](const char* text) {
    WriteAll(tty, text, strlen(text), "/dev/tty");
    termios old{}, quiet{};
    tcgetattr(tty, &old);
    quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(tty, TCSAFLUSH, &quiet);
    std::string line;
    char c;
    while (::read(tty, &c, 1) == 1 && c != '\n') line += c;
    tcsetattr(tty, TCSAFLUSH, &old);
    WriteAll(tty, "\n", 1, "/dev/tty");
    return line;
  };
  std::string first = ask(prompt);
  if (confirm && ask("Again: ") != first)
    throw UserError("the passphrases differ");
  if (first.empty()) return std::nullopt;
  return first;
}

Store OpenStore(const Globals& g) {
  return Store::Open(g.store.empty() ? Store::DefaultPath() : g.store);
}

std::unique_ptr<Signer> LoadKey(const std::string& path) {
  std::string pem = ReadFile(path, 1 << 20);
  return LoadSigner(pem, path, [] {
    auto p = Passphrase("Passphrase for the signing key: ", false);
    return p ? *p : std::string();
  });
}

// The build record the store keeps for an image, if it was built here.
std::optional<BuildRecord> RecordOf(const Store& store, const Digest& digest) {
  for (const auto& s : store.List()) {
    auto it = s.manifest.annotations.find(kBuildRecordAnnotation);
    if (s.manifest.digest != digest || it == s.manifest.annotations.end())
      continue;
    Descriptor d{kBuildRecordMediaType, Digest::Parse(it->second), 0, "", {},
                 std::nullopt};
    std::string path = store.layout().BlobPath(d.digest);
    if (!PathExists(path)) continue;
    return BuildRecord::Parse(ReadFile(path, 16 << 20),
                              "build record of " + s.name);
  }
  return std::nullopt;
}

// An image wherever it is, with where its attachments go.
struct Target {
  Digest digest;
  std::string identity;  // the default docker-reference
  std::unique_ptr<RegistryClient> client;
  std::unique_ptr<AttachmentStore> attachments;
  std::optional<Image> image;  // store and oci: images (for attestations)
  RegistryClient* registry = nullptr;  // `client`, or a caller's
  std::string repo;                    // in a registry
  std::optional<Layout> layout;        // in the store or an oci: layout
};

// The disk image beside `image` in a registry, if there is one; one made
// from another image (moved under this image's tag) is refused.
std::optional<Digest> DiskInRegistry(RegistryClient& client,
                                     const std::string& repo,
                                     const Digest& image) {
  std::string tag = DiskTag(image);
  auto m = client.GetManifest(repo, tag);
  if (!m) return std::nullopt;
  std::string what = "docker://" + client.host() + "/" + repo + ":" + tag;
  CheckDiskManifest(Manifest::Parse(m->bytes, what), what, image);
  return m->digest;
}

// The disk image made from the target's image, if it is beside it: signed,
// attested and verified with the image.
std::optional<Digest> DiskOf(const Target& t) {
  if (t.registry) return DiskInRegistry(*t.registry, t.repo, t.digest);
  if (t.layout) {
    if (auto disk = FindDisk(*t.layout, t.digest))
      return disk->descriptor.digest;
  }
  return std::nullopt;
}

Target Resolve(const Store& store, const RegistryArgs& r,
               const std::string& text) {
  Reference ref = ParseReference(text);
  Target t;
  if (ref.kind == Reference::Kind::kRegistry) {
    t.client =
        std::make_unique<RegistryClient>(ref.registry, MakeRegistryOptions(r));
    if (ref.digest) {
      t.digest = *ref.digest;
    } else {
      auto d = t.client->ManifestDigest(ref.name,
                                        ref.tag.empty() ? "latest" : ref.tag);
      if (!d) throw UserError(text + ": no such image in the registry");
      t.digest = *d;
    }
    t.identity = ref.registry + "/" + ref.name;
    t.attachments = RegistryAttachments(*t.client, ref.name);
    t.repo = ref.name;
    t.registry = t.client.get();
    return t;
  }
  Located at = Locate(ref, store);
  t.digest = at.descriptor.digest;
  // By default a signature names the image's repository: its NAME, or for
  // an oci: layout the folder's name.
  t.identity =
      !at.name.empty()
          ? at.name
          : Basename(AbsolutePath(ref.path.empty() ? "image" : ref.path));
  bool is_store = ref.kind == Reference::Kind::kStore;
  t.attachments = LayoutAttachments(at.layout, at.name, is_store);
  t.layout = at.layout;
  if (IsManifestType(at.descriptor.media_type)) t.image = OpenImage(ref, store);
  return t;
}

// The statements to attest for an image built in this store.
std::vector<std::pair<std::string, std::string>> StatementsFor(
    const Store& store, const Target& t, const std::string& identity,
    const std::optional<Digest>& disk) {
  std::optional<BuildRecord> record = RecordOf(store, t.digest);
  std::optional<Image> image = t.image;
  if (!image && record)
    image = OpenImage(ParseReference("x@" + t.digest.ToString()), store);
  // Without a build record kiln can still say what the image holds (the
  // SBOMs), but not how it was made (no provenance).
  if (!image) return {};
  std::vector<Digest> also;
  if (disk) also.push_back(*disk);
  return MakeStatements(*image, record ? &*record : nullptr, identity, also)
      .statements;
}

// Signs the target's image and, if it has one, its disk image, with the same
// statements (whose subjects name both).
struct Signed {
  SignResult image;
  std::optional<Digest> disk;
  std::optional<SignResult> disk_result;
};
Signed SignTarget(const Store& store, Target& t, AttachmentStore& where,
                  const std::string& identity, const Signer& signer,
                  bool attest) {
  Signed out;
  out.disk = DiskOf(t);
  std::vector<std::pair<std::string, std::string>> statements;
  if (attest) statements = StatementsFor(store, t, identity, out.disk);
  out.image = SignImage(where, t.digest, identity, signer, statements);
  if (out.disk)
    out.disk_result = SignImage(where, *out.disk, identity, signer, statements);
  return out;
}

void PrintSign(const Globals& g, const std::string& what, const Signed& s) {
  const SignResult& r = s.image;
  if (g.json) {
    json j = {{"image", what},
              {"identity", r.identity},
              {"signature", r.signature_tag},
              {"attestations", r.attestations}};
    if (s.disk) {
      j["disk"] = {{"digest", s.disk->ToString()},
                   {"signature", s.disk_result->signature_tag},
                   {"attestations", s.disk_result->attestations}};
    }
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("signed %s for %s (%s%s)\n", what.c_str(), r.identity.c_str(),
              r.signature_tag.c_str(),
              r.attestations.empty()
                  ? ""
                  : (", attestations: " + Join(r.attestations, ", ")).c_str());
  if (s.disk) {
    std::printf("signed its disk image %s (%s)\n", s.disk->ToString().c_str(),
                s.disk_result->signature_tag.c_str());
  }
}

}  // namespace

int RunKeygen(const Globals& g, const std::string& prefix) {
  std::string key = prefix + ".key", pub = prefix + ".pub";
  for (const auto& p : {key, pub}) {
    if (PathExists(p))
      throw UserError(p + " exists; kiln keygen never overwrites a key");
  }
  KeyPair pair = GenerateKeyPair(
      Passphrase("Passphrase for the new key (empty for none): ", true));
  // The private key is created 0600 from the start, never readable by others.
  int fd = ::open(key.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw SystemError("creating " + key, errno);
  {
    UniqueFd owned(fd);
    ::fchmod(fd, 0600);
    WriteAll(fd, pair.private_pem.data(), pair.private_pem.size(), key);
    if (::fsync(fd) != 0) throw SystemError("fsync " + key, errno);
  }
  fd = ::open(pub.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    ::unlink(key.c_str());
    throw SystemError("creating " + pub, errno);
  }
  UniqueFd owned(fd);
  WriteAll(fd, pair.public_pem.data(), pair.public_pem.size(), pub);
  std::string fingerprint =
      Verifier::FromPem(pair.public_pem, pub).Fingerprint();
  if (g.json) {
    std::printf("%s\n", json({{"privateKey", key},
                              {"publicKey", pub},
                              {"fingerprint", fingerprint}})
                            .dump(2)
                            .c_str());
  } else {
    std::printf("%s %s (key %s)\n", key.c_str(), pub.c_str(),
                fingerprint.substr(0, 12).c_str());
  }
  return 0;
}

int RunSign(const Globals& g, const RegistryArgs& r, const std::string& ref,
            const std::string& key, const std::string& identity) {
  Store store = OpenStore(g);
  auto signer = LoadKey(key);
  Target t = Resolve(store, r, ref);
  std::string id = identity.empty() ? t.identity : identity;
  Signed result = SignTarget(store, t, *t.attachments, id, *signer, true);
  PrintSign(g, ref + "@" + t.digest.ToString(), result);
  return 0;
}

int RunVerify(const Globals& g, const RegistryArgs& r, const std::string& ref,
              const std::string& key, const std::vector<std::string>& require,
              const std::string& identity) {
  Store store = OpenStore(g);
  Verifier verifier = Verifier::FromPem(ReadFile(key, 1 << 20), key);
  Target t = Resolve(store, r, ref);
  VerifyOptions o;
  o.require = require;
  if (!identity.empty()) o.identity = identity;
  VerifyResult v = VerifyImage(*t.attachments, t.digest, verifier, o);
  // The disk image beside it must hold up as well as the image.
  std::optional<Digest> disk = DiskOf(t);
  std::optional<VerifyResult> dv;
  if (disk) {
    dv = WithContext("its disk image", [&] {
      return VerifyImage(*t.attachments, *disk, verifier, o);
    });
  }
  if (g.json) {
    json j = {{"image", ref},
              {"digest", t.digest.ToString()},
              {"verified", true},
              {"signatures", v.signatures},
              {"identity", v.identity},
              {"attestations", v.attestations},
              {"key", verifier.Fingerprint()}};
    if (disk) {
      j["disk"] = {{"digest", disk->ToString()},
                   {"signatures", dv->signatures},
                   {"attestations", dv->attestations}};
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf(
        "verified %s: signed by key %s for %s%s\n", t.digest.ToString().c_str(),
        verifier.Fingerprint().substr(0, 12).c_str(), v.identity.c_str(),
        v.attestations.empty()
            ? ""
            : ("; attestations: " + Join(v.attestations, ", ")).c_str());
    if (disk) {
      std::printf(
          "verified its disk image %s%s\n", disk->ToString().c_str(),
          dv->attestations.empty()
              ? ""
              : ("; attestations: " + Join(dv->attestations, ", ")).c_str());
    }
  }
  return 0;
}

int RunSbom(const Globals& g, const std::string& ref,
            const std::string& format) {
  if (format != "spdx" && format != "cyclonedx")
    throw UserError("--format must be spdx or cyclonedx");
  Store store = OpenStore(g);
  Image image = OpenImage(ParseReference(ref), store);
  std::optional<BuildRecord> record = RecordOf(store, image.descriptor.digest);
  FlattenOptions f;
  f.hash_files = true;
  f.sha1 = true;
  Tree files = Flatten(image, f);
  SbomInputs in{&image, &files, record ? &*record : nullptr,
                image.name.empty() ? "image" : image.name};
  std::string doc = format == "spdx" ? SpdxDocument(in) : CycloneDxDocument(in);
  std::printf("%s\n", nlohmann::json::parse(doc).dump(g.json ? -1 : 2).c_str());
  return 0;
}

void SignAfterBuild(const Store& store, const std::string& reference,
                    const std::string& key, const std::string& identity) {
  auto signer = LoadKey(key);
  RegistryArgs none;
  Target t = Resolve(store, none, reference);
  std::string id = identity.empty() ? t.identity : identity;
  Signed r = SignTarget(store, t, *t.attachments, id, *signer, true);
  std::fprintf(stderr, "signed %s%s for %s (%zu attestations)\n",
               reference.c_str(), r.disk ? " and its disk image" : "",
               id.c_str(), r.image.attestations.size());
}

std::string ExportWithAttachments(const Store& store, const std::string& source,
                                  const Reference& dest, bool replace) {
  Reference from = ParseReference(source);
  Image image = OpenImage(from, store);
  std::string written = ExportImage(image, dest, store, replace);
  if (dest.kind == Reference::Kind::kOciLayout ||
      dest.kind == Reference::Kind::kStore) {
    Located at = Locate(from, store);
    auto src = LayoutAttachments(at.layout, at.name,
                                 from.kind == Reference::Kind::kStore);
    bool to_store = dest.kind == Reference::Kind::kStore;
    Layout to = to_store ? store.layout() : Layout::Open(dest.path, false);
    std::string to_name = to_store ? dest.name : "";
    auto dst = LayoutAttachments(to, to_name, to_store);
    CopyAttachments(*src, *dst, image.descriptor.digest);
    // The disk image goes along, with its signatures.
    if (CopyDisk(at.layout, to, to_name, image.descriptor.digest)) {
      CopyAttachments(*src, *dst,
                      FindDisk(to, image.descriptor.digest)->descriptor.digest);
    }
  }
  return written;
}

std::vector<std::string> CarryAttachments(const Store& store,
                                          const std::string& source,
                                          RegistryClient& client,
                                          const std::string& repo,
                                          const Digest& digest) {
  Reference ref = ParseReference(source);
  Located at = Locate(ref, store);
  auto from = LayoutAttachments(at.layout, at.name,
                                ref.kind == Reference::Kind::kStore);
  auto to = RegistryAttachments(client, repo);
  std::vector<std::string> tags = CopyAttachments(*from, *to, digest);
  if (auto disk = FindDisk(at.layout, digest)) {
    auto more = CopyAttachments(*from, *to, disk->descriptor.digest);
    tags.insert(tags.end(), more.begin(), more.end());
  }
  return tags;
}

SignResult SignInRegistry(const Store& store, RegistryClient& client,
                          const std::string& repo, const Digest& digest,
                          const std::string& key) {
  auto signer = LoadKey(key);
  auto where = RegistryAttachments(client, repo);
  std::string identity = client.host() + "/" + repo;
  Target t;
  t.digest = digest;
  t.repo = repo;
  t.registry = &client;
  return SignTarget(store, t, *where, identity, *signer,
                    RecordOf(store, digest).has_value())
      .image;
}

void VerifyInRegistry(RegistryClient& client, const std::string& repo,
                      const Digest& digest, const std::string& key) {
  Verifier verifier = Verifier::FromPem(ReadFile(key, 1 << 20), key);
  auto where = RegistryAttachments(client, repo);
  VerifyImage(*where, digest, verifier, {});
  if (auto disk = DiskInRegistry(client, repo, digest)) {
    WithContext("its disk image",
                [&] { VerifyImage(*where, *disk, verifier, {}); });
  }
}

}  // namespace kiln::cli
