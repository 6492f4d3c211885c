#!/usr/bin/env python3
"""Regenerates the fuzzers' seed corpora in fuzz/corpus/ (README.md says what
each holds). Inputs named regress-* are findings of past fuzzing runs and are
kept. The output is the same on every run: fixed times, owners and order.

    python3 fuzz/make-corpus.py [--kiln build/kiln]
"""

import argparse
import bz2
import gzip
import io
import json
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def reset(target):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        if not name.startswith("regress-"):
            os.remove(os.path.join(d, name))
    return d


def write(d, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- templates: the stock ones, the examples, and those the tests write.

HEREDOC = re.compile(r"<<-?\s*'?([A-Za-z0-9_]+)'?")


def heredocs(path):
    """(command line, body) of each heredoc in a shell script."""
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = HEREDOC.search(lines[i])
        if m and "<<<" not in lines[i]:
            end, body = m.group(1), []
            j = i + 1
            while j < len(lines) and lines[j] != end:
                body.append(lines[j])
                j += 1
            yield lines[i], "\n".join(body) + "\n"
            i = j
        i += 1


def templates():
    d = reset("template")
    seen = set()

    def add(name, text):
        if text not in seen:
            seen.add(text)
            write(d, name, text)

    for name in sorted(os.listdir(os.path.join(ROOT, "templates"))):
        if name.endswith(".yaml"):
            add("stock-" + name, open(os.path.join(ROOT, "templates", name)).read())
    for ex in sorted(os.listdir(os.path.join(ROOT, "examples"))):
        p = os.path.join(ROOT, "examples", ex, "kiln.yaml")
        if os.path.exists(p):
            add("example-%s.yaml" % ex, open(p).read())
    # The committed tests only, so the seeds follow the tree, not a work in progress.
    listed = subprocess.run(["git", "-C", ROOT, "ls-files", "tests"], stdout=subprocess.PIPE,
                            check=True, text=True).stdout.split()
    scripts = [os.path.join(ROOT, p) for p in listed
               if re.fullmatch(r"tests/(integration/)?[^/]+\.sh", p)]
    for path in sorted(scripts):
        base = os.path.basename(path)[:-3]
        head, n = None, 0
        for command, body in heredocs(path):
            if "apiVersion:" in body:
                head = head or body
            elif re.search(r"\bbad\s+\w+\s*<<", command) and head:
                # bad_inputs.sh: a fragment appended to a good template.
                body = head + body
            else:
                continue
            n += 1
            add("test-%s-%d.yaml" % (base, n), body)


# --- tar archives and .debs, made here so they stay tiny and reproducible.

def tar_bytes(members, fmt=tarfile.USTAR_FORMAT):
    """A tar of (TarInfo, data) members, cut after its end-of-archive blocks
    (tarfile pads to 10 KiB)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
        end = t.offset
    return buf.getvalue()[:end] + b"\0" * 1024


def entry(name, kind=tarfile.REGTYPE, data=None, **kw):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime, info.uid, info.gid = 0, 0, 0
    info.uname = info.gname = ""
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for k, v in kw.items():
        setattr(info, k, v)
    if data is not None:
        info.size = len(data)
    return info, data


def basic_members():
    return [
        entry("./", tarfile.DIRTYPE),
        entry("./etc/", tarfile.DIRTYPE),
        entry("./etc/hello.txt", data=b"hello from kiln\n"),
        entry("./etc/hi.txt", tarfile.LNKTYPE, linkname="./etc/hello.txt"),
        entry("./etc/link", tarfile.SYMTYPE, linkname="hello.txt"),
        entry("./dev/", tarfile.DIRTYPE),
        entry("./dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666),
        entry("./dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660),
        entry("./run/fifo", tarfile.FIFOTYPE),
        entry("./usr/bin/tool", data=b"#!/bin/sh\n", mode=0o4755, uid=1000, gid=1000),
    ]


def compress(data, how):
    if how == "gz":
        return gzip.compress(data, compresslevel=9, mtime=0)
    if how == "xz":
        return lzma.compress(data)
    if how == "bz2":
        return bz2.compress(data)
    if how in ("zst", "lz4") and shutil.which({"zst": "zstd", "lz4": "lz4"}[how]):
        tool = {"zst": ["zstd", "-q", "-19", "-c"], "lz4": ["lz4", "-q", "-c"]}[how]
        return subprocess.run(tool, input=data, stdout=subprocess.PIPE, check=True).stdout
    return None


def tars():
    d = reset("tar")
    basic = tar_bytes(basic_members())
    write(d, "ustar.tar", basic)
    for how in ("gz", "xz", "bz2", "zst", "lz4"):
        c = compress(basic, how)
        if c is not None:
            write(d, "ustar.tar." + how, c)
    long_name = "./" + "d" * 60 + "/" + "f" * 90
    write(d, "pax.tar", tar_bytes([
        entry(long_name, data=b"x"),
        entry("./big-ids", data=b"y", uid=3000000, gid=3000000),
        entry("./long-link", tarfile.SYMTYPE, linkname="/" + "t" * 150),
        entry("./xattr", data=b"z", pax_headers={"SCHILY.xattr.user.k": "v"}),
    ], tarfile.PAX_FORMAT))
    write(d, "gnu.tar", tar_bytes([
        entry(long_name, data=b"x"),
        entry("./hard", tarfile.LNKTYPE, linkname=long_name),
    ], tarfile.GNU_FORMAT))
    write(d, "whiteouts.tar", tar_bytes([
        entry("./etc/", tarfile.DIRTYPE),
        entry("./etc/.wh.unwanted", data=b""),
        entry("./var/.wh..wh..opq", data=b""),
    ]))
    write(d, "escapes.tar", tar_bytes([
        entry("../outside", data=b"a"),
        entry("/abs", data=b"b"),
        entry("./l", tarfile.SYMTYPE, linkname="../../.."),
        entry("./l/through", data=b"c"),
    ]))
    write(d, "truncated.tar", basic[:700])


def ar(members):
    """An ar archive (the .deb container) of (name, data) members."""
    out = b"!<arch>\n"
    for name, data in members:
        out += b"%-16s%-12d%-6d%-6d%-8s%-10d`\n" % (name.encode(), 0, 0, 0, b"100644", len(data))
        out += data + (b"\n" if len(data) % 2 else b"")
    return out


CONTROL = b"""Package: hello
Version: 1.0-1
Architecture: amd64
Maintainer: Kiln Tests <tests@example.invalid>
Depends: libc6 (>= 2.36)
Description: a greeting
 A longer description,
 .
 over several lines.
"""


def control_tar():
    return tar_bytes([
        entry("./", tarfile.DIRTYPE),
        entry("./control", data=CONTROL),
        entry("./md5sums", data=b"0123456789abcdef0123456789abcdef  usr/bin/hello\n"),
        entry("./postinst", data=b"#!/bin/sh\nexit 0\n", mode=0o755),
    ])


def data_tar():
    return tar_bytes([
        entry("./", tarfile.DIRTYPE),
        entry("./usr/", tarfile.DIRTYPE),
        entry("./usr/bin/", tarfile.DIRTYPE),
        entry("./usr/bin/hello", data=b"#!/bin/sh\necho hello\n", mode=0o755),
        entry("./usr/bin/hi", tarfile.SYMTYPE, linkname="hello"),
    ])


def debs():
    d = reset("deb")
    ctl, dat = control_tar(), data_tar()
    write(d, "plain.deb", ar([("debian-binary", b"2.0\n"), ("control.tar", ctl),
                              ("data.tar", dat)]))
    write(d, "gz-xz.deb", ar([("debian-binary", b"2.0\n"),
                              ("control.tar.gz", compress(ctl, "gz")),
                              ("data.tar.xz", compress(dat, "xz"))]))
    z = compress(dat, "zst")
    if z is not None:
        write(d, "zst.deb", ar([("debian-binary", b"2.0\n"),
                                ("control.tar.zst", compress(ctl, "zst")),
                                ("data.tar.zst", z)]))
    write(d, "data-first.deb", ar([("debian-binary", b"2.0\n"), ("data.tar", dat),
                                   ("control.tar", ctl)]))
    write(d, "no-data.deb", ar([("debian-binary", b"2.0\n"), ("control.tar", ctl)]))
    # One made by dpkg-deb itself, as the test APT repository's are.
    if shutil.which("dpkg-deb"):
        with tempfile.TemporaryDirectory() as t:
            root = os.path.join(t, "pkg")
            os.makedirs(os.path.join(root, "DEBIAN"))
            os.makedirs(os.path.join(root, "usr", "bin"))
            with open(os.path.join(root, "DEBIAN", "control"), "wb") as f:
                f.write(CONTROL.replace(b"Depends: libc6 (>= 2.36)\n", b""))
            with open(os.path.join(root, "usr", "bin", "hello"), "w") as f:
                f.write("#!/bin/sh\necho hello\n")
            os.chmod(os.path.join(root, "usr", "bin", "hello"), 0o755)
            for dirpath, dirs, files in os.walk(root):
                for n in dirs + files:
                    os.utime(os.path.join(dirpath, n), (0, 0))
            out = os.path.join(t, "hello.deb")
            env = dict(os.environ, SOURCE_DATE_EPOCH="0")
            subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, out],
                           env=env, check=True, stdout=subprocess.DEVNULL)
            write(d, "dpkg-deb.deb", open(out, "rb").read())


# --- OCI documents: a test build's store, and the shapes kiln meets elsewhere.

DIGEST = "sha256:" + "a" * 64


def oci(kiln):
    d = reset("oci")
    with tempfile.TemporaryDirectory() as store:
        env = dict(os.environ, SOURCE_DATE_EPOCH="0")
        subprocess.run([kiln, "--store", store, "build",
                        os.path.join(ROOT, "examples", "hello", "kiln.yaml")],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        write(d, "store-index.json", open(os.path.join(store, "index.json"), "rb").read())
        blobs = os.path.join(store, "blobs", "sha256")
        for name in sorted(os.listdir(blobs)):
            data = open(os.path.join(blobs, name), "rb").read()
            if len(data) > 65536:
                continue
            try:
                doc = json.loads(data)
            except ValueError:
                continue
            kind = doc.get("mediaType", "") if isinstance(doc, dict) else ""
            kind = ("manifest" if "manifest" in kind else "index" if "index" in kind
                    else "config" if isinstance(doc, dict) and "rootfs" in doc else "other")
            write(d, "store-%s-%s.json" % (kind, name[:12]), data)
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST,
            "size": 512}
    write(d, "index-platforms.json", json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [dict(desc, platform={"os": "linux", "architecture": "amd64"}),
                      dict(desc, platform={"os": "linux", "architecture": "arm64",
                                           "variant": "v8"},
                           annotations={"org.opencontainers.image.ref.name": "x:1"})]}))
    write(d, "docker-manifest-list.json", json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [dict(desc, mediaType="application/vnd.docker.distribution.manifest.v2+json")]}))
    write(d, "docker-manifest.json", json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": DIGEST, "size": 1469},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": DIGEST, "size": 3370706}]}))
    write(d, "referrer-manifest.json", json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": DIGEST,
                   "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                    "digest": DIGEST, "size": 4000}],
        "subject": desc, "annotations": {"org.opencontainers.image.created": "1970-01-01T00:00:00Z"}}))
    write(d, "config-full.json", json.dumps({
        "created": "1970-01-01T00:00:00Z", "author": "kiln", "architecture": "arm",
        "os": "linux", "variant": "v7", "os.features": ["x"],
        "config": {"User": "app", "ExposedPorts": {"8080/tcp": {}}, "Env": ["A=b"],
                   "Entrypoint": ["/bin/app"], "Cmd": ["--serve"], "Volumes": {"/data": {}},
                   "WorkingDir": "/", "Labels": {"k": "v"}, "StopSignal": "SIGTERM",
                   "Healthcheck": {"Test": ["NONE"]}},
        "rootfs": {"type": "layers", "diff_ids": [DIGEST]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "kiln",
                     "comment": "layer"}, {"empty_layer": True}]}))


# --- WWW-Authenticate values: the tests' and well-known registries'.

AUTH = [
    'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
    'scope="repository:a/b:pull,push", Basic realm="x \\"y\\""',
    'Bearer realm="http://127.0.0.1:5001/token",service="kiln-test"',
    'Basic realm="token"',
    'Basic realm="Registry Realm"',
    'Basic realm="basic-realm", charset="UTF-8"',
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
    'scope="repository:library/debian:pull"',
    'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/r:pull"',
    'Bearer realm="https://quay.io/v2/auth",service="quay.io"',
    'Bearer error="invalid_token", error_description="The access token expired"',
    'Negotiate YIIFzQYJKoZIhvcSAQICAQBuggW8MIIFuKADAgEFoQMCAQ6iBwMFACAAAACjggSz',
    'Bearer realm=unquoted,service=token68==',
    'Bearer realm="unterminated',
    'Bearer ==,=',
    'Basic',
]


def auth():
    d = reset("auth")
    for i, header in enumerate(AUTH):
        write(d, "header-%02d" % (i + 1), header)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kiln", default=os.path.join(ROOT, "build", "kiln"))
    args = p.parse_args()
    templates()
    tars()
    debs()
    oci(args.kiln)
    auth()


if __name__ == "__main__":
    main()
