// One pass from tar bytes to a stored layer blob: the uncompressed stream is
// hashed (diff_id) and fed to the compressor, whose output goes to the blob
// writer (which hashes it again: the blob digest). Nothing is held whole.
#pragma once

#include <memory>
#include <vector>

#include "compress/compressor.h"
#include "digest/digest.h"
#include "rootfs/entry.h"

namespace kiln {

class LayerEncoder : public ByteSink {
 public:
  LayerEncoder(const CompressionOptions& options, ByteSink& blob);

  void Write(const void* data, size_t n) override;
  // Flushes everything; returns the diff_id (SHA-256 of the uncompressed tar).
  Digest Finish();
  uint64_t uncompressed_bytes() const { return total_; }

 private:
  void Flush();

  std::unique_ptr<Compressor> compressor_;
  Sha256 diff_id_;
  std::vector<char> buffer_;  // batches the tar writer's small writes
  uint64_t total_ = 0;
};

}  // namespace kiln
