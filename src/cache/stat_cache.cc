#include "cache/stat_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <string_view>

#include "core/error.h"
#include "core/fs.h"
#include "core/strings.h"

namespace kiln {
namespace {

constexpr char kHeader[] = "kiln-stat-cache 2";
// Coarser than any file system's timestamps (FAT: 2 s).
constexpr int64_t kRacyNs = 2'000'000'000;

int64_t NowNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

std::string FirstLine(const std::string& path) {
  try {
    std::string s = ReadFile(path, 4096);
    return s.substr(0, s.find('\n'));
  } catch (const Error&) {
    return "";
  }
}

}  // namespace

std::string MachineIdentity() {
  return Sha256Of(FirstLine("/etc/machine-id") + "/" +
                  FirstLine("/proc/sys/kernel/random/boot_id"))
      .hex()
      .substr(0, 32);
}

StatCache::StatCache(std::string path)
    : path_(std::move(path)), machine_(MachineIdentity()) {
  if (!PathExists(path_)) return;
  std::string text;
  try {
    text = ReadFile(path_, 1 << 30);
  } catch (const Error&) {
    return;  // unreadable: start over
  }
  std::string_view rest(text);
  size_t eol = rest.find('\n');
  if (eol == std::string_view::npos ||
      rest.substr(0, eol) != std::string(kHeader) + " " + machine_)
    return;  // another machine's
  rest.remove_prefix(eol + 1);
  // "digest dev ino size mtime_ns ctime_ns hashed_ns path" per line.
  while (!rest.empty()) {
    eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 1);
    if (line.size() < 66 || line[64] != ' ') continue;
    std::string_view hex = line.substr(0, 64);
    const char* p = line.data() + 65;
    const char* end = line.data() + line.size();
    Stat st{};
    bool ok = true;
    auto number = [&](auto* out) {
      auto [next, ec] = std::from_chars(p, end, *out);
      ok = ok && ec == std::errc() && next < end && *next == ' ';
      p = ok ? next + 1 : end;
    };
    number(&st.dev);
    number(&st.ino);
    number(&st.size);
    number(&st.mtime_ns);
    number(&st.ctime_ns);
    int64_t hashed = 0;
    number(&hashed);
    if (!ok || p >= end) continue;
    try {
      known_[std::string(p, end)] = {st, Digest::FromHex(hex), hashed};
    } catch (const Error&) {
      // A damaged line: that file is hashed again.
    }
  }
}

Digest StatCache::DigestOf(const std::string& file) {
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) throw SystemError("stat " + file, errno);
  Stat s{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
         static_cast<uint64_t>(st.st_size),
         st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
         st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec};
  if (auto known = Lookup(file, s)) return *known;
  return Hash(file, s);
}

std::optional<Digest> StatCache::Lookup(const std::string& file,
                                        const Stat& s) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = known_.find(file);
  if (it != known_.end() && it->second.stat == s &&
      std::max(s.mtime_ns, s.ctime_ns) < it->second.hashed_ns - kRacyNs)
    return it->second.digest;
  return std::nullopt;
}

Digest StatCache::Hash(const std::string& file, const Stat& s) {
  int64_t hashed = NowNs();
  Digest d = Sha256OfFile(file);
  std::lock_guard<std::mutex> lock(mu_);
  ++hashed_;
  auto [it, fresh] = known_.try_emplace(file, Known{s, d, hashed});
  if (!fresh) {
    // Saved again only for news: another stat or digest, or a file that
    // has now aged out of its racy window (a file still in it is read again
    // next time anyway).
    Known& k = it->second;
    bool news = !(k.stat == s) || k.digest != d ||
                std::max(s.mtime_ns, s.ctime_ns) < hashed - kRacyNs;
    k = Known{s, d, hashed};
    if (!news) return d;
  }
  dirty_ = true;
  return d;
}

void StatCache::Save() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dirty_) return;
  std::string out = std::string(kHeader) + " " + machine_ + "\n";
  for (const auto& [file, k] : known_) {
    if (file.find('\n') != std::string::npos) continue;
    out += k.digest.hex() + " " + std::to_string(k.stat.dev) + " " +
           std::to_string(k.stat.ino) + " " + std::to_string(k.stat.size) +
           " " + std::to_string(k.stat.mtime_ns) + " " +
           std::to_string(k.stat.ctime_ns) + " " + std::to_string(k.hashed_ns) +
           " " + file + "\n";
  }
  MakeDirs(Dirname(path_));
  WriteHintFile(path_, out);
  dirty_ = false;
}

}  // namespace kiln
