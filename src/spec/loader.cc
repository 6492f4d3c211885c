// Reads template YAML into Template structs: the extends chain, args and
// --set, ${VAR} substitution, and every check that needs only the text.
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>

#include "core/fs.h"
#include "core/image_path.h"
#include "core/strings.h"
#include "digest/digest.h"
#include "spec/template.h"
#include "spec/vars.h"

namespace kiln {
namespace {

constexpr uint64_t kMaxTemplateBytes = 1 << 20;
constexpr size_t kMaxExtendsDepth = 16;
// yaml-cpp shares aliased nodes but walking them is exponential ("billion
// laughs"); every node visit counts against this budget.
constexpr size_t kMaxNodeVisits = 200000;

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min(
          {prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// One template file, parsed.
struct Doc {
  std::shared_ptr<const SourceFile> file;
  std::string dir;  // absolute folder of the file
  YAML::Node root;
};

// Reads one document's values with substitution, location tracking and type
// checks. Every accessor throws an error pointing at the offending node.
class Reader {
 public:
  Reader(const Doc& doc, const std::map<std::string, std::string>& vars)
      : doc_(doc), vars_(vars) {}

  SourceLocation Loc(const YAML::Node& node) const {
    SourceLocation loc;
    loc.file = doc_.file;
    YAML::Mark m = node.Mark();
    if (m.line >= 0) {
      loc.line = m.line + 1;
      loc.column = m.column + 1;
    }
    return loc;
  }

  void Visit() {
    if (++visits_ > kMaxNodeVisits) {
      throw ErrorAt(Loc(doc_.root), "template has more than " +
                                        std::to_string(kMaxNodeVisits) +
                                        " values (alias expansion?)");
    }
  }

  std::string Scalar(const YAML::Node& node, const std::string& what,
                     bool substitute = true) {
    Visit();
    if (!node.IsScalar()) {
      throw ErrorAt(Loc(node), what + " must be a string, not " + KindOf(node));
    }
    std::string value = substitute ? Substitute(node.Scalar(), vars_, Loc(node))
                                   : node.Scalar();
    // Aliases repeat a value without repeating its text: count what they
    // make, not what the file holds.
    value_bytes_ += value.size();
    if (value_bytes_ > kMaxValueBytes) {
      throw ErrorAt(Loc(node), "the template's values add up to more than " +
                                   std::to_string(kMaxValueBytes >> 20) +
                                   " MiB (aliases or ${} used many times?)");
    }
    return value;
  }

  uint64_t Uint(const YAML::Node& node, const std::string& what, uint64_t max) {
    std::string text = Scalar(node, what);
    auto v = ParseUint(text);
    if (!v || *v > max) {
      throw ErrorAt(Loc(node), what + " must be a whole number from 0 to " +
                                   std::to_string(max) + ", not " +
                                   Quote(text));
    }
    return *v;
  }

  bool Bool(const YAML::Node& node, const std::string& what) {
    std::string text = Scalar(node, what);
    if (text == "true") return true;
    if (text == "false") return false;
    throw ErrorAt(Loc(node),
                  what + " must be true or false, not " + Quote(text));
  }

  uint32_t Mode(const YAML::Node& node, const std::string& what) {
    std::string text = Scalar(node, what);
    bool ok = !text.empty() && text.size() <= 5;
    uint32_t mode = 0;
    for (char c : text) {
      ok = ok && c >= '0' && c <= '7';
      mode = mode * 8 + static_cast<uint32_t>(c - '0');
    }
    if (!ok || mode > 07777) {
      throw ErrorAt(
          Loc(node),
          what + " must be an octal mode such as \"0644\" or \"0755\", not " +
              Quote(text));
    }
    return mode;
  }

  // An absolute image path, normalised.
  std::string ImagePath(const YAML::Node& node, const std::string& what) {
    std::string text = Scalar(node, what);
    std::string out, why;
    if (!NormalizeImagePath(text, &out, &why)) {
      throw ErrorAt(Loc(node), what + " " + Quote(text) + " " + why);
    }
    return out;
  }

  std::vector<std::string> StringList(const YAML::Node& node,
                                      const std::string& what) {
    Visit();
    if (!node.IsSequence()) {
      throw ErrorAt(Loc(node),
                    what + " must be a list of strings, not " + KindOf(node));
    }
    std::vector<std::string> out;
    for (const auto& item : node) out.push_back(Scalar(item, what + " item"));
    return out;
  }

  std::map<std::string, std::string> StringMap(const YAML::Node& node,
                                               const std::string& what,
                                               bool substitute_values = true) {
    Visit();
    if (!node.IsMap()) {
      throw ErrorAt(Loc(node),
                    what + " must be a map of strings, not " + KindOf(node));
    }
    std::map<std::string, std::string> out;
    for (const auto& kv : node) {
      std::string key = Scalar(kv.first, what + " key", false);
      if (key.empty()) throw ErrorAt(Loc(kv.first), what + " has an empty key");
      if (out.count(key))
        throw ErrorAt(Loc(kv.first), what + " has " + Quote(key) + " twice");
      out[key] = Scalar(kv.second, what + "." + key, substitute_values);
    }
    return out;
  }

  // By value: callers pass m.Get(...)'s temporary, which dies before their
  // range-for loops run.
  YAML::Node Sequence(const YAML::Node& node, const std::string& what) {
    Visit();
    if (!node.IsSequence())
      throw ErrorAt(Loc(node), what + " must be a list, not " + KindOf(node));
    return node;
  }

  std::optional<OwnerSpec> Owner(const YAML::Node& node) {
    OwnerSpec owner{Scalar(node, "owner"), Loc(node)};
    static const std::regex kOwner(
        "^([0-9]+|[a-z_][a-z0-9_.-]*)(:([0-9]+|[a-z_][a-z0-9_.-]*))?$");
    if (!std::regex_match(owner.text, kOwner)) {
      throw ErrorAt(owner.loc,
                    "owner must be \"UID:GID\" or \"USER[:GROUP]\", not " +
                        Quote(owner.text));
    }
    for (const auto& part : Split(owner.text, ':')) {
      if (auto n = ParseUint(part); n && *n > 0x7fffffff) {
        throw ErrorAt(owner.loc, "owner id " + part + " is out of range");
      }
    }
    return owner;
  }

  static std::string KindOf(const YAML::Node& node) {
    switch (node.Type()) {
      case YAML::NodeType::Null:
        return "empty";
      case YAML::NodeType::Scalar:
        return "a string";
      case YAML::NodeType::Sequence:
        return "a list";
      case YAML::NodeType::Map:
        return "a map";
      default:
        return "undefined";
    }
  }

  const Doc& doc() const { return doc_; }

 private:
  const Doc& doc_;
  const std::map<std::string, std::string>& vars_;
  size_t visits_ = 0;
  size_t value_bytes_ = 0;
};

// A YAML map with a fixed set of allowed keys: unknown and repeated keys are
// errors with a suggestion.
class MapNode {
 public:
  MapNode(Reader& r, const YAML::Node& node, const std::string& what,
          std::initializer_list<const char*> allowed)
      : r_(r), node_(node), what_(what) {
    r.Visit();
    if (!node.IsMap()) {
      throw ErrorAt(r.Loc(node),
                    what + " must be a map, not " + Reader::KindOf(node));
    }
    for (const auto& kv : node) {
      r.Visit();
      if (!kv.first.IsScalar())
        throw ErrorAt(r.Loc(kv.first), "keys of " + what + " must be strings");
      std::string key = kv.first.Scalar();
      if (values_.count(key)) {
        throw ErrorAt(r.Loc(kv.first),
                      Quote(key) + " appears twice in " + what);
      }
      bool known = false;
      std::string best;
      size_t best_distance = 3;
      for (const char* a : allowed) {
        if (key == a) known = true;
        size_t d = EditDistance(key, a);
        if (d < best_distance) best_distance = d, best = a;
      }
      if (!known) {
        std::string hint =
            best.empty() ? "" : " (did you mean " + Quote(best) + "?)";
        std::vector<std::string> names(allowed.begin(), allowed.end());
        if (best.empty()) hint = " (known keys: " + Join(names, ", ") + ")";
        throw ErrorAt(r.Loc(kv.first),
                      "unknown key " + Quote(key) + " in " + what + hint);
      }
      values_[key] = kv.second;
      keys_[key] = kv.first;
    }
  }

  bool Has(const std::string& key) const {
    auto it = values_.find(key);
    return it != values_.end() && !it->second.IsNull();
  }
  YAML::Node Get(const std::string& key) const {
    auto it = values_.find(key);
    return it == values_.end() || it->second.IsNull() ? YAML::Node()
                                                      : it->second;
  }
  YAML::Node Required(const std::string& key) const {
    if (!Has(key)) throw ErrorAt(r_.Loc(node_), what_ + " needs " + Quote(key));
    return Get(key);
  }
  std::optional<std::string> OptString(const std::string& key) {
    if (!Has(key)) return std::nullopt;
    return r_.Scalar(Get(key), what_ + "." + key);
  }
  SourceLocation ValueLoc(const std::string& key) const {
    return Has(key) ? r_.Loc(Get(key)) : r_.Loc(node_);
  }
  FieldLocations Locations() const {
    FieldLocations locs;
    locs.entry = r_.Loc(node_);
    for (const auto& [k, v] : values_)
      locs.fields[k] = v.IsNull() ? r_.Loc(keys_.at(k)) : r_.Loc(v);
    return locs;
  }
  const std::string& what() const { return what_; }

 private:
  Reader& r_;
  YAML::Node node_;
  std::string what_;
  std::map<std::string, YAML::Node> values_;
  std::map<std::string, YAML::Node> keys_;
};

// What one file sets; merged over the files it extends.
struct Partial {
  std::optional<std::string> name, version, base, platform, compression;
  std::vector<LayerSpec> layers;
  AccountsSpec accounts;
  ConfigSpec config;
  std::map<std::string, std::string> annotations;
  std::optional<std::vector<std::string>> publish_tags;
  PackagesSpec packages;
  std::optional<DiskSpec> disk;
  FieldLocations locs;
};

std::string Context(const Doc& doc, const LoadOptions& options, bool top) {
  if (top && options.context) return AbsolutePath(*options.context);
  return doc.dir;
}

FileSpec ReadFile(Reader& r, const YAML::Node& node, const std::string& what,
                  const std::string& context) {
  MapNode m(r, node, what,
            {"src", "content", "dest", "mode", "dirMode", "owner"});
  FileSpec f;
  f.src = m.OptString("src");
  f.content = m.OptString("content");
  if (f.src.has_value() == f.content.has_value()) {
    throw ErrorAt(
        r.Loc(node),
        what + " needs exactly one of \"src\" (a context file) or \"content\"");
  }
  if (f.src && f.src->empty())
    throw ErrorAt(m.ValueLoc("src"), what + ".src is empty");
  if (f.src && (*f.src)[0] == '/') {
    throw ErrorAt(m.ValueLoc("src"),
                  what + ".src " + Quote(*f.src) +
                      " must be relative to the build context");
  }
  f.dest = r.ImagePath(m.Required("dest"), what + ".dest");
  f.into_dir = EndsWith(r.Scalar(m.Get("dest"), what + ".dest"), "/");
  if (f.dest.empty() && f.content)
    throw ErrorAt(m.ValueLoc("dest"), what + ".dest cannot be / for content");
  if (m.Has("mode")) f.mode = r.Mode(m.Get("mode"), what + ".mode");
  if (m.Has("dirMode"))
    f.dir_mode = r.Mode(m.Get("dirMode"), what + ".dirMode");
  f.owner = (m.Has("owner") ? r.Owner(m.Get("owner")) : std::nullopt);
  f.context_dir = context;
  f.locs = m.Locations();
  return f;
}

DirSpec ReadDir(Reader& r, const YAML::Node& node, const std::string& what) {
  DirSpec d;
  if (node.IsScalar()) {  // shorthand: "- /var/lib/app"
    d.path = r.ImagePath(node, what);
    d.locs.entry = r.Loc(node);
    d.locs.fields["path"] = r.Loc(node);
  } else {
    MapNode m(r, node, what, {"path", "mode", "owner"});
    d.path = r.ImagePath(m.Required("path"), what + ".path");
    if (m.Has("mode")) d.mode = r.Mode(m.Get("mode"), what + ".mode");
    d.owner = (m.Has("owner") ? r.Owner(m.Get("owner")) : std::nullopt);
    d.locs = m.Locations();
  }
  if (d.path.empty()) throw ErrorAt(d.locs.entry, what + " cannot be / itself");
  return d;
}

LayerSpec ReadLayer(Reader& r, const YAML::Node& node, size_t index,
                    const std::string& context) {
  std::string what = "layers[" + std::to_string(index) + "]";
  MapNode m(r, node, what,
            {"name", "files", "dirs", "symlinks", "hardlinks", "devices",
             "tarballs", "remove"});
  LayerSpec layer;
  layer.name =
      m.OptString("name").value_or("layer-" + std::to_string(index + 1));
  if (layer.name.empty())
    throw ErrorAt(m.ValueLoc("name"), what + ".name is empty");
  what = "layer " + Quote(layer.name);
  layer.locs = m.Locations();
  auto each = [&](const char* key, auto&& fn) {
    if (!m.Has(key)) return;
    const YAML::Node& seq = r.Sequence(m.Get(key), what + " " + key);
    size_t i = 0;
    for (const auto& item : seq) {
      r.Visit();
      fn(item, what + " " + key + "[" + std::to_string(i++) + "]");
    }
  };
  each("files", [&](const YAML::Node& n, const std::string& w) {
    layer.files.push_back(ReadFile(r, n, w, context));
  });
  each("dirs", [&](const YAML::Node& n, const std::string& w) {
    layer.dirs.push_back(ReadDir(r, n, w));
  });
  each("symlinks", [&](const YAML::Node& n, const std::string& w) {
    MapNode e(r, n, w, {"path", "target", "owner"});
    SymlinkSpec s;
    s.path = r.ImagePath(e.Required("path"), w + ".path");
    s.target = r.Scalar(e.Required("target"), w + ".target");
    if (s.path.empty())
      throw ErrorAt(e.ValueLoc("path"), w + ".path cannot be /");
    if (s.target.empty())
      throw ErrorAt(e.ValueLoc("target"), w + ".target is empty");
    s.owner = (e.Has("owner") ? r.Owner(e.Get("owner")) : std::nullopt);
    s.locs = e.Locations();
    layer.symlinks.push_back(std::move(s));
  });
  each("hardlinks", [&](const YAML::Node& n, const std::string& w) {
    MapNode e(r, n, w, {"path", "target"});
    HardlinkSpec h;
    h.path = r.ImagePath(e.Required("path"), w + ".path");
    h.target = r.ImagePath(e.Required("target"), w + ".target");
    if (h.path.empty() || h.target.empty())
      throw ErrorAt(e.Locations().entry, w + " cannot involve /");
    h.locs = e.Locations();
    layer.hardlinks.push_back(std::move(h));
  });
  each("devices", [&](const YAML::Node& n, const std::string& w) {
    MapNode e(r, n, w, {"path", "type", "major", "minor", "mode", "owner"});
    DeviceSpec d;
    d.path = r.ImagePath(e.Required("path"), w + ".path");
    std::string type = r.Scalar(e.Required("type"), w + ".type");
    if (type == "char") {
      d.type = DeviceType::kChar;
    } else if (type == "block") {
      d.type = DeviceType::kBlock;
    } else if (type == "fifo") {
      d.type = DeviceType::kFifo;
    } else {
      throw ErrorAt(
          e.ValueLoc("type"),
          w + ".type must be char, block or fifo, not " + Quote(type));
    }
    if (d.type != DeviceType::kFifo) {
      d.major = static_cast<uint32_t>(
          r.Uint(e.Required("major"), w + ".major", 4095));
      d.minor = static_cast<uint32_t>(
          r.Uint(e.Required("minor"), w + ".minor", 1048575));
    }
    if (e.Has("mode")) d.mode = r.Mode(e.Get("mode"), w + ".mode");
    d.owner = (e.Has("owner") ? r.Owner(e.Get("owner")) : std::nullopt);
    d.locs = e.Locations();
    layer.devices.push_back(std::move(d));
  });
  each("tarballs", [&](const YAML::Node& n, const std::string& w) {
    MapNode e(r, n, w,
              {"src", "sha256", "dest", "allowDevices", "allowSetuid",
               "maxUnpackedSize"});
    TarballSpec t;
    t.src = r.Scalar(e.Required("src"), w + ".src");
    if (t.src.empty() || t.src[0] == '/') {
      throw ErrorAt(e.ValueLoc("src"),
                    w + ".src must be a path relative to the build context");
    }
    if (!e.Has("sha256")) {
      throw ErrorAt(e.Locations().entry,
                    w +
                        " needs \"sha256\": tarballs are pinned by digest "
                        "(sha256sum " +
                        t.src + ")");
    }
    t.sha256 = r.Scalar(e.Get("sha256"), w + ".sha256");
    if (StartsWith(t.sha256, "sha256:")) t.sha256 = t.sha256.substr(7);
    bool hex = t.sha256.size() == 64;
    for (char c : t.sha256)
      hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!hex)
      throw ErrorAt(e.ValueLoc("sha256"),
                    w + ".sha256 must be 64 lowercase hex digits");
    t.dest = e.Has("dest") ? r.ImagePath(e.Get("dest"), w + ".dest") : "";
    if (e.Has("allowDevices"))
      t.allow_devices = r.Bool(e.Get("allowDevices"), w + ".allowDevices");
    if (e.Has("allowSetuid"))
      t.allow_setuid = r.Bool(e.Get("allowSetuid"), w + ".allowSetuid");
    if (e.Has("maxUnpackedSize")) {
      std::string text =
          r.Scalar(e.Get("maxUnpackedSize"), w + ".maxUnpackedSize");
      t.max_unpacked_size = ParseByteSize(text);
      if (!t.max_unpacked_size || *t.max_unpacked_size == 0) {
        throw ErrorAt(e.ValueLoc("maxUnpackedSize"),
                      w +
                          ".maxUnpackedSize must be a size such as 20GiB, "
                          "not " +
                          Quote(text));
      }
    }
    t.context_dir = context;
    t.locs = e.Locations();
    layer.tarballs.push_back(std::move(t));
  });
  each("remove", [&](const YAML::Node& n, const std::string& w) {
    RemoveSpec rm{r.ImagePath(n, w), r.Loc(n)};
    if (rm.path.empty()) throw ErrorAt(rm.loc, w + " cannot remove / itself");
    layer.remove.push_back(std::move(rm));
  });
  return layer;
}

AccountsSpec ReadAccounts(Reader& r, const YAML::Node& node) {
  MapNode m(r, node, "accounts", {"groups", "users"});
  AccountsSpec a;
  static const std::regex kName("^[a-z_][a-z0-9_.-]{0,31}$");
  auto name = [&](MapNode& e, const std::string& w) {
    std::string n = r.Scalar(e.Required("name"), w + ".name");
    if (!std::regex_match(n, kName)) {
      throw ErrorAt(e.ValueLoc("name"),
                    w + ".name " + Quote(n) +
                        " is not a valid account name (lowercase letters, "
                        "digits, _ . -)");
    }
    return n;
  };
  if (m.Has("groups")) {
    size_t i = 0;
    for (const auto& n : r.Sequence(m.Get("groups"), "accounts.groups")) {
      std::string w = "accounts.groups[" + std::to_string(i++) + "]";
      MapNode e(r, n, w, {"name", "gid", "members"});
      GroupSpec g;
      g.name = name(e, w);
      g.gid = static_cast<uint32_t>(
          r.Uint(e.Required("gid"), w + ".gid", 0x7fffffff));
      if (e.Has("members"))
        g.members = r.StringList(e.Get("members"), w + ".members");
      g.locs = e.Locations();
      a.groups.push_back(std::move(g));
    }
  }
  if (m.Has("users")) {
    size_t i = 0;
    for (const auto& n : r.Sequence(m.Get("users"), "accounts.users")) {
      std::string w = "accounts.users[" + std::to_string(i++) + "]";
      MapNode e(r, n, w,
                {"name", "uid", "gid", "home", "shell", "gecos", "groups",
                 "createHome"});
      UserSpec u;
      u.name = name(e, w);
      u.uid = static_cast<uint32_t>(
          r.Uint(e.Required("uid"), w + ".uid", 0x7fffffff));
      if (e.Has("gid"))
        u.gid =
            static_cast<uint32_t>(r.Uint(e.Get("gid"), w + ".gid", 0x7fffffff));
      u.home = e.Has("home") ? "/" + r.ImagePath(e.Get("home"), w + ".home")
                             : (u.uid == 0 ? "/root" : "/home/" + u.name);
      u.shell = e.OptString("shell").value_or("/sbin/nologin");
      u.gecos = e.OptString("gecos").value_or("");
      for (const std::string* field : {&u.shell, &u.gecos}) {
        if (field->find_first_of(":\n") != std::string::npos) {
          throw ErrorAt(e.Locations().entry,
                        w + ": shell and gecos cannot contain ':' or newlines");
        }
      }
      if (e.Has("groups"))
        u.groups = r.StringList(e.Get("groups"), w + ".groups");
      if (e.Has("createHome"))
        u.create_home = r.Bool(e.Get("createHome"), w + ".createHome");
      u.locs = e.Locations();
      a.users.push_back(std::move(u));
    }
  }
  return a;
}

const std::set<std::string>& Signals() {
  static const std::set<std::string> kSignals = {
      "SIGABRT", "SIGALRM", "SIGBUS",    "SIGCHLD",  "SIGCONT", "SIGFPE",
      "SIGHUP",  "SIGILL",  "SIGINT",    "SIGIO",    "SIGKILL", "SIGPIPE",
      "SIGPROF", "SIGPWR",  "SIGQUIT",   "SIGSEGV",  "SIGSTOP", "SIGSYS",
      "SIGTERM", "SIGTRAP", "SIGTSTP",   "SIGTTIN",  "SIGTTOU", "SIGURG",
      "SIGUSR1", "SIGUSR2", "SIGVTALRM", "SIGWINCH", "SIGXCPU", "SIGXFSZ"};
  return kSignals;
}

ConfigSpec ReadConfig(Reader& r, const YAML::Node& node) {
  MapNode m(r, node, "config",
            {"entrypoint", "cmd", "env", "workdir", "user", "labels",
             "exposedPorts", "volumes", "stopSignal"});
  ConfigSpec c;
  if (m.Has("entrypoint"))
    c.entrypoint = r.StringList(m.Get("entrypoint"), "config.entrypoint");
  if (m.Has("cmd")) c.cmd = r.StringList(m.Get("cmd"), "config.cmd");
  if (m.Has("env")) {
    c.env = r.StringMap(m.Get("env"), "config.env");
    for (const auto& [k, v] : c.env) {
      if (k.find('=') != std::string::npos) {
        throw ErrorAt(m.ValueLoc("env"),
                      "config.env key " + Quote(k) + " cannot contain '='");
      }
    }
  }
  if (m.Has("workdir")) {
    std::string w = r.Scalar(m.Get("workdir"), "config.workdir");
    if (w.empty() || w[0] != '/')
      throw ErrorAt(m.ValueLoc("workdir"), "config.workdir must be absolute");
    c.workdir = w;
  }
  c.user = m.OptString("user");
  if (m.Has("labels")) c.labels = r.StringMap(m.Get("labels"), "config.labels");
  if (m.Has("exposedPorts")) {
    static const std::regex kPort("^([0-9]{1,5})(/(tcp|udp|sctp))?$");
    for (const auto& n :
         r.Sequence(m.Get("exposedPorts"), "config.exposedPorts")) {
      std::string p = r.Scalar(n, "config.exposedPorts item");
      std::smatch match;
      if (!std::regex_match(p, match, kPort) || std::stoi(match[1]) < 1 ||
          std::stoi(match[1]) > 65535) {
        throw ErrorAt(r.Loc(n),
                      "port " + Quote(p) +
                          " must be PORT or PORT/tcp|udp|sctp (1-65535)");
      }
      c.exposed_ports.push_back(match[2].matched ? p : p + "/tcp");
    }
  }
  if (m.Has("volumes")) {
    for (const auto& n : r.Sequence(m.Get("volumes"), "config.volumes")) {
      c.volumes.push_back("/" + r.ImagePath(n, "config.volumes item"));
    }
  }
  if (m.Has("stopSignal")) {
    std::string s = r.Scalar(m.Get("stopSignal"), "config.stopSignal");
    if (!Signals().count(s) && !ParseUint(s)) {
      throw ErrorAt(
          m.ValueLoc("stopSignal"),
          "config.stopSignal " + Quote(s) +
              " is not a signal name (SIGTERM, SIGINT, ...) or number");
    }
    c.stop_signal = s;
  }
  c.locs = m.Locations();
  return c;
}

PackagesSpec ReadPackages(Reader& r, const YAML::Node& node,
                          const std::string& dir) {
  MapNode m(
      r, node, "packages",
      {"repositories", "include", "exclude", "prune", "layering", "maxLayers"});
  PackagesSpec p;
  p.locs = m.Locations();
  if (m.Has("repositories")) {
    size_t i = 0;
    for (const auto& n :
         r.Sequence(m.Get("repositories"), "packages.repositories")) {
      std::string w = "packages.repositories[" + std::to_string(i++) + "]";
      MapNode e(
          r, n, w,
          {"name", "url", "suite", "components", "architecture", "keyring"});
      RepositorySpec repo;
      repo.name = e.OptString("name").value_or("repo" + std::to_string(i));
      repo.url = r.Scalar(e.Required("url"), w + ".url");
      while (EndsWith(repo.url, "/")) repo.url.pop_back();
      if (!StartsWith(repo.url, "http://") &&
          !StartsWith(repo.url, "https://")) {
        throw ErrorAt(e.ValueLoc("url"),
                      w + ".url must be an http:// or https:// URL");
      }
      repo.suite = r.Scalar(e.Required("suite"), w + ".suite");
      repo.components = e.Has("components") ? r.StringList(e.Get("components"),
                                                           w + ".components")
                                            : std::vector<std::string>{"main"};
      repo.architecture = e.OptString("architecture").value_or("");
      std::string keyring = r.Scalar(e.Required("keyring"), w + ".keyring");
      repo.keyring = keyring[0] == '/' ? keyring : dir + "/" + keyring;
      repo.keyring_as_written = keyring;
      for (const auto& other : p.repositories) {
        if (other.name == repo.name)
          throw ErrorAt(e.ValueLoc("name"),
                        "two repositories are named " + Quote(repo.name));
      }
      repo.locs = e.Locations();
      p.repositories.push_back(std::move(repo));
    }
  }
  if (m.Has("include")) {
    for (const auto& n : r.Sequence(m.Get("include"), "packages.include")) {
      std::string text = r.Scalar(n, "packages.include item");
      PackageIncludeSpec inc{text, "", r.Loc(n)};
      if (size_t eq = text.find('='); eq != std::string::npos) {
        inc.name = text.substr(0, eq);
        inc.version = text.substr(eq + 1);
      }
      static const std::regex kPackage("^[a-z0-9][a-z0-9+.-]+$");
      if (!std::regex_match(inc.name, kPackage)) {
        throw ErrorAt(inc.loc, "packages.include: " + Quote(inc.name) +
                                   " is not a Debian package name");
      }
      p.include.push_back(std::move(inc));
    }
  }
  if (m.Has("exclude"))
    p.exclude = r.StringList(m.Get("exclude"), "packages.exclude");
  if (m.Has("prune")) p.prune = r.StringList(m.Get("prune"), "packages.prune");
  if (m.Has("layering")) {
    std::string l = r.Scalar(m.Get("layering"), "packages.layering");
    if (l == "single") {
      p.layering = PackageLayering::kSingle;
    } else if (l == "per-package") {
      p.layering = PackageLayering::kPerPackage;
    } else if (l == "grouped") {
      p.layering = PackageLayering::kGrouped;
    } else {
      throw ErrorAt(
          m.ValueLoc("layering"),
          "packages.layering must be single, per-package or grouped, not " +
              Quote(l));
    }
  }
  if (m.Has("maxLayers"))
    p.max_layers =
        static_cast<int>(r.Uint(m.Get("maxLayers"), "packages.maxLayers", 100));
  if (p.layering == PackageLayering::kGrouped && p.max_layers < 1) {
    throw ErrorAt(m.Locations().entry,
                  "packages.layering grouped needs maxLayers (1 to 100)");
  }
  return p;
}

// A size such as "2GiB", "512M" or "auto" (0), rounded up to a whole MiB.
uint64_t DiskSize(Reader& r, const YAML::Node& node, const std::string& what) {
  std::string text = r.Scalar(node, what);
  if (text == "auto") return 0;
  auto bytes = ParseByteSize(text);
  constexpr uint64_t kMiB = 1 << 20;
  if (!bytes || *bytes == 0 || *bytes > (uint64_t{1} << 50)) {
    throw ErrorAt(r.Loc(node), what +
                                   " must be auto or a size such as 2GiB or "
                                   "512MiB (at most 1 PiB), not " +
                                   Quote(text));
  }
  return (*bytes + kMiB - 1) / kMiB * kMiB;
}

template <typename E, size_t N>
E Choice(Reader& r, const MapNode& m, const std::string& key,
         const std::pair<const char*, E> (&choices)[N], E fallback,
         const std::string& unsupported_why = "") {
  if (!m.Has(key)) return fallback;
  std::string text = r.Scalar(m.Get(key), m.what() + "." + key);
  std::vector<std::string> names;
  for (const auto& [name, value] : choices) {
    if (text == name) return value;
    names.push_back(name);
  }
  std::string why = unsupported_why.empty() ? "" : " (" + unsupported_why + ")";
  throw ErrorAt(m.ValueLoc(key),
                m.what() + "." + key + " must be " +
                    Join({names.begin(), names.end() - 1}, ", ") + " or " +
                    names.back() + ", not " + Quote(text) + why);
}

DiskSpec ReadDisk(Reader& r, const YAML::Node& node) {
  MapNode m(r, node, "disk",
            {"format", "size", "espSize", "filesystem", "boot", "kernel",
             "cmdline", "initrd", "bootloader"});
  DiskSpec d;
  d.locs = m.Locations();
  static const std::pair<const char*, DiskFormat> kFormats[] = {
      {"raw", DiskFormat::kRaw}, {"qcow2", DiskFormat::kQcow2}};
  d.format = Choice(r, m, "format", kFormats, DiskFormat::kRaw);
  static const std::pair<const char*, DiskFilesystem> kFilesystems[] = {
      {"ext4", DiskFilesystem::kExt4},
      {"erofs", DiskFilesystem::kErofs},
      {"squashfs", DiskFilesystem::kSquashfs}};
  d.filesystem =
      Choice(r, m, "filesystem", kFilesystems, DiskFilesystem::kExt4);
  std::string boot = m.OptString("boot").value_or("systemd-boot");
  if (boot == "bios" || boot == "grub" || boot == "uki") {
    throw ErrorAt(m.ValueLoc("boot"),
                  "disk.boot " + Quote(boot) +
                      " is not supported: kiln boots through UEFI with "
                      "systemd-boot (boot: systemd-boot), or writes a disk "
                      "without a boot loader (boot: none)");
  }
  static const std::pair<const char*, DiskBoot> kBoots[] = {
      {"systemd-boot", DiskBoot::kSystemdBoot}, {"none", DiskBoot::kNone}};
  d.boot = Choice(r, m, "boot", kBoots, DiskBoot::kSystemdBoot);
  if (m.Has("size")) d.size = DiskSize(r, m.Get("size"), "disk.size");
  if (m.Has("espSize"))
    d.esp_size = DiskSize(r, m.Get("espSize"), "disk.espSize");
  if (m.Has("kernel")) d.kernel = r.ImagePath(m.Get("kernel"), "disk.kernel");
  d.cmdline = m.OptString("cmdline").value_or("");
  if (d.cmdline.find_first_of("\n\r") != std::string::npos)
    throw ErrorAt(m.ValueLoc("cmdline"), "disk.cmdline must be one line");
  for (const char* ours : {"root=", "rootfstype="}) {
    for (const auto& word : Split(d.cmdline, ' ')) {
      if (StartsWith(word, ours)) {
        throw ErrorAt(m.ValueLoc("cmdline"),
                      "disk.cmdline sets " + std::string(ours) +
                          ", which kiln sets to the disk's root partition");
      }
    }
  }
  if (m.Has("bootloader"))
    d.bootloader = r.ImagePath(m.Get("bootloader"), "disk.bootloader");
  if (m.Has("initrd")) {
    MapNode i(r, m.Get("initrd"), "disk.initrd", {"modules", "busybox"});
    if (i.Has("modules"))
      d.modules = r.StringList(i.Get("modules"), "disk.initrd.modules");
    if (i.Has("busybox"))
      d.busybox = r.ImagePath(i.Get("busybox"), "disk.initrd.busybox");
  }
  if (d.boot == DiskBoot::kNone) {
    for (const char* key :
         {"kernel", "cmdline", "initrd", "bootloader", "espSize"}) {
      if (m.Has(key)) {
        throw ErrorAt(m.ValueLoc(key),
                      "disk." + std::string(key) +
                          " needs a boot loader, and disk.boot is none");
      }
    }
  }
  return d;
}

Partial ReadPartial(Reader& r, const std::string& context) {
  MapNode m(r, r.doc().root, "the template",
            {"apiVersion", "name", "version", "base", "platform", "compression",
             "args", "extends", "layers", "accounts", "config", "annotations",
             "publish", "packages", "disk"});
  Partial p;
  p.locs = m.Locations();
  p.name = m.OptString("name");
  p.version = m.OptString("version");
  p.base = m.OptString("base");
  p.platform = m.OptString("platform");
  p.compression = m.OptString("compression");
  if (m.Has("layers")) {
    size_t i = 0;
    for (const auto& n : r.Sequence(m.Get("layers"), "layers"))
      p.layers.push_back(ReadLayer(r, n, i++, context));
  }
  if (m.Has("accounts")) p.accounts = ReadAccounts(r, m.Get("accounts"));
  if (m.Has("config")) p.config = ReadConfig(r, m.Get("config"));
  if (m.Has("annotations"))
    p.annotations = r.StringMap(m.Get("annotations"), "annotations");
  if (m.Has("packages"))
    p.packages = ReadPackages(r, m.Get("packages"), r.doc().dir);
  if (m.Has("disk")) p.disk = ReadDisk(r, m.Get("disk"));
  if (m.Has("publish")) {
    MapNode pub(r, m.Get("publish"), "publish", {"tags"});
    std::vector<std::string> tags;
    if (pub.Has("tags")) tags = r.StringList(pub.Get("tags"), "publish.tags");
    for (const auto& t : tags) {
      if (!IsTag(t))
        throw ErrorAt(pub.ValueLoc("tags"),
                      "publish.tags: " + Quote(t) + " is not a valid tag");
    }
    p.publish_tags = tags;
  }
  return p;
}

// Child values override parent values; lists of layers append.
void MergeInto(Partial& base, Partial&& child) {
  for (auto [field, from] : {std::pair{&base.name, &child.name},
                             {&base.version, &child.version},
                             {&base.base, &child.base},
                             {&base.platform, &child.platform},
                             {&base.compression, &child.compression}}) {
    if (*from) *field = std::move(*from);
  }
  for (auto& [k, v] : child.locs.fields) base.locs.fields[k] = v;
  base.locs.entry = child.locs.entry;
  for (auto& l : child.layers) base.layers.push_back(std::move(l));
  auto merge_named = [](auto& into, auto& from) {
    for (auto& item : from) {
      auto it = std::find_if(into.begin(), into.end(),
                             [&](auto& x) { return x.name == item.name; });
      if (it != into.end()) {
        *it = std::move(item);
      } else {
        into.push_back(std::move(item));
      }
    }
  };
  merge_named(base.accounts.groups, child.accounts.groups);
  merge_named(base.accounts.users, child.accounts.users);
  ConfigSpec& c = base.config;
  ConfigSpec& o = child.config;
  if (o.entrypoint) {
    c.entrypoint = o.entrypoint;
    // As in a Dockerfile, a new entrypoint drops an inherited cmd.
    if (!o.cmd) c.cmd.reset();
  }
  if (o.cmd) c.cmd = o.cmd;
  if (o.workdir) c.workdir = o.workdir;
  if (o.user) c.user = o.user;
  if (o.stop_signal) c.stop_signal = o.stop_signal;
  for (auto& [k, v] : o.env) c.env[k] = v;
  for (auto& [k, v] : o.labels) c.labels[k] = v;
  for (auto& p : o.exposed_ports) {
    if (std::find(c.exposed_ports.begin(), c.exposed_ports.end(), p) ==
        c.exposed_ports.end())
      c.exposed_ports.push_back(p);
  }
  for (auto& v : o.volumes) {
    if (std::find(c.volumes.begin(), c.volumes.end(), v) == c.volumes.end())
      c.volumes.push_back(v);
  }
  for (auto& [k, v] : o.locs.fields) c.locs.fields[k] = v;
  for (auto& [k, v] : child.annotations) base.annotations[k] = v;
  if (child.publish_tags) base.publish_tags = std::move(child.publish_tags);
  // A disk section is whole: the child's replaces its parent's.
  if (child.disk) base.disk = std::move(child.disk);
  // Packages: repositories and includes add up (a child's entry of the same
  // name replaces its parent's); excludes and prunes add up; the child's
  // layering wins.
  PackagesSpec& bp = base.packages;
  PackagesSpec& cp = child.packages;
  for (auto& repo : cp.repositories) {
    auto it = std::find_if(bp.repositories.begin(), bp.repositories.end(),
                           [&](auto& x) { return x.name == repo.name; });
    if (it != bp.repositories.end()) {
      *it = std::move(repo);
    } else {
      bp.repositories.push_back(std::move(repo));
    }
  }
  for (auto& inc : cp.include) {
    auto it = std::find_if(bp.include.begin(), bp.include.end(),
                           [&](auto& x) { return x.name == inc.name; });
    if (it != bp.include.end()) {
      *it = std::move(inc);
    } else {
      bp.include.push_back(std::move(inc));
    }
  }
  for (auto& e : cp.exclude) {
    if (std::find(bp.exclude.begin(), bp.exclude.end(), e) == bp.exclude.end())
      bp.exclude.push_back(e);
  }
  for (auto& e : cp.prune) {
    if (std::find(bp.prune.begin(), bp.prune.end(), e) == bp.prune.end())
      bp.prune.push_back(e);
  }
  if (cp.locs.fields.count("layering")) bp.layering = cp.layering;
  if (cp.locs.fields.count("maxLayers")) bp.max_layers = cp.max_layers;
  if (!cp.locs.fields.empty()) bp.locs = cp.locs;
}

Doc ParseDoc(const std::string& path, const std::string& shown) {
  auto file = std::make_shared<SourceFile>();
  file->path = shown;
  if (!PathExists(path)) throw UserError(shown + ": no such template file");
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw UserError(shown + ": is a directory, not a template file");
  try {
    file->text = kiln::ReadFile(path, kMaxTemplateBytes);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kUser)
      throw UserError(shown + ": template is larger than 1 MiB");
    throw;
  }
  if (file->text.find('\0') != std::string::npos) {
    throw UserError(shown + ": not a text file (contains NUL bytes)");
  }
  if (size_t good = Utf8ValidPrefix(file->text); good != file->text.size()) {
    size_t line_start = file->text.rfind('\n', good);
    line_start = line_start == std::string::npos ? 0 : line_start + 1;
    SourceLocation loc{
        file,
        1 + static_cast<int>(std::count(file->text.begin(),
                                        file->text.begin() + good, '\n')),
        static_cast<int>(good - line_start) + 1};
    throw ErrorAt(loc, "not valid UTF-8 (templates are UTF-8 text)");
  }
  Doc doc;
  doc.file = file;
  doc.dir = Dirname(AbsolutePath(path));
  try {
    doc.root = YAML::Load(file->text);
  } catch (const YAML::Exception& e) {
    std::string message = e.msg;
    // yaml-cpp says "bad file" when it stops a deep nesting.
    if (auto* deep = dynamic_cast<const YAML::DeepRecursion*>(&e))
      message = "nested " + std::to_string(deep->depth()) + " levels deep";
    SourceLocation loc{file, e.mark.line + 1, e.mark.column + 1};
    if (e.mark.line < 0) loc.line = 0;
    // At the end of the file yaml-cpp points past the last line: show that
    // line's end.
    std::string_view text = file->text;
    while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    int last_line =
        static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
    if (loc.line > last_line && !text.empty()) {
      size_t start = text.rfind('\n');
      start = start == std::string_view::npos ? 0 : start + 1;
      loc.line = last_line;
      loc.column = static_cast<int>(text.size() - start) + 1;
    }
    throw ErrorAt(loc, "invalid YAML: " + message);
  }
  if (!doc.root.IsMap()) {
    throw ErrorAt(
        SourceLocation{file, 1, 1},
        "a template is a YAML map (apiVersion, name, version, layers...)");
  }
  return doc;
}

// Where `extends: VALUE` in a file in `dir` points.
std::string ResolveExtends(const std::string& value, const std::string& dir,
                           const LoadOptions& options,
                           const SourceLocation& loc) {
  bool is_path = value.find('/') != std::string::npos ||
                 EndsWith(value, ".yaml") || EndsWith(value, ".yml");
  if (is_path) {
    std::string p = value[0] == '/' ? value : dir + "/" + value;
    if (!PathExists(p))
      throw ErrorAt(loc,
                    "extends: " + Quote(value) + ": no such template file");
    return p;
  }
  for (const auto& folder : options.template_path) {
    for (const char* ext : {".yaml", ".yml"}) {
      std::string p = folder + "/" + value + ext;
      if (PathExists(p)) return p;
    }
  }
  throw ErrorAt(
      loc,
      "extends: no stock template named " + Quote(value) + " (looked in " +
          (options.template_path.empty() ? std::string("no folders")
                                         : Join(options.template_path, ", ")) +
          ")");
}

}  // namespace

const SourceLocation& FieldLocations::At(const std::string& key) const {
  auto it = fields.find(key);
  return it == fields.end() ? entry : it->second;
}

std::string Platform::ToString() const {
  return os + "/" + architecture + (variant.empty() ? "" : "/" + variant);
}

const char* DiskFormatName(DiskFormat f) {
  return f == DiskFormat::kRaw ? "raw" : "qcow2";
}
const char* DiskFilesystemName(DiskFilesystem f) {
  switch (f) {
    case DiskFilesystem::kExt4:
      return "ext4";
    case DiskFilesystem::kErofs:
      return "erofs";
    case DiskFilesystem::kSquashfs:
      return "squashfs";
  }
  return "?";
}
const char* DiskBootName(DiskBoot b) {
  return b == DiskBoot::kSystemdBoot ? "systemd-boot" : "none";
}

bool ParseCompression(std::string_view name, Compression* out) {
  if (name == "gzip") {
    *out = Compression::kGzip;
  } else if (name == "zstd") {
    *out = Compression::kZstd;
  } else {
    return false;
  }
  return true;
}

const char* CompressionName(Compression c) {
  return c == Compression::kZstd ? "zstd" : "gzip";
}

std::string Template::Tag() const {
  std::string tag = version;
  std::replace(tag.begin(), tag.end(), '+', '_');
  return tag;
}

bool IsSemver(std::string_view version) {
  static const std::regex kSemver(
      R"(^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*))"
      R"((?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?)"
      R"((?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$)");
  return version.size() <= 128 &&
         std::regex_match(version.begin(), version.end(), kSemver);
}

bool IsRepositoryName(std::string_view name) {
  static const std::regex kName(
      R"(^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$)");
  return !name.empty() && name.size() <= 255 &&
         std::regex_match(name.begin(), name.end(), kName);
}

bool IsTag(std::string_view tag) {
  static const std::regex kTag(R"(^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$)");
  return std::regex_match(tag.begin(), tag.end(), kTag);
}

bool ParsePlatform(std::string_view text, Platform* out, std::string* why) {
  static const std::set<std::string> kArchs = {
      "amd64", "arm64",   "arm",      "386",    "ppc64le",
      "s390x", "riscv64", "mips64le", "loong64"};
  auto parts = Split(text, '/');
  if (parts.size() < 2 || parts.size() > 3) {
    *why = "must be OS/ARCH[/VARIANT], e.g. linux/amd64";
    return false;
  }
  if (parts[0] != "linux") {
    *why = "only linux images are supported";
    return false;
  }
  if (!kArchs.count(parts[1])) {
    *why = "unknown architecture " + Quote(parts[1]);
    return false;
  }
  out->os = parts[0];
  out->architecture = parts[1];
  out->variant = parts.size() == 3 ? parts[2] : "";
  if (parts.size() == 3 &&
      !std::regex_match(out->variant, std::regex("^v[0-9]+$"))) {
    *why = "unknown variant " + Quote(out->variant);
    return false;
  }
  return true;
}

Template LoadTemplate(const LoadOptions& options) {
  // 1. The chain of files: the template, then what it extends, and so on.
  std::vector<Doc> chain;
  std::set<std::string> seen;
  std::string path = options.path;
  std::string shown = options.path;
  // How each file was named, for provenance: the template by its file name,
  // what it extends as written after extends:. Never a host path.
  std::vector<std::string> chain_names = {Basename(options.path)};
  while (true) {
    std::string abs = AbsolutePath(path);
    if (std::filesystem::exists(abs))
      abs = std::filesystem::canonical(abs).string();
    chain.push_back(ParseDoc(path, shown));
    Doc& doc = chain.back();
    seen.insert(abs);
    const YAML::Node& root = doc.root;
    SourceLocation root_loc{doc.file, 1, 1};
    YAML::Node api = root["apiVersion"];
    if (!api)
      throw ErrorAt(root_loc, "missing apiVersion (write apiVersion: " +
                                  std::string(kApiVersion) + ")");
    if (!api.IsScalar() || api.Scalar() != kApiVersion) {
      SourceLocation loc{doc.file, api.Mark().line + 1, api.Mark().column + 1};
      throw ErrorAt(loc, "unsupported apiVersion " +
                             Quote(api.IsScalar() ? api.Scalar() : "?") +
                             " (this kiln reads " + kApiVersion + ")");
    }
    YAML::Node ext = root["extends"];
    if (!ext || ext.IsNull()) break;
    SourceLocation loc{doc.file, ext.Mark().line + 1, ext.Mark().column + 1};
    if (!ext.IsScalar() || ext.Scalar().empty())
      throw ErrorAt(loc, "extends must name a template file or stock template");
    if (chain.size() >= kMaxExtendsDepth)
      throw ErrorAt(loc, "extends is nested more than 16 deep");
    std::string next = ResolveExtends(ext.Scalar(), doc.dir, options, loc);
    std::string next_abs = std::filesystem::canonical(next).string();
    if (seen.count(next_abs))
      throw ErrorAt(loc, "extends " + Quote(ext.Scalar()) +
                             " loops back to a template already in the chain");
    path = next;
    shown = std::filesystem::path(next).lexically_normal().string();
    // An absolute path is this machine's: provenance names the file only.
    chain_names.push_back(ext.Scalar()[0] == '/' ? Basename(ext.Scalar())
                                                 : ext.Scalar());
  }

  // 2. Args: ancestors first, each file overriding, then --set.
  std::map<std::string, std::string> raw;
  std::map<std::string, SourceLocation> arg_locs;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    YAML::Node args = it->root["args"];
    if (!args || args.IsNull()) continue;
    std::map<std::string, std::string> none;
    Reader r(*it, none);
    if (!args.IsMap())
      throw ErrorAt(r.Loc(args), "args must be a map of NAME: default value");
    for (const auto& kv : args) {
      std::string key = r.Scalar(kv.first, "args key", false);
      if (key.empty() ||
          !std::regex_match(key, std::regex("^[A-Za-z_][A-Za-z0-9_]*$"))) {
        throw ErrorAt(r.Loc(kv.first), "arg name " + Quote(key) +
                                           " must be letters, digits and _");
      }
      raw[key] = r.Scalar(kv.second, "args." + key, false);
      arg_locs[key] = r.Loc(kv.second);
    }
  }
  for (const auto& [key, value] : options.sets) {
    if (!raw.count(key)) {
      std::vector<std::string> names;
      for (const auto& [k, v] : raw) names.push_back(k);
      throw UserError("--set " + key + ": the template declares no such arg" +
                      (names.empty() ? std::string()
                                     : " (args: " + Join(names, ", ") + ")"));
    }
    // --set values are literal text, never expanded.
    std::string escaped;
    for (size_t i = 0; i < value.size(); ++i) {
      if (value.compare(i, 2, "${") == 0) escaped += "$";
      escaped += value[i];
    }
    raw[key] = escaped;
    arg_locs[key] = SourceLocation{};
  }
  std::map<std::string, std::string> vars = ResolveArgs(raw, arg_locs);

  // 3. Each file's values, substituted, merged over its ancestors'.
  Partial merged;
  for (size_t i = chain.size(); i-- > 0;) {
    Reader r(chain[i], vars);
    MergeInto(merged, ReadPartial(r, Context(chain[i], options, i == 0)));
  }

  // 4. The whole template's checks.
  Template t;
  t.locs = merged.locs;
  for (size_t i = 0; i < chain.size(); ++i) {
    t.sources.push_back(chain[i].file->path);
    t.source_refs.push_back(
        {chain_names[i], Sha256Of(chain[i].file->text).hex()});
  }
  t.sets = options.sets;
  t.dir = chain[0].dir;
  SourceLocation top{chain[0].file, 1, 1};
  if (!merged.name)
    throw ErrorAt(top, "missing name (the image name, e.g. name: hello)");
  t.name = *merged.name;
  if (!IsRepositoryName(t.name)) {
    throw ErrorAt(t.locs.At("name"),
                  "name " + Quote(t.name) +
                      " is not a valid image name (lowercase letters, digits, "
                      ". _ - and / between parts)");
  }
  if (!merged.version)
    throw ErrorAt(top,
                  "missing version (a semantic version, e.g. version: 1.0.0)");
  t.version = *merged.version;
  if (!IsSemver(t.version)) {
    throw ErrorAt(t.locs.At("version"),
                  "version " + Quote(t.version) +
                      " is not a semantic version "
                      "(MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])");
  }
  if (merged.base) {
    t.base = *merged.base;
    if (t.base.empty())
      throw ErrorAt(t.locs.At("base"),
                    "base is empty (write scratch for an empty base)");
  }
  if (merged.platform) {
    std::string why;
    if (!ParsePlatform(*merged.platform, &t.platform, &why)) {
      throw ErrorAt(t.locs.At("platform"),
                    "platform " + Quote(*merged.platform) + " " + why);
    }
  }
  if (merged.compression &&
      !ParseCompression(*merged.compression, &t.compression)) {
    throw ErrorAt(
        t.locs.At("compression"),
        "compression must be gzip or zstd, not " + Quote(*merged.compression));
  }
  std::set<std::string> layer_names;
  for (const auto& l : merged.layers) {
    if (!layer_names.insert(l.name).second) {
      throw ErrorAt(l.locs.At("name"), "two layers are named " + Quote(l.name));
    }
  }
  std::map<std::string, const UserSpec*> users_by_uid;
  for (const auto& u : merged.accounts.users) {
    auto [it, fresh] = users_by_uid.emplace(std::to_string(u.uid), &u);
    if (!fresh)
      throw ErrorAt(u.locs.At("uid"), "users " + it->second->name + " and " +
                                          u.name + " share uid " +
                                          std::to_string(u.uid));
  }
  std::map<uint32_t, const GroupSpec*> groups_by_gid;
  for (const auto& g : merged.accounts.groups) {
    auto [it, fresh] = groups_by_gid.emplace(g.gid, &g);
    if (!fresh)
      throw ErrorAt(g.locs.At("gid"), "groups " + it->second->name + " and " +
                                          g.name + " share gid " +
                                          std::to_string(g.gid));
  }
  t.args = std::move(vars);
  t.packages = std::move(merged.packages);
  // Checked on the merged template: a child may add packages from the
  // repositories of what it extends.
  if (!t.packages.include.empty() && t.packages.repositories.empty()) {
    throw ErrorAt(t.packages.locs.entry,
                  "packages.include needs at least one repository");
  }
  for (auto& repo : t.packages.repositories) {
    if (repo.architecture.empty()) repo.architecture = t.platform.architecture;
  }
  t.layers = std::move(merged.layers);
  t.accounts = std::move(merged.accounts);
  t.config = std::move(merged.config);
  t.annotations = std::move(merged.annotations);
  t.publish_tags = merged.publish_tags.value_or(std::vector<std::string>{});
  t.disk = std::move(merged.disk);
  if (t.disk && t.platform.architecture != "amd64" &&
      t.disk->boot != DiskBoot::kNone) {
    throw ErrorAt(t.disk->locs.At("boot"),
                  "disk.boot systemd-boot is for linux/amd64 images; this "
                  "template's platform is " +
                      t.platform.ToString());
  }
  return t;
}

}  // namespace kiln
