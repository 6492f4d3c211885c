#include "sign/attest.h"

#include <cstdio>

#include "build/build.h"
#include "core/strings.h"

namespace kiln {

using nlohmann::json;

namespace {

std::string CreatedTime(const SbomInputs& in) {
  if (in.record) return Rfc3339(in.record->build_date);
  return in.image->config.created.empty() ? Rfc3339(0)
                                          : in.image->config.created;
}

std::string Version(const SbomInputs& in) {
  if (in.record) return in.record->version;
  auto it = in.image->manifest.annotations.find(annotation::kVersion);
  return it == in.image->manifest.annotations.end() ? in.image->tag
                                                    : it->second;
}

// A UUID (version 5 layout, RFC 4122 variant) named by a digest: stable for an
// image.
std::string UuidOf(const Digest& d) {
  std::string h = d.hex().substr(0, 32);
  h[12] = '5';
  static const char kVariant[] = "89ab";
  h[16] = kVariant[std::stoi(h.substr(16, 1), nullptr, 16) & 3];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" +
         h.substr(16, 4) + "-" + h.substr(20);
}

// The package URL of a Debian package (purl-spec "deb" type).
std::string Purl(const BuildRecord::Package& p) {
  std::string version;
  for (char c : p.version) {
    if (c == ':') {
      version += "%3A";
    } else if (c == '+') {
      version += "%2B";
    } else {
      version += c;
    }
  }
  return "pkg:deb/debian/" + p.name + "@" + version + "?arch=" + p.architecture;
}

// The regular file an entry is: itself, or for a hardlink the file it links
// to (a hardlink is a regular file under another name); else null.
const Entry* RegularFile(const Tree& files, const Entry& e) {
  if (e.type == EntryType::kFile) return &e;
  if (e.type != EntryType::kHardlink) return nullptr;
  const Entry* target = files.Find(e.link);
  return target && target->type == EntryType::kFile ? target : nullptr;
}

std::string LayerLabel(const SbomInputs& in, uint32_t layer) {
  std::string label = "layer " + std::to_string(layer + 1);
  if (in.record && layer < in.record->layers.size())
    label += ": " + in.record->layers[layer].name;
  return label;
}

}  // namespace

std::string SpdxDocument(const SbomInputs& in) {
  const Digest& image = in.image->descriptor.digest;
  json packages = json::array();
  json relationships = json::array();
  json files = json::array();
  packages.push_back(
      {{"SPDXID", "SPDXRef-Image"},
       {"name", in.name},
       {"versionInfo", Version(in)},
       {"downloadLocation", "NOASSERTION"},
       {"filesAnalyzed", false},
       {"primaryPackagePurpose", "CONTAINER"},
       {"checksums", json::array({{{"algorithm", "SHA256"},
                                   {"checksumValue", image.hex()}}})},
       {"licenseConcluded", "NOASSERTION"},
       {"licenseDeclared", "NOASSERTION"},
       {"copyrightText", "NOASSERTION"}});
  relationships.push_back({{"spdxElementId", "SPDXRef-DOCUMENT"},
                           {"relationshipType", "DESCRIBES"},
                           {"relatedSpdxElement", "SPDXRef-Image"}});
  auto input_package = [&](const std::string& id, const std::string& name,
                           const std::string& version,
                           const std::string& sha256,
                           const std::string& purpose,
                           const std::string& relation) {
    json p = {{"SPDXID", id},
              {"name", name},
              {"downloadLocation", "NOASSERTION"},
              {"filesAnalyzed", false},
              {"primaryPackagePurpose", purpose},
              {"licenseConcluded", "NOASSERTION"},
              {"licenseDeclared", "NOASSERTION"},
              {"copyrightText", "NOASSERTION"}};
    if (!version.empty()) p["versionInfo"] = version;
    if (!sha256.empty())
      p["checksums"] =
          json::array({{{"algorithm", "SHA256"}, {"checksumValue", sha256}}});
    packages.push_back(p);
    relationships.push_back({{"spdxElementId", "SPDXRef-Image"},
                             {"relationshipType", relation},
                             {"relatedSpdxElement", id}});
  };
  if (in.record) {
    const BuildRecord& r = *in.record;
    if (r.base != "scratch" && !r.base_digest.empty()) {
      input_package("SPDXRef-Base", r.base, "",
                    Digest::Parse(r.base_digest).hex(), "CONTAINER",
                    "DESCENDANT_OF");
    }
    for (size_t i = 0; i < r.templates.size(); ++i) {
      input_package("SPDXRef-Template-" + std::to_string(i + 1),
                    r.templates[i].name, "", r.templates[i].sha256, "SOURCE",
                    "GENERATED_FROM");
    }
    for (size_t i = 0; i < r.inputs.size(); ++i) {
      input_package("SPDXRef-Input-" + std::to_string(i + 1), r.inputs[i].name,
                    "", r.inputs[i].sha256, "ARCHIVE", "GENERATED_FROM");
    }
    for (size_t i = 0; i < r.packages.size(); ++i) {
      const auto& p = r.packages[i];
      input_package("SPDXRef-Package-" + std::to_string(i + 1), p.name,
                    p.version, p.sha256, "LIBRARY", "CONTAINS");
      json& added = packages.back();
      added["licenseDeclared"] = p.license.empty() ? "NOASSERTION" : p.license;
      if (!p.download.empty()) added["downloadLocation"] = p.download;
      if (!p.source.empty())
        added["sourceInfo"] =
            "built from the Debian source package " + p.source;
      added["externalRefs"] =
          json::array({{{"referenceCategory", "PACKAGE-MANAGER"},
                        {"referenceType", "purl"},
                        {"referenceLocator", Purl(p)}}});
    }
  }
  size_t n = 0;
  for (const auto& [path, entry] : in.files->entries()) {
    const Entry* file = RegularFile(*in.files, entry);
    if (!file) continue;
    const Entry& e = *file;
    std::string id = "SPDXRef-File-" + std::to_string(++n);
    files.push_back(
        {{"SPDXID", id},
         {"fileName", "./" + path},
         {"checksums",
          json::array(
              {{{"algorithm", "SHA1"}, {"checksumValue", e.sha1}},
               {{"algorithm", "SHA256"}, {"checksumValue", e.sha256}}})},
         {"licenseConcluded", "NOASSERTION"},
         {"copyrightText", "NOASSERTION"},
         {"comment", LayerLabel(in, e.layer)}});
    relationships.push_back({{"spdxElementId", "SPDXRef-Image"},
                             {"relationshipType", "CONTAINS"},
                             {"relatedSpdxElement", id}});
  }
  json doc = {{"spdxVersion", "SPDX-2.3"},
              {"dataLicense", "CC0-1.0"},
              {"SPDXID", "SPDXRef-DOCUMENT"},
              {"name", in.name + "@" + image.ToString()},
              {"documentNamespace", "https://kiln.dev/spdx/" + image.hex()},
              {"creationInfo",
               {{"created", CreatedTime(in)},
                {"creators",
                 json::array({std::string("Tool: kiln-") + kKilnVersion})}}},
              {"packages", packages},
              {"files", files},
              {"relationships", relationships}};
  return CanonicalJson(doc);
}

std::string CycloneDxDocument(const SbomInputs& in) {
  const Digest& image = in.image->descriptor.digest;
  json components = json::array();
  json depends = json::array();
  auto input = [&](const std::string& ref, const std::string& type,
                   const std::string& name, const std::string& sha256) {
    json c = {{"bom-ref", ref}, {"type", type}, {"name", name}};
    if (!sha256.empty())
      c["hashes"] = json::array({{{"alg", "SHA-256"}, {"content", sha256}}});
    components.push_back(c);
    depends.push_back(ref);
  };
  if (in.record) {
    const BuildRecord& r = *in.record;
    if (r.base != "scratch" && !r.base_digest.empty())
      input("base", "container", r.base, Digest::Parse(r.base_digest).hex());
    for (const auto& t : r.templates)
      input("template:" + t.name, "file", t.name, t.sha256);
    for (const auto& i : r.inputs)
      input("input:" + i.name, "file", i.name, i.sha256);
    for (const auto& p : r.packages) {
      input(Purl(p), "library", p.name, p.sha256);
      json& c = components.back();
      c["version"] = p.version;
      c["purl"] = Purl(p);
      if (!p.license.empty() && p.license != "NOASSERTION")
        c["licenses"] = json::array({{{"expression", p.license}}});
      if (!p.download.empty()) {
        c["externalReferences"] =
            json::array({{{"type", "distribution"}, {"url", p.download}}});
      }
      if (!p.source.empty()) {
        c["properties"] =
            json::array({{{"name", "debian:source"}, {"value", p.source}}});
      }
    }
  }
  for (const auto& [path, entry] : in.files->entries()) {
    const Entry* file = RegularFile(*in.files, entry);
    if (!file) continue;
    const Entry& e = *file;
    components.push_back(
        {{"bom-ref", "file:/" + path},
         {"type", "file"},
         {"name", "/" + path},
         {"hashes", json::array({{{"alg", "SHA-1"}, {"content", e.sha1}},
                                 {{"alg", "SHA-256"}, {"content", e.sha256}}})},
         {"properties", json::array({{{"name", "kiln:layer"},
                                      {"value", LayerLabel(in, e.layer)}}})}});
  }
  json doc = {
      {"bomFormat", "CycloneDX"},
      {"specVersion", "1.5"},
      {"serialNumber", "urn:uuid:" + UuidOf(image)},
      {"version", 1},
      {"metadata",
       {{"timestamp", CreatedTime(in)},
        {"tools",
         {{"components", json::array({{{"type", "application"},
                                       {"name", "kiln"},
                                       {"version", kKilnVersion}}})}}},
        {"component",
         {{"bom-ref", "image"},
          {"type", "container"},
          {"name", in.name},
          {"version", Version(in)},
          {"hashes",
           json::array({{{"alg", "SHA-256"}, {"content", image.hex()}}})}}}}},
      {"components", components},
      {"dependencies",
       json::array({{{"ref", "image"}, {"dependsOn", depends}}})}};
  return CanonicalJson(doc);
}

std::string ProvenancePredicate(const BuildRecord& r) {
  json resolved = json::array();
  for (const auto& t : r.templates) {
    resolved.push_back({{"name", t.name},
                        {"uri", "kiln-template:" + t.name},
                        {"digest", {{"sha256", t.sha256}}}});
  }
  if (r.base != "scratch" && !r.base_digest.empty()) {
    resolved.push_back(
        {{"name", "base"},
         {"uri", r.base},
         {"digest", {{"sha256", Digest::Parse(r.base_digest).hex()}}}});
  }
  for (const auto& p : r.packages) {
    resolved.push_back({{"name", p.name},
                        {"uri", Purl(p)},
                        {"digest", {{"sha256", p.sha256}}}});
  }
  for (const auto& i : r.inputs)
    resolved.push_back({{"name", i.name},
                        {"uri", i.name},
                        {"digest", {{"sha256", i.sha256}}}});
  json byproducts = json::array();
  for (const auto& l : r.layers) {
    byproducts.push_back(
        {{"name", "layer:" + l.name},
         {"digest", {{"sha256", l.digest.hex()}}},
         {"annotations",
          {{"diffId", l.diff_id.ToString()}, {"fromBase", l.from_base}}}});
  }
  json predicate = {
      {"buildDefinition",
       {{"buildType", "https://kiln.dev/build/v1"},
        {"externalParameters",
         {{"template", r.templates.empty() ? "" : r.templates[0].name},
          {"set", r.sets}}},
        {"internalParameters",
         {{"args", r.args},
          {"buildDate", r.build_date},
          {"platform", r.platform},
          {"compression", r.compression},
          {"compressionLevel", r.compression_level}}},
        {"resolvedDependencies", resolved}}},
      {"runDetails",
       {{"builder",
         {{"id", std::string("https://kiln.dev/kiln@v") + r.kiln_version},
          {"version", {{"kiln", r.kiln_version}}}}},
        {"metadata", json::object()},
        {"byproducts", byproducts}}}};
  return CanonicalJson(predicate);
}

std::string Statement(const std::string& subject_name, const Digest& subject,
                      const std::string& predicate_type,
                      const std::string& predicate_json,
                      const std::vector<Digest>& also) {
  json subjects = json::array(
      {{{"name", subject_name}, {"digest", {{"sha256", subject.hex()}}}}});
  for (const auto& d : also) {
    subjects.push_back(
        {{"name", subject_name}, {"digest", {{"sha256", d.hex()}}}});
  }
  json s = {{"_type", "https://in-toto.io/Statement/v1"},
            {"subject", subjects},
            {"predicateType", predicate_type},
            {"predicate", json::parse(predicate_json)}};
  return CanonicalJson(s);
}

StatementSet MakeStatements(const Image& image, const BuildRecord* record,
                            const std::string& subject_name,
                            const std::vector<Digest>& also) {
  FlattenOptions f;
  f.hash_files = true;
  f.sha1 = true;
  Tree files = Flatten(image, f);
  std::string name = image.name.empty() ? subject_name : image.name;
  SbomInputs in{&image, &files, record, name};
  const Digest& d = image.descriptor.digest;
  StatementSet set;
  set.statements.emplace_back(
      kSpdxPredicate,
      Statement(subject_name, d, kSpdxPredicate, SpdxDocument(in), also));
  set.statements.emplace_back(kCycloneDxPredicate,
                              Statement(subject_name, d, kCycloneDxPredicate,
                                        CycloneDxDocument(in), also));
  if (record) {
    set.statements.emplace_back(kSlsaPredicate,
                                Statement(subject_name, d, kSlsaPredicate,
                                          ProvenancePredicate(*record), also));
  }
  return set;
}

}  // namespace kiln
