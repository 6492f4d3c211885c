#include <gtest/gtest.h>

#include "packages/debian.h"
#include "packages/resolver.h"

namespace kiln {
namespace {

TEST(DebianVersion, OrdersAsDpkgDoes) {
  EXPECT_LT(CompareDebianVersions("1.0", "1.1"), 0);
  EXPECT_LT(CompareDebianVersions("1.0~rc1", "1.0"), 0);  // ~ before the end
  EXPECT_LT(CompareDebianVersions("1.0", "1.0+b1"), 0);
  EXPECT_LT(CompareDebianVersions("1.0-1", "1.0-2"), 0);
  EXPECT_LT(CompareDebianVersions("9.9", "1:0.1"), 0);     // epochs first
  EXPECT_LT(CompareDebianVersions("1.2.9", "1.2.10"), 0);  // numerically
  EXPECT_LT(CompareDebianVersions("2.36-9+deb12u3", "2.36-9+deb12u10"), 0);
  EXPECT_EQ(CompareDebianVersions("1.0", "1.00"), 0);
  EXPECT_EQ(CompareDebianVersions("0:1.0", "1.0"), 0);
  EXPECT_GT(CompareDebianVersions("1.0a", "1.0"), 0);
  EXPECT_LT(CompareDebianVersions("1.0~~", "1.0~"), 0);
  EXPECT_TRUE(IsDebianVersion("2:1.2.3-4+deb12u1"));
  EXPECT_FALSE(IsDebianVersion("latest"));
}

TEST(Control, ParagraphsAndContinuationLines) {
  auto ps = ParseControl(
      "Package: a\nVersion: 1\nDescription: short\n long line\n .\n\nPackage: "
      "b\n",
      "x");
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].Get("package"), "a");
  EXPECT_EQ(ps[0].Get("Description"), "short\nlong line\n.");
  EXPECT_EQ(ps[1].Get("Package"), "b");
  EXPECT_EQ(ps[0].Text(),
            "Package: a\nVersion: 1\nDescription: short\n long line\n .\n");
  EXPECT_THROW(ParseControl("Package a\n", "f"), Error);
}

TEST(Control, DependencyFields) {
  auto groups = ParseDependencies(
      "libc6 (>= 2.34), awk | mawk:any, x [amd64] <!nocheck>, y (<< 2~)", "f");
  ASSERT_EQ(groups.size(), 4u);
  EXPECT_EQ(groups[0][0].ToString(), "libc6 (>= 2.34)");
  EXPECT_EQ(groups[1].size(), 2u);
  EXPECT_EQ(groups[1][1].name, "mawk");
  EXPECT_EQ(groups[1][1].arch, "any");
  EXPECT_EQ(groups[2][0].ToString(), "x");
  EXPECT_TRUE(groups[0][0].Allows("2.36-9"));
  EXPECT_FALSE(groups[0][0].Allows("2.31"));
  EXPECT_TRUE(groups[3][0].Allows("1.9"));
  EXPECT_FALSE(groups[3][0].Allows("2~"));
}

class ResolverTest : public ::testing::Test {
 protected:
  void Add(const std::string& text) {
    for (const auto& p : ParseControl(text, "test"))
      u_.Add(p, "main", "amd64", "test");
  }
  std::string Names(const Resolution& r) {
    std::string s;
    for (const auto* p : r.packages) s += p->name + "=" + p->version + " ";
    return s;
  }
  std::string ErrorOf(const std::vector<PackageRequest>& inc,
                      const std::set<std::string>& exc = {}) {
    try {
      Resolve(u_, inc, exc);
    } catch (const Error& e) {
      return e.message();
    }
    return "no error";
  }
  Universe u_;
};

TEST_F(ResolverTest, ClosureWithVersionsAlternativesAndVirtuals) {
  Add(R"(Package: app
Version: 1.0
Architecture: amd64
Depends: libc (>= 2), awk | gawk, mail-transport-agent
Pre-Depends: base

Package: libc
Version: 1
Architecture: amd64

Package: libc
Version: 3
Architecture: amd64

Package: base
Version: 1
Architecture: all

Package: gawk
Version: 5
Architecture: amd64
Provides: awk

Package: mawk
Version: 1.3
Architecture: amd64
Priority: required
Provides: awk

Package: postfix
Version: 3
Architecture: amd64
Priority: optional
Provides: mail-transport-agent

Package: exim4
Version: 4
Architecture: amd64
Priority: standard
Provides: mail-transport-agent

Package: other-arch
Version: 1
Architecture: arm64
)");
  Resolution r = Resolve(u_, {{"app", ""}}, {});
  // awk: mawk (required) over gawk; the MTA: exim4 (standard) over postfix.
  EXPECT_EQ(Names(r), "app=1.0 base=1 exim4=4 libc=3 mawk=1.3 ");
  EXPECT_EQ(r.why["libc"], "the template -> app");
  // A pinned version, and an excluded alternative.
  EXPECT_EQ(Names(Resolve(u_, {{"app", ""}, {"gawk", ""}}, {"exim4"})),
            "app=1.0 base=1 gawk=5 libc=3 postfix=3 ");
}

TEST_F(ResolverTest, PrunedDependenciesAreLeftUnmet) {
  Add(R"(Package: ca-certificates
Version: 1
Architecture: all
Depends: openssl (>= 1.1.1), debconf | debconf-2.0

Package: openssl
Version: 3
Architecture: amd64
Depends: libc

Package: debconf
Version: 1
Architecture: all

Package: libc
Version: 1
Architecture: amd64
)");
  Resolution r = Resolve(u_, {{"ca-certificates", ""}}, {}, {"openssl"});
  EXPECT_EQ(Names(r), "ca-certificates=1 debconf=1 ");
  EXPECT_EQ(r.pruned["openssl"], std::set<std::string>{"ca-certificates"});
  EXPECT_EQ(r.depends["ca-certificates"], std::vector<std::string>{"debconf"});
  // An alternative group with a pruned member is left unmet as a whole.
  r = Resolve(u_, {{"ca-certificates", ""}}, {}, {"openssl", "debconf"});
  EXPECT_EQ(Names(r), "ca-certificates=1 ");
  try {
    Resolve(u_, {{"openssl", ""}}, {}, {"openssl"});
    ADD_FAILURE() << "included and pruned";
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), "package openssl is both included and pruned");
  }
}

TEST_F(ResolverTest, ErrorsNameThePackageAndTheChain) {
  Add(R"(Package: a
Version: 1
Architecture: amd64
Depends: b

Package: b
Version: 1
Architecture: amd64
Depends: c (>= 2)

Package: c
Version: 1
Architecture: amd64

Package: d
Version: 1
Architecture: amd64
Depends: e

Package: e
Version: 1
Architecture: amd64
Conflicts: a
)");
  EXPECT_EQ(ErrorOf({{"a", ""}}),
            "cannot satisfy c (>= 2), required by the template -> a -> b: no "
            "version of c satisfies c (>= 2) "
            "(available: 1)");
  EXPECT_EQ(ErrorOf({{"zzz", ""}}), "no package named zzz in the repositories");
  EXPECT_EQ(ErrorOf({{"c", "9"}}), "package c has no version 9 (available: 1)");
  EXPECT_EQ(ErrorOf({{"d", ""}}, {"e"}),
            "cannot satisfy e, required by the template -> d: e is excluded");
  Add("Package: f\nVersion: 1\nArchitecture: amd64\nDepends: missing\n");
  EXPECT_EQ(ErrorOf({{"f", ""}}),
            "cannot satisfy missing, required by the template -> f: no package "
            "named or providing missing");
  Add("Package: a2\nVersion: 1\nArchitecture: amd64\n\nPackage: x\nVersion: "
      "1\nArchitecture: amd64\nBreaks: a2 (<< 2)\n");
  EXPECT_EQ(ErrorOf({{"a2", ""}, {"x", ""}}),
            "package x 1 conflicts with a2 1 (a2 (<< 2)); a2 is required by "
            "the template");
}

}  // namespace
}  // namespace kiln

#include "packages/install.h"
#include "packages/lock.h"

namespace kiln {
namespace {

TEST(License, MachineReadableCopyrightToSpdx) {
  std::string dep5 =
      "Format: "
      "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
      "Files: *\nCopyright: someone\nLicense: GPL-2+\n\n"
      "Files: lib/*\nLicense: MIT or Expat\n\n"
      "License: GPL-2+\n On Debian systems...\n";
  EXPECT_EQ(LicenseOf(dep5), "GPL-2.0-or-later AND MIT");
  EXPECT_EQ(LicenseOf("This package was debianized by...\n"), "NOASSERTION");
  EXPECT_EQ(LicenseOf(dep5 + "\nFiles: x\nLicense: SomethingCustom\n"),
            "NOASSERTION");
}

TEST(Lock, RoundTripsAndNamesItsFile) {
  LockFile l;
  l.request = "sha256:" + std::string(64, 'a');
  l.repositories.push_back({"debian",
                            "http://x/debian",
                            "bookworm",
                            "amd64",
                            {"main"},
                            "sha256:" + std::string(64, 'b')});
  l.packages.push_back({"libc6",
                        "2.36-9",
                        "amd64",
                        "debian",
                        "pool/main/g/glibc/libc6.deb",
                        std::string(64, 'c'),
                        42,
                        {"libgcc-s1"}});
  l.pruned.push_back({"openssl", {"ca-certificates"}});
  LockFile back = LockFile::Parse(l.ToJson(), "kiln.lock");
  EXPECT_EQ(back.ToJson(), l.ToJson());
  ASSERT_EQ(back.pruned.size(), 1u);
  EXPECT_EQ(back.pruned[0].by, std::vector<std::string>{"ca-certificates"});
  EXPECT_EQ(back.packages[0].depends, std::vector<std::string>{"libgcc-s1"});
  EXPECT_EQ(LockPathFor("dir/kiln.yaml"), "dir/kiln.lock");
  EXPECT_EQ(LockPathFor("kiln.yaml"), "kiln.lock");
  EXPECT_EQ(LockPathFor("/t/debian-base.yaml"), "/t/debian-base.lock");
  EXPECT_THROW(
      LockFile::Parse("{\"format\":\"kiln-lock\",\"version\":2}", "kiln.lock"),
      Error);
}

TEST(Lock, TheRequestDigestFollowsWhatDecidesTheResolution) {
  PackagesSpec a;
  a.repositories.push_back(
      {"d", "http://x", "bookworm", {"main"}, "amd64", "/k.gpg", "k.gpg", {}});
  a.include.push_back({"libc6", "", {}});
  a.include.push_back({"zlib1g", "", {}});
  PackagesSpec b = a;
  b.layering =
      PackageLayering::kPerPackage;  // layering does not change what is chosen
  EXPECT_EQ(RequestDigest(a), RequestDigest(b));
  b.include.push_back({"tzdata", "", {}});
  EXPECT_NE(RequestDigest(a), RequestDigest(b));
  b = a;
  b.exclude.push_back("x");
  EXPECT_NE(RequestDigest(a), RequestDigest(b));
  b = a;
  b.prune.push_back("openssl");
  EXPECT_NE(RequestDigest(a), RequestDigest(b));
  b = a;  // the order of include does not matter
  std::swap(b.include[0], b.include[1]);
  EXPECT_EQ(RequestDigest(a), RequestDigest(b));
  b = a;  // another keyring, as written: the lock was verified with another
  b.repositories[0].keyring_as_written = "other.gpg";
  EXPECT_NE(RequestDigest(a), RequestDigest(b));
  b = a;  // the same keyring seen from another checkout
  b.repositories[0].keyring = "/elsewhere/k.gpg";
  EXPECT_EQ(RequestDigest(a), RequestDigest(b));
}

TEST(Install, DependenciesComeFirst) {
  LockFile l;
  auto add = [&](const std::string& name, std::vector<std::string> deps) {
    l.packages.push_back({name, "1", "amd64", "d", "", "", 1, std::move(deps)});
  };
  add("app", {"libssl", "libc"});
  add("libc", {"libgcc"});
  add("libgcc", {"libc"});  // Debian has cycles like this one
  add("libssl", {"libc"});
  std::string order;
  for (const auto* p : DependencyOrder(l)) order += p->name + " ";
  EXPECT_EQ(order, "libgcc libc libssl app ");
}

}  // namespace
}  // namespace kiln
