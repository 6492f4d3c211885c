#include "image/image.h"

#include <sys/stat.h>

#include <map>

#include "core/strings.h"
#include "tar/tar_reader.h"

namespace kiln {
namespace {

constexpr uint64_t kMaxManifestBytes = 4 << 20;
constexpr uint64_t kMaxCaptureBytes = 16 << 20;

bool Matches(const Descriptor& d, const Platform& p) {
  return d.platform && d.platform->os == p.os &&
         d.platform->architecture == p.architecture &&
         (p.variant.empty() || d.platform->variant == p.variant);
}

Descriptor PickPlatform(const Layout& layout, const Descriptor& index_desc,
                        const Platform* want, const std::string& display) {
  Index index =
      Index::Parse(layout.ReadBlob(index_desc, kMaxManifestBytes), display);
  Platform fallback;
  const Platform& p = want ? *want : fallback;
  std::vector<std::string> have;
  bool nested = false;
  for (const auto& d : index.manifests) {
    if (Matches(d, p) && IsManifestType(d.media_type)) return d;
    if (d.platform) have.push_back(d.platform->ToString());
    nested = nested || (Matches(d, p) && IsIndexType(d.media_type));
  }
  if (nested) {
    throw UserError(display + ": its " + p.ToString() +
                    " entry is another image index (kiln reads one level)");
  }
  if (!want && index.manifests.size() == 1 &&
      IsManifestType(index.manifests[0].media_type))
    return index.manifests[0];
  throw UserError(display + " has no image for " + p.ToString() +
                  (have.empty() ? "" : " (it has " + Join(have, ", ") + ")"));
}

// A sink that hashes and forwards.
// Hashes (as asked) and forwards.
class TeeHash : public ByteSink {
 public:
  TeeHash(ByteSink* next, Sha256* hash, Sha1* sha1 = nullptr)
      : next_(next), hash_(hash), sha1_(sha1) {}
  void Write(const void* data, size_t n) override {
    if (hash_) hash_->Update(data, n);
    if (sha1_) sha1_->Update(data, n);
    if (next_) next_->Write(data, n);
  }

 private:
  ByteSink* next_;
  Sha256* hash_;
  Sha1* sha1_;
};

class Discard : public ByteSink {
 public:
  void Write(const void*, size_t) override {}
};

Entry FromHeader(const TarHeader& h, const std::string& path) {
  Entry e;
  e.path = path;
  e.type = h.type;
  e.mode = h.mode;
  e.uid = h.uid;
  e.gid = h.gid;
  e.size = h.type == EntryType::kFile ? h.size : 0;
  e.link = h.link;
  e.dev_major = h.dev_major;
  e.dev_minor = h.dev_minor;
  return e;
}

// A layer entry's normalised path ("" for the root itself).
std::string EntryPath(const Image& image, size_t layer, const TarHeader& h) {
  std::string path, why;
  if (!NormalizeArchivePath(h.name, &path, &why)) {
    throw UserError(LayerWhat(image, layer) + ": entry " + Quote(h.name) +
                    ": " + why);
  }
  return path;
}

}  // namespace

std::string LayerWhat(const Image& image, size_t i) {
  return image.display + " layer " + std::to_string(i + 1) + " (" +
         image.manifest.layers[i].digest.Short() + ")";
}

std::unique_ptr<TarReader> OpenLayer(const Image& image, size_t i) {
  const Descriptor& d = image.manifest.layers[i];
  if (LayerCompressionOf(d.media_type) == LayerCompression::kUnknown) {
    throw UserError(LayerWhat(image, i) + ": unsupported layer media type " +
                    Quote(d.media_type));
  }
  std::string path = image.layout.BlobPath(d.digest);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw EnvError(LayerWhat(image, i) + ": blob " + d.digest.ToString() +
                   " is missing");
  // The digest is checked as the layer is read; the size the manifest gives
  // is checked here, or a manifest that lies about it would pass.
  if (!S_ISREG(st.st_mode) || st.st_size != d.size) {
    throw Error(image.layout.corrupt_kind(),
                LayerWhat(image, i) + ": the manifest says " +
                    std::to_string(d.size) + " bytes, blob " +
                    d.digest.ToString() + " has " +
                    (S_ISREG(st.st_mode) ? std::to_string(st.st_size)
                                         : "no bytes (not a file)"));
  }
  return TarReader::Open(path, LayerWhat(image, i), d.digest);
}

Located Locate(const Reference& ref, const Store& store) {
  std::string display = ref.ToString();
  switch (ref.kind) {
    case Reference::Kind::kStore:
      return {display, ref.name, ref.tag, store.layout(), store.Resolve(ref)};
    case Reference::Kind::kOciLayout: {
      Layout layout = Layout::Open(ref.path, false, ErrorKind::kUser);
      Index index = layout.ReadIndex();
      Descriptor desc;
      if (ref.tag.empty()) {
        // Signatures and attestations (sha256-<hex>.sig/.att) are not
        // images of their own: the one image is what they are about.
        std::vector<Descriptor> images;
        for (const auto& d : index.manifests) {
          auto it = d.annotations.find(annotation::kRefName);
          if (it == d.annotations.end() || !AttachmentSubject(it->second))
            images.push_back(d);
        }
        if (images.size() != 1) {
          throw UserError(display + ": the layout holds " +
                          std::to_string(images.size()) +
                          " images; name one as oci:DIR:REF");
        }
        desc = images[0];
      } else {
        auto found = layout.FindRef(ref.tag);
        if (!found)
          throw UserError(display + ": no image named " + Quote(ref.tag) +
                          " in " + ref.path);
        desc = *found;
      }
      auto it = desc.annotations.find(annotation::kRefName);
      std::string ref_name = it == desc.annotations.end() ? "" : it->second;
      size_t colon = ref_name.rfind(':');
      std::string name =
          colon == std::string::npos ? "" : ref_name.substr(0, colon);
      std::string tag =
          colon == std::string::npos ? ref_name : ref_name.substr(colon + 1);
      return {display, name, tag, layout, desc};
    }
    default:
      throw UserError(
          display +
          ": kiln reads images from the store or oci: directories here" +
          (ref.kind == Reference::Kind::kRegistry
               ? " (kiln pull fetches registry images)"
               : ""));
  }
}

Image OpenImage(const Reference& ref, const Store& store,
                const Platform* platform) {
  Located at = Locate(ref, store);
  const std::string& display = at.display;
  std::optional<Layout> layout = at.layout;
  Descriptor desc = at.descriptor;
  std::string name = at.name, tag = at.tag;
  if (IsIndexType(desc.media_type))
    desc = PickPlatform(*layout, desc, platform, display);
  if (!IsManifestType(desc.media_type)) {
    throw UserError(display + ": " + Quote(desc.media_type) +
                    " is not an image manifest");
  }
  Image image{display, name, tag, *layout, desc, {}, {}, {}};
  image.manifest = Manifest::Parse(layout->ReadBlob(desc, kMaxManifestBytes),
                                   display + " manifest");
  image.config_bytes =
      layout->ReadBlob(image.manifest.config, kMaxManifestBytes);
  image.config = ImageConfig::Parse(image.config_bytes, display + " config");
  if (image.config.diff_ids.size() != image.manifest.layers.size()) {
    throw UserError(display + ": the config lists " +
                    std::to_string(image.config.diff_ids.size()) +
                    " diff_ids for " +
                    std::to_string(image.manifest.layers.size()) + " layers");
  }
  return image;
}

std::vector<Entry> ReadLayerEntries(const Image& image, size_t layer) {
  auto reader = OpenLayer(image, layer);
  std::vector<Entry> out;
  TarHeader h;
  while (reader->Next(&h)) {
    std::string path = EntryPath(image, layer, h);
    if (path.empty()) continue;
    out.push_back(FromHeader(h, path));
  }
  return out;
}

Tree Flatten(const Image& image, const FlattenOptions& options) {
  Tree result;
  std::set<std::string>
      hidden;  // whited out by an upper layer: the path and below
  std::set<std::string>
      opaque;  // an upper layer hid this directory's lower contents
  auto is_hidden = [&](const std::string& path,
                       const std::set<std::string>& mine) {
    if (const Entry* e = result.Find(path); e && !mine.count(path)) return true;
    if (hidden.count(path)) return true;
    std::string p = ParentPath(path);
    bool at_root = path.empty();
    while (!at_root) {
      if (hidden.count(p) || opaque.count(p)) return true;
      if (const Entry* e = result.Find(p); e && !e->IsDir() && !mine.count(p))
        return true;
      at_root = p.empty();
      p = ParentPath(p);
    }
    return false;
  };
  for (size_t i = image.manifest.layers.size(); i-- > 0;) {
    auto reader = OpenLayer(image, i);
    std::set<std::string> mine, new_hidden, new_opaque;
    std::map<std::string, Entry>
        files;  // this layer's files, for hardlinks to hidden ones
    TarHeader h;
    while (reader->Next(&h)) {
      std::string path = EntryPath(image, i, h), why;
      if (path.empty()) continue;
      std::string target;
      switch (ClassifyWhiteout(path, &target)) {
        case Whiteout::kFile:
          new_hidden.insert(target);
          continue;
        case Whiteout::kOpaque:
          new_opaque.insert(target);
          continue;
        case Whiteout::kNone:
          break;
      }
      Entry e = FromHeader(h, path);
      e.layer = static_cast<uint32_t>(i);
      bool visible = !is_hidden(path, mine);
      if (h.type == EntryType::kFile) {
        bool capture = options.capture.count(path) > 0 && visible;
        bool keep = options.spool || options.hash_files || capture;
        if (keep) {
          Sha256 hash;
          Sha1 sha1;
          Sha256* h256 = options.hash_files ? &hash : nullptr;
          Sha1* h1 = options.hash_files && options.sha1 ? &sha1 : nullptr;
          if (capture && h.size <= kMaxCaptureBytes) {
            std::string bytes;
            StringSink sink(&bytes);
            TeeHash tee(&sink, h256, h1);
            reader->CopyData(tee);
            e.content = InlineContent(std::move(bytes));
          } else if (options.spool) {
            e.content = options.spool->Append(
                [&](ByteSink& out) {
                  TeeHash tee(&out, h256, h1);
                  reader->CopyData(tee);
                },
                h.size, LayerWhat(image, i) + " " + path);
          } else {
            Discard none;
            TeeHash tee(&none, &hash, h1);
            reader->CopyData(tee);
          }
          if (options.hash_files) e.sha256 = hash.Finish().hex();
          if (h1) e.sha1 = sha1.FinishHex();
        }
        files[path] = e;
      } else if (h.type == EntryType::kHardlink) {
        std::string target_path;
        if (!NormalizeArchivePath(h.link, &target_path, &why)) {
          throw UserError(LayerWhat(image, i) + ": hardlink " + Quote(h.name) +
                          " to " + Quote(h.link) + ": " + why);
        }
        auto it = files.find(target_path);
        if (it == files.end()) {
          throw UserError(LayerWhat(image, i) + ": hardlink " + Quote(h.name) +
                          " to " + Quote(h.link) +
                          ", which is not a file earlier in the layer");
        }
        if (result.Find(target_path) && mine.count(target_path)) {
          e.link = target_path;  // both visible: still a hardlink
        } else {
          // The target is hidden by an upper layer: the link keeps the bytes.
          Entry copy = it->second;
          copy.path = path;
          e = copy;
        }
        files[path] = it->second;
      }
      if (!visible) continue;
      mine.insert(path);
      result.Put(std::move(e));
    }
    hidden.insert(new_hidden.begin(), new_hidden.end());
    opaque.insert(new_opaque.begin(), new_opaque.end());
  }
  return result;
}

}  // namespace kiln
