#include "rootfs/entry.h"

#include "core/error.h"

namespace kiln {
namespace {

class InlineSource : public ContentSource {
 public:
  explicit InlineSource(std::string bytes) : bytes_(std::move(bytes)) {}
  void CopyTo(ByteSink& sink, uint64_t size) const override {
    if (size != bytes_.size())
      throw InternalError("inline content size mismatch");
    sink.Write(bytes_.data(), bytes_.size());
  }
  std::string Describe() const override { return "inline content"; }

 private:
  std::string bytes_;
};

}  // namespace

const char* EntryTypeName(EntryType type) {
  switch (type) {
    case EntryType::kFile:
      return "file";
    case EntryType::kDir:
      return "directory";
    case EntryType::kSymlink:
      return "symlink";
    case EntryType::kHardlink:
      return "hardlink";
    case EntryType::kChar:
      return "character device";
    case EntryType::kBlock:
      return "block device";
    case EntryType::kFifo:
      return "fifo";
  }
  return "?";
}

std::string ContentSource::ReadAll(uint64_t size) const {
  std::string out;
  out.reserve(size);
  StringSink sink(&out);
  CopyTo(sink, size);
  return out;
}

std::shared_ptr<const ContentSource> InlineContent(std::string bytes) {
  return std::make_shared<InlineSource>(std::move(bytes));
}

}  // namespace kiln
