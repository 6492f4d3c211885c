#include "compress/layer_encoder.h"

#include <cstring>

namespace kiln {
namespace {
constexpr size_t kBatch = 256 << 10;
}  // namespace

LayerEncoder::LayerEncoder(const CompressionOptions& options, ByteSink& blob)
    : compressor_(NewCompressor(options, blob)) {
  buffer_.reserve(kBatch);
}

void LayerEncoder::Write(const void* data, size_t n) {
  total_ += n;
  if (n >= kBatch) {
    Flush();
    diff_id_.Update(data, n);
    compressor_->Write(data, n);
    return;
  }
  if (buffer_.size() + n > kBatch) Flush();
  const char* p = static_cast<const char*>(data);
  buffer_.insert(buffer_.end(), p, p + n);
}

void LayerEncoder::Flush() {
  if (buffer_.empty()) return;
  diff_id_.Update(buffer_.data(), buffer_.size());
  compressor_->Write(buffer_.data(), buffer_.size());
  buffer_.clear();
}

Digest LayerEncoder::Finish() {
  Flush();
  compressor_->Finish();
  return diff_id_.Finish();
}

}  // namespace kiln
