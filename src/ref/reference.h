// Image references, in skopeo's transport syntax:
//   NAME:TAG, NAME@sha256:...      an image in the local store
//   oci:DIR[:REF]                   an OCI image layout directory
//   docker://HOST[:PORT]/REPO[:TAG|@DIGEST]   a registry
//   docker-archive:FILE[:NAME:TAG]  a `docker load` tarball
//   rootfs:FILE.tar                 the flattened file system (output only)
//   disk:FILE.qcow2                 the image's disk image (output only)
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "digest/digest.h"

namespace kiln {

struct Reference {
  enum class Kind {
    kStore,
    kOciLayout,
    kRegistry,
    kDockerArchive,
    kRootfs,
    kDisk
  };
  Kind kind = Kind::kStore;
  std::string path;      // oci:, docker-archive:, rootfs:, disk:
  std::string registry;  // docker://: "host[:port]"
  std::string name;  // store or registry repository; docker-archive image name
  std::string tag;   // store/registry tag, oci: ref name, docker-archive tag;
                     // empty if not given (a registry pull then reads "latest")
  std::optional<Digest> digest;

  // Back to the text form.
  std::string ToString() const;
  // "NAME:TAG" or "NAME@sha256:..." (store and registry).
  std::string NameAndTag() const;
};

// Throws UserError naming the text and what is wrong with it.
Reference ParseReference(std::string_view text);

// The ref-name grammar skopeo accepts in oci:DIR:REF.
bool IsOciRefName(std::string_view ref);

}  // namespace kiln
