#include <gtest/gtest.h>

#include "core/temp_dir.h"
#include "spec/template.h"

namespace kiln {
namespace {

class LoaderTest : public ::testing::Test {
 protected:
  Template Load(const std::string& yaml,
                std::vector<std::pair<std::string, std::string>> sets = {}) {
    dir_.Write("kiln.yaml", yaml);
    LoadOptions o;
    o.path = dir_.path() + "/kiln.yaml";
    o.sets = std::move(sets);
    o.template_path = {dir_.path() + "/stock"};
    return LoadTemplate(o);
  }
  // The message of the UserError loading `yaml` throws, with the temp folder
  // replaced by "T".
  std::string ErrorOf(
      const std::string& yaml,
      std::vector<std::pair<std::string, std::string>> sets = {}) {
    try {
      Load(yaml, std::move(sets));
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUser);
      std::string m = e.message();
      for (size_t pos; (pos = m.find(dir_.path())) != std::string::npos;)
        m.replace(pos, dir_.path().size(), "T");
      return m;
    }
    return "no error";
  }
  TempDir dir_;
};

const char kHead[] = "apiVersion: kiln.dev/v1\nname: app\nversion: 1.0.0\n";

TEST_F(LoaderTest, ReadsAWholeTemplate) {
  Template t = Load(std::string(kHead) + R"(platform: linux/arm64/v8
compression: zstd
args: {GREETING: hello, WHO: "${GREETING} world"}
layers:
  - name: app
    files:
      - {src: bin/app, dest: /usr/bin/app, mode: "0755", owner: "1000:1000"}
      - {dest: /etc/motd, content: "${WHO}\n"}
      - {src: conf/, dest: /etc/app/}
    dirs: [/var/lib/app, {path: /var/log/app, mode: "0750", owner: app}]
    symlinks: [{path: /usr/bin/a, target: app}]
    hardlinks: [{path: /usr/bin/b, target: /usr/bin/app}]
    devices: [{path: /dev/null, type: char, major: 1, minor: 3}]
    tarballs: [{src: vendor.tar.gz, sha256: "sha256:)" +
                    std::string(64, 'a') + R"(", dest: /opt}]
    remove: [/etc/old]
accounts:
  groups: [{name: app, gid: 1000}]
  users: [{name: app, uid: 1000, groups: [app]}]
config:
  entrypoint: [/usr/bin/app]
  env: {B: "2", A: "1"}
  exposedPorts: ["8080", "53/udp"]
  stopSignal: SIGINT
annotations: {org.opencontainers.image.source: "https://x"}
)");
  EXPECT_EQ(t.Reference(), "app:1.0.0");
  EXPECT_EQ(t.platform.ToString(), "linux/arm64/v8");
  EXPECT_EQ(t.compression, Compression::kZstd);
  ASSERT_EQ(t.layers.size(), 1u);
  const LayerSpec& l = t.layers[0];
  EXPECT_EQ(l.files[0].dest, "usr/bin/app");
  EXPECT_EQ(*l.files[0].mode, 0755u);
  EXPECT_EQ(*l.files[1].content, "hello world\n");
  EXPECT_TRUE(l.files[2].into_dir);
  EXPECT_EQ(l.dirs[0].path, "var/lib/app");
  EXPECT_EQ(l.dirs[1].owner->text, "app");
  EXPECT_EQ(l.tarballs[0].sha256, std::string(64, 'a'));
  EXPECT_EQ(l.tarballs[0].dest, "opt");
  EXPECT_EQ(l.remove[0].path, "etc/old");
  EXPECT_EQ(t.accounts.users[0].home, "/home/app");
  EXPECT_EQ(t.config.exposed_ports,
            (std::vector<std::string>{"8080/tcp", "53/udp"}));
  EXPECT_EQ(l.files[0].context_dir, dir_.path());
}

TEST_F(LoaderTest, UnknownKeyPointsAtItWithASuggestion) {
  EXPECT_EQ(
      ErrorOf(std::string(kHead) + "layers:\n  - files:\n      - {dest: "
                                   "/etc/motd, mdoe: \"0644\", content: x}\n"),
      "T/kiln.yaml:6:27: unknown key \"mdoe\" in layer \"layer-1\" files[0] "
      "(did you mean \"mode\"?)\n"
      "      - {dest: /etc/motd, mdoe: \"0644\", content: x}\n"
      "                          ^");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "colour: red\n"),
            "T/kiln.yaml:4:1: unknown key \"colour\" in the template (known "
            "keys: apiVersion, name, version, base, "
            "platform, compression, args, extends, layers, accounts, config, "
            "annotations, publish, packages, disk)\n"
            "colour: red\n"
            "^");
}

TEST_F(LoaderTest, WrongTypesModesOwnersAndPaths) {
  auto layer = [](const std::string& entry) {
    return std::string(kHead) + "layers:\n  - files:\n      - " + entry + "\n";
  };
  EXPECT_EQ(ErrorOf(layer("{dest: [a], content: x}")),
            "T/kiln.yaml:6:16: layer \"layer-1\" files[0].dest must be a "
            "string, not a list\n"
            "      - {dest: [a], content: x}\n"
            "               ^");
  EXPECT_EQ(ErrorOf(layer("{dest: /x, content: x, mode: \"0855\"}")),
            "T/kiln.yaml:6:38: layer \"layer-1\" files[0].mode must be an "
            "octal mode such as \"0644\" or \"0755\", not \"0855\"\n"
            "      - {dest: /x, content: x, mode: \"0855\"}\n"
            "                                     ^");
  EXPECT_EQ(ErrorOf(layer("{dest: /x, content: x, owner: \"root:\"}")),
            "T/kiln.yaml:6:39: owner must be \"UID:GID\" or \"USER[:GROUP]\", "
            "not \"root:\"\n"
            "      - {dest: /x, content: x, owner: \"root:\"}\n"
            "                                      ^");
  EXPECT_EQ(ErrorOf(layer("{dest: etc/x, content: x}")),
            "T/kiln.yaml:6:16: layer \"layer-1\" files[0].dest \"etc/x\" must "
            "be an absolute path (start with /)\n"
            "      - {dest: etc/x, content: x}\n"
            "               ^");
  EXPECT_EQ(ErrorOf(layer("{dest: /etc/../../x, content: x}")),
            "T/kiln.yaml:6:16: layer \"layer-1\" files[0].dest "
            "\"/etc/../../x\" must not contain \"..\"\n"
            "      - {dest: /etc/../../x, content: x}\n"
            "               ^");
  EXPECT_EQ(ErrorOf(layer("{src: a, content: x, dest: /x}")),
            "T/kiln.yaml:6:9: layer \"layer-1\" files[0] needs exactly one of "
            "\"src\" (a context file) or \"content\"\n"
            "      - {src: a, content: x, dest: /x}\n"
            "        ^");
}

TEST_F(LoaderTest, VersionNameAndPlatform) {
  EXPECT_EQ(ErrorOf("apiVersion: kiln.dev/v1\nname: app\nversion: 1.0\n"),
            "T/kiln.yaml:3:10: version \"1.0\" is not a semantic version "
            "(MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])\n"
            "version: 1.0\n"
            "         ^");
  EXPECT_EQ(ErrorOf("apiVersion: kiln.dev/v1\nname: App\nversion: 1.0.0\n"),
            "T/kiln.yaml:2:7: name \"App\" is not a valid image name "
            "(lowercase letters, digits, . _ - and / between "
            "parts)\nname: App\n      ^");
  EXPECT_EQ(ErrorOf("apiVersion: kiln.dev/v2\nname: app\nversion: 1.0.0\n"),
            "T/kiln.yaml:1:13: unsupported apiVersion \"kiln.dev/v2\" (this "
            "kiln reads kiln.dev/v1)\n"
            "apiVersion: kiln.dev/v2\n"
            "            ^");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "platform: windows/amd64\n"),
            "T/kiln.yaml:4:11: platform \"windows/amd64\" only linux images "
            "are supported\n"
            "platform: windows/amd64\n"
            "          ^");
  Template t = Load(
      "apiVersion: kiln.dev/v1\nname: acme/app\nversion: 1.2.3-rc.1+build.5\n");
  EXPECT_EQ(t.Tag(), "1.2.3-rc.1_build.5");
}

TEST_F(LoaderTest, VariablesAndSet) {
  EXPECT_EQ(ErrorOf(std::string(kHead) +
                    "args: {A: x}\nannotations: {k: \"v ${B}\"}\n"),
            "T/kiln.yaml:5:21: unknown variable ${B} (args: A)\n"
            "annotations: {k: \"v ${B}\"}\n"
            "                    ^");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "args: {A: x}\n", {{"B", "y"}}),
            "--set B: the template declares no such arg (args: A)");
  EXPECT_EQ(
      ErrorOf(std::string(kHead) + "args: {A: \"${B}\", B: \"${A}\"}\n"),
      "T/kiln.yaml:4:11: args refer to each other in a loop: A -> B -> A\n"
      "args: {A: \"${B}\", B: \"${A}\"}\n"
      "          ^");
  Template t = Load(
      std::string(kHead) + "args: {A: x}\nannotations: {k: \"${A}-$${A}\"}\n",
      {{"A", "${y}"}});
  EXPECT_EQ(t.annotations.at("k"),
            "${y}-${A}");  // --set values are literal; $${ escapes
}

TEST_F(LoaderTest, YamlSyntaxAndDuplicates) {
  EXPECT_EQ(
      ErrorOf(std::string(kHead) + "layers: [\n"),
      "T/kiln.yaml:4:10: invalid YAML: end of sequence flow not found\n"  // the
                                                                          // end
                                                                          // of
                                                                          // the
                                                                          // last
                                                                          // line
      "layers: [\n"
      "         ^");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "base: scratch\nbase: other\n"),
            "T/kiln.yaml:5:1: \"base\" appears twice in the template\n"
            "base: other\n"
            "^");
  EXPECT_EQ(ErrorOf(std::string(kHead) +
                    "layers: [{name: a, dirs: [/a]}, {name: a, dirs: [/b]}]\n"),
            "T/kiln.yaml:4:40: two layers are named \"a\"\n"
            "layers: [{name: a, dirs: [/a]}, {name: a, dirs: [/b]}]\n"
            "                                       ^");
}

TEST_F(LoaderTest, AliasBombsFailFast) {
  // Ten lists of ten references to the list before: 10^8 strings if expanded.
  std::string yaml = std::string(kHead) +
                     "layers:\n  - {name: l0, remove: &a0 [/x, /x, /x, /x, /x, "
                     "/x, /x, /x, /x, /x]}\n";
  for (int i = 1; i < 8; ++i) {
    yaml += "  - {name: l" + std::to_string(i) + ", remove: &a" +
            std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j)
      yaml += std::string(j ? ", " : "") + "*a" + std::to_string(i - 1);
    yaml += "]}\n";
  }
  std::string e = ErrorOf(yaml);
  EXPECT_NE(e.find("T/kiln.yaml:5:24: layer \"l1\" remove[0] must be a string, "
                   "not a list"),
            std::string::npos)
      << e;
}

TEST_F(LoaderTest, HostileTextIsRefusedWhereItIs) {
  // Not UTF-8: the line and column of the first bad byte.
  EXPECT_EQ(ErrorOf(std::string(kHead) + "annotations: {a: \"caf\xe9\"}\n"),
            "T/kiln.yaml:4:22: not valid UTF-8 (templates are UTF-8 text)\n"
            "annotations: {a: \"caf\xe9\"}\n"
            "                     ^");
  // yaml-cpp stops deep nesting with "bad file"; say what it is.
  std::string deep =
      ErrorOf(std::string(kHead) + "annotations: " + std::string(5000, '[') +
              std::string(5000, ']'));
  EXPECT_NE(deep.find("T/kiln.yaml:4:"), std::string::npos) << deep;
  EXPECT_NE(deep.find(": invalid YAML: nested "), std::string::npos) << deep;
  // A long line is shown around the column, marked where it is cut.
  EXPECT_NE(deep.find("\n..." + std::string(60, ']') + "\n" +
                      std::string(63, ' ') + "^"),
            std::string::npos)
      << deep;
  // Aliases and ${} that multiply a small template's strings.
  std::string big(600 << 10, 'x');
  std::string yaml = std::string(kHead) + "layers:\n  - name: a\n    files:\n" +
                     "      - {dest: /f0, content: &big \"" + big + "\"}\n";
  for (int i = 1; i < 60; ++i)
    yaml += "      - {dest: /f" + std::to_string(i) + ", content: *big}\n";
  EXPECT_NE(ErrorOf(yaml).find("the template's values add up to more than 32 "
                               "MiB (aliases or ${} used many times?)"),
            std::string::npos);
  yaml = std::string(kHead) + "args: {A: " + std::string(1 << 19, 'a') +
         "}\nannotations: {a: \"" + std::string(0, ' ');
  for (int i = 0; i < 100; ++i) yaml += "${A}";
  yaml += "\"}\n";
  EXPECT_NE(ErrorOf(yaml).find("substituting ${A} makes this value larger than "
                               "32 MiB"),
            std::string::npos);
}

TEST_F(LoaderTest, ExtendsMergesParentsFirst) {
  dir_.Write("stock/base.yaml",
             "apiVersion: kiln.dev/v1\nname: base\nversion: 1.0.0\n"
             "layers: [{name: fs, dirs: [/etc]}]\n"
             "accounts: {users: [{name: app, uid: 1000}]}\n"
             "config: {cmd: [sh], env: {A: a, B: b}}\n");
  Template t = Load(
      "apiVersion: kiln.dev/v1\nextends: base\nname: app\nversion: 2.0.0\n"
      "layers: [{name: app, dirs: [/app]}]\n"
      "accounts: {users: [{name: app, uid: 1001}]}\n"
      "config: {entrypoint: [/app], env: {B: c}}\n");
  ASSERT_EQ(t.layers.size(), 2u);
  EXPECT_EQ(t.layers[0].name, "fs");
  EXPECT_EQ(t.layers[1].name, "app");
  EXPECT_EQ(t.accounts.users.size(), 1u);
  EXPECT_EQ(t.accounts.users[0].uid, 1001u);
  EXPECT_FALSE(
      t.config.cmd.has_value());  // a new entrypoint drops the inherited cmd
  EXPECT_EQ(t.config.env,
            (std::map<std::string, std::string>{{"A", "a"}, {"B", "c"}}));
  EXPECT_EQ(t.sources.size(), 2u);

  dir_.Write("loop.yaml", "apiVersion: kiln.dev/v1\nextends: kiln.yaml\n");
  EXPECT_EQ(ErrorOf("apiVersion: kiln.dev/v1\nextends: loop.yaml\nname: "
                    "app\nversion: 1.0.0\n"),
            "T/loop.yaml:2:10: extends \"kiln.yaml\" loops back to a template "
            "already in the chain\n"
            "extends: kiln.yaml\n"
            "         ^");
  EXPECT_EQ(ErrorOf("apiVersion: kiln.dev/v1\nextends: nosuch\nname: "
                    "app\nversion: 1.0.0\n"),
            "T/kiln.yaml:2:10: extends: no stock template named \"nosuch\" "
            "(looked in T/stock)\n"
            "extends: nosuch\n"
            "         ^");
}

TEST_F(LoaderTest, MissingFileIsAUserError) {
  LoadOptions o;
  o.path = dir_.path() + "/nope.yaml";
  try {
    LoadTemplate(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUser);
    EXPECT_EQ(e.message(), o.path + ": no such template file");
  }
}

TEST_F(LoaderTest, ReadsADiskSection) {
  Template t = Load(std::string(kHead) + R"(disk:
  format: qcow2
  size: 1.5GiB
  espSize: 100M
  filesystem: erofs
  kernel: /boot/vmlinuz
  cmdline: console=ttyS0 quiet
  initrd: {modules: [virtio-blk], busybox: /usr/bin/busybox}
)");
  ASSERT_TRUE(t.disk);
  EXPECT_EQ(t.disk->format, DiskFormat::kQcow2);
  EXPECT_EQ(t.disk->size, uint64_t{1536} << 20);
  EXPECT_EQ(t.disk->esp_size, uint64_t{96} << 20);  // 100 MB, up to a MiB
  EXPECT_EQ(t.disk->filesystem, DiskFilesystem::kErofs);
  EXPECT_EQ(t.disk->boot, DiskBoot::kSystemdBoot);
  EXPECT_EQ(t.disk->kernel, "boot/vmlinuz");
  EXPECT_EQ(t.disk->cmdline, "console=ttyS0 quiet");
  EXPECT_EQ(*t.disk->modules, std::vector<std::string>{"virtio-blk"});
  EXPECT_EQ(t.disk->busybox, "usr/bin/busybox");

  Template d = Load(std::string(kHead) + "disk: {boot: none}\n");
  ASSERT_TRUE(d.disk);
  EXPECT_EQ(d.disk->format, DiskFormat::kRaw);
  EXPECT_EQ(d.disk->size, 0u);
  EXPECT_EQ(d.disk->filesystem, DiskFilesystem::kExt4);
  EXPECT_FALSE(d.disk->modules);
  EXPECT_FALSE(Load(kHead).disk);
}

TEST_F(LoaderTest, DiskMistakesPointAtTheLine) {
  std::string head = std::string(kHead) + "disk:\n";
  auto first_line = [&](const std::string& yaml) {
    std::string m = ErrorOf(head + yaml);
    return m.substr(0, m.find('\n'));
  };
  EXPECT_EQ(ErrorOf(head + "  filesystem: xfs\n"),
            "T/kiln.yaml:5:15: disk.filesystem must be ext4, erofs or "
            "squashfs, not \"xfs\"\n  filesystem: xfs\n              ^");
  EXPECT_EQ(first_line("  boot: bios\n"),
            "T/kiln.yaml:5:9: disk.boot \"bios\" is not supported: kiln boots "
            "through UEFI with systemd-boot (boot: systemd-boot), or writes a "
            "disk without a boot loader (boot: none)");
  EXPECT_EQ(first_line("  size: lots\n"),
            "T/kiln.yaml:5:9: disk.size must be auto or a size such as 2GiB "
            "or 512MiB (at most 1 PiB), not \"lots\"");
  EXPECT_EQ(first_line("  cmdline: root=/dev/sda1 quiet\n"),
            "T/kiln.yaml:5:12: disk.cmdline sets root=, which kiln sets to "
            "the disk's root partition");
  EXPECT_EQ(first_line("  boot: none\n  initrd: {modules: [a]}\n"),
            "T/kiln.yaml:6:11: disk.initrd needs a boot loader, and disk.boot "
            "is none");
  EXPECT_EQ(first_line("  fromat: raw\n"),
            "T/kiln.yaml:5:3: unknown key \"fromat\" in disk (did you mean "
            "\"format\"?)");
}

}  // namespace
}  // namespace kiln
