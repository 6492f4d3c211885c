// The OCI image model: descriptors, manifests, indexes, image configs, with
// parsing that validates (wrong types, digests, sizes are errors naming the
// document) and serialisation as canonical JSON (sorted keys, no whitespace).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "digest/digest.h"
#include "spec/template.h"

namespace kiln {

namespace media {
inline constexpr char kManifest[] =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kIndex[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char kConfig[] = "application/vnd.oci.image.config.v1+json";
// The config of an artifact that needs none ("{}").
inline constexpr char kEmpty[] = "application/vnd.oci.empty.v1+json";
inline constexpr char kLayerTar[] = "application/vnd.oci.image.layer.v1.tar";
inline constexpr char kLayerGzip[] =
    "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr char kLayerZstd[] =
    "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr char kDockerManifest[] =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr char kDockerManifestList[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kDockerConfig[] =
    "application/vnd.docker.container.image.v1+json";
inline constexpr char kDockerLayerGzip[] =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr char kDockerForeignLayerGzip[] =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}  // namespace media

namespace annotation {
inline constexpr char kRefName[] = "org.opencontainers.image.ref.name";
inline constexpr char kVersion[] = "org.opencontainers.image.version";
inline constexpr char kCreated[] = "org.opencontainers.image.created";
inline constexpr char kTitle[] = "org.opencontainers.image.title";
inline constexpr char kBaseDigest[] = "org.opencontainers.image.base.digest";
inline constexpr char kBaseName[] = "org.opencontainers.image.base.name";
}  // namespace annotation

bool IsManifestType(std::string_view media_type);
bool IsIndexType(std::string_view media_type);
// What a layer's blob holds, from its media type.
enum class LayerCompression { kNone, kGzip, kZstd, kUnknown };
LayerCompression LayerCompressionOf(std::string_view media_type);
const char* LayerMediaType(Compression c);

// The one JSON encoding kiln writes: sorted keys, no insignificant space.
std::string CanonicalJson(const nlohmann::json& value);
// Parses JSON, turning syntax errors into UserErrors naming `what`.
nlohmann::json ParseJson(std::string_view text, const std::string& what);

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::string artifact_type;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;

  nlohmann::json ToJson() const;
  static Descriptor FromJson(const nlohmann::json& j, const std::string& what);
};

struct Manifest {
  std::string media_type = media::kManifest;
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;

  nlohmann::json ToJson() const;
  static Manifest Parse(std::string_view bytes, const std::string& what);
};

struct Index {
  std::string media_type = media::kIndex;
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;

  nlohmann::json ToJson() const;
  static Index Parse(std::string_view bytes, const std::string& what);
};

struct History {
  std::string created;
  std::string created_by;
  std::string comment;
  bool empty_layer = false;
};

// The runtime part of an image config ("config" in the JSON).
struct RuntimeConfig {
  std::string user;
  std::vector<std::string> exposed_ports;  // sorted
  std::vector<std::string> env;            // "K=V"
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::vector<std::string> volumes;  // sorted
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  nlohmann::json extra =
      nlohmann::json::object();  // fields kiln does not model, kept
};

struct ImageConfig {
  std::string created;
  std::string author;
  std::string architecture;
  std::string os;
  std::string variant;
  RuntimeConfig config;
  std::vector<Digest> diff_ids;
  std::vector<History> history;
  nlohmann::json extra = nlohmann::json::object();

  nlohmann::json ToJson() const;
  static ImageConfig Parse(std::string_view bytes, const std::string& what);
};

// RFC 3339 UTC time of a Unix timestamp: "1970-01-01T00:00:00Z".
std::string Rfc3339(int64_t unix_seconds);

}  // namespace kiln
