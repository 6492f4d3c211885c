#include "ref/reference.h"

#include <regex>

#include "core/error.h"
#include "core/strings.h"
#include "spec/template.h"

namespace kiln {
namespace {

Error Bad(std::string_view text, const std::string& why) {
  return UserError("reference " + Quote(text) + ": " + why);
}

// NAME[:TAG][@DIGEST] into ref's name/tag/digest.
void ParseNameTag(std::string_view text, std::string_view whole,
                  Reference* ref) {
  std::string_view rest = text;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    std::string_view d = rest.substr(at + 1);
    if (!Digest::IsValid(d))
      throw Bad(whole, "digest " + Quote(d) + " is not sha256:<64 hex>");
    ref->digest = Digest::Parse(d);
    rest = rest.substr(0, at);
  }
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos &&
      (slash == std::string_view::npos || colon > slash)) {
    ref->tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (!IsTag(ref->tag))
      throw Bad(whole,
                "tag " + Quote(ref->tag) +
                    " is not valid (letters, digits, _ . -; at most 128)");
  }
  ref->name = std::string(rest);
  if (!IsRepositoryName(ref->name)) {
    throw Bad(whole, "name " + Quote(ref->name) +
                         " is not valid (lowercase letters, digits, . _ - and "
                         "/ between parts)");
  }
}

}  // namespace

bool IsOciRefName(std::string_view ref) {
  static const std::regex kRef(R"(^[A-Za-z0-9._-]+([:@/+][A-Za-z0-9._-]+)*$)");
  return std::regex_match(ref.begin(), ref.end(), kRef);
}

Reference ParseReference(std::string_view text) {
  Reference ref;
  if (text.empty()) throw UserError("empty image reference");
  if (StartsWith(text, "oci:")) {
    ref.kind = Reference::Kind::kOciLayout;
    std::string_view rest = text.substr(4);
    size_t colon = rest.find(':');
    ref.path = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      ref.tag = std::string(rest.substr(colon + 1));
      if (!IsOciRefName(ref.tag))
        throw Bad(text, "image name " + Quote(ref.tag) +
                            " inside the layout is not valid");
    }
    if (ref.path.empty()) throw Bad(text, "oci: needs a directory");
    return ref;
  }
  if (StartsWith(text, "docker-archive:")) {
    ref.kind = Reference::Kind::kDockerArchive;
    std::string_view rest = text.substr(15);
    size_t colon = rest.find(':');
    ref.path = std::string(rest.substr(0, colon));
    if (ref.path.empty()) throw Bad(text, "docker-archive: needs a file");
    if (colon != std::string_view::npos) {
      std::string_view nt = rest.substr(colon + 1);
      if (nt.find(':') == std::string_view::npos)
        throw Bad(text, "docker-archive:FILE:NAME:TAG needs a tag");
      ParseNameTag(nt, text, &ref);
      if (ref.digest)
        throw Bad(text, "docker-archive names take a tag, not a digest");
    }
    return ref;
  }
  if (StartsWith(text, "disk:")) {
    ref.kind = Reference::Kind::kDisk;
    ref.path = std::string(text.substr(5));
    if (ref.path.empty()) throw Bad(text, "disk: needs a file");
    return ref;
  }
  if (StartsWith(text, "rootfs:")) {
    ref.kind = Reference::Kind::kRootfs;
    ref.path = std::string(text.substr(7));
    if (ref.path.empty()) throw Bad(text, "rootfs: needs a file");
    return ref;
  }
  if (StartsWith(text, "docker://")) {
    ref.kind = Reference::Kind::kRegistry;
    std::string_view rest = text.substr(9);
    size_t slash = rest.find('/');
    std::string_view first = rest.substr(0, slash);
    bool is_host =
        slash != std::string_view::npos &&
        (first.find('.') != std::string_view::npos ||
         first.find(':') != std::string_view::npos || first == "localhost");
    std::string_view repo = rest;
    if (is_host) {
      ref.registry = std::string(first);
      repo = rest.substr(slash + 1);
    } else {
      ref.registry = "docker.io";
    }
    ParseNameTag(repo, text, &ref);
    if (ref.registry == "docker.io" && ref.name.find('/') == std::string::npos)
      ref.name = "library/" + ref.name;
    return ref;
  }
  if (text.find("://") != std::string_view::npos || StartsWith(text, "dir:") ||
      StartsWith(text, "docker-daemon:")) {
    throw Bad(text,
              "unsupported transport (kiln reads NAME:TAG, oci:, docker://, "
              "docker-archive:, rootfs:, disk:)");
  }
  ref.kind = Reference::Kind::kStore;
  ParseNameTag(text, text, &ref);
  return ref;
}

std::string Reference::NameAndTag() const {
  std::string s = name;
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->ToString();
  return s;
}

std::string Reference::ToString() const {
  switch (kind) {
    case Kind::kStore:
      return NameAndTag();
    case Kind::kOciLayout:
      return "oci:" + path + (tag.empty() ? "" : ":" + tag);
    case Kind::kRegistry:
      return "docker://" + registry + "/" + NameAndTag();
    case Kind::kDockerArchive:
      return "docker-archive:" + path +
             (name.empty() ? "" : ":" + NameAndTag());
    case Kind::kRootfs:
      return "rootfs:" + path;
    case Kind::kDisk:
      return "disk:" + path;
  }
  return "";
}

}  // namespace kiln
