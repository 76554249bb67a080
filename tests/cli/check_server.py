#!/usr/bin/env python3
"""blip_server end to end, on the tiny fixture models and the real photos.

usage: check_server.py CHECK BIN_DIR FIXTURES_DIR ASSETS_DIR
CHECK: usage | caption | vqa | match | errors | stop
Exit 0 = pass, 77 = skipped (inputs absent), anything else = failure.

Each check starts its own server on 127.0.0.1 with --port 0 (the server picks a
free port and prints it) and talks to it with urllib / http.client only.
"""
import base64
import http.client
import json
import math
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

SKIP = 77
CLIENTS, REQUESTS_PER_CLIENT = 4, 25


def fail(message):
    print("FAIL: " + message, flush=True)
    sys.exit(1)


def need(*paths):
    for path in paths:
        if not os.path.exists(path):
            print(f"SKIPPED: {path} not found (set BLIP_FIXTURES_DIR / BLIP_ASSETS_DIR)")
            sys.exit(SKIP)


class Server:
    """blip_server MODEL on 127.0.0.1:<free port>; its stderr is collected in self.log."""

    def __init__(self, bin_dir, model, tokenizer, *extra):
        command = [os.path.join(bin_dir, "blip_server"), model, "--tokenizer", tokenizer, "--host", "127.0.0.1",
                   "--port", "0", *extra]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                        errors="replace")
        self.log = []
        self.port = None
        ready = threading.Event()

        def drain():
            for line in self.process.stderr:
                self.log.append(line)
                found = re.search(r"on http://127\.0\.0\.1:(\d+) ", line)
                if found:
                    self.port = int(found.group(1))
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=drain, daemon=True)
        self.reader.start()
        if not ready.wait(300) or self.port is None:
            self.process.kill()
            fail("the server did not start:\n" + "".join(self.log))

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self, signal_number=signal.SIGTERM, timeout=60):
        self.process.send_signal(signal_number)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            fail(f"the server did not stop within {timeout} s of signal {signal_number}")
        self.reader.join(10)
        return status

    def text(self):
        return "".join(self.log)


def call(url, body=None, content_type=None, method=None):
    """(status, decoded JSON, headers) for one request; any HTTP status is returned, not raised."""
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, raw, got_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, got_headers = error.code, error.read(), error.headers
    try:
        decoded = json.loads(raw)
    except ValueError:
        fail(f"{method or ('POST' if body is not None else 'GET')} {url}: status {status}, body is not JSON: {raw[:200]!r}")
    if not got_headers.get("Content-Type", "").startswith("application/json"):
        fail(f"{url}: Content-Type {got_headers.get('Content-Type')!r}, expected application/json")
    return status, decoded, got_headers


def multipart(fields, image=None):
    """A multipart/form-data body: text fields, and the image bytes as the file field "image"."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() +
                     str(value).encode() + b"\r\n")
    if image is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="photo"\r\n'
                     f'Content-Type: application/octet-stream\r\n\r\n'.encode() + image + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_form(server, path, fields, image=None):
    body, content_type = multipart(fields, image)
    return call(server.url(path), body, content_type)


def post_json(server, path, document):
    return call(server.url(path), json.dumps(document).encode(), "application/json")


def image_json(image, **fields):
    return {"image_base64": base64.b64encode(image).decode(), **fields}


def healthy(server, after):
    status, body, _ = call(server.url("/health"))
    if status != 200 or body.get("status") != "ok":
        fail(f"/health after {after}: {status} {body}\n{server.text()}")


def run_cli(bin_dir, program, *arguments):
    result = subprocess.run([os.path.join(bin_dir, program), *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"{program} {' '.join(arguments)} exited with {result.returncode}:\n{result.stderr}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def concurrently(job):
    """job(client, index) for CLIENTS clients x REQUESTS_PER_CLIENT requests each, clients on their own threads.
    Returns the number of requests made; the first failure ends the check."""
    failures = queue.Queue()
    count = [0]
    lock = threading.Lock()

    def client(number):
        try:
            for index in range(REQUESTS_PER_CLIENT):
                job(number, index)
                with lock:
                    count[0] += 1
        except SystemExit:
            failures.put(f"client {number} failed (message above)")
        except Exception as error:  # noqa: BLE001 - any client error fails the check
            failures.put(f"client {number}: {error!r}")

    threads = [threading.Thread(target=client, args=(number,)) for number in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if not failures.empty():
        fail(failures.get())
    print(f"{count[0]} requests from {CLIENTS} concurrent clients in {time.monotonic() - started:.2f} s")
    return count[0]


def check_usage(bin_dir, fixtures, assets):
    server = os.path.join(bin_dir, "blip_server")
    result = subprocess.run([server, "--help"], capture_output=True, text=True)
    if result.returncode != 0 or "usage: blip_server" not in result.stdout:
        fail(f"--help: status {result.returncode}")
    # Usage errors exit 2 before any model loads: the folder does not even exist.
    for arguments, expected in [([], "usage"), (["/nonexistent/model", "--port", "70000"], "--port"),
                                (["/nonexistent/model", "--workers", "0"], "--workers"),
                                (["/nonexistent/model", "--max-body-bytes", "12x"], "--max-body-bytes"),
                                (["/nonexistent/model", "--precision", "f8"], "--precision"),
                                (["/nonexistent/model", "--bogus"], "--bogus")]:
        result = subprocess.run([server, *arguments], capture_output=True, text=True)
        if result.returncode != 2 or expected not in result.stderr:
            fail(f"blip_server {' '.join(arguments)}: status {result.returncode} (expected 2), stderr: {result.stderr}")
    # A port in use is found before the model loads (the folder does not exist, the port is the error).
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run([server, "/nonexistent/model", "--port", str(port)], capture_output=True, text=True)
    if result.returncode != 1 or "cannot listen on 127.0.0.1:" not in result.stderr:
        fail(f"a port in use: status {result.returncode}, stderr: {result.stderr}")


def check_caption(bin_dir, fixtures, assets):
    model, tokenizer = os.path.join(fixtures, "blip_caption"), os.path.join(assets, "tokenizers/blip-image-captioning-base")
    need(model, tokenizer)
    names = ["skimage_coffee.png", "skimage_rocket.jpg", "flickr8k_2108799322_e25aa6e185.jpg", "pillow_hopper_gray.jpg"]
    paths = [os.path.join(assets, "images", name) for name in names]
    need(*paths)
    photos = [open(path, "rb").read() for path in paths]
    # What the program says for each photo: beam search, and a prompt with the defaults (greedy).
    beam = {row["image"]: row for row in run_cli(bin_dir, "blip_caption", model, *paths, "--tokenizer", tokenizer,
                                                 "--beams", "2", "--max-new-tokens", "8", "--json")}
    prompted = {row["image"]: row for row in run_cli(bin_dir, "blip_caption", model, *paths, "--tokenizer", tokenizer,
                                                     "--prompt", "a picture of", "--json")}

    server = Server(bin_dir, model, tokenizer, "--workers", "4", "--threads", "1")
    status, health, _ = call(server.url("/health"))
    if status != 200 or health["tasks"] != ["caption"] or health["family"] != "BLIP":
        fail(f"/health: {status} {health}")

    def job(client, index):
        photo = (client + index) % len(paths)
        if index % 2 == 0:  # multipart, beam search
            status, body, _ = post_form(server, "/caption", {"num_beams": 2, "max_new_tokens": 8}, photos[photo])
            expected = beam[paths[photo]]
            if status != 200 or body.get("caption") != expected["caption"]:
                fail(f"/caption (form) on {names[photo]}: {status} {body}, blip_caption says {expected}")
            if f"{body['score']:.6f}" != f"{expected['score']:.6f}":
                fail(f"/caption score {body['score']} vs blip_caption's {expected['score']}")
        else:  # JSON with base64, a prompt
            status, body, _ = post_json(server, "/caption", image_json(photos[photo], prompt="a picture of"))
            expected = prompted[paths[photo]]
            if status != 200 or body.get("caption") != expected["caption"]:
                fail(f"/caption (JSON) on {names[photo]}: {status} {body}, blip_caption says {expected}")

    made = concurrently(job)
    # A captioning model does not answer questions; the error says what it does.
    status, body, _ = post_json(server, "/vqa", image_json(photos[0], question="what is this?"))
    if status != 404 or "/caption" not in body.get("error", ""):
        fail(f"/vqa on a captioning model: {status} {body}")
    healthy(server, "/vqa on a captioning model")
    if server.stop() != 0:
        fail("exit status after SIGTERM:\n" + server.text())
    logged = len(re.findall(r'"POST /caption" 200 ', server.text()))
    if logged != made:
        fail(f"{made} captions answered but {logged} logged")
    print(f"every caption equals blip_caption's; log lines: {logged}")


def check_vqa(bin_dir, fixtures, assets):
    model, tokenizer = os.path.join(fixtures, "blip_vqa"), os.path.join(assets, "tokenizers/blip-image-captioning-base")
    path = os.path.join(assets, "images", "skimage_coffee.png")
    need(model, tokenizer, path)
    photo = open(path, "rb").read()
    questions = ["what is in the cup?", "is it hot?"]
    expected = {q: run_cli(bin_dir, "blip_vqa", model, path, q, "--tokenizer", tokenizer, "--json")[0]["answer"]
                for q in questions}
    server = Server(bin_dir, model, tokenizer, "--workers", "2", "--threads", "1")

    def job(client, index):
        question = questions[(client + index) % 2]
        status, body, _ = post_form(server, "/vqa", {"question": question}, photo)
        if status != 200 or body.get("answer") != expected[question]:
            fail(f"/vqa {question!r}: {status} {body}, blip_vqa says {expected[question]!r}")

    concurrently(job)
    status, body, _ = post_form(server, "/vqa", {}, photo)
    if status != 400 or body.get("field") != "question":
        fail(f"/vqa without a question: {status} {body}")
    if server.stop() != 0:
        fail("exit status after SIGTERM:\n" + server.text())


def check_match(bin_dir, fixtures, assets):
    model, tokenizer = os.path.join(fixtures, "blip_itm"), os.path.join(assets, "tokenizers/blip-image-captioning-base")
    names = ["skimage_coffee.png", "skimage_rocket.jpg"]
    paths = [os.path.join(assets, "images", name) for name in names]
    need(model, tokenizer, *paths)
    photos = [open(path, "rb").read() for path in paths]
    texts = ["a cup of coffee", "a rocket on its launch pad"]
    pairs = [(image, text) for image in range(2) for text in range(2)]
    # blip_match on one pair at a time (a batch of texts is padded to the longest).
    expected = {(image, text): run_cli(bin_dir, "blip_match", model, "--image", paths[image], "--text", texts[text],
                                       "--tokenizer", tokenizer, "--json")[0] for image, text in pairs}
    server = Server(bin_dir, model, tokenizer, "--workers", "4", "--threads", "1")
    status, health, _ = call(server.url("/health"))
    if status != 200 or health["tasks"] != ["match", "embed"]:
        fail(f"/health: {status} {health}")

    def job(client, index):
        image, text = pairs[(client + index) % len(pairs)]
        if index % 2 == 0:
            status, body, _ = post_form(server, "/match", {"text": texts[text]}, photos[image])
        else:
            status, body, _ = post_json(server, "/match", image_json(photos[image], text=texts[text]))
        cli = expected[(image, text)]
        if (status != 200 or f"{body['itm']:.6f}" != f"{cli['itm_probability']:.6f}" or
                f"{body['itc']:.6f}" != f"{cli['itc_similarity']:.6f}"):
            fail(f"/match {names[image]} / {texts[text]!r}: {status} {body}, blip_match says {cli}")

    concurrently(job)
    # /embed: unit vectors whose dot product is the ITC score /match gives.
    for image, text in pairs:
        status, body, _ = post_json(server, "/embed", image_json(photos[image], text=texts[text]))
        if status != 200:
            fail(f"/embed: {status} {body}")
        image_vector, text_vector = body["image_embedding"], body["text_embedding"]
        dot = sum(a * b for a, b in zip(image_vector, text_vector))
        for vector in (image_vector, text_vector):
            if abs(math.sqrt(sum(x * x for x in vector)) - 1) > 1e-5:
                fail("/embed: an embedding is not a unit vector")
        if abs(dot - expected[(image, text)]["itc_similarity"]) > 2e-6:
            fail(f"/embed: cosine {dot} but blip_match's ITC is {expected[(image, text)]['itc_similarity']}")
    status, body, _ = post_json(server, "/embed", {"text": texts[0]})
    if status != 200 or "image_embedding" in body or len(body["text_embedding"]) != len(image_vector):
        fail(f"/embed of a text alone: {status} {sorted(body)}")
    status, body, _ = post_json(server, "/caption", image_json(photos[0]))
    if status != 404 or "/match" not in body.get("error", ""):
        fail(f"/caption on a retrieval model: {status} {body}")
    if server.stop() != 0:
        fail("exit status after SIGTERM:\n" + server.text())
    print("every /match equals blip_match's; /embed cosines equal the ITC scores")


def raw_request(server, lines, body=b""):
    """Sends a hand-made request with http.client (for what urllib will not send); (status, JSON)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    method, path, headers = lines
    connection.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    return response.status, json.loads(raw), response.headers


def check_errors(bin_dir, fixtures, assets):
    model, tokenizer = os.path.join(fixtures, "blip_caption"), os.path.join(assets, "tokenizers/blip-image-captioning-base")
    path = os.path.join(assets, "images", "skimage_rocket.jpg")
    need(model, tokenizer, path)
    photo = open(path, "rb").read()
    limit = 1 << 20
    server = Server(bin_dir, model, tokenizer, "--workers", "2", "--threads", "1", "--max-body-bytes", str(limit))
    big = b"\0" * (limit + 1)
    cases = [
        # (what, request thunk, expected status, expected field or None, text the error must contain)
        ("malformed JSON", lambda: call(server.url("/caption"), b'{"image_base64": "', "application/json"),
         400, None, "invalid JSON"),
        ("a JSON array", lambda: call(server.url("/caption"), b"[1, 2]", "application/json"),
         400, None, "expected a JSON object"),
        ("a non-image upload", lambda: post_form(server, "/caption", {}, b"this is a text file, not a photo\n"),
         400, "image", "not a supported image"),
        ("a truncated JPEG", lambda: post_form(server, "/caption", {}, photo[: len(photo) // 2]),
         400, "image", "truncated JPEG"),
        ("base64 that is not", lambda: post_json(server, "/caption", {"image_base64": "not base64!"}),
         400, "image_base64", "base64"),
        ("an oversized body", lambda: post_form(server, "/caption", {}, big),
         413, None, f"{limit}-byte limit"),
        ("a missing image", lambda: post_json(server, "/caption", {"prompt": "a picture of"}),
         400, "image", "missing image"),
        ("num_beams out of range", lambda: post_form(server, "/caption", {"num_beams": 100}, photo),
         400, "num_beams", "expects an integer in [1, 64]"),
        ("top_p out of range", lambda: post_json(server, "/caption", image_json(photo, top_p=1.5)),
         400, "top_p", "top_p"),
        ("num_beam_groups without diversity", lambda: post_json(
            server, "/caption", image_json(photo, num_beams=4, num_beam_groups=2)), 400, None, "diversity_penalty"),
        ("a misspelt field", lambda: post_json(server, "/caption", image_json(photo, num_beam=3)),
         400, "num_beam", "unknown field"),
        ("a prompt that is not UTF-8", lambda: call(server.url("/caption"), *multipart_bytes_prompt(photo)),
         400, "prompt", "UTF-8"),
        ("a prompt longer than the text model", lambda: post_json(
            server, "/caption", image_json(photo, prompt="word " * 600, max_new_tokens=5)), 422, None, "max_position"),
        ("an unknown route", lambda: call(server.url("/nowhere")), 404, None, "no route GET /nowhere"),
        ("an unknown route with a body", lambda: post_json(server, "/nowhere", {"a": 1}), 404, None, "no route POST"),
        ("a path holding a newline", lambda: post_json(server, "/a%0Ab", {"a": 1}), 404, None, "no route POST /a"),
        ("a wrong method", lambda: call(server.url("/caption")), 405, None, "use POST"),
        ("a wrong method on /health", lambda: call(server.url("/health"), b"{}", "application/json"), 405, None,
         "use GET"),
        ("text/plain", lambda: call(server.url("/caption"), b"hello", "text/plain"), 415, None, "multipart/form-data"),
        ("a chunked body", lambda: raw_request(server, ("POST", "/caption", {
            "Transfer-Encoding": "chunked", "Content-Type": "application/json"}), b"2\r\n{}\r\n0\r\n\r\n"),
         411, None, "Content-Length"),
        ("a gzip body", lambda: raw_request(server, ("POST", "/caption", {
            "Content-Encoding": "gzip", "Content-Type": "application/json", "Content-Length": "2"}), b"{}"),
         415, None, "Content-Encoding"),
        ("a captioning model asked a question", lambda: post_json(server, "/vqa", image_json(photo, question="why?")),
         404, None, "serves /caption"),
    ]
    for what, send, expected_status, expected_field, expected_text in cases:
        status, body, headers = send()
        if status != expected_status or expected_text not in body.get("error", ""):
            fail(f"{what}: {status} {body} (expected {expected_status} and an error with {expected_text!r})")
        if expected_field is not None and body.get("field") != expected_field:
            fail(f"{what}: field {body.get('field')!r}, expected {expected_field!r}")
        if status == 405 and not headers.get("Allow"):
            fail(f"{what}: 405 without an Allow header")
        healthy(server, what)
        print(f"{what}: {status} {body['error'][:100]}")
    # Still serving real work after all that.
    status, body, _ = post_form(server, "/caption", {}, photo)
    if status != 200 or not isinstance(body.get("caption"), str):
        fail(f"a good request after the bad ones: {status} {body}")
    if server.stop() != 0:
        fail("exit status after SIGTERM:\n" + server.text())


def multipart_bytes_prompt(photo):
    """A multipart body whose prompt holds the byte 0xE9 alone (Latin-1 'é'), not UTF-8."""
    body, content_type = multipart({"prompt": "PLACEHOLDER"}, photo)
    return body.replace(b"PLACEHOLDER", b"caf\xe9"), content_type


def check_stop(bin_dir, fixtures, assets):
    model, tokenizer = os.path.join(fixtures, "blip_caption"), os.path.join(assets, "tokenizers/blip-image-captioning-base")
    path = os.path.join(assets, "images", "skimage_coffee.png")
    need(model, tokenizer, path)
    photo = open(path, "rb").read()
    server = Server(bin_dir, model, tokenizer, "--workers", "2", "--threads", "1")
    signalled = threading.Event()
    problems, answered = [], [0]

    def client():
        # Requests until the server is gone. Before the signal every one must succeed; after it, each
        # is answered in full or refused at the connection, never cut off or answered with an error.
        while True:
            sent_after_signal = signalled.is_set()
            try:
                status, body, _ = post_form(server, "/caption", {"num_beams": 3, "max_new_tokens": 12}, photo)
            except (ConnectionError, urllib.error.URLError, http.client.HTTPException) as error:
                if not sent_after_signal and not signalled.is_set():
                    problems.append(f"connection error before the signal: {error!r}")
                return
            except SystemExit:
                problems.append("a response that is not JSON")
                return
            if status != 200 or not isinstance(body.get("caption"), str):
                problems.append(f"{status} {body}")
                return
            answered[0] += 1

    clients = [threading.Thread(target=client) for _ in range(3)]
    for thread in clients:
        thread.start()
    time.sleep(1.5)
    signalled.set()
    started = time.monotonic()
    status = server.stop(signal.SIGTERM)
    stopped_in = time.monotonic() - started
    for thread in clients:
        thread.join(60)
    if problems:
        fail("; ".join(problems))
    if status != 0:
        fail(f"exit status {status} after SIGTERM:\n{server.text()}")
    if "SIGTERM: stopping" not in server.text() or not server.text().rstrip().endswith("[blip_server] stopped"):
        fail("the log does not say it stopped:\n" + server.text()[-2000:])
    print(f"{answered[0]} captions answered; stopped {stopped_in:.2f} s after SIGTERM with status 0")
    # SIGINT too, on an idle server.
    server = Server(bin_dir, model, tokenizer)
    if server.stop(signal.SIGINT) != 0 or "SIGINT: stopping" not in server.text():
        fail("SIGINT:\n" + server.text())


CHECKS = {"usage": check_usage, "caption": check_caption, "vqa": check_vqa, "match": check_match,
          "errors": check_errors, "stop": check_stop}

if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in CHECKS:
        print(__doc__)
        sys.exit(2)
    CHECKS[sys.argv[1]](*sys.argv[2:])
