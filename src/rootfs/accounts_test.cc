#include "rootfs/accounts.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

UserSpec User(const std::string& name, uint32_t uid) {
  UserSpec u;
  u.name = name;
  u.uid = uid;
  u.home = "/home/" + name;
  u.shell = "/sbin/nologin";
  return u;
}

TEST(Accounts, MergesWithTheBaseAndGivesUsersPrivateGroups) {
  AccountFiles base;
  base.passwd =
      "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/"
      "nologin\n";
  base.group = "root:x:0:\nstaff:x:50:\n";
  base.shadow = "root:*:19000:0:99999:7:::\n";
  AccountsSpec spec;
  UserSpec app = User("app", 1000);
  app.groups = {"staff"};
  spec.users.push_back(app);
  AccountsOutput out = MergeAccounts(base, spec);
  EXPECT_EQ(out.passwd,
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/"
            "sbin/nologin\n"
            "app:x:1000:1000::/home/app:/sbin/nologin\n");
  EXPECT_EQ(out.group, "root:x:0:\nstaff:x:50:app\napp:x:1000:\n");
  EXPECT_EQ(out.shadow,
            "root:*:19000:0:99999:7:::\napp:!::0:99999:7:::\ndaemon:*::0:99999:"
            "7:::\n");
  ASSERT_EQ(out.homes.size(), 1u);
  EXPECT_EQ(out.homes[0].path, "home/app");
}

TEST(Accounts, AnIdHeldByAnotherNameIsAConflict) {
  AccountFiles base;
  base.passwd = "olduser:x:1000:1000::/:/bin/sh\n";
  AccountsSpec spec;
  spec.users.push_back(User("app", 1000));
  try {
    MergeAccounts(base, spec);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(
        e.message(),
        "user app: id 1000 already belongs to \"olduser\" in the layers below");
  }
}

TEST(Accounts, FromScratchAddsRoot) {
  AccountsSpec spec;
  spec.users.push_back(User("app", 10));
  AccountsOutput out = MergeAccounts(AccountFiles{}, spec);
  EXPECT_EQ(out.passwd,
            "root:x:0:0:root:/root:/sbin/nologin\napp:x:10:10::/home/app:/sbin/"
            "nologin\n");
  EXPECT_EQ(out.group, "root:x:0:\napp:x:10:\n");
}

TEST(Accounts, ResolverPrefersTheTemplate) {
  AccountFiles base;
  base.passwd = "www:x:33:33::/var/www:/bin/false\n";
  base.group = "www:x:33:\nadm:x:4:\n";
  AccountsSpec spec;
  spec.users.push_back(User("app", 1000));
  OwnerResolver r(base, spec);
  EXPECT_EQ(r.Resolve({"www", {}}), std::make_pair(33u, 33u));
  EXPECT_EQ(r.Resolve({"app:adm", {}}), std::make_pair(1000u, 4u));
  EXPECT_EQ(r.Resolve({"5:6", {}}), std::make_pair(5u, 6u));
  EXPECT_THROW(r.Resolve({"app:nogroup", {}}), Error);
}

}  // namespace
}  // namespace kiln
