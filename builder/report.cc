#include "report.h"

#include <cstdio>

#include "core/image_path.h"
#include "core/strings.h"

namespace kiln::cli {
namespace {

using nlohmann::json;
using Verdict = LayerComparison::Verdict;

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kSame:
      return "same";
    case Verdict::kCompression:
      return "compression";
    case Verdict::kContent:
      return "content";
    case Verdict::kOnlyInA:
      return "onlyInA";
    case Verdict::kOnlyInB:
      return "onlyInB";
  }
  return "?";
}

// An entry name as stored, shown as an image path where it is one.
std::string ShowPath(const std::string& stored) {
  std::string path, why;
  if (stored.empty() || !NormalizeArchivePath(stored, &path, &why))
    return Quote(stored);
  return "/" + path;
}

json FieldValue(const std::optional<std::string>& v) {
  if (!v) return nullptr;
  try {
    return json::parse(*v);
  } catch (const json::exception&) {
    return *v;
  }
}

json FieldsJson(const std::vector<FieldChange>& changes) {
  json list = json::array();
  for (const auto& f : changes)
    list.push_back(
        {{"field", f.field}, {"a", FieldValue(f.a)}, {"b", FieldValue(f.b)}});
  return list;
}

json BlobJson(const std::optional<Descriptor>& d,
              const std::optional<Digest>& diff_id) {
  if (!d) return nullptr;
  json j = {{"digest", d->digest.ToString()},
            {"mediaType", d->media_type},
            {"size", d->size}};
  if (diff_id) j["diffId"] = diff_id->ToString();
  return j;
}

json EntryJson(const EntryDifference& d) {
  json props = json::array();
  for (const auto& p : d.properties)
    props.push_back({{"property", p.property}, {"a", p.a}, {"b", p.b}});
  json j = {{"entry", d.index + 1},
            {"pathA", d.path_a},
            {"pathB", d.path_b},
            {"properties", props}};
  if (d.offset) j["offset"] = *d.offset;
  return j;
}

// "  FIELD: A -> B" for each change.
void PrintFieldLines(const std::vector<FieldChange>& changes) {
  for (const auto& f : changes) {
    std::printf("  %s: %s -> %s\n", f.field.c_str(),
                f.a ? f.a->c_str() : "(absent)",
                f.b ? f.b->c_str() : "(absent)");
  }
}

void PrintFields(const char* what, const std::vector<FieldChange>& changes) {
  if (changes.empty()) return;
  std::printf("%s:\n", what);
  PrintFieldLines(changes);
}

std::string LayerTitle(const LayerComparison& l) {
  return "layer " + std::to_string(l.index + 1) +
         (l.name.empty() ? "" : " " + l.name);
}

void PrintLayer(const LayerComparison& l, const std::string& label_a,
                const std::string& label_b) {
  std::string title = LayerTitle(l);
  switch (l.verdict) {
    case Verdict::kSame:
      return;
    case Verdict::kOnlyInA:
    case Verdict::kOnlyInB:
      std::printf("  %s: only in %s (%s)\n", title.c_str(),
                  (l.verdict == Verdict::kOnlyInA ? label_a : label_b).c_str(),
                  (l.a ? l.a : l.b)->digest.ToString().c_str());
      return;
    case Verdict::kCompression:
      std::printf(
          "  %s: the compression differs: the same diff_id %s, blobs %s "
          "(%s) and %s (%s)\n",
          title.c_str(), l.diff_id_a->ToString().c_str(),
          l.a->digest.ToString().c_str(), l.a->media_type.c_str(),
          l.b->digest.ToString().c_str(), l.b->media_type.c_str());
      return;
    case Verdict::kContent:
      break;
  }
  std::printf("  %s: the content differs: diff_id %s and %s\n", title.c_str(),
              l.diff_id_a->ToString().c_str(), l.diff_id_b->ToString().c_str());
  const TarComparison& t = l.tar;
  if (t.first) {
    const EntryDifference& d = *t.first;
    std::vector<std::string> names;
    for (const auto& p : d.properties) names.push_back(p.property);
    std::string path = d.path_a.empty() ? d.path_b : d.path_a;
    std::string shown = ShowPath(path);
    std::printf("    first difference: entry %zu, %s: %s", d.index + 1,
                shown.c_str(), Join(names, ", ").c_str());
    if (d.offset)
      std::printf(" (byte %llu of the tar)",
                  static_cast<unsigned long long>(*d.offset));
    std::printf("\n");
    for (const auto& p : d.properties) {
      std::string a = p.a, b = p.b;
      if (p.property == "order") {
        // Stored names shown as image paths, unless that hides the change.
        std::string sa = d.path_a.empty() ? a : ShowPath(a);
        std::string sb = d.path_b.empty() ? b : ShowPath(b);
        if (sa != sb) {
          a = sa;
          b = sb;
        } else {
          a = Quote(a);
          b = Quote(b);
        }
      }
      std::printf("      %s %s: %s\n", p.property.c_str(), label_a.c_str(),
                  a.c_str());
      std::printf("      %s %s: %s\n", p.property.c_str(), label_b.c_str(),
                  b.c_str());
    }
  }
  std::printf("    %zu entr%s differ%s (%zu and %zu entries)\n", t.differing,
              t.differing == 1 ? "y" : "ies", t.differing == 1 ? "s" : "",
              t.entries_a, t.entries_b);
}

std::string DigestOr(const std::optional<Descriptor>& d) {
  return d ? d->digest.ToString() : "(none)";
}

}  // namespace

std::string PathChangeLine(const PathChange& c) {
  char mark = c.kind == PathChange::Kind::kAdded     ? '+'
              : c.kind == PathChange::Kind::kRemoved ? '-'
                                                     : '~';
  return std::string(1, mark) + " " + c.path +
         (c.properties.empty() ? "" : ": ") + Join(c.properties, ", ");
}

json PathChangeJson(const PathChange& c) {
  const char* kind = c.kind == PathChange::Kind::kAdded     ? "added"
                     : c.kind == PathChange::Kind::kRemoved ? "removed"
                                                            : "changed";
  return {{"path", c.path}, {"change", kind}, {"properties", c.properties}};
}

void PrintComparison(const ImageComparison& c, const std::string& label_a,
                     const std::string& label_b, bool files) {
  if (c.a == c.b) {
    std::printf("manifest: the same, %s\n", c.a.ToString().c_str());
  } else {
    std::printf("manifest: %s (%s) and %s (%s)\n", c.a.ToString().c_str(),
                label_a.c_str(), c.b.ToString().c_str(), label_b.c_str());
  }
  PrintFieldLines(c.manifest);
  PrintFields("config", c.config);
  size_t same = 0;
  for (const auto& l : c.layers) same += l.verdict == Verdict::kSame;
  std::printf("layers: %zu and %zu, %zu the same\n", c.layers_a, c.layers_b,
              same);
  for (const auto& l : c.layers) PrintLayer(l, label_a, label_b);
  if (c.disk) {
    const DiskComparison& d = *c.disk;
    std::printf("disk: %s (%s) and %s (%s)%s\n", DigestOr(d.a).c_str(),
                label_a.c_str(), DigestOr(d.b).c_str(), label_b.c_str(),
                d.same() ? ": the same" : "");
    if (d.blob_a && d.blob_b && d.blob_a->digest != d.blob_b->digest) {
      std::printf("  disk file: %s and %s\n",
                  d.blob_a->digest.ToString().c_str(),
                  d.blob_b->digest.ToString().c_str());
    }
    PrintFieldLines(d.info);
    if (d.bytes_compared) {
      for (const auto& r : d.regions) {
        std::printf(
            "  %s differs, first at byte %llu of it (%llu of the disk)\n",
            r.name.c_str(), static_cast<unsigned long long>(r.offset_in_region),
            static_cast<unsigned long long>(r.offset));
      }
    }
  }
  if (files) {
    std::printf("files: %zu change%s\n", c.files.size(),
                c.files.size() == 1 ? "" : "s");
    for (const auto& f : c.files)
      std::printf("  %s\n", PathChangeLine(f).c_str());
  }
}

json ComparisonJson(const ImageComparison& c, bool files) {
  json layers = json::array();
  for (const auto& l : c.layers) {
    json j = {{"layer", l.index + 1},
              {"name", l.name},
              {"verdict", VerdictName(l.verdict)},
              {"a", BlobJson(l.a, l.diff_id_a)},
              {"b", BlobJson(l.b, l.diff_id_b)}};
    if (l.verdict == Verdict::kContent) {
      j["entries"] = {{"a", l.tar.entries_a},
                      {"b", l.tar.entries_b},
                      {"differing", l.tar.differing}};
      j["firstDifference"] =
          l.tar.first ? EntryJson(*l.tar.first) : json(nullptr);
    }
    layers.push_back(j);
  }
  json j = {{"a", c.a.ToString()},
            {"b", c.b.ToString()},
            {"identical", c.identical()},
            {"manifest", FieldsJson(c.manifest)},
            {"config", FieldsJson(c.config)},
            {"layerCount", {{"a", c.layers_a}, {"b", c.layers_b}}},
            {"layers", layers}};
  if (c.disk) {
    const DiskComparison& d = *c.disk;
    json regions = json::array();
    for (const auto& r : d.regions) {
      regions.push_back({{"region", r.name},
                         {"offset", r.offset},
                         {"offsetInRegion", r.offset_in_region}});
    }
    j["disk"] = {
        {"a", d.a ? json(d.a->digest.ToString()) : json(nullptr)},
        {"b", d.b ? json(d.b->digest.ToString()) : json(nullptr)},
        {"fileA", d.blob_a ? json(d.blob_a->digest.ToString()) : json(nullptr)},
        {"fileB", d.blob_b ? json(d.blob_b->digest.ToString()) : json(nullptr)},
        {"same", d.same()},
        {"info", FieldsJson(d.info)},
        {"bytesCompared", d.bytes_compared},
        {"regions", regions}};
  }
  if (files) {
    json list = json::array();
    for (const auto& f : c.files) list.push_back(PathChangeJson(f));
    j["files"] = list;
  }
  return j;
}

}  // namespace kiln::cli
