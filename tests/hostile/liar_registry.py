#!/usr/bin/env python3
"""A registry that lies, for tests/integration/hostile_registry.sh.

It serves one small image (made by `make.py registry-image DIR`) under every
repository name MODE/img, and MODE says how it misbehaves:

  ok                 honest
  blob-lie           blob GETs answer other bytes of the same length
  blob-short         blob GETs answer 100 bytes fewer, with a Content-Length
                     that agrees (a consistent short answer)
  blob-cut           a Content-Length of the full size, half the bytes, then
                     the connection is closed
  blob-long          twice the bytes, with a Content-Length that agrees
  blob-endless       zeros without end (chunked, no Content-Length)
  digest-lie         the Docker-Content-Digest header names another digest
  manifest-lie       a manifest GET by digest answers other JSON
  manifest-type      the manifest has an unknown media type (header and body)
  manifest-huge      a 5 MiB manifest
  manifest-absurd    the layer's size is 10^18
  manifest-deep      100000 nested arrays in an annotation-like field
  index-deep         the tag names an index of an index ... 10 deep
  redirect-other     blob GETs redirect to the second port (which records
                     every Authorization header it gets: GET /_seen there)
  redirect-loop      blob GETs redirect to themselves, forever
  redirect-pingpong  blob GETs bounce between the two ports, forever
  redirect-file      blob GETs redirect to file:///etc/passwd
  (GET /_seen_main lists the Authorization headers this port got)
  basic-*            as the rest of the name, behind basic auth (USER:PASS)
  bearer-*           as the rest of the name, behind bearer tokens from /token
  realm-file         401 with a Bearer realm of file://SECRET (a local file
                     holding {"token": ...}): a client must not read it

Usage: liar_registry.py --image DIR --port N --other-port M --creds USER:PASS
                        --secret FILE
"""
import argparse
import base64
import http.server
import json
import hashlib
import os
import re
import socket
import sys
import threading

ARGS = None
SEEN = []  # Authorization headers that reached the other port
SEEN_MAIN = []  # and this one
LOCK = threading.Lock()
TOKENS = set()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def load_image(d):
    manifest = open(os.path.join(d, "manifest.json"), "rb").read()
    blobs = {}
    for name in os.listdir(os.path.join(d, "blobs")):
        blobs["sha256:" + name] = open(os.path.join(d, "blobs", name), "rb").read()
    return manifest, blobs


MT = "application/vnd.oci.image.manifest.v1+json"
IT = "application/vnd.oci.image.index.v1+json"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    other = False  # the second port's handler

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body=b"", headers=None, length=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def manifests(self, mode):
        """{reference: (bytes, media type)} for this mode."""
        manifest, _ = self.server.image
        m = json.loads(manifest)
        if mode == "manifest-type":
            m["mediaType"] = "application/x-kiln-hostile"
        elif mode == "manifest-huge":
            m["annotations"] = {"pad": "x" * (5 << 20)}
        elif mode == "manifest-absurd":
            m["layers"][0]["size"] = 10 ** 18
        elif mode == "manifest-deep":
            body = json.dumps(m)[:-1] + ',"x":' + "[" * 100000 + "]" * 100000 + "}"
            m = None
            data = body.encode()
        if m is not None:
            data = json.dumps(m, sort_keys=True, separators=(",", ":")).encode()
        media = "application/x-kiln-hostile" if mode == "manifest-type" else MT
        out = {sha(data): (data, media)}
        top = (data, media)
        if mode == "index-deep":
            child = {"mediaType": MT, "digest": sha(data), "size": len(data),
                     "platform": {"architecture": "amd64", "os": "linux"}}
            for _ in range(10):
                idx = json.dumps({"schemaVersion": 2, "mediaType": IT, "manifests": [child]},
                                 sort_keys=True, separators=(",", ":")).encode()
                out[sha(idx)] = (idx, IT)
                child = {"mediaType": IT, "digest": sha(idx), "size": len(idx),
                         "platform": {"architecture": "amd64", "os": "linux"}}
            top = (idx, IT)
        out["1.0.0"] = top
        return out

    def authorized(self, mode):
        auth = self.headers.get("Authorization", "")
        if mode.startswith("basic-"):
            if auth == "Basic " + base64.b64encode(ARGS.creds.encode()).decode():
                return True
            self.send(401, b"{}", {"WWW-Authenticate": 'Basic realm="liar"'})
            return False
        if mode.startswith("bearer-"):
            if auth.startswith("Bearer ") and auth[7:] in TOKENS:
                return True
            self.send(401, b"{}", {"WWW-Authenticate":
                                   'Bearer realm="http://127.0.0.1:%d/token",service="liar"' % ARGS.port})
            return False
        if mode == "realm-file":
            self.send(401, b"{}", {"WWW-Authenticate":
                                   'Bearer realm="file://%s",service="liar"' % ARGS.secret})
            return False
        return True

    def handle_other(self):
        with LOCK:
            if self.headers.get("Authorization"):
                SEEN.append(self.headers.get("Authorization"))
        m = re.match(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$", self.path)
        if m and m.group(1).split("/")[0].endswith("redirect-pingpong"):
            self.send(302, b"", {"Location": "http://127.0.0.1:%d%s" % (ARGS.port, self.path)})
            return
        blob = self.server.image[1].get(m.group(2)) if m else None
        if blob is None:
            self.send(404, b"{}")
            return
        self.send(200, blob, {"Content-Type": "application/octet-stream"})

    def do_GET(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.other:
            self.handle_other()
            return
        if self.path == "/_seen":
            with LOCK:
                self.send(200, json.dumps(SEEN).encode())
            return
        if self.path == "/_seen_main":
            with LOCK:
                self.send(200, json.dumps(SEEN_MAIN).encode())
            return
        with LOCK:
            if self.headers.get("Authorization"):
                SEEN_MAIN.append(self.headers.get("Authorization"))
        if self.path.startswith("/token"):
            auth = self.headers.get("Authorization", "")
            if auth != "Basic " + base64.b64encode(ARGS.creds.encode()).decode():
                self.send(401, b"{}", {"WWW-Authenticate": 'Basic realm="token"'})
                return
            token = hashlib.sha256(os.urandom(16)).hexdigest()
            with LOCK:
                TOKENS.add(token)
            self.send(200, json.dumps({"token": token}).encode(), {"Content-Type": "application/json"})
            return
        if self.path == "/v2/":
            self.send(200, b"{}")
            return
        m = re.match(r"^/v2/(.+)/(manifests|blobs)/([^/]+)$", self.path)
        if not m:
            self.send(404, b"{}")
            return
        mode = m.group(1).split("/")[0]
        if not self.authorized(mode):
            return
        for prefix in ("basic-", "bearer-"):
            if mode.startswith(prefix):
                mode = mode[len(prefix):]
        kind, ref = m.group(2), m.group(3)
        if kind == "manifests":
            self.manifest(mode, ref)
        else:
            self.blob(mode, ref)

    do_HEAD = do_GET

    def manifest(self, mode, ref):
        table = self.manifests(mode)
        if ref not in table:
            self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}')
            return
        data, media = table[ref]
        digest = sha(data)
        if mode == "manifest-lie" and ref.startswith("sha256:"):
            data = data.replace(b'"schemaVersion":2', b'"schemaVersion":2,"lie":1')
        if mode == "digest-lie":
            digest = "sha256:" + "ee" * 32
        self.send(200, data, {"Content-Type": media, "Docker-Content-Digest": digest})

    def blob(self, mode, digest):
        data = self.server.image[1].get(digest)
        if data is None:
            self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}')
            return
        if mode in ("redirect-other", "redirect-pingpong") and self.command == "GET":
            self.send(302, b"", {"Location": "http://127.0.0.1:%d%s" % (ARGS.other_port, self.path)})
            return
        if mode == "redirect-loop" and self.command == "GET":
            self.send(302, b"", {"Location": self.path})
            return
        if mode == "redirect-file" and self.command == "GET":
            self.send(302, b"", {"Location": "file:///etc/passwd"})
            return
        if self.command == "HEAD":
            self.send(200, b"", {"Content-Type": "application/octet-stream"}, length=len(data))
            return
        if mode == "blob-lie":
            data = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
        elif mode == "blob-short":
            data = data[:-100] if len(data) > 100 else data[:-1]
        elif mode == "blob-long":
            data = data + data
        elif mode == "blob-cut":
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        elif mode == "blob-endless":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"\0" * (1 << 20)
            try:
                for _ in range(100 << 10):  # 100 GiB at most, then give up
                    self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:
                pass
            self.close_connection = True
            return
        self.send(200, data, {"Content-Type": "application/octet-stream"})


class Other(Handler):
    other = True


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--image", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--other-port", type=int, required=True)
    p.add_argument("--creds", required=True)
    p.add_argument("--secret", required=True)
    ARGS = p.parse_args()
    image = load_image(ARGS.image)
    servers = []
    for port, handler in ((ARGS.port, Handler), (ARGS.other_port, Other)):
        s = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        s.daemon_threads = True
        s.image = image
        servers.append(s)
    threading.Thread(target=servers[1].serve_forever, daemon=True).start()
    print("listening", ARGS.port, ARGS.other_port, flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    sys.exit(main())
