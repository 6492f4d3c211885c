#include "compress/compressor.h"

#include <libdeflate.h>
#include <zstd.h>

#include <cstring>
#include <deque>
#include <future>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"

namespace kiln {
namespace {

struct DeflateFree {
  void operator()(libdeflate_compressor* c) const {
    libdeflate_free_compressor(c);
  }
};

class GzipCompressor : public Compressor {
 public:
  GzipCompressor(int level, int threads, ByteSink& out)
      : level_(level),
        out_(out),
        pool_(threads),
        max_in_flight_(static_cast<size_t>(2 * threads + 1)) {
    block_.reserve(kGzipBlockSize);
  }

  ~GzipCompressor() override {
    for (auto& job : jobs_) job->done.wait();
  }

  void Write(const void* data, size_t n) override {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      size_t take = std::min(n, kGzipBlockSize - block_.size());
      block_.insert(block_.end(), p, p + take);
      p += take;
      n -= take;
      if (block_.size() == kGzipBlockSize) Submit();
    }
  }

  void Finish() override {
    if (!block_.empty() || !submitted_any_) Submit();
    while (!jobs_.empty()) EmitOldest();
  }

 private:
  struct Job {
    std::vector<char> in;
    std::vector<char> out;
    std::future<void> done;
  };

  void Submit() {
    auto job = std::make_unique<Job>();
    job->in.swap(block_);
    block_.reserve(kGzipBlockSize);
    Job* raw = job.get();
    int level = level_;
    job->done = pool_.Submit([raw, level] {
      // One compressor per worker thread and level, reused across blocks.
      thread_local std::unique_ptr<libdeflate_compressor, DeflateFree> c;
      thread_local int c_level = 0;  // 0: none allocated yet
      if (!c || c_level != level) {
        c.reset(libdeflate_alloc_compressor(level));
        c_level = c ? level : 0;
        if (!c)
          throw InternalError("libdeflate: cannot allocate a level " +
                              std::to_string(level) + " compressor");
      }
      raw->out.resize(libdeflate_gzip_compress_bound(c.get(), raw->in.size()));
      size_t n =
          libdeflate_gzip_compress(c.get(), raw->in.data(), raw->in.size(),
                                   raw->out.data(), raw->out.size());
      if (n == 0) throw InternalError("libdeflate: output buffer too small");
      raw->out.resize(n);
      std::vector<char>().swap(raw->in);
    });
    jobs_.push_back(std::move(job));
    submitted_any_ = true;
    if (jobs_.size() > max_in_flight_) EmitOldest();
  }

  void EmitOldest() {
    std::unique_ptr<Job> job = std::move(jobs_.front());
    jobs_.pop_front();
    job->done.get();
    out_.Write(job->out.data(), job->out.size());
  }

  int level_;
  ByteSink& out_;
  ThreadPool pool_;
  size_t max_in_flight_;
  std::vector<char> block_;
  std::deque<std::unique_ptr<Job>> jobs_;
  bool submitted_any_ = false;
};

constexpr int kZstdJobSize = 2 << 20;

class ZstdCompressor : public Compressor {
 public:
  ZstdCompressor(int level, int threads, ByteSink& out)
      : out_(out), cctx_(ZSTD_createCCtx()) {
    if (!cctx_) throw InternalError("zstd: cannot allocate a context");
    Check(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level),
          "level");
    Check(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1), "checksum");
    // Always the multithreaded mode: identical bytes for any worker count.
    size_t r = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_nbWorkers,
                                      threads < 1 ? 1 : threads);
    if (ZSTD_isError(r))
      throw InternalError("this libzstd has no multithreading support");
    // Smaller jobs than the default (8 MiB at level 3) bound memory; the size
    // is fixed, so the bytes still do not depend on the worker count.
    Check(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_jobSize, kZstdJobSize),
          "job size");
    buf_.resize(ZSTD_CStreamOutSize());
  }
  ~ZstdCompressor() override { ZSTD_freeCCtx(cctx_); }

  void Write(const void* data, size_t n) override {
    ZSTD_inBuffer in{data, n, 0};
    while (in.pos < in.size) Step(&in, ZSTD_e_continue);
  }

  void Finish() override {
    ZSTD_inBuffer in{nullptr, 0, 0};
    while (Step(&in, ZSTD_e_end) != 0) {
    }
  }

 private:
  size_t Step(ZSTD_inBuffer* in, ZSTD_EndDirective mode) {
    ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
    size_t left = ZSTD_compressStream2(cctx_, &out, in, mode);
    Check(left, "compressing");
    if (out.pos) out_.Write(buf_.data(), out.pos);
    return left;
  }
  static void Check(size_t r, const char* what) {
    if (ZSTD_isError(r))
      throw InternalError(std::string("zstd ") + what + ": " +
                          ZSTD_getErrorName(r));
  }

  ByteSink& out_;
  ZSTD_CCtx* cctx_;
  std::vector<char> buf_;
};

}  // namespace

int EffectiveLevel(Compression algorithm, int level) {
  if (level != 0) return level;
  return algorithm == Compression::kZstd ? 3 : 6;
}

bool ValidLevel(Compression algorithm, int level) {
  if (level == 0) return true;
  return algorithm == Compression::kZstd ? level >= 1 && level <= kMaxZstdLevel
                                         : level >= 1 && level <= kMaxGzipLevel;
}

std::unique_ptr<Compressor> NewCompressor(const CompressionOptions& options,
                                          ByteSink& out) {
  if (!ValidLevel(options.algorithm, options.level)) {
    throw InternalError("compression level " + std::to_string(options.level) +
                        " is out of range");
  }
  int threads = options.threads > 0 ? options.threads : DefaultThreads();
  if (options.algorithm == Compression::kZstd) {
    return std::make_unique<ZstdCompressor>(
        EffectiveLevel(options.algorithm, options.level), threads, out);
  }
  return std::make_unique<GzipCompressor>(
      EffectiveLevel(options.algorithm, options.level), threads, out);
}

}  // namespace kiln
