#include "rootfs/accounts.h"

#include <algorithm>
#include <set>

#include "core/strings.h"
#include "rootfs/tree.h"

namespace kiln {
namespace {

std::optional<std::string> ReadSmall(const Tree& tree,
                                     const std::string& path) {
  const Entry* e = tree.Find(path);
  if (!e || e->type != EntryType::kFile) return std::nullopt;
  if (e->size == 0 || !e->content) return std::string();
  if (e->size > (16 << 20))
    throw UserError("/" + path + " in the layers below is larger than 16 MiB");
  return e->content->ReadAll(e->size);
}

std::vector<std::string> Lines(const std::optional<std::string>& text) {
  std::vector<std::string> out;
  if (!text) return out;
  for (auto& line : Split(*text, '\n')) {
    if (!line.empty()) out.push_back(std::move(line));
  }
  return out;
}

std::string Field(const std::string& line, size_t i) {
  auto parts = Split(line, ':');
  return i < parts.size() ? parts[i] : "";
}

std::string Unlines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// Replaces the line whose first field is `name`, or appends.
void Upsert(std::vector<std::string>* lines, const std::string& name,
            const std::string& line) {
  for (auto& l : *lines) {
    if (Field(l, 0) == name) {
      l = line;
      return;
    }
  }
  lines->push_back(line);
}

}  // namespace

AccountFiles AccountFiles::FromTree(const Tree& tree) {
  AccountFiles f;
  f.passwd = ReadSmall(tree, "etc/passwd");
  f.group = ReadSmall(tree, "etc/group");
  f.shadow = ReadSmall(tree, "etc/shadow");
  f.gshadow = ReadSmall(tree, "etc/gshadow");
  return f;
}

OwnerResolver::OwnerResolver(const AccountFiles& lower,
                             const AccountsSpec& spec) {
  for (const auto& line : Lines(lower.group)) {
    if (auto gid = ParseUint(Field(line, 2)))
      groups_[Field(line, 0)] = static_cast<uint32_t>(*gid);
  }
  for (const auto& line : Lines(lower.passwd)) {
    auto uid = ParseUint(Field(line, 2));
    auto gid = ParseUint(Field(line, 3));
    if (uid && gid)
      users_[Field(line, 0)] = {static_cast<uint32_t>(*uid),
                                static_cast<uint32_t>(*gid)};
  }
  for (const auto& g : spec.groups) groups_[g.name] = g.gid;
  for (const auto& u : spec.users) {
    uint32_t gid =
        u.gid ? *u.gid : (groups_.count(u.name) ? groups_[u.name] : u.uid);
    users_[u.name] = {u.uid, gid};
    if (!groups_.count(u.name) && !u.gid) groups_[u.name] = u.uid;
  }
}

std::pair<uint32_t, uint32_t> OwnerResolver::Resolve(
    const OwnerSpec& owner) const {
  auto parts = Split(owner.text, ':');
  uint32_t uid = 0, gid = 0;
  const std::string& user = parts[0];
  if (auto n = ParseUint(user)) {
    uid = gid = static_cast<uint32_t>(*n);
  } else {
    auto it = users_.find(user);
    if (it == users_.end()) {
      throw ErrorAt(owner.loc, "owner " + Quote(owner.text) +
                                   ": no user named " + Quote(user) +
                                   " in accounts or the layers below (numeric "
                                   "ids are always accepted)");
    }
    uid = it->second.first;
    gid = it->second.second;
  }
  if (parts.size() == 2) {
    const std::string& group = parts[1];
    if (auto n = ParseUint(group)) {
      gid = static_cast<uint32_t>(*n);
    } else {
      auto it = groups_.find(group);
      if (it == groups_.end()) {
        throw ErrorAt(owner.loc, "owner " + Quote(owner.text) +
                                     ": no group named " + Quote(group) +
                                     " in accounts or the layers below");
      }
      gid = it->second;
    }
  }
  return {uid, gid};
}

AccountsOutput MergeAccounts(const AccountFiles& lower,
                             const AccountsSpec& spec) {
  std::vector<std::string> passwd = Lines(lower.passwd),
                           group = Lines(lower.group),
                           shadow = Lines(lower.shadow),
                           gshadow = Lines(lower.gshadow);
  bool fresh = !lower.passwd;
  std::set<std::string> template_users, template_groups;
  for (const auto& u : spec.users) template_users.insert(u.name);
  for (const auto& g : spec.groups) template_groups.insert(g.name);

  // An id held by another name in the base is a conflict: files below are
  // owned by that id and would silently change hands.
  auto check_id = [](const std::vector<std::string>& lines,
                     const std::string& name, uint32_t id,
                     const std::set<std::string>& also_declared,
                     const SourceLocation& loc, const char* kind) {
    for (const auto& l : lines) {
      if (Field(l, 0) != name && ParseUint(Field(l, 2)) == id &&
          !also_declared.count(Field(l, 0))) {
        throw ErrorAt(loc, std::string(kind) + " " + name + ": id " +
                               std::to_string(id) + " already belongs to " +
                               Quote(Field(l, 0)) + " in the layers below");
      }
    }
  };

  if (fresh && !spec.users.empty() && !template_users.count("root")) {
    passwd.push_back("root:x:0:0:root:/root:/sbin/nologin");
    shadow.push_back("root:!::0:99999:7:::");
  }
  if (!lower.group && !template_groups.count("root"))
    group.push_back("root:x:0:");

  std::map<std::string, std::vector<std::string>>
      members;  // group -> added members
  for (const auto& g : spec.groups) {
    check_id(group, g.name, g.gid, template_groups, g.locs.At("gid"), "group");
    Upsert(&group, g.name, g.name + ":x:" + std::to_string(g.gid) + ":");
    for (const auto& m : g.members) members[g.name].push_back(m);
  }
  auto group_exists = [&](const std::string& name) {
    return std::any_of(group.begin(), group.end(), [&](const std::string& l) {
      return Field(l, 0) == name;
    });
  };
  AccountsOutput out;
  for (const auto& u : spec.users) {
    check_id(passwd, u.name, u.uid, template_users, u.locs.At("uid"), "user");
    uint32_t gid = u.uid;
    if (u.gid) {
      gid = *u.gid;
    } else if (group_exists(u.name)) {
      for (const auto& l : group) {
        if (Field(l, 0) == u.name)
          gid = static_cast<uint32_t>(ParseUint(Field(l, 2)).value_or(u.uid));
      }
    }
    bool gid_exists = std::any_of(
        group.begin(), group.end(),
        [&](const std::string& l) { return ParseUint(Field(l, 2)) == gid; });
    if (!gid_exists && !group_exists(u.name)) {
      group.push_back(u.name + ":x:" + std::to_string(gid) +
                      ":");  // the user's private group
    }
    for (const auto& g : u.groups) {
      if (!group_exists(g)) {
        throw ErrorAt(u.locs.At("groups"),
                      "user " + u.name + ": no group named " + Quote(g) +
                          " in accounts or the layers below");
      }
      members[g].push_back(u.name);
    }
    Upsert(&passwd, u.name,
           u.name + ":x:" + std::to_string(u.uid) + ":" + std::to_string(gid) +
               ":" + u.gecos + ":" + u.home + ":" + u.shell);
    Upsert(&shadow, u.name, u.name + ":!::0:99999:7:::");
    if (u.create_home && u.home != "/" && u.home != "/nonexistent") {
      out.homes.push_back({u.home.substr(1), u.uid, gid});
    }
  }
  for (auto& l : group) {
    auto it = members.find(Field(l, 0));
    if (it == members.end()) continue;
    std::vector<std::string> have;
    std::string list = Field(l, 3);
    if (!list.empty()) have = Split(list, ',');
    for (const auto& m : it->second) {
      if (std::find(have.begin(), have.end(), m) == have.end())
        have.push_back(m);
    }
    auto parts = Split(l, ':');
    parts.resize(4);
    parts[3] = Join(have, ",");
    l = Join(parts, ":");
  }
  // Every user has a shadow line, so pwck-style checks pass.
  for (const auto& l : passwd) {
    std::string name = Field(l, 0);
    bool has =
        std::any_of(shadow.begin(), shadow.end(),
                    [&](const std::string& s) { return Field(s, 0) == name; });
    if (!has) shadow.push_back(name + ":*::0:99999:7:::");
  }
  if (lower.gshadow) {
    out.write_gshadow = true;
    for (const auto& g : spec.groups)
      Upsert(&gshadow, g.name, g.name + ":!::" + Join(members[g.name], ","));
  }
  out.passwd = Unlines(passwd);
  out.group = Unlines(group);
  out.shadow = Unlines(shadow);
  out.gshadow = Unlines(gshadow);
  return out;
}

}  // namespace kiln
