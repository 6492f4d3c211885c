// The local store: an OCI image layout (readable as-is by `skopeo inspect
// oci:DIR:NAME:TAG`) holding every image kiln built or pulled, named
// "NAME:TAG" by org.opencontainers.image.ref.name, plus kiln's own files in
// kiln/ (format marker, temp spool files, locks; later the layer cache).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/fs.h"
#include "oci/model.h"
#include "ref/reference.h"
#include "store/layout.h"

namespace kiln {

struct FsckReport {
  size_t blobs_checked = 0;
  uint64_t bytes_checked = 0;
  std::vector<std::string> corrupt;  // "sha256:… (content hashes to sha256:…)"
  std::vector<std::string> missing;    // "sha256:… (layer of hello:1.0.0)"
  std::vector<std::string> leftovers;  // temp files of interrupted writes
  bool ok() const { return corrupt.empty() && missing.empty(); }
};

// On a store entry: floating tags `kiln push` adds ("1.4,latest"), from the
// template's publish.tags.
inline constexpr char kPublishTagsAnnotation[] = "dev.kiln.publish.tags";
// On a store entry: the digest of the blob holding its build record (the
// template, inputs and packages it was built from; see build/record.h).
inline constexpr char kBuildRecordAnnotation[] = "dev.kiln.build-record";

struct StoredImage {
  std::string name;  // "hello:1.0.0"
  Descriptor manifest;
};

// The image (hex digest) an attachment tag is about — cosign's
// "[NAME:]sha256-<hex>.sig" and ".att", kiln's ".disk" — or nothing if `ref`
// is not one (an image's tag, e.g. "NAME:sha256-<12 hex>" of a pull by digest).
std::optional<std::string> AttachmentSubject(std::string_view ref);

class Store {
 public:
  // $KILN_STORE, else ${XDG_DATA_HOME:-$HOME/.local/share}/kiln/store.
  static std::string DefaultPath();
  // Opens the store, creating it if missing; refuses unknown store formats.
  static Store Open(const std::string& path);

  const Layout& layout() const { return layout_; }
  const std::string& path() const { return layout_.dir(); }
  std::string tmp_dir() const { return path() + "/kiln/tmp"; }

  // Builds hold this while they write: gc (exclusive) waits for them.
  FileLock LockShared() const;

  // Names `manifest` NAME:TAG. A tag that holds another digest is refused —
  // versions are immutable — unless `replace`; then the replaced image's
  // attachments (*:sha256-<hex>.sig/.att/.disk, and the disk's own) go too,
  // unless another tag still names it. Returns false if the tag already held
  // this digest (nothing changed).
  bool Tag(const std::string& name_tag, const Descriptor& manifest,
           bool replace) const;
  std::vector<StoredImage> List() const;
  // The manifest (or index) a store reference names; UserError if none.
  Descriptor Resolve(const Reference& ref) const;

  // Re-hashes every blob and checks every image the index names is whole;
  // under the shared lock, so gc does not remove blobs while it reads them.
  FsckReport Fsck() const;
  // Temp files of writes in progress or interrupted (".tmp-*", kiln's
  // temp-file names, and whatever is in kiln/tmp) anywhere in the store, but
  // blobs/sha256, which fsck and gc list themselves.
  std::vector<std::string> TempFiles() const;

  // Where blobs were last seen in registries ("host/repo"), so a push can ask
  // a registry to mount a blob from a repository it already holds it in.
  void RecordBlobSources(const std::string& host, const std::string& repo,
                         const std::vector<Digest>& blobs) const;
  // Repositories of `host` known to hold `digest`, most recent first.
  std::vector<std::string> BlobSources(const std::string& host,
                                       const Digest& digest) const;

 private:
  explicit Store(Layout layout) : layout_(std::move(layout)) {}
  Layout layout_;
};

}  // namespace kiln
