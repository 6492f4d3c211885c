#include "disk/artifact.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/process.h"
#include "core/strings.h"
#include "digest/digest.h"

namespace kiln {
namespace {

bool NamesDisk(const std::string& ref, const std::string& tag) {
  return ref == tag || EndsWith(ref, ":" + tag);
}

// Copies a file keeping its holes (raw disks are mostly holes).
void CopySparse(const std::string& from, const std::string& to) {
  struct stat st;
  if (::stat(from.c_str(), &st) != 0)
    throw SystemError("reading " + from, errno);
  UniqueFd out(
      ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!out.valid()) throw SystemError("creating " + to, errno);
  if (::ftruncate(out.get(), st.st_size) != 0)
    throw SystemError("sizing " + to, errno);
  CopySparseInto(from, out.get(), 0, to);
  if (::fsync(out.get()) != 0) throw SystemError("writing " + to, errno);
}

}  // namespace

std::string DiskMediaType(DiskFormat format) {
  return std::string("application/vnd.kiln.disk.layer.v1.") +
         DiskFormatName(format);
}

std::string DiskTag(const Digest& image) {
  return "sha256-" + image.hex() + ".disk";
}

std::string DiskSpecJson(const DiskSpec& spec) {
  nlohmann::json j = {{"format", DiskFormatName(spec.format)},
                      {"size", spec.size},
                      {"espSize", spec.esp_size},
                      {"filesystem", DiskFilesystemName(spec.filesystem)},
                      {"boot", DiskBootName(spec.boot)},
                      {"kernel", spec.kernel},
                      {"cmdline", spec.cmdline},
                      {"busybox", spec.busybox},
                      {"bootloader", spec.bootloader}};
  if (spec.modules) j["modules"] = *spec.modules;
  return CanonicalJson(j);
}

Manifest DiskManifest(const Descriptor& image, const Descriptor& blob,
                      const Descriptor& config, const DiskInfo& info,
                      const std::string& created, const std::string& title) {
  Manifest m;
  m.artifact_type = kDiskArtifactType;
  m.config = config;
  Descriptor layer = blob;
  layer.annotations[annotation::kTitle] = title;
  m.layers.push_back(layer);
  Descriptor subject;
  subject.media_type = image.media_type;
  subject.digest = image.digest;
  subject.size = image.size;
  m.subject = subject;
  m.annotations[kDiskFormatAnnotation] = DiskFormatName(info.format);
  m.annotations[kDiskSizeAnnotation] = std::to_string(info.virtual_size);
  m.annotations[kDiskInfoAnnotation] = info.ToJson();
  m.annotations[annotation::kCreated] = created;
  return m;
}

std::optional<StoredDisk> FindDisk(const Layout& layout, const Digest& image) {
  std::string tag = DiskTag(image);
  for (const auto& d : layout.ReadIndex().manifests) {
    auto it = d.annotations.find(annotation::kRefName);
    if (it == d.annotations.end() || !NamesDisk(it->second, tag)) continue;
    StoredDisk disk;
    disk.ref_name = it->second;
    disk.descriptor = d;
    std::string what = layout.dir() + " " + it->second;
    disk.manifest = Manifest::Parse(layout.ReadBlob(d), what);
    const Manifest& m = disk.manifest;
    CheckDiskManifest(m, what, image);
    disk.blob = m.layers[0];
    disk.info = DiskInfo::FromJson(m.annotations.at(kDiskInfoAnnotation), what);
    return disk;
  }
  return std::nullopt;
}

void CheckDiskManifest(const Manifest& m, const std::string& what,
                       const Digest& image) {
  if (m.artifact_type != kDiskArtifactType || m.layers.size() != 1 ||
      !m.annotations.count(kDiskInfoAnnotation)) {
    throw UserError(what + " is not a kiln disk artifact");
  }
  if (!m.subject) {
    throw UserError(what + " names no image it was made from (no subject)");
  }
  if (m.subject->digest != image) {
    throw UserError(what + " is the disk image of " +
                    m.subject->digest.ToString() + ", not of " +
                    image.ToString());
  }
}

void TagDisk(const Layout& layout, const std::string& name, const Digest& image,
             const Descriptor& artifact) {
  std::string tag = DiskTag(image);
  std::string ref = name.empty() ? tag : name + ":" + tag;
  layout.UpdateIndex([&](Index& index) {
    std::vector<Descriptor> kept;
    for (const auto& d : index.manifests) {
      auto it = d.annotations.find(annotation::kRefName);
      if (it == d.annotations.end() || it->second != ref) kept.push_back(d);
    }
    Descriptor d = artifact;
    d.annotations.clear();
    d.annotations[annotation::kRefName] = ref;
    kept.push_back(d);
    index.manifests = std::move(kept);
  });
}

bool CopyDisk(const Layout& from, const Layout& to, const std::string& to_name,
              const Digest& image) {
  auto disk = FindDisk(from, image);
  if (!disk) return false;
  to.CopyBlobFrom(from, disk->manifest.config);
  to.CopyBlobFrom(from, disk->blob);
  to.CopyBlobFrom(from, disk->descriptor);
  TagDisk(to, to_name, image, disk->descriptor);
  return true;
}

void WriteDiskFile(const Layout& layout, const StoredDisk& disk,
                   DiskFormat format, const std::string& path,
                   const std::string& scratch_dir) {
  std::string source = layout.BlobPath(disk.blob.digest);
  uint64_t size = 0;
  Digest actual = Sha256OfFile(source, &size);
  if (actual != disk.blob.digest ||
      size != static_cast<uint64_t>(disk.blob.size)) {
    throw EnvError(layout.dir() + ": the disk file " +
                   disk.blob.digest.ToString() + " is corrupt: its content (" +
                   std::to_string(size) + " bytes) has digest " +
                   actual.ToString());
  }
  std::string temp = TempPathBeside(path);
  try {
    if (format == disk.info.format) {
      CopySparse(source, temp);
    } else {
      if (!OnPath("qemu-img")) {
        throw EnvError(
            "qemu-img is not installed (Debian package qemu-utils); kiln "
            "needs it to write a " +
            std::string(DiskFormatName(disk.info.format)) + " disk as " +
            DiskFormatName(format));
      }
      ProcessResult r = RunProcess(
          {"qemu-img", "convert", "-f", DiskFormatName(disk.info.format), "-O",
           DiskFormatName(format), source, temp},
          "", 3600);
      if (r.exit_code != 0)
        throw EnvError("qemu-img convert failed: " + std::string(Trim(r.err)));
      FsyncPath(temp);
    }
    if (::rename(temp.c_str(), path.c_str()) != 0)
      throw SystemError("renaming " + temp + " to " + path, errno);
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
}

}  // namespace kiln
