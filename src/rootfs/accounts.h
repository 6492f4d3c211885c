// Users and groups: /etc/passwd, /etc/group, /etc/shadow and /etc/gshadow from
// the layers below, merged with the template's accounts, and owner names
// resolved to numeric ids (never from the host).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "spec/template.h"

namespace kiln {

class Tree;

// The account files as found in a tree (absent files are nullopt).
struct AccountFiles {
  std::optional<std::string> passwd, group, shadow, gshadow;
  static AccountFiles FromTree(const Tree& tree);
};

// Name -> id tables: the accounts of the tree below plus the template's.
class OwnerResolver {
 public:
  OwnerResolver(const AccountFiles& lower, const AccountsSpec& spec);
  // "1000:1000", "1000" (gid = uid), "app" (its primary group), "app:staff".
  std::pair<uint32_t, uint32_t> Resolve(const OwnerSpec& owner) const;

 private:
  std::map<std::string, std::pair<uint32_t, uint32_t>>
      users_;  // name -> uid, primary gid
  std::map<std::string, uint32_t> groups_;
};

// The merged account files and home directories the accounts layer writes.
struct AccountsOutput {
  std::string passwd, group, shadow, gshadow;
  bool write_gshadow = false;
  struct Home {
    std::string path;  // image path, normalised
    uint32_t uid, gid;
  };
  std::vector<Home> homes;
};

// Template accounts replace same-named base entries; a uid or gid already used
// by another name is an error at the template's line. Users without a group
// get a private group named after them.
AccountsOutput MergeAccounts(const AccountFiles& lower,
                             const AccountsSpec& spec);

}  // namespace kiln
