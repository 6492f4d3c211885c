#include "image/inspect.h"

#include <set>

#include "core/strings.h"

namespace kiln {

ImageInfo InspectImage(const Reference& ref, const Store& store, bool files) {
  ImageInfo info{OpenImage(ref, store), {}, 0, std::nullopt};
  const Image& image = info.image;
  info.total_size = static_cast<uint64_t>(image.manifest.config.size);
  std::vector<std::string> created_by;
  for (const auto& h : image.config.history) {
    if (!h.empty_layer) created_by.push_back(h.created_by);
  }
  for (size_t i = 0; i < image.manifest.layers.size(); ++i) {
    LayerInfo layer;
    layer.blob = image.manifest.layers[i];
    layer.diff_id = image.config.diff_ids[i];
    if (i < created_by.size()) layer.created_by = created_by[i];
    if (files) layer.files = ReadLayerEntries(image, i);
    info.total_size += static_cast<uint64_t>(layer.blob.size);
    info.layers.push_back(std::move(layer));
  }
  info.disk = FindDisk(image.layout, image.descriptor.digest);
  return info;
}

namespace {

// Size of an image's config and layers; created from its annotation.
void Summarize(const Store& store, const Descriptor& d, ImageSummary* s) {
  Manifest m = Manifest::Parse(store.layout().ReadBlob(d), s->name);
  s->size += static_cast<uint64_t>(m.config.size);
  for (const auto& l : m.layers) s->size += static_cast<uint64_t>(l.size);
  auto it = m.annotations.find(annotation::kCreated);
  if (it != m.annotations.end() && s->created.empty()) s->created = it->second;
}

}  // namespace

std::vector<ImageSummary> ListImages(const Store& store) {
  std::vector<ImageSummary> out;
  std::set<std::string> signed_digests;
  for (const auto& stored : store.List()) {
    auto subject = AttachmentSubject(stored.name);
    if (subject && EndsWith(stored.name, ".sig"))
      signed_digests.insert(*subject);
  }
  for (const auto& stored : store.List()) {
    // Signatures, attestations and disk images mark the image they name.
    if (AttachmentSubject(stored.name)) continue;
    ImageSummary s;
    s.name = stored.name;
    s.manifest = stored.manifest;
    if (stored.manifest.platform)
      s.platform = stored.manifest.platform->ToString();
    const Layout& layout = store.layout();
    if (!layout.HasBlob(stored.manifest.digest)) {
      s.signed_ = signed_digests.count(stored.manifest.digest.hex()) > 0;
      out.push_back(std::move(s));
      continue;
    }
    if (IsManifestType(stored.manifest.media_type)) {
      Summarize(store, stored.manifest, &s);
    } else if (IsIndexType(stored.manifest.media_type)) {
      // An index: its platforms, and the images of them this store holds.
      std::vector<std::string> platforms;
      for (const auto& child :
           Index::Parse(layout.ReadBlob(stored.manifest), s.name).manifests) {
        if (child.platform) platforms.push_back(child.platform->ToString());
        if (IsManifestType(child.media_type) && layout.HasBlob(child.digest))
          Summarize(store, child, &s);
      }
      s.platform = Join(platforms, ",");
    }
    s.signed_ = signed_digests.count(stored.manifest.digest.hex()) > 0;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace kiln
