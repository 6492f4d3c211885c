#include "packages/debian.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "core/strings.h"

namespace kiln {
namespace {

int Order(char c) {
  if (std::isdigit(static_cast<unsigned char>(c))) return 0;
  if (std::isalpha(static_cast<unsigned char>(c))) return c;
  if (c == '~') return -1;
  if (c) return c + 256;
  return 0;
}

// dpkg's verrevcmp: non-digit runs by Order, digit runs numerically.
int CompareFragment(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    int first_diff = 0;
    while ((i < a.size() && !std::isdigit(static_cast<unsigned char>(a[i]))) ||
           (j < b.size() && !std::isdigit(static_cast<unsigned char>(b[j])))) {
      int ac = i < a.size() ? Order(a[i]) : 0;
      int bc = j < b.size() ? Order(b[j]) : 0;
      if (ac != bc) return ac - bc;
      ++i;
      ++j;
    }
    while (i < a.size() && a[i] == '0') ++i;
    while (j < b.size() && b[j] == '0') ++j;
    while (i < a.size() && j < b.size() &&
           std::isdigit(static_cast<unsigned char>(a[i])) &&
           std::isdigit(static_cast<unsigned char>(b[j]))) {
      if (!first_diff) first_diff = a[i] - b[j];
      ++i;
      ++j;
    }
    if (i < a.size() && std::isdigit(static_cast<unsigned char>(a[i])))
      return 1;
    if (j < b.size() && std::isdigit(static_cast<unsigned char>(b[j])))
      return -1;
    if (first_diff) return first_diff;
  }
  return 0;
}

struct Parts {
  uint64_t epoch = 0;
  std::string_view upstream, revision;
};

Parts Split(std::string_view v) {
  Parts p;
  size_t colon = v.find(':');
  if (colon != std::string_view::npos) {
    p.epoch = ParseUint(v.substr(0, colon)).value_or(0);
    v = v.substr(colon + 1);
  }
  size_t dash = v.rfind('-');
  if (dash != std::string_view::npos) {
    p.upstream = v.substr(0, dash);
    p.revision = v.substr(dash + 1);
  } else {
    p.upstream = v;
  }
  return p;
}

bool SameName(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

}  // namespace

int CompareDebianVersions(std::string_view a, std::string_view b) {
  Parts pa = Split(a), pb = Split(b);
  if (pa.epoch != pb.epoch) return pa.epoch < pb.epoch ? -1 : 1;
  if (int c = CompareFragment(pa.upstream, pb.upstream)) return c < 0 ? -1 : 1;
  int c = CompareFragment(pa.revision, pb.revision);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

bool IsDebianVersion(std::string_view v) {
  if (v.empty()) return false;
  Parts p = Split(v);
  if (p.upstream.empty() ||
      !std::isdigit(static_cast<unsigned char>(p.upstream[0])))
    return false;
  for (char c : v) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view(".+-~:").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

void Paragraph::Set(std::string name, std::string value) {
  for (auto& [n, v] : fields_) {
    if (SameName(n, name)) {
      v = std::move(value);
      return;
    }
  }
  fields_.emplace_back(std::move(name), std::move(value));
}

const std::string& Paragraph::Get(std::string_view name) const {
  static const std::string kEmpty;
  for (const auto& [n, v] : fields_) {
    if (SameName(n, name)) return v;
  }
  return kEmpty;
}

bool Paragraph::Has(std::string_view name) const {
  for (const auto& [n, v] : fields_) {
    if (SameName(n, name)) return true;
  }
  return false;
}

std::string Paragraph::Text() const {
  std::string out;
  for (const auto& [n, v] : fields_) {
    out += n + ":";
    if (!v.empty() && v[0] != '\n') out += " ";
    for (char c : v) {
      out += c;
      if (c == '\n') out += ' ';
    }
    out += "\n";
  }
  return out;
}

namespace control_internal {

void AddLine(Paragraph* p, std::string_view line, std::string* last,
             const std::string& what, size_t lineno) {
  if (line[0] == '#') return;
  if (line[0] == ' ' || line[0] == '\t') {
    if (last->empty())
      throw UserError(what + ":" + std::to_string(lineno) +
                      ": continuation line without a field");
    std::string value = p->Get(*last);
    value += "\n";
    value += Trim(line);
    p->Set(*last, value);
    return;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    throw UserError(what + ":" + std::to_string(lineno) +
                    ": expected \"Field: value\", not " + Quote(line));
  }
  *last = std::string(line.substr(0, colon));
  p->Set(*last, std::string(Trim(line.substr(colon + 1))));
}

}  // namespace control_internal

std::vector<Paragraph> ParseControl(std::string_view text,
                                    const std::string& what) {
  std::vector<Paragraph> out;
  ForEachParagraph(text, what,
                   [&](Paragraph p) { out.push_back(std::move(p)); });
  return out;
}

std::string Dependency::ToString() const {
  std::string s = name;
  if (!arch.empty()) s += ":" + arch;
  static const char* const kOps[] = {"", "<<", "<=", "=", ">=", ">>"};
  if (relation != Relation::kAny)
    s += " (" + std::string(kOps[static_cast<int>(relation)]) + " " + version +
         ")";
  return s;
}

bool Dependency::Allows(std::string_view v) const {
  if (relation == Relation::kAny) return true;
  int c = CompareDebianVersions(v, version);
  switch (relation) {
    case Relation::kLess:
      return c < 0;
    case Relation::kLessEqual:
      return c <= 0;
    case Relation::kEqual:
      return c == 0;
    case Relation::kGreaterEqual:
      return c >= 0;
    case Relation::kGreater:
      return c > 0;
    case Relation::kAny:
      return true;
  }
  return false;
}

std::vector<Alternatives> ParseDependencies(std::string_view field,
                                            const std::string& what) {
  std::vector<Alternatives> out;
  for (const auto& group : Split(field, ',')) {
    std::string_view g = Trim(group);
    if (g.empty()) continue;
    Alternatives alts;
    for (const auto& alt : Split(std::string(g), '|')) {
      std::string_view a = Trim(alt);
      // Architecture lists "[...]" and build profiles "<...>" occur only in
      // source package fields: drop them.
      std::string cleaned;
      int parens = 0;
      for (size_t k = 0; k < a.size(); ++k) {
        char c = a[k];
        if (c == '(') ++parens;
        if (c == ')') --parens;
        if (parens == 0 && (c == '[' || c == '<')) {
          size_t close = a.find(c == '[' ? ']' : '>', k);
          if (close == std::string_view::npos) break;
          k = close;
          continue;
        }
        cleaned += c;
      }
      a = Trim(cleaned);
      Dependency d;
      size_t paren = a.find('(');
      std::string_view name = Trim(a.substr(0, paren));
      if (size_t colon = name.find(':'); colon != std::string_view::npos) {
        d.arch = std::string(name.substr(colon + 1));
        name = name.substr(0, colon);
      }
      if (name.empty())
        throw UserError(what + ": empty package name in " + Quote(field));
      d.name = std::string(name);
      if (paren != std::string_view::npos) {
        size_t close = a.find(')', paren);
        if (close == std::string_view::npos)
          throw UserError(what + ": unclosed ( in " + Quote(a));
        std::string_view inside = Trim(a.substr(paren + 1, close - paren - 1));
        size_t op_end = 0;
        while (op_end < inside.size() &&
               std::string_view("<>=").find(inside[op_end]) !=
                   std::string_view::npos)
          ++op_end;
        std::string_view op = inside.substr(0, op_end);
        d.version = std::string(Trim(inside.substr(op_end)));
        if (op == "<<")
          d.relation = Relation::kLess;
        else if (op == "<=" || op == "<")
          d.relation = Relation::kLessEqual;  // "<" is an old spelling of "<="
        else if (op == "=")
          d.relation = Relation::kEqual;
        else if (op == ">=" || op == ">")
          d.relation = Relation::kGreaterEqual;
        else if (op == ">>")
          d.relation = Relation::kGreater;
        else
          throw UserError(what + ": unknown version relation " + Quote(op) +
                          " in " + Quote(a));
        if (d.version.empty())
          throw UserError(what + ": missing version in " + Quote(a));
      }
      alts.push_back(std::move(d));
    }
    out.push_back(std::move(alts));
  }
  return out;
}

}  // namespace kiln

namespace kiln {

std::string LicenseOf(std::string_view copyright) {
  static const std::map<std::string, std::string> kSpdx = {
      {"gpl-1", "GPL-1.0-only"},
      {"gpl-1+", "GPL-1.0-or-later"},
      {"gpl-2", "GPL-2.0-only"},
      {"gpl-2+", "GPL-2.0-or-later"},
      {"gpl-3", "GPL-3.0-only"},
      {"gpl-3+", "GPL-3.0-or-later"},
      {"lgpl-2", "LGPL-2.0-only"},
      {"lgpl-2+", "LGPL-2.0-or-later"},
      {"lgpl-2.1", "LGPL-2.1-only"},
      {"lgpl-2.1+", "LGPL-2.1-or-later"},
      {"lgpl-3", "LGPL-3.0-only"},
      {"lgpl-3+", "LGPL-3.0-or-later"},
      {"agpl-3", "AGPL-3.0-only"},
      {"agpl-3+", "AGPL-3.0-or-later"},
      {"apache-2.0", "Apache-2.0"},
      {"apache-2", "Apache-2.0"},
      {"mit", "MIT"},
      {"expat", "MIT"},
      {"bsd-2-clause", "BSD-2-Clause"},
      {"bsd-3-clause", "BSD-3-Clause"},
      {"bsd-4-clause", "BSD-4-Clause"},
      {"isc", "ISC"},
      {"zlib", "Zlib"},
      {"mpl-2.0", "MPL-2.0"},
      {"mpl-1.1", "MPL-1.1"},
      {"gfdl-1.2+", "GFDL-1.2-or-later"},
      {"gfdl-1.3+", "GFDL-1.3-or-later"},
      {"cc0-1.0", "CC0-1.0"},
      {"python-2.0", "Python-2.0"},
      {"curl", "curl"},
      {"x11", "X11"},
      {"openssl", "OpenSSL"},
      {"psf-2.0", "PSF-2.0"},
      {"artistic-2.0", "Artistic-2.0"},
      {"bsl-1.0", "BSL-1.0"},
      {"unicode-dfs-2016", "Unicode-DFS-2016"}};
  if (copyright.substr(0, 7) != "Format:")
    return "NOASSERTION";  // not machine-readable
  std::vector<std::string> found;
  bool unknown = false;
  for (const auto& p : ParseControl(copyright, "copyright")) {
    std::string field = p.Get("License");
    std::string first = field.substr(0, field.find('\n'));
    std::string token;
    auto flush = [&] {
      if (token.empty() || token == "or" || token == "and" || token == "with") {
        token.clear();
        return;
      }
      std::string lower;
      for (char c : token)
        lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto it = kSpdx.find(lower);
      if (it == kSpdx.end()) {
        unknown = unknown || lower != "public-domain";
      } else if (std::find(found.begin(), found.end(), it->second) ==
                 found.end()) {
        found.push_back(it->second);
      }
      token.clear();
    };
    for (char c : first) {
      if (c == ' ' || c == ',' || c == '\t') {
        flush();
      } else {
        token += c;
      }
    }
    flush();
  }
  if (unknown || found.empty()) return "NOASSERTION";
  std::sort(found.begin(), found.end());
  return Join(found, " AND ");
}

}  // namespace kiln
