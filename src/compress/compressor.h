// Layer compression. Output bytes depend only on the input, the algorithm and
// the level, never on the thread count:
//  - gzip: the stream is cut into fixed 1 MiB blocks, each compressed
//    independently with libdeflate as one gzip member (RFC 1952 allows a
//    series of members; every gzip reader used for images accepts it).
//  - zstd: libzstd's multithreaded mode, always (its output is the same for
//    any worker count >= 1, unlike single-thread mode), without a pledged size.
#pragma once

#include <memory>

#include "rootfs/entry.h"
#include "spec/template.h"

namespace kiln {

struct CompressionOptions {
  Compression algorithm = Compression::kGzip;
  int level = 0;    // 0: the default (gzip 6, zstd 3)
  int threads = 0;  // 0: DefaultThreads()
};

class Compressor : public ByteSink {
 public:
  // Writes what is buffered and the stream's end to the output sink.
  virtual void Finish() = 0;
};

inline constexpr int kMaxGzipLevel = 12;  // libdeflate's range
inline constexpr int kMaxZstdLevel = 19;  // beyond: --ultra memory use
// 0 (the default) or a level the algorithm has.
bool ValidLevel(Compression algorithm, int level);
// The level used for `level` (0: the algorithm's default, gzip 6, zstd 3).
int EffectiveLevel(Compression algorithm, int level);

std::unique_ptr<Compressor> NewCompressor(const CompressionOptions& options,
                                          ByteSink& out);

// Size of the gzip blocks (uncompressed).
inline constexpr size_t kGzipBlockSize = 1 << 20;

}  // namespace kiln
