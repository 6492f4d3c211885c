#include "packages/deb.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "core/error.h"
#include "core/image_path.h"
#include "core/strings.h"

namespace kiln {
namespace {

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

constexpr uint64_t kMaxControl = 16 << 20;

}  // namespace

void ReadDeb(
    const std::string& path, const std::string& what, DebControl* control,
    const std::function<void(const TarHeader&, TarReader&)>& on_entry) {
  std::unique_ptr<struct archive, ArchiveFree> ar(archive_read_new());
  archive_read_support_format_ar(ar.get());
  auto fail = [&](const std::string& doing) {
    const char* m = archive_error_string(ar.get());
    return UserError(what + ": " + doing + ": " + (m ? m : "not a .deb"));
  };
  if (archive_read_open_filename(ar.get(), path.c_str(), 1 << 20) != ARCHIVE_OK)
    throw fail("opening");
  bool have_control = false, have_data = false;
  struct archive_entry* e = nullptr;
  while (true) {
    int r = archive_read_next_header(ar.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) throw fail("reading the ar archive");
    std::string name =
        archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    if (StartsWith(name, "control.tar")) {
      // Small: read whole, then walk it.
      std::string bytes;
      char buf[65536];
      la_ssize_t n;
      while ((n = archive_read_data(ar.get(), buf, sizeof buf)) > 0) {
        bytes.append(buf, static_cast<size_t>(n));
        if (bytes.size() > kMaxControl)
          throw UserError(what + ": control member is larger than 16 MiB");
      }
      if (n < 0) throw fail("reading " + name);
      bool given = false;
      auto reader = TarReader::OpenStream(
          [&](const void** out) -> long {
            if (given) return 0;
            given = true;
            *out = bytes.data();
            return static_cast<long>(bytes.size());
          },
          what + " " + name);
      TarHeader h;
      while (reader->Next(&h)) {
        std::string base(BaseName(h.name));
        if (h.type != EntryType::kFile) continue;
        if (h.size > kMaxControl) {  // it is read into memory
          throw UserError(what + ": " + name + ": " + Quote(h.name) +
                          " is larger than 16 MiB");
        }
        std::string content;
        StringSink sink(&content);
        reader->CopyData(sink);
        if (base == "control") {
          control->text = content;
          auto paragraphs = ParseControl(content, what + " DEBIAN/control");
          if (paragraphs.empty())
            throw UserError(what + ": empty DEBIAN/control");
          control->fields = paragraphs[0];
        } else if (base == "md5sums") {
          control->md5sums = content;
        } else if (base == "preinst" || base == "postinst" || base == "prerm" ||
                   base == "postrm" || base == "config" || base == "triggers") {
          control->scripts.push_back(base);
        }
      }
      have_control = true;
    } else if (StartsWith(name, "data.tar")) {
      if (!have_control)
        throw UserError(what + ": data.tar comes before control.tar");
      auto reader = TarReader::OpenStream(
          [&](const void** out) -> long {
            size_t size = 0;
            la_int64_t offset = 0;
            int rc = archive_read_data_block(ar.get(), out, &size, &offset);
            if (rc == ARCHIVE_EOF) return 0;
            if (rc < ARCHIVE_WARN) throw fail("reading " + name);
            return static_cast<long>(size);
          },
          what + " " + name);
      TarHeader h;
      while (reader->Next(&h)) on_entry(h, *reader);
      have_data = true;
    }
  }
  if (!have_control || !have_data)
    throw UserError(
        what + ": not a Debian package (no control.tar or data.tar member)");
}

}  // namespace kiln
