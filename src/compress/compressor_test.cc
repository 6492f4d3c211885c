#include "compress/compressor.h"

#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <random>

#include "core/temp_dir.h"
#include "digest/digest.h"
#include "tar/tar_reader.h"

namespace kiln {
namespace {

// Text-like data that compresses, a few gzip blocks long and not a multiple
// of the block size.
std::string Corpus(size_t n) {
  std::mt19937 rng(42);
  static const char* const kWords[] = {"layer ", "image ", "kiln ",   "digest ",
                                       "tar\n",  "0755 ",  "usr/bin/"};
  std::string s;
  while (s.size() < n) s += kWords[rng() % 7];
  s.resize(n);
  return s;
}

// Compresses `input`, fed in pieces of `piece` bytes.
std::string Compress(Compression algorithm, int threads,
                     const std::string& input, size_t piece) {
  std::string out;
  StringSink sink(&out);
  CompressionOptions o;
  o.algorithm = algorithm;
  o.threads = threads;
  auto c = NewCompressor(o, sink);
  for (size_t i = 0; i < input.size(); i += piece)
    c->Write(input.data() + i, std::min(piece, input.size() - i));
  c->Finish();
  return out;
}

std::string Decompressed(const std::string& blob) {
  TempDir dir;
  std::string path = dir.Write("blob", blob);
  std::string out;
  StringSink sink(&out);
  Decompress(path, sink, "blob");
  return out;
}

// Independent decoders: zlib's inflate, member after member (as Go's and
// Python's gzip readers do), and libzstd's streaming decoder.
std::string Gunzip(const std::string& blob) {
  std::string out;
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(blob.data()));
  z.avail_in = static_cast<uInt>(blob.size());
  char buf[65536];
  while (true) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    int r = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
    if (r == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      inflateReset(&z);  // the next member
      continue;
    }
    if (r != Z_OK) {
      ADD_FAILURE() << "inflate: " << r;
      break;
    }
  }
  inflateEnd(&z);
  return out;
}

std::string Unzstd(const std::string& blob) {
  std::string out;
  ZSTD_DStream* d = ZSTD_createDStream();
  ZSTD_inBuffer in{blob.data(), blob.size(), 0};
  char buf[65536];
  while (in.pos < in.size) {
    ZSTD_outBuffer o{buf, sizeof buf, 0};
    size_t r = ZSTD_decompressStream(d, &o, &in);
    if (ZSTD_isError(r)) {
      ADD_FAILURE() << ZSTD_getErrorName(r);
      break;
    }
    out.append(buf, o.pos);
  }
  ZSTD_freeDStream(d);
  return out;
}

std::string Decode(Compression c, const std::string& blob) {
  return c == Compression::kGzip ? Gunzip(blob) : Unzstd(blob);
}

class CompressorTest : public ::testing::TestWithParam<Compression> {};

TEST_P(CompressorTest, BytesDoNotDependOnThreadsOrWriteSizes) {
  std::string input = Corpus(3 * kGzipBlockSize + 12345);
  std::string one = Compress(GetParam(), 1, input, 1 << 16);
  EXPECT_EQ(Sha256Of(one), Sha256Of(Compress(GetParam(), 2, input, 4096)));
  EXPECT_EQ(Sha256Of(one), Sha256Of(Compress(GetParam(), 3, input, 1 << 20)));
  EXPECT_EQ(Sha256Of(one), Sha256Of(Compress(GetParam(), 8, input, 777)));
  EXPECT_LT(one.size(), input.size() / 2);
  EXPECT_EQ(Decompressed(one), input);  // libarchive, as kiln reads layers back
  EXPECT_EQ(Decode(GetParam(), one), input);
}

TEST_P(CompressorTest, EmptyInputIsAValidStream) {
  std::string blob = Compress(GetParam(), 2, "", 1);
  EXPECT_FALSE(blob.empty());
  EXPECT_EQ(Decode(GetParam(), blob), "");
}

INSTANTIATE_TEST_SUITE_P(All, CompressorTest,
                         ::testing::Values(Compression::kGzip,
                                           Compression::kZstd),
                         [](const auto& param_info) {
                           return std::string(
                               CompressionName(param_info.param));
                         });

TEST(Gzip, HeaderHasNoNameOrTime) {
  std::string blob = Compress(Compression::kGzip, 2, "hello", 5);
  ASSERT_GE(blob.size(), 10u);
  EXPECT_EQ(static_cast<unsigned char>(blob[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(blob[1]), 0x8b);
  EXPECT_EQ(blob[3], 0);  // no FNAME, FCOMMENT, FEXTRA
  EXPECT_EQ(blob.substr(4, 4), std::string(4, '\0'));  // MTIME 0
}

}  // namespace
}  // namespace kiln
