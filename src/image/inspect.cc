#include "image/inspect.h"

namespace kiln {

ImageInfo InspectImage(const Reference& ref, const Store& store, bool files) {
  ImageInfo info{OpenImage(ref, store), {}, 0};
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
  return info;
}

std::vector<ImageSummary> ListImages(const Store& store) {
  std::vector<ImageSummary> out;
  for (const auto& stored : store.List()) {
    ImageSummary s;
    s.name = stored.name;
    s.manifest = stored.manifest;
    if (stored.manifest.platform)
      s.platform = stored.manifest.platform->ToString();
    if (IsManifestType(stored.manifest.media_type) &&
        store.layout().HasBlob(stored.manifest.digest)) {
      Manifest m = Manifest::Parse(store.layout().ReadBlob(stored.manifest),
                                   stored.name);
      s.size = static_cast<uint64_t>(m.config.size);
      for (const auto& l : m.layers) s.size += static_cast<uint64_t>(l.size);
      auto it = m.annotations.find(annotation::kCreated);
      if (it != m.annotations.end()) s.created = it->second;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<PathChange> DiffImages(const Reference& a, const Reference& b,
                                   const Store& store) {
  FlattenOptions options;
  options.hash_files = true;
  Tree ta = Flatten(OpenImage(a, store), options);
  Tree tb = Flatten(OpenImage(b, store), options);
  return DiffTrees(ta, tb);
}

}  // namespace kiln
