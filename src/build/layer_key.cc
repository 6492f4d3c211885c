#include "build/layer_key.h"

#include <algorithm>
#include <future>

#include "core/strings.h"
#include "core/thread_pool.h"
#include "oci/model.h"

namespace kiln {

using nlohmann::json;

namespace {

json Owner(const std::optional<OwnerSpec>& o) {
  return o ? json(o->text) : json(nullptr);
}
json Mode(const std::optional<uint32_t>& m) {
  return m ? json(*m) : json(nullptr);
}

// The spec as data, without host paths (a context may move between machines).
json SpecJson(const LayerSpec& s) {
  json files = json::array(), dirs = json::array(), links = json::array(),
       hard = json::array(), devices = json::array(), tarballs = json::array(),
       packages = json::array(), remove = json::array();
  for (const auto& f : s.files) {
    files.push_back(
        {{"src", f.src ? json(*f.src) : json(nullptr)},
         {"content",
          f.content ? json(Sha256Of(*f.content).ToString()) : json(nullptr)},
         {"dest", f.dest},
         {"intoDir", f.into_dir},
         {"mode", Mode(f.mode)},
         {"dirMode", Mode(f.dir_mode)},
         {"owner", Owner(f.owner)}});
  }
  for (const auto& d : s.dirs)
    dirs.push_back(
        {{"path", d.path}, {"mode", Mode(d.mode)}, {"owner", Owner(d.owner)}});
  for (const auto& l : s.symlinks)
    links.push_back(
        {{"path", l.path}, {"target", l.target}, {"owner", Owner(l.owner)}});
  for (const auto& h : s.hardlinks)
    hard.push_back({{"path", h.path}, {"target", h.target}});
  for (const auto& d : s.devices) {
    devices.push_back({{"path", d.path},
                       {"type", static_cast<int>(d.type)},
                       {"major", d.major},
                       {"minor", d.minor},
                       {"mode", Mode(d.mode)},
                       {"owner", Owner(d.owner)}});
  }
  for (const auto& t : s.tarballs) {
    json tarball = {{"sha256", t.sha256},
                    {"dest", t.dest},
                    {"allowDevices", t.allow_devices}};
    // Only when given, so the keys of tarballs that need neither stay as
    // they were. They decide whether the tarball is refused, so a hit must
    // not skip that check.
    if (t.allow_setuid) tarball["allowSetuid"] = true;
    if (t.max_unpacked_size) tarball["maxUnpackedSize"] = *t.max_unpacked_size;
    tarballs.push_back(std::move(tarball));
  }
  for (const auto& p : s.packages) {
    packages.push_back({{"name", p.name},
                        {"version", p.version},
                        {"architecture", p.architecture},
                        {"sha256", p.sha256},
                        {"handedOver", p.handed_over}});
  }
  for (const auto& r : s.remove) remove.push_back(r.path);
  return {{"files", files},       {"dirs", dirs},       {"symlinks", links},
          {"hardlinks", hard},    {"devices", devices}, {"tarballs", tarballs},
          {"packages", packages}, {"remove", remove}};
}

struct ContextFile {
  std::string part;   // "file SRC/REL"
  std::string host;   // to hash, or "" for what is not a regular file
  std::string value;  // for symlinks and directories: their description
  bool executable = false;
  StatCache::Stat stat{};  // of a regular file (zero: unknown)
};

// Every file a files: entry would copy, in a stable order.
void ListContext(ContextFs& fs, const std::string& host, const FileInfo& info,
                 const std::string& label, std::vector<ContextFile>* out,
                 int depth) {
  switch (info.type) {
    case FileInfo::Type::kFile:
      out->push_back({"file " + label, host, "", (info.mode & 0111) != 0,
                      StatCache::Stat{info.dev, info.ino, info.size,
                                      info.mtime_ns, info.ctime_ns}});
      return;
    case FileInfo::Type::kSymlink:
      out->push_back({"file " + label, "", "symlink " + info.link, false, {}});
      return;
    case FileInfo::Type::kOther:
      out->push_back({"file " + label, "", "special", false, {}});
      return;
    case FileInfo::Type::kDir: {
      if (depth > 0)
        out->push_back({"file " + label + "/", "", "directory", false, {}});
      auto children = fs.ListDirInfo(host);
      std::sort(children.begin(), children.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [name, child] : children) {
        ListContext(fs, host + "/" + name, child, label + "/" + name, out,
                    depth + 1);
      }
      return;
    }
  }
}

}  // namespace

std::string AccountsDigest(const AccountsSpec& a) {
  json groups = json::array(), users = json::array();
  for (const auto& g : a.groups)
    groups.push_back(
        {{"name", g.name}, {"gid", g.gid}, {"members", g.members}});
  for (const auto& u : a.users) {
    users.push_back({{"name", u.name},
                     {"uid", u.uid},
                     {"gid", u.gid ? json(*u.gid) : json(nullptr)},
                     {"home", u.home},
                     {"shell", u.shell},
                     {"gecos", u.gecos},
                     {"groups", u.groups},
                     {"createHome", u.create_home}});
  }
  return Sha256Of(CanonicalJson({{"groups", groups}, {"users", users}}))
      .ToString();
}

KeyParts LayerKeyParts(const LayerSpec& spec, const KeyContext& c) {
  KeyParts k;
  k.Add("encoding", std::to_string(kLayerEncodingVersion));
  k.Add("below", c.below);
  k.Add("buildDate", std::to_string(c.build_date));
  k.Add("compression", c.compression);
  k.Add("spec", Sha256Of(CanonicalJson(SpecJson(spec))).ToString());
  bool names = false;
  auto named = [&](const std::optional<OwnerSpec>& o) {
    if (o && !o->text.empty() &&
        !std::isdigit(static_cast<unsigned char>(o->text[0])))
      names = true;
    if (o && o->text.find(':') != std::string::npos &&
        !std::isdigit(static_cast<unsigned char>(o->text.back()))) {
      names = true;
    }
  };
  for (const auto& f : spec.files) named(f.owner);
  for (const auto& d : spec.dirs) named(d.owner);
  for (const auto& s : spec.symlinks) named(s.owner);
  for (const auto& d : spec.devices) named(d.owner);
  if (names) k.Add("accounts", c.accounts);
  for (const auto& t : spec.tarballs)
    k.Add("tarball " + t.src, "sha256:" + t.sha256);
  for (const auto& p : spec.packages)
    k.Add("package " + p.name, "sha256:" + p.sha256);

  std::vector<ContextFile> files;
  for (const auto& f : spec.files) {
    if (!f.src) continue;
    std::string host;
    try {
      host = ResolveContextPath(*c.fs, f.context_dir, *f.src);
    } catch (const Error& e) {
      // Planning will report it; the key just records the state.
      files.push_back({"file " + *f.src, "", "unresolvable", false});
      continue;
    }
    std::string label = *f.src;  // "conf/" names the folder conf
    while (label.size() > 1 && label.back() == '/') label.pop_back();
    if (auto info = c.fs->Lstat(host))
      ListContext(*c.fs, host, *info, label, &files, 0);
  }
  // Hash what the stat cache does not know, several files at once.
  std::vector<std::string> digests(files.size());
  std::vector<size_t> unknown;
  for (size_t i = 0; i < files.size(); ++i) {
    const ContextFile& f = files[i];
    if (f.host.empty()) continue;
    std::optional<Digest> known;
    if (f.stat.ino != 0) known = c.stat->Lookup(f.host, f.stat);
    if (known) {
      digests[i] = known->ToString();
    } else {
      unknown.push_back(i);
    }
  }
  if (!unknown.empty()) {
    ThreadPool pool(c.threads > 0 ? c.threads : DefaultThreads());
    std::vector<std::future<void>> done;
    for (size_t i : unknown) {
      done.push_back(pool.Submit([&, i] {
        const ContextFile& f = files[i];
        digests[i] = (f.stat.ino != 0 ? c.stat->Hash(f.host, f.stat)
                                      : c.stat->DigestOf(f.host))
                         .ToString();
      }));
    }
    for (auto& f : done) f.get();
  }
  for (size_t i = 0; i < files.size(); ++i) {
    const ContextFile& f = files[i];
    k.Add(f.part, f.host.empty()
                      ? f.value
                      : digests[i] + (f.executable ? " executable" : ""));
  }
  return k;
}

KeyParts AccountsKeyParts(const AccountsSpec& accounts, const KeyContext& c) {
  KeyParts k;
  k.Add("encoding", std::to_string(kLayerEncodingVersion));
  k.Add("below", c.below);
  k.Add("buildDate", std::to_string(c.build_date));
  k.Add("compression", c.compression);
  k.Add("accounts", AccountsDigest(accounts));
  return k;
}

}  // namespace kiln
