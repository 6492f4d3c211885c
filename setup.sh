#!/usr/bin/env bash
# Installs the Debian 12 packages kiln needs to build and test, then configures
# and builds a Release build into build/. Idempotent; safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # libraries the engine links
  libarchive-dev libssl-dev libzstd-dev zlib1g-dev libdeflate-dev
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev
  # independent readers of kiln's output, used by the integration tests
  skopeo umoci jq
  # the registry fixture: a real registry (distribution 2.8), bcrypt htpasswd,
  # a throw-away CA, the fault-injecting proxy
  docker-registry apache2-utils openssl curl python3
  # Debian packages: InRelease verification, and the test APT repository
  gpgv gnupg dpkg-dev debian-archive-keyring
  # disk images: the file-system writers kiln runs (ext4, erofs, squashfs),
  # qcow2; the tests' readers (sfdisk, blkid, fsck.fat, mtools) and the
  # firmware and machine that boot the example
  e2fsprogs erofs-utils squashfs-tools qemu-utils fdisk util-linux
  dosfstools mtools qemu-system-x86 ovmf
  # the fuzzers (fuzz/): clang with libFuzzer and the sanitizers' runtimes,
  # llvm-symbolizer for readable reports
  clang-14 libclang-rt-14-dev llvm-14
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build
