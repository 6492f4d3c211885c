#include "rootfs/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "core/error.h"

namespace kiln {

class SpoolSource : public ContentSource {
 public:
  SpoolSource(std::shared_ptr<const Spool> spool, uint64_t offset,
              std::string what)
      : spool_(std::move(spool)), offset_(offset), what_(std::move(what)) {}

  void CopyTo(ByteSink& sink, uint64_t size) const override {
    constexpr size_t kBuf = 1 << 20;
    static thread_local std::unique_ptr<char[]> buf(new char[kBuf]);
    uint64_t done = 0;
    while (done < size) {
      size_t want =
          size - done < kBuf ? static_cast<size_t>(size - done) : kBuf;
      ssize_t n = ::pread(spool_->fd_.get(), buf.get(), want,
                          static_cast<off_t>(offset_ + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw SystemError("reading spooled " + what_, errno);
      if (n == 0) throw InternalError("spool ended early for " + what_);
      sink.Write(buf.get(), static_cast<size_t>(n));
      done += static_cast<uint64_t>(n);
    }
  }
  std::string Describe() const override { return what_; }

 private:
  std::shared_ptr<const Spool> spool_;
  uint64_t offset_;
  std::string what_;
};

namespace {

class FdAppender : public ByteSink {
 public:
  FdAppender(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  void Write(const void* data, size_t n) override {
    WriteAll(fd_, data, n, what_);
    count += n;
  }
  uint64_t count = 0;

 private:
  int fd_;
  std::string what_;
};

}  // namespace

std::shared_ptr<Spool> Spool::Create(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    std::string tmpl = dir + "/.spool-XXXXXX";
    fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd >= 0) ::unlink(tmpl.c_str());
  }
  if (fd < 0) throw SystemError("creating a spool file in " + dir, errno);
  return std::shared_ptr<Spool>(new Spool(UniqueFd(fd)));
}

std::shared_ptr<const ContentSource> Spool::Append(
    const std::function<void(ByteSink&)>& fill, uint64_t expected_size,
    const std::string& what) {
  uint64_t offset = end_;
  FdAppender out(fd_.get(), "spool file");
  fill(out);
  uint64_t n = out.count;
  end_ += n;
  if (n != expected_size) {
    throw UserError(what + ": header says " + std::to_string(expected_size) +
                    " bytes, archive holds " + std::to_string(n));
  }
  return std::make_shared<SpoolSource>(shared_from_this(), offset, what);
}

}  // namespace kiln
