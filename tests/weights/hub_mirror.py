#!/usr/bin/env python3
"""A local stand-in for the Hugging Face Hub, for testing `blip_weights download`
without network. Serves ROOT/<org>/<name>/<files> through the two routes the
downloader uses, the way huggingface.co answers them:

  GET /api/models/<org>/<name>/revision/<revision>?blobs=true
      {"sha": <commit>, "siblings": [{"rfilename", "size", "blobId", "lfs": {"sha256", "size"}}]}
      (*.safetensors are LFS files, as on the Hub; revision "main" or the commit)
  GET /<org>/<name>/resolve/<revision>/<file>
      the file; LFS files answer 302 to /cdn/... first, as the Hub redirects to
      its CDN. Honours "Range: bytes=N-" with 206 and Content-Range.

Test knobs:
  --drop-after N      the first download of each LFS file sends its headers
                      (full Content-Length) and N bytes, then drops the connection
  --bad-sha256 FILE   the listing gives a wrong lfs.sha256 for FILE
  --bad-blob-id FILE  the listing gives a wrong blobId for FILE (a file not in LFS)
  --log PATH          one line per request: method, path, Range header
  --tls-cert PEM --tls-key PEM   serve https with that certificate
The port (chosen by the system) is written to --port-file once listening.
"""
import argparse
import hashlib
import http.server
import json
import os
import socket
import ssl
import threading
import urllib.parse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the test reads --log instead
        pass

    def record(self):
        if self.server.log_path:
            with self.server.lock, open(self.server.log_path, "a") as log:
                log.write("%s %s range=%s\n" % (self.command, self.path, self.headers.get("Range", "-")))

    def send_json(self, status, document):
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def repo_files(self, repo):
        folder = os.path.join(self.server.root, repo)
        if not os.path.isdir(folder):
            return None
        names = []
        for directory, _, files in os.walk(folder):
            for name in files:
                names.append(os.path.relpath(os.path.join(directory, name), folder).replace(os.sep, "/"))
        return folder, sorted(names)

    def do_GET(self):
        self.record()
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(part) for part in url.path.split("/")]
        # /api/models/<org>/<name>/revision/<revision>
        if len(parts) == 7 and parts[1:3] == ["api", "models"] and parts[5] == "revision":
            return self.listing(parts[3] + "/" + parts[4], parts[6])
        # /<org>/<name>/resolve/<revision>/<file...>  and  /cdn/<org>/<name>/<file...>
        if len(parts) >= 6 and parts[3] == "resolve":
            return self.resolve(parts[1] + "/" + parts[2], parts[4], "/".join(parts[5:]), redirect=True)
        if len(parts) >= 5 and parts[1] == "cdn":
            return self.resolve(parts[2] + "/" + parts[3], COMMIT, "/".join(parts[4:]), redirect=False)
        self.send_json(404, {"error": "not found"})

    def listing(self, repo, revision):
        found = self.repo_files(repo)
        if found is None or revision not in ("main", COMMIT):
            return self.send_json(404, {"error": "Repository or revision not found"})
        folder, names = found
        siblings = []
        for name in names:
            with open(os.path.join(folder, name), "rb") as stream:
                data = stream.read()
            sibling = {"rfilename": name, "size": len(data), "blobId": git_blob_id(data)}
            if name == self.server.bad_blob_id:
                sibling["blobId"] = "e" * 40
            if name.endswith(".safetensors"):
                sha256 = hashlib.sha256(data).hexdigest()
                if name == self.server.bad_sha256:
                    sha256 = "f" * 64
                sibling["lfs"] = {"sha256": sha256, "size": len(data), "pointerSize": 134}
            siblings.append(sibling)
        self.send_json(200, {"id": repo, "sha": COMMIT, "siblings": siblings})

    def resolve(self, repo, revision, name, redirect):
        found = self.repo_files(repo)
        if found is None or revision not in ("main", COMMIT) or name not in found[1]:
            return self.send_json(404, {"error": "Entry not found"})
        if redirect and name.endswith(".safetensors"):
            self.send_response(302)
            self.send_header("Location", "/cdn/%s/%s" % (repo, urllib.parse.quote(name)))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(os.path.join(found[0], name), "rb") as stream:
            data = stream.read()
        start = 0
        range_header = self.headers.get("Range")
        if range_header:
            start = int(range_header.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", '"%s"' % git_blob_id(data))
        self.end_headers()
        body = data[start:]
        drop = False
        with self.server.lock:
            if self.server.drop_after is not None and name.endswith(".safetensors") and name not in self.server.dropped:
                self.server.dropped.add(name)
                drop = len(body) > self.server.drop_after
        if drop:
            self.wfile.write(body[: self.server.drop_after])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log")
    parser.add_argument("--drop-after", type=int)
    parser.add_argument("--bad-sha256")
    parser.add_argument("--bad-blob-id")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    arguments = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    server.root = arguments.root
    server.log_path = arguments.log
    server.drop_after = arguments.drop_after
    server.bad_sha256 = arguments.bad_sha256
    server.bad_blob_id = arguments.bad_blob_id
    server.dropped = set()
    server.lock = threading.Lock()
    if arguments.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(arguments.tls_cert, arguments.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(arguments.port_file + ".tmp", "w") as stream:
        stream.write(str(server.server_address[1]))
    os.rename(arguments.port_file + ".tmp", arguments.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
