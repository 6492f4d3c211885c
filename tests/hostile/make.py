#!/usr/bin/env python3
"""Writes the hostile-input corpus (tests/hostile/README.md lists each case).

    make.py tarballs OUT_DIR CANARY_DIR   tar archives into OUT_DIR; the escape
                                          attempts aim at CANARY_DIR/canary
    make.py templates OUT_DIR             template files (YAML bombs, binary...)
    make.py oci OUT_DIR                   OCI image layouts, one directory each
    make.py debs OUT_DIR                  .deb files (data.tar escapes, bombs,
                                          truncated)
    make.py registry-image OUT_DIR        one small image (manifest, config,
                                          layer) for liar_registry.py to serve

Everything is made byte by byte from this script (headers packed with struct,
gzip members with zlib), nothing comes from the network or the host, and the
same arguments give the same bytes. Big cases are cheap to make: the 10 GiB
"zip bomb" is one 64 MiB gzip member of zeros repeated (gzip readers take
consecutive members as one stream), about 10 MiB on disk.
"""
import functools
import hashlib
import io
import json
import os
import shutil
import struct
import sys
import zlib

# --- tar, byte by byte -------------------------------------------------------


def _octal(value, width):
    return ("%0*o" % (width - 1, value)).encode() + b"\0"


def header(name, *, typeflag=b"0", size=0, mode=0o644, uid=0, gid=0,
           link=b"", devmajor=0, devminor=0, size_field=None):
    """One 512-byte ustar header; name/link are bytes (at most 100)."""
    if isinstance(name, str):
        name = name.encode()
    if isinstance(link, str):
        link = link.encode()
    h = bytearray(512)
    h[0:len(name[:100])] = name[:100]
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(uid, 8)
    h[116:124] = _octal(gid, 8)
    h[124:136] = size_field if size_field is not None else _octal(size, 12)
    h[136:148] = _octal(0, 12)
    h[148:156] = b" " * 8
    h[156:157] = typeflag
    h[157:157 + len(link[:100])] = link[:100]
    h[257:265] = b"ustar\x0000"
    h[265:269] = b"root"
    h[297:301] = b"root"
    h[329:337] = _octal(devmajor, 8)
    h[337:345] = _octal(devminor, 8)
    h[148:156] = ("%06o" % sum(h)).encode() + b"\0 "
    return bytes(h)


def pad(data):
    return data + b"\0" * ((512 - len(data) % 512) % 512)


def member(name, data=b"", **kw):
    """A header and its data; a name past ustar's 100 bytes goes in a pax
    record first, as GNU tar and libarchive write it."""
    if isinstance(name, str):
        name = name.encode()
    lead = b""
    if len(name) > 100 and kw.get("typeflag") not in (b"x", b"L"):
        lead = pax([("path", name)])
    return lead + header(name, size=len(data), **kw) + pad(data)


def pax_record(key, value):
    """A pax "LEN key=value\\n" record (LEN counts itself)."""
    if isinstance(value, str):
        value = value.encode()
    body = b" " + key.encode() + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def pax(records, name=b"PaxHeader"):
    data = b"".join(pax_record(k, v) for k, v in records)
    return member(name, data, typeflag=b"x")


END = b"\0" * 1024


def f(name, data=b"", mode=0o644, **kw):
    if isinstance(data, str):
        data = data.encode()
    return member(name, data, mode=mode, **kw)


def d(name, mode=0o755):
    return member(name, typeflag=b"5", mode=mode)


def sym(name, target):
    return member(name, typeflag=b"2", link=target, mode=0o777)


def hard(name, target):
    return member(name, typeflag=b"1", link=target)


def tar(*members):
    return b"".join(members) + END


def gzip_member(data, level=6):
    """A gzip member without name or time, as kiln writes them."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    body = c.compress(data) + c.flush()
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + body +
            struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF))


@functools.lru_cache(maxsize=None)
def zeros_member(n):
    return gzip_member(b"\0" * n, 9)


def gzip_zeros(total, chunk=64 << 20):
    """gzip of `total` zero bytes: one member for `chunk` zeros, repeated."""
    out = io.BytesIO()
    for _ in range(total // chunk):
        out.write(zeros_member(chunk))
    if total % chunk:
        out.write(zeros_member(total % chunk))
    return out.getvalue()


def write(path, data):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


# --- tarballs -----------------------------------------------------------------


def tarballs(out, canary_dir):
    canary = canary_dir.rstrip("/") + "/canary"
    up = "../" * 40  # more than any real depth: a relative escape to /
    w = lambda name, data: write(os.path.join(out, name), data)

    # A sound archive, for the limits a template sets.
    w("good.tar", tar(d("srv/"), f("srv/a", "a" * 100), f("srv/b", "b" * 100)))
    # Escapes: each aims at CANARY_DIR/canary on the host.
    w("dotdot.tar", tar(f("srv/ok", "fine\n"), f("../canary", "pwned\n")))
    w("dotdot_deep.tar", tar(f("srv/" + up + canary.lstrip("/"), "pwned\n")))
    w("absolute.tar", tar(f(canary, "pwned\n")))
    # Long names the ustar field cannot hold go in a pax record.
    w("absolute_pax.tar", tar(pax([("path", canary)]), f("placeholder", "pwned\n")))
    w("symlink_escape.tar", tar(sym("esc", canary_dir), f("esc/canary", "pwned\n")))
    w("symlink_rel_escape.tar",
      tar(d("srv/"), sym("srv/up", up + canary_dir.lstrip("/")), f("srv/up/canary", "pwned\n")))
    w("symlink_chain.tar",
      tar(sym("a", "b"), sym("b", "/"), f("a/" + canary.lstrip("/"), "pwned\n")))
    w("hardlink_outside.tar", tar(f("a", "x"), hard("b", canary)))
    w("hardlink_dotdot.tar", tar(f("a", "x"), hard("b", "../../../../etc/shadow")))
    w("hardlink_missing.tar", tar(f("a", "x"), hard("b", "nothere")))
    w("hardlink_to_dir.tar", tar(d("dir/"), hard("b", "dir")))
    w("hardlink_to_symlink.tar", tar(sym("s", "/etc/passwd"), hard("b", "s")))
    # Duplicates: a file twice, a file then a symlink, a directory twice.
    w("duplicate_file.tar", tar(f("srv/a", "first\n"), f("srv/a", "second\n")))
    w("duplicate_file_symlink.tar", tar(f("srv/a", "first\n"), sym("srv/a", "/etc/passwd")))
    w("duplicate_dir.tar", tar(d("srv/", 0o700), f("srv/x", "x"), d("srv/", 0o750)))
    # Headers too big to believe.
    w("pax_huge.tar", tar(pax([("comment", b"x" * (100 << 20))]), f("a", "x")))
    w("gnu_longname_huge.tar",
      tar(member("././@LongLink", b"a" * (10 << 20), typeflag=b"L"), f("placeholder", "x")))
    w("pax_size_absurd.tar",
      tar(pax([("size", "999999999999999999")]), f("big", "x")))
    w("long_component.tar", tar(pax([("path", "srv/" + "n" * 300)]), f("placeholder", "x")))
    w("long_path.tar",
      tar(pax([("path", "/".join(["d" * 200] * 25) + "/f")]), f("placeholder", "x")))
    # Truncated and broken.
    good = tar(d("srv/"), f("srv/data", bytes(range(256)) * 400), f("srv/z", "z"))
    w("truncated.tar", good[:512 * 2 + 50000])
    w("truncated_header.tar", good[:512 * 1 + 300])
    noise = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(4096))  # 128 KiB
    # that gzip cannot shrink, so that cutting the .gz in half cuts the data
    w("truncated.tar.gz", gzip_member(tar(d("srv/"), f("srv/noise", noise)))[:60000])
    gz = bytearray(gzip_member(good))
    gz[len(gz) // 2] ^= 0xFF
    w("corrupt.tar.gz", bytes(gz))
    w("not_a_tar.tar", b"this is not a tar archive\n" * 100)
    bad = bytearray(good)
    bad[148:156] = b"0000000\0"
    w("bad_checksum.tar", bytes(bad))
    # Bombs: 10 GiB of zeros in ~10 MiB; many files that add up; a sparse file
    # whose 1 TiB is holes (a 3 KiB archive).
    w("bomb.tar.gz",
      gzip_member(header("zeros", size=10 << 30)) + gzip_zeros(10 << 30) + gzip_member(END))
    many = [header("f%03d" % i, size=256 << 20) for i in range(40)]
    w("bomb_many.tar.gz",
      b"".join(gzip_member(h) + gzip_zeros(256 << 20) for h in many) + gzip_member(END))
    w("sparse_bomb.tar",
      tar(pax([("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"),
                ("GNU.sparse.name", "sparse"), ("GNU.sparse.realsize", str(1 << 40))]),
          header("GNUSparseFile.0/sparse", size=1024) + pad(b"1\n%d\n1\n" % ((1 << 40) - 1)) + pad(b"x")))
    # Special files and modes.
    w("device_char.tar", tar(member("dev/kmem", typeflag=b"3", mode=0o666, devmajor=1, devminor=2)))
    w("device_block.tar", tar(member("dev/sda", typeflag=b"4", mode=0o660, devmajor=8, devminor=0)))
    w("fifo.tar", tar(member("run/fifo", typeflag=b"6", mode=0o600)))
    w("setuid.tar", tar(f("usr/bin/rootshell", "#!/bin/sh\n", mode=0o4755)))
    w("setgid.tar", tar(f("usr/bin/groupshell", "#!/bin/sh\n", mode=0o2755)))
    w("sticky.tar", tar(d("tmp/", 0o1777)))
    w("unknown_type.tar", tar(member("weird", b"data", typeflag=b"Z")))
    w("whiteout.tar", tar(f("etc/.wh.passwd")))
    w("uid_wraps.tar", tar(pax([("uid", str(1 << 32)), ("gid", str((1 << 32) + 5))]), f("owned", "x")))
    w("bad_utf8_name.tar", tar(f(b"srv/caf\xe9-\xff\xfe", "latin-1 name\n")))
    w("empty.tar", b"")


# --- templates ---------------------------------------------------------------

HEAD = "apiVersion: kiln.dev/v1\nname: hostile\nversion: 1.0.0\n"


def templates(out):
    w = lambda name, text: write(os.path.join(out, name),
                                 text if isinstance(text, bytes) else text.encode())
    # Billion laughs: 9 levels of 9 aliases, under a key kiln reads.
    lol = ['  l0: &l0 "lol"']
    for i in range(1, 10):
        lol.append("  l%d: &l%d [%s]" % (i, i, ", ".join(["*l%d" % (i - 1)] * 9)))
    w("billion_laughs.yaml", HEAD + "annotations:\n" + "\n".join(lol) + "\n")
    # The same, shaped as the schema wants: 10^6 files through aliases.
    w("alias_layers.yaml", HEAD +
      "layers:\n"
      "  - &l\n"
      "    name: a\n"
      "    files: &fs [" + ", ".join(["&f0 {dest: /a, content: x}"] + ["*f0"] * 999) + "]\n" +
      "".join("  - *l\n" for _ in range(999)))
    # Deep nesting, flow and block style.
    w("deep_flow.yaml", HEAD + "annotations: " + "[" * 10000 + "]" * 10000 + "\n")
    w("deep_map.yaml", HEAD + "annotations: " + "{a: " * 10000 + "b" + "}" * 10000 + "\n")
    w("deeper_flow.yaml", HEAD + "annotations: " + "[" * 200000 + "]" * 200000 + "\n")
    # Big and binary.
    w("huge.yaml", HEAD + "annotations:\n" + "".join(
        "  k%07d: %s\n" % (i, "v" * 100) for i in range(12000)))
    w("nul.yaml", HEAD.encode() + b"annotations: {a: \"b\0c\"}\n")
    w("bad_utf8.yaml", HEAD.encode() + b"annotations:\n  org.example.note: \"caf\xe9 \xff\xfe\"\n")
    w("utf16.yaml", "\ufeff".encode("utf-16-le") + HEAD.encode("utf-16-le"))
    # ${} substitution: loops and growth.
    w("subst_loop.yaml", HEAD + "args:\n  A: ${B}\n  B: ${A}\n")
    w("subst_self.yaml", HEAD + "args:\n  A: x${A}\n")
    w("subst_loop3.yaml", HEAD + "args:\n  A: ${B}\n  B: ${C}\n  C: ${A}\n")
    growth = ["  A0: 0123456789abcdef"] + [
        "  A%d: ${A%d}${A%d}" % (i, i - 1, i - 1) for i in range(1, 41)]
    w("subst_exponential.yaml", HEAD + "args:\n" + "\n".join(growth) + "\n")
    # Args under the per-arg cap, used so often that the strings explode:
    # 2^16 bytes x 2048 references in one value, in 10 files.
    fan = ["  B0: 0123456789abcdef"] + [
        "  B%d: ${B%d}${B%d}" % (i, i - 1, i - 1) for i in range(1, 13)]
    refs = "${B12}" * 2048
    w("subst_fanout.yaml", HEAD + "args:\n" + "\n".join(fan) + "\nlayers:\n  - name: a\n    files:\n" +
      "".join('      - {dest: /f%d, content: "%s"}\n' % (i, refs) for i in range(10)))
    # No ${}: one 512 KiB string aliased into 100 files.
    w("alias_content.yaml", HEAD + "layers:\n  - name: a\n    files:\n" +
      '      - {dest: /f0, content: &big "%s"}\n' % ("x" * (512 << 10)) +
      "".join("      - {dest: /f%d, content: *big}\n" % i for i in range(1, 100)))
    w("subst_unterminated.yaml", HEAD + "args:\n  A: x\nannotations:\n  a: \"${A\"\n")


# --- OCI layouts ---------------------------------------------------------------


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class Layout:
    """An OCI layout being made: blobs and index.json entries."""

    def __init__(self, path):
        self.path = path
        self.index = []
        write(os.path.join(path, "oci-layout"), b'{"imageLayoutVersion":"1.0.0"}')
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)

    def blob(self, data, digest=None):
        digest = digest or sha(data)
        write(os.path.join(self.path, "blobs", "sha256", digest[7:]), data)
        return digest

    def desc(self, media_type, data, **extra):
        d = {"mediaType": media_type, "digest": self.blob(data), "size": len(data)}
        d.update(extra)
        return d

    def tag(self, desc, ref="1.0.0"):
        d = dict(desc)
        d["annotations"] = {"org.opencontainers.image.ref.name": ref}
        self.index.append(d)

    def close(self, index_bytes=None):
        write(os.path.join(self.path, "index.json"), index_bytes if index_bytes is not None else
              canon({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                     "manifests": self.index}))


MT = "application/vnd.oci.image.manifest.v1+json"
IT = "application/vnd.oci.image.index.v1+json"
CT = "application/vnd.oci.image.config.v1+json"
LT = "application/vnd.oci.image.layer.v1.tar+gzip"


def layer_bytes(members=None):
    raw = tar(*(members or [d("srv/"), f("srv/base.txt", "from the base\n")]))
    return raw, gzip_member(raw)


def config_bytes(raw_layers, extra=None):
    c = {"architecture": "amd64", "os": "linux", "config": {},
         "rootfs": {"type": "layers", "diff_ids": [sha(r) for r in raw_layers]}}
    c.update(extra or {})
    return canon(c)


def image(lay, *, layers=None, config=None, config_type=CT, layer_type=LT,
          manifest_edit=None, tag=True):
    """A one-image layout; returns the manifest descriptor."""
    layers = layers if layers is not None else [layer_bytes()]
    cfg = config if config is not None else config_bytes([r for r, _ in layers])
    m = {"schemaVersion": 2, "mediaType": MT,
         "config": lay.desc(config_type, cfg),
         "layers": [lay.desc(layer_type, gz) for _, gz in layers]}
    if manifest_edit:
        manifest_edit(m)
    md = lay.desc(MT, canon(m))
    if tag:
        lay.tag(md)
    return md


def oci(out):
    def new(name):
        return Layout(os.path.join(out, name))

    lay = new("good")  # the control: every command accepts it
    image(lay)
    lay.close()

    lay = new("blob_wrong_content")  # the layer file holds other bytes
    md = image(lay)
    m = json.loads(open(os.path.join(lay.path, "blobs/sha256", md["digest"][7:]), "rb").read())
    p = os.path.join(lay.path, "blobs/sha256", m["layers"][0]["digest"][7:])
    data = bytearray(open(p, "rb").read())
    data[20] ^= 0xFF
    write(p, bytes(data))
    lay.close()

    lay = new("manifest_wrong_digest")  # index.json names a manifest by a digest its bytes do not have
    md = image(lay, tag=False)
    body = open(os.path.join(lay.path, "blobs/sha256", md["digest"][7:]), "rb").read()
    fake = "sha256:" + "ab" * 32
    lay.blob(body, fake)
    lay.tag(dict(md, digest=fake))
    lay.close()

    lay = new("config_wrong_digest")
    def edit(m):
        body = open(os.path.join(lay.path, "blobs/sha256", m["config"]["digest"][7:]), "rb").read()
        fake = "sha256:" + "cd" * 32
        lay.blob(body + b" ", fake)
        m["config"]["digest"] = fake
    image(lay, manifest_edit=edit)
    lay.close()

    lay = new("size_too_small")  # the manifest says the layer is 10 bytes
    image(lay, manifest_edit=lambda m: m["layers"][0].update(size=10))
    lay.close()
    lay = new("size_too_large")
    image(lay, manifest_edit=lambda m: m["layers"][0].update(size=m["layers"][0]["size"] + 1000))
    lay.close()
    lay = new("size_absurd")  # 10^18 bytes
    image(lay, manifest_edit=lambda m: m["layers"][0].update(size=10 ** 18))
    lay.close()
    lay = new("size_negative")
    image(lay, manifest_edit=lambda m: m["layers"][0].update(size=-1))
    lay.close()
    lay = new("manifest_size_absurd")  # index.json: the manifest is 2^49 bytes
    md = image(lay, tag=False)
    lay.tag(dict(md, size=1 << 49))
    lay.close()

    lay = new("layer_media_type_unknown")
    image(lay, layer_type="application/x-kiln-hostile")
    lay.close()
    lay = new("manifest_media_type_unknown")  # index.json calls the manifest something else
    md = image(lay, tag=False)
    lay.tag(dict(md, mediaType="application/x-kiln-hostile"))
    lay.close()
    lay = new("manifest_claims_index")  # a manifest named as an index
    md = image(lay, tag=False)
    lay.tag(dict(md, mediaType=IT))
    lay.close()

    lay = new("index_self")  # an index that lists itself: the closest content addressing allows
    md = image(lay, tag=False)
    inner = canon({"schemaVersion": 2, "mediaType": IT, "manifests": [
        dict(md, platform={"architecture": "amd64", "os": "linux"})]})
    inner_digest = sha(inner)
    # The stored index lists, beside nothing else, the digest of the one above.
    cyc = canon({"schemaVersion": 2, "mediaType": IT, "manifests": [
        {"mediaType": IT, "digest": inner_digest, "size": len(inner),
         "platform": {"architecture": "amd64", "os": "linux"}}]})
    lay.blob(cyc, inner_digest)  # content that is not what the digest says
    lay.tag({"mediaType": IT, "digest": inner_digest, "size": len(cyc)})
    lay.close()

    lay = new("index_nested")  # indexes 12 deep
    md = image(lay, tag=False)
    cur = dict(md, platform={"architecture": "amd64", "os": "linux"})
    for _ in range(12):
        body = canon({"schemaVersion": 2, "mediaType": IT, "manifests": [cur]})
        cur = {"mediaType": IT, "digest": lay.blob(body), "size": len(body),
               "platform": {"architecture": "amd64", "os": "linux"}}
    lay.tag(cur)
    lay.close()

    lay = new("config_not_json")
    image(lay, config=b"this is not JSON\n")
    lay.close()
    lay = new("config_not_object")
    image(lay, config=b"[1, 2, 3]")
    lay.close()
    lay = new("config_deep_json")  # 100000 nested arrays in a field kiln keeps
    raw, gz = layer_bytes()
    image(lay, layers=[(raw, gz)], config=config_bytes(
        [raw])[:-1] + b',"x":' + b"[" * 100000 + b"]" * 100000 + b"}")
    lay.close()
    lay = new("config_bad_utf8")  # a label that is not UTF-8
    raw, gz = layer_bytes()
    cfg = config_bytes([raw], {"config": {"Labels": {"a": "PLACEHOLDER"}}})
    image(lay, layers=[(raw, gz)], config=cfg.replace(b"PLACEHOLDER", b"caf\xe9\xff"))
    lay.close()
    lay = new("config_diff_ids_mismatch")
    raw, gz = layer_bytes()
    image(lay, layers=[(raw, gz)], config=config_bytes([raw, raw]))
    lay.close()

    lay = new("layer_not_tar")  # gzip of text, then plain garbage
    image(lay, layers=[(b"not a tar\n" * 100, gzip_member(b"not a tar\n" * 100))])
    lay.close()
    lay = new("layer_garbage")
    image(lay, layers=[(b"", b"\x00\x01garbage" * 200)])
    lay.close()
    lay = new("layer_truncated")
    raw, gz = layer_bytes([d("srv/"), f("srv/big", bytes(range(256)) * 2000)])
    image(lay, layers=[(raw, gz[: len(gz) // 2])])
    lay.close()
    lay = new("layer_dotdot")  # a base layer with an escaping entry
    image(lay, layers=[layer_bytes([f("../../../canary", "pwned\n")])])
    lay.close()

    lay = new("index_not_json")
    image(lay)
    lay.close(b"{not json")
    lay = new("layout_version")
    image(lay)
    lay.close()
    write(os.path.join(lay.path, "oci-layout"), b'{"imageLayoutVersion":"9.0.0"}')
    lay = new("no_blobs_dir")  # a reader must not make it
    image(lay)
    lay.close()
    shutil.rmtree(os.path.join(lay.path, "blobs"))
    lay = new("blob_is_directory")
    md = image(lay)
    m = json.loads(open(os.path.join(lay.path, "blobs/sha256", md["digest"][7:]), "rb").read())
    p = os.path.join(lay.path, "blobs/sha256", m["layers"][0]["digest"][7:])
    os.remove(p)
    os.mkdir(p)
    lay.close()


# --- .deb files ---------------------------------------------------------------


def ar(members):
    out = b"!<arch>\n"
    for name, data in members:
        out += ("%-16s%-12d%-6d%-6d%-8s%-10d`\n" % (name, 0, 0, 0, "100644", len(data))).encode()
        out += data + (b"\n" if len(data) % 2 else b"")
    return out


def deb(name, data_tar_gz, control_tar_gz=None):
    control = ("Package: %s\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: kiln tests"
               " <t@kiln.invalid>\nDescription: hostile\n" % name).encode()
    ctl = control_tar_gz or gzip_member(tar(d("./"), f("./control", control)))
    return ar([("debian-binary", b"2.0\n"), ("control.tar.gz", ctl), ("data.tar.gz", data_tar_gz)])


def debs(out):
    w = lambda name, data: write(os.path.join(out, name + "_1.0-1_amd64.deb"), data)
    w("good", deb("good", gzip_member(tar(d("./"), d("./usr/"), f("./usr/good", "good\n")))))
    w("dotdot", deb("dotdot", gzip_member(tar(d("./"), f("./../../../canary", "pwned\n")))))
    w("absolute", deb("absolute", gzip_member(tar(d("./"), f("/etc/canary", "pwned\n")))))
    w("symlinkout", deb("symlinkout", gzip_member(tar(
        d("./"), sym("./esc", "../../../../../../../../tmp"), f("./esc/canary", "pwned\n")))))
    full = deb("truncated", gzip_member(tar(d("./"), f("./big", bytes(range(256)) * 4000))))
    w("truncated", full[: len(full) // 2])
    w("notar", b"!<arch>\n" + b"garbage" * 50)
    w("bomb", deb("bomb", gzip_member(header("./zeros", size=10 << 30)) + gzip_zeros(10 << 30) +
                  gzip_member(END)))
    w("controlbomb", deb("controlbomb", gzip_member(tar(d("./"))), gzip_member(header(
        "./control", size=4 << 30)) + gzip_zeros(4 << 30) + gzip_member(END)))


# --- one image for liar_registry.py ---------------------------------------------


def registry_image(out):
    raw, gz = layer_bytes()
    cfg = config_bytes([raw])
    m = canon({"schemaVersion": 2, "mediaType": MT,
               "config": {"mediaType": CT, "digest": sha(cfg), "size": len(cfg)},
               "layers": [{"mediaType": LT, "digest": sha(gz), "size": len(gz)}]})
    write(os.path.join(out, "manifest.json"), m)
    write(os.path.join(out, "blobs", sha(cfg)[7:]), cfg)
    write(os.path.join(out, "blobs", sha(gz)[7:]), gz)
    write(os.path.join(out, "digest"), sha(m).encode())


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    what, out = argv[1], argv[2]
    os.makedirs(out, exist_ok=True)
    if what == "tarballs":
        tarballs(out, argv[3])
    elif what == "templates":
        templates(out)
    elif what == "oci":
        oci(out)
    elif what == "debs":
        debs(out)
    elif what == "registry-image":
        registry_image(out)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
